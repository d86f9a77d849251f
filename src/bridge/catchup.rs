//! Catch-up from a platform's history: what a channel missed while jetbridge
//! was away (stopped, restarting, its session lost) is read from the platform
//! after the last event of that channel stored on the stream, and stored and
//! relayed as if it had arrived live. The platform reads its history; this
//! file says where to start and how much to take.

use std::fmt::Display;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{BridgeContext, Inbound};
use crate::backoff::Backoff;
use crate::config::CommonBridgeConfig;
use crate::event::{ChatEvent, EventKind};

/// How often the store is asked where a channel stands before catch-up gives
/// up on it (about 20 s in all).
const STORE_TRIES: u32 = 6;

/// What one channel's catch-up reads: the messages after a point, at most
/// `max` of them (the newest), none older than the age bound.
#[derive(Debug, Clone)]
pub struct Window {
    pub channel: String,
    /// The platform id of the last stored message, when the last stored event
    /// of the channel is a message: read strictly after it.
    pub after_id: Option<String>,
    /// Nothing at or before this time is missing (the last stored event's
    /// time, or the age bound, whichever is later).
    pub after_time: DateTime<Utc>,
    pub max: usize,
}

/// A platform's channel history, as catch-up reads it.
#[async_trait]
pub trait History: Sync {
    type Error: Display + Send;

    /// The messages of `window` as events, oldest first, and whether older
    /// ones were left out (more than `window.max`).
    async fn missed_events(
        &self,
        window: &Window,
        inbound: &Inbound,
    ) -> Result<(Vec<ChatEvent>, bool), Self::Error>;
}

/// Catch every channel `ctx` reads up, one after another, when the account
/// backfills. A channel whose history cannot be read is skipped with a warning.
pub async fn catch_up_all(
    ctx: &BridgeContext,
    common: &CommonBridgeConfig,
    history: &impl History,
) {
    if !common.backfill_on() {
        return;
    }
    let mut caught_up = 0;
    for (channel, direction) in &ctx.channels {
        if !direction.reads() {
            continue;
        }
        let Some(window) = ctx.inbound.catch_up_window(channel, common).await else {
            continue;
        };
        match history.missed_events(&window, &ctx.inbound).await {
            Ok((events, more)) => {
                caught_up += events.len();
                ctx.inbound.publish_caught_up(&window, events, more).await;
            }
            Err(e) => {
                tracing::warn!(channel, error = %e, "cannot read the channel's history; not caught up");
            }
        }
    }
    tracing::info!(caught_up, "catch-up finished");
}

impl Inbound {
    /// Where `channel` catches up from; `None` when it is not read, nothing of
    /// it is stored yet (a new channel is not backfilled) or the store cannot
    /// say now.
    pub async fn catch_up_window(
        &self,
        channel: &str,
        common: &CommonBridgeConfig,
    ) -> Option<Window> {
        // NATS may be coming up with us: ask a few times before giving up.
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        let last = loop {
            match self.last_stored(channel).await {
                Ok(Some(ev)) => break ev,
                Ok(None) => {
                    tracing::debug!(channel, "nothing stored yet: no catch-up");
                    return None;
                }
                Err(e) if backoff.attempts() >= STORE_TRIES => {
                    tracing::warn!(channel, error = %e, "cannot read where to catch up from; not caught up");
                    return None;
                }
                Err(e) => {
                    tracing::debug!(channel, error = %e, "cannot read where to catch up from yet");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        };
        let oldest = Utc::now()
            - chrono::Duration::from_std(common.backfill_max_age).unwrap_or(chrono::Duration::MAX);
        let after_id = (last.kind == EventKind::Message).then(|| last.source.message_id.clone());
        Some(Window {
            channel: channel.to_string(),
            after_id,
            after_time: last.ts.max(oldest),
            max: common.backfill_max,
        })
    }

    /// Store what a channel's catch-up found (in the order given, oldest
    /// first); `more` says that older missed messages were left out because
    /// of `backfill_max`.
    pub async fn publish_caught_up(&self, window: &Window, events: Vec<ChatEvent>, more: bool) {
        let n = events.len();
        for ev in events {
            self.publish(ev).await;
        }
        metrics::counter!("jetbridge_backfilled_total", "bridge" => self.bridge().to_string())
            .increment(n as u64);
        if more {
            tracing::warn!(
                channel = %window.channel,
                caught_up = n,
                backfill_max = window.max,
                "more was missed than backfill_max: relayed the newest"
            );
        } else if n > 0 {
            tracing::info!(channel = %window.channel, caught_up = n, "caught up from history");
        } else {
            tracing::debug!(channel = %window.channel, "nothing missed");
        }
    }
}
