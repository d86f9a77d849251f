//! The sink a bridge hands inbound events to. It fills in the room, drops what
//! the channel's direction says not to read, counts, and passes the rest to the
//! [`EventStore`] the process wires in (JetStream). A bridge sees only this.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::MediaIndex;
use crate::config::Config;
use crate::event::{ChatEvent, EventKind};
use crate::status::Health;

/// Where inbound events are stored (implemented over JetStream by the process).
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Queue `ev` for storing, in order; waits for room while the store is
    /// reachable (a burst slows the platform reads down instead of dropping).
    async fn submit(&self, ev: &ChatEvent);

    /// Store `ev` now and return its stream sequence.
    async fn store(&self, ev: &ChatEvent) -> Result<u64, StoreError>;

    /// The newest event stored under `subject`, if any (where catch-up resumes).
    async fn last_stored(&self, subject: &str) -> Result<Option<ChatEvent>, StoreError>;

    /// The event whose copy `event_id` names (a message jetbridge posted),
    /// if it names one.
    async fn original_of(&self, event_id: &str) -> Result<Option<String>, StoreError>;

    /// The events stored under `subject` since `since` (stream time), oldest
    /// first, at most `max` (the first ones): what a catch-up re-checks.
    async fn stored_since(
        &self,
        subject: &str,
        since: chrono::DateTime<chrono::Utc>,
        max: usize,
    ) -> Result<Vec<ChatEvent>, StoreError>;
}

/// The store could not do it now (NATS away, stream missing).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StoreError(pub Box<dyn std::error::Error + Send + Sync>);

/// A bridge's inbound sink. Cheap to clone.
#[derive(Clone)]
pub struct Inbound {
    bridge: String,
    /// Channel (as configured) → room, for channels that are read.
    rooms: Arc<HashMap<String, String>>,
    store: Arc<dyn EventStore>,
    health: Health,
    media: Option<Arc<dyn MediaIndex>>,
    /// Messages in by room and kind, named once (see `count`).
    counters: Arc<std::sync::Mutex<Vec<(String, EventKind, metrics::Counter)>>>,
    /// The newest event queued per channel (see `last_queued`).
    queued: Arc<std::sync::Mutex<HashMap<String, Said>>>,
}

/// Where a channel's chat stands: its newest event, as a catch-up needs it.
#[derive(Debug, Clone)]
pub struct Said {
    /// The event is a message (its platform id marks a place in history).
    pub post: bool,
    pub message_id: String,
    pub ts: chrono::DateTime<chrono::Utc>,
}

impl Said {
    pub fn of(ev: &ChatEvent) -> Said {
        Said {
            post: ev.kind.is_post(),
            message_id: ev.source.message_id.clone(),
            ts: ev.ts,
        }
    }
}

impl Inbound {
    pub fn new(config: &Config, bridge: &str, store: Arc<dyn EventStore>, health: Health) -> Self {
        let rooms = config
            .channels_of(bridge)
            .filter(|(_, c)| c.direction.reads())
            .map(|(r, c)| (c.channel.clone(), r.name.clone()))
            .collect();
        Inbound {
            bridge: bridge.to_string(),
            rooms: Arc::new(rooms),
            store,
            health,
            media: None,
            counters: Arc::default(),
            queued: Arc::default(),
        }
    }

    /// Link files through `media` (the HTTP surface serves them).
    pub fn with_media(mut self, media: Arc<dyn MediaIndex>) -> Self {
        self.media = Some(media);
        self
    }

    /// A link to a file that viewers elsewhere can open (see `bridge::media`):
    /// jetbridge's own, when it serves media, else `fallback` (the platform's
    /// URL, which may expire or need a login).
    pub async fn media_link(&self, reference: &str, fallback: &str) -> String {
        match &self.media {
            Some(m) => m
                .link(&self.bridge, reference)
                .await
                .unwrap_or_else(|| fallback.to_string()),
            None => fallback.to_string(),
        }
    }

    /// The bridge this sink belongs to.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The room `channel` (as configured) feeds, if it is read.
    pub fn room_of(&self, channel: &str) -> Option<&str> {
        self.rooms.get(channel).map(String::as_str)
    }

    fn count(&self, ev: &ChatEvent) {
        // Naming a metric with its labels allocates and looks it up: done
        // once per room and kind rather than per message.
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        match counters
            .iter()
            .find(|(room, kind, _)| *room == ev.room && *kind == ev.kind)
        {
            Some((_, _, c)) => c.increment(1),
            None => {
                let c = metrics::counter!("jetbridge_messages_in_total", "bridge" => self.bridge.clone(), "room" => ev.room.clone(), "kind" => ev.kind.as_str());
                c.increment(1);
                counters.push((ev.room.clone(), ev.kind, c));
            }
        }
        drop(counters);
        self.health.heard(&self.bridge);
    }

    /// Store `ev` (its room already set) now and wait until it is stored;
    /// returns its stream sequence. For callers that must answer with it (the
    /// send API), and that can tell their client to retry.
    pub async fn publish_acked(&self, ev: ChatEvent) -> Result<u64, StoreError> {
        let seq = self.store.store(&ev).await?;
        self.count(&ev);
        Ok(seq)
    }

    /// Queue `ev` (whose `source.channel` is the configured channel) for storing,
    /// waiting for room in the queue while NATS is connected. Returns false when
    /// the channel is not read by any room.
    pub async fn publish(&self, mut ev: ChatEvent) -> bool {
        let Some(room) = self.rooms.get(&ev.source.channel) else {
            return false;
        };
        ev.room = room.clone();
        tracing::debug!(event_id = %ev.id, kind = ev.kind.as_str(), room = %ev.room, "inbound");
        self.count(&ev);
        self.note_queued(&ev);
        self.store.submit(&ev).await;
        true
    }

    /// The message `event_id` names, as the stream knows it: the original
    /// when it names a copy jetbridge posted (a reaction or reply to a copy
    /// is one to the message it copies), else itself.
    pub async fn original(&self, event_id: &str) -> String {
        match self.store.original_of(event_id).await {
            Ok(Some(original)) => original,
            Ok(None) => event_id.to_string(),
            Err(e) => {
                tracing::warn!(event_id, error = %e, "cannot tell whether a message is a copy; taken as it is");
                event_id.to_string()
            }
        }
    }

    /// As [`original`](Self::original), for a message the platform says is
    /// one of ours (so a copy): its entry may still be landing when someone
    /// reacts or replies right after it was posted, so it is asked again for
    /// a few seconds before the message is taken as it is.
    pub async fn original_of_ours(&self, event_id: &str) -> String {
        let mut backoff = crate::backoff::Backoff::new(
            std::time::Duration::from_millis(50),
            std::time::Duration::from_millis(500),
        );
        for _ in 0..8 {
            if let Ok(Some(original)) = self.store.original_of(event_id).await {
                return original;
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
        self.original(event_id).await
    }

    fn note_queued(&self, ev: &ChatEvent) {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        match queued.get_mut(&ev.source.channel) {
            // Reused in place: no allocation per message.
            Some(said) => {
                said.post = ev.kind.is_post();
                said.message_id.clear();
                said.message_id.push_str(&ev.source.message_id);
                said.ts = ev.ts;
            }
            None => {
                queued.insert(ev.source.channel.clone(), Said::of(ev));
            }
        }
    }

    /// The newest event of `channel` this process queued for storing: it
    /// is on its way to the stream even where the stream does not have it
    /// yet.
    pub fn last_queued(&self, channel: &str) -> Option<Said> {
        let queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        queued.get(channel).cloned()
    }

    /// The newest event stored from `channel` (as configured), if the channel
    /// is read and anything of it is stored.
    pub async fn last_stored(&self, channel: &str) -> Result<Option<ChatEvent>, StoreError> {
        let Some(room) = self.rooms.get(channel) else {
            return Ok(None);
        };
        let subject = crate::event::subject(room, &self.bridge, channel);
        self.store.last_stored(&subject).await
    }

    /// The events of `channel` stored since `since`, oldest first (at most `max`).
    pub async fn stored_since(
        &self,
        channel: &str,
        since: chrono::DateTime<chrono::Utc>,
        max: usize,
    ) -> Result<Vec<ChatEvent>, StoreError> {
        let Some(room) = self.rooms.get(channel) else {
            return Ok(Vec::new());
        };
        let subject = crate::event::subject(room, &self.bridge, channel);
        self.store.stored_since(&subject, since, max).await
    }

    /// A platform message that could not be read: counted and logged with its
    /// id, never dropped in silence.
    pub fn unparsed(&self, message_id: &str, error: &dyn std::fmt::Display) {
        metrics::counter!("jetbridge_inbound_unparsed_total", "bridge" => self.bridge.clone())
            .increment(1);
        tracing::warn!(message_id, %error, "inbound message could not be read");
    }
}
