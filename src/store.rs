//! The inbound [`EventStore`] over JetStream: queued publishing through the
//! bus's [`Publisher`], immediate publishing for callers that must answer with
//! the sequence, and the last stored event of a channel (where catch-up
//! resumes).

use async_trait::async_trait;
use futures::StreamExt;

use crate::bridge::{EventStore, MediaIndex, StoreError};
use crate::bus::{Bus, BusError, MediaBucket, Publisher, ReadFrom};
use crate::event::ChatEvent;

/// Where every bridge's inbound events go.
pub struct JetStreamStore {
    pub bus: Bus,
    pub publisher: Publisher,
    /// The id maps opened so far, by bridge.
    pub id_maps: tokio::sync::Mutex<std::collections::HashMap<String, crate::bus::IdMap>>,
}

#[async_trait]
impl EventStore for JetStreamStore {
    async fn submit(&self, ev: &ChatEvent) {
        self.publisher.submit_wait(ev).await;
    }

    async fn store(&self, ev: &ChatEvent) -> Result<u64, StoreError> {
        self.bus
            .publish_now(ev)
            .await
            .map_err(|e| StoreError(Box::new(e)))
    }

    async fn original_of(&self, event_id: &str) -> Result<Option<String>, StoreError> {
        // `<bridge>:<channel token>:<platform id>`; the token stands for the
        // channel in the id map's keys.
        let mut parts = event_id.splitn(3, ':');
        let (Some(bridge), Some(token), Some(id)) = (parts.next(), parts.next(), parts.next())
        else {
            return Ok(None);
        };
        let map = {
            let mut maps = self.id_maps.lock().await;
            match maps.get(bridge) {
                Some(m) => m.clone(),
                None => {
                    let m = self
                        .bus
                        .id_map(bridge)
                        .await
                        .map_err(|e| StoreError(Box::new(e)))?;
                    maps.insert(bridge.to_string(), m.clone());
                    m
                }
            }
        };
        map.copy_of(token, id)
            .await
            .map_err(|e| StoreError(Box::new(e)))
    }

    async fn stored_since(
        &self,
        subject: &str,
        since: chrono::DateTime<chrono::Utc>,
        max: usize,
    ) -> Result<Vec<ChatEvent>, StoreError> {
        let start = time::OffsetDateTime::from_unix_timestamp(since.timestamp())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let read = async {
            let mut reader = self
                .bus
                .read_ordered(subject, ReadFrom::Time(start))
                .await
                .map_err(|e| StoreError(Box::new(e)))?;
            let mut events = Vec::new();
            while let Some(stored) = reader.next().await {
                let stored = stored.map_err(|e| StoreError(Box::new(e)))?;
                if let Ok(ev) = serde_json::from_slice::<ChatEvent>(&stored.payload) {
                    events.push(ev);
                }
                if stored.pending == 0 || events.len() >= max {
                    break;
                }
            }
            Ok(events)
        };
        tokio::time::timeout(READ_BACK, read)
            .await
            .map_err(|e| StoreError(Box::new(e)))?
    }

    async fn last_stored(&self, subject: &str) -> Result<Option<ChatEvent>, StoreError> {
        let payload = self
            .bus
            .last_payload(subject)
            .await
            .map_err(|e| StoreError(Box::new(e)))?;
        // Something else under our subject (not a chat event) is no resume point.
        Ok(payload.and_then(|p| match serde_json::from_slice(&p) {
            Ok(ev) => Some(ev),
            Err(e) => {
                tracing::warn!(subject, error = %e, "the last message stored here is not a chat event; not a resume point");
                None
            }
        }))
    }
}

/// How long reading a channel's stored events may take before a re-check
/// gives up on it (and guesses nothing).
const READ_BACK: std::time::Duration = std::time::Duration::from_secs(10);

/// Media links over the `jetbridge-media` bucket (see `bridge::media`).
pub struct JetStreamMedia {
    bus: Bus,
    /// `http.public_url` (or `http://<listen>`), without a trailing slash.
    base: String,
    bucket: tokio::sync::OnceCell<MediaBucket>,
}

impl JetStreamMedia {
    pub fn new(bus: Bus, base: String) -> Self {
        JetStreamMedia {
            bus,
            base,
            bucket: tokio::sync::OnceCell::new(),
        }
    }

    async fn bucket(&self) -> Result<&MediaBucket, BusError> {
        self.bucket
            .get_or_try_init(|| self.bus.media_bucket())
            .await
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct MediaEntry {
    bridge: String,
    reference: String,
}

#[async_trait]
impl MediaIndex for JetStreamMedia {
    async fn link(&self, bridge: &str, reference: &str) -> Option<String> {
        // Unguessable, so that the route serves only what a bridge linked to.
        // 80 random bits from the thread CSPRNG, fresh each call.
        let token = ulid::Ulid::generate().to_string().to_lowercase();
        let entry = MediaEntry {
            bridge: bridge.to_string(),
            reference: reference.to_string(),
        };
        // Plain data; cannot fail to serialize.
        let value = serde_json::to_vec(&entry).expect("MediaEntry serializes");
        let put = match self.bucket().await {
            Ok(bucket) => bucket.put(&token, value).await,
            Err(e) => Err(e),
        };
        match put {
            Ok(()) => Some(format!("{}/media/{token}", self.base)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot keep a media link; the platform's URL is used");
                None
            }
        }
    }

    async fn resolve(&self, token: &str) -> Result<Option<(String, String)>, StoreError> {
        let bucket = self.bucket().await.map_err(|e| StoreError(Box::new(e)))?;
        let Some(raw) = bucket
            .get(token)
            .await
            .map_err(|e| StoreError(Box::new(e)))?
        else {
            return Ok(None);
        };
        match serde_json::from_slice::<MediaEntry>(&raw) {
            Ok(e) => Ok(Some((e.bridge, e.reference))),
            Err(e) => {
                // Written by another program, or by a version that no longer reads it.
                tracing::warn!(error = %e, "a media link's entry is not readable; treated as absent");
                Ok(None)
            }
        }
    }
}
