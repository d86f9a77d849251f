//! Catch-up from a platform's history: what a channel missed while jetbridge
//! was away (stopped, restarting, its session lost) is read from the platform
//! after the last event of that channel stored on the stream, and stored and
//! relayed as if it had arrived live; the messages stored within
//! `backfill_recheck` before are compared with history too (see `recheck`).
//! The platform reads its history; this file says where to start and how much
//! to take.

use std::fmt::Display;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::inbound::Said;
use super::recheck::{self, CaughtUp, Found, reconcile};
use super::{BridgeContext, Inbound};
use crate::backoff::Backoff;
use crate::config::CommonBridgeConfig;
use crate::event::ChatEvent;

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
    /// The age bound: nothing older is read.
    pub oldest: DateTime<Utc>,
    pub max: usize,
}

/// A platform's channel history, as catch-up reads it.
#[async_trait]
pub trait History: Sync {
    type Error: Display + Send;

    /// The messages of `window`, oldest first (each with its event, where it
    /// is chat, and its last edit's marker), and whether older ones were left
    /// out (more than `window.max`).
    async fn read(
        &self,
        window: &Window,
        inbound: &Inbound,
    ) -> Result<(Vec<Found>, bool), Self::Error>;

    /// Whether the channel's history lists a stored message (what it does not
    /// list is never taken for deleted).
    fn lists(&self, _stored: &ChatEvent) -> bool {
        true
    }
}

/// How far before the last stored message a re-check reaches back for a
/// channel's stored events (stream time trails platform time a little).
const RECHECK_SLACK: chrono::Duration = chrono::Duration::seconds(60);

/// Catch every channel `ctx` reads up, one after another, when the account
/// backfills: what was said meanwhile, and (within `backfill_recheck`) what
/// was edited or deleted. A channel whose history cannot be read is skipped
/// with a warning, and nothing is guessed for it.
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
        caught_up += catch_up_channel(ctx, common, history, channel).await;
    }
    tracing::info!(caught_up, "catch-up finished");
}

/// Catch one read channel up (see [`catch_up_all`]); how many missed
/// messages it stored.
pub async fn catch_up_channel(
    ctx: &BridgeContext,
    common: &CommonBridgeConfig,
    history: &impl History,
    channel: &str,
) -> usize {
    let Some(window) = ctx.inbound.catch_up_window(channel, common).await else {
        return 0;
    };
    let recheck_from = (!common.backfill_recheck.is_zero()).then(|| {
        window.after_time
            - chrono::Duration::from_std(common.backfill_recheck).unwrap_or(chrono::Duration::MAX)
    });
    let read = match recheck_from {
        Some(from) => Window {
            after_id: None,
            after_time: from.max(window.oldest),
            ..window.clone()
        },
        None => window.clone(),
    };
    let (found, more) = match history.read(&read, &ctx.inbound).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(channel, error = %e, "cannot read the channel's history; not caught up");
            return 0;
        }
    };
    let stored = match recheck_from {
        Some(from) => match ctx
            .inbound
            .stored_since(channel, from - RECHECK_SLACK, common.backfill_max * 4)
            .await
        {
            Ok(events) => Some(events),
            Err(e) => {
                tracing::warn!(channel, error = %e, "cannot read the channel's stored events; edits and deletions made meanwhile not checked");
                None
            }
        },
        None => None,
    };
    let lists = |ev: &ChatEvent| history.lists(ev);
    let plan = reconcile(
        window.after_time,
        found,
        more,
        stored.as_deref().map(|events| recheck::Stored {
            from: read.after_time,
            events,
            listed: &lists,
        }),
    );
    let caught_up = plan.missed.len();
    ctx.inbound.publish_caught_up(&window, plan).await;
    caught_up
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
        let stored = loop {
            match self.last_stored(channel).await {
                Ok(stored) => break stored.as_ref().map(Said::of),

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
        // What this process queued may not be stored yet (a catch-up right
        // after another one): it is said, and not to be read again.
        let last = match (stored, self.last_queued(channel)) {
            (Some(s), Some(q)) if q.ts < s.ts => s,
            (s, q) => match q.or(s) {
                Some(last) => last,
                None => {
                    tracing::debug!(channel, "nothing stored yet: no catch-up");
                    return None;
                }
            },
        };
        let oldest = Utc::now()
            - chrono::Duration::from_std(common.backfill_max_age).unwrap_or(chrono::Duration::MAX);
        Some(Window {
            channel: channel.to_string(),
            after_id: last.post.then_some(last.message_id),
            after_time: last.ts.max(oldest),
            oldest,
            max: common.backfill_max,
        })
    }

    /// Store what a channel's catch-up found: edits and deletions of stored
    /// messages first, then what was missed, oldest first.
    pub async fn publish_caught_up(&self, window: &Window, plan: CaughtUp) {
        let counts = [
            ("edit", plan.edits.len()),
            ("delete", plan.deletes.len()),
            ("message", plan.missed.len()),
        ];
        for ev in plan
            .edits
            .into_iter()
            .chain(plan.deletes)
            .chain(plan.missed)
        {
            self.publish(ev).await;
        }
        for (kind, n) in counts {
            metrics::counter!("jetbridge_backfilled_total", "bridge" => self.bridge().to_string(), "kind" => kind)
                .increment(n as u64);
        }
        let [(_, edits), (_, deletes), (_, n)] = counts;
        // Older messages were left out of the read (the recheck's hour can
        // hold more than `backfill_max`), but only a read that was all new
        // may have missed some: one that reached stored ones covers the gap.
        if plan.more && n >= window.max {
            tracing::warn!(
                channel = %window.channel,
                caught_up = n,
                edits,
                deletes,
                backfill_max = window.max,
                "more was missed than backfill_max: relayed the newest"
            );
        } else if n + edits + deletes > 0 {
            tracing::info!(channel = %window.channel, caught_up = n, edits, deletes, "caught up from history");
        } else {
            tracing::debug!(channel = %window.channel, "nothing missed");
        }
    }
}
