//! Ack tracking: a stream message is acked once every destination channel has
//! handled it, or handed back (nak) when a stop leaves it unfinished.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::Settle;

/// One stream message awaiting its destinations.
pub struct Tracker {
    pub seq: u64,
    /// The bridge delivering it (for the failure count).
    bridge: Arc<str>,
    remaining: AtomicUsize,
    settle: tokio::sync::Mutex<Box<dyn Settle>>,
    settled: AtomicBool,
}

impl Tracker {
    pub fn new(seq: u64, bridge: Arc<str>, destinations: usize, settle: Box<dyn Settle>) -> Self {
        Tracker {
            seq,
            bridge,
            remaining: AtomicUsize::new(destinations),
            settle: tokio::sync::Mutex::new(settle),
            settled: AtomicBool::new(false),
        }
    }

    /// JetStream offered the message again while we still hold it (a slow
    /// channel outlived `ack_wait`): settle it with the newest handle.
    pub async fn replace_handle(&self, settle: Box<dyn Settle>) {
        *self.settle.lock().await = settle;
    }

    /// One destination is done; the last one acks the stream message.
    pub async fn done(&self, inflight: &Inflight) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.settle(inflight, false).await;
        }
    }

    /// Give the message back to JetStream for immediate redelivery (a stop with
    /// work left); destinations already done are skipped then via the records.
    pub async fn abandon(&self, inflight: &Inflight) {
        self.settle(inflight, true).await;
    }

    async fn settle(&self, inflight: &Inflight, give_back: bool) {
        if self.settled.swap(true, Ordering::AcqRel) {
            return;
        }
        inflight.lock().remove(&self.seq);
        let handle = self.settle.lock().await;
        let result = if give_back {
            handle.nak().await
        } else {
            handle.ack().await
        };
        if let Err(e) = result {
            // JetStream redelivers an unacked message; the records prevent a repost.
            settle_failed(
                &self.bridge,
                if give_back { "nak" } else { "ack" },
                self.seq,
                &e,
            );
        }
    }
}

/// The stream messages being delivered, by sequence.
#[derive(Clone, Default)]
pub struct Inflight(Arc<std::sync::Mutex<HashMap<u64, Arc<Tracker>>>>);

impl Inflight {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Tracker>>> {
        // Plain data; a panic elsewhere cannot leave it torn.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Say that settling stream message `seq` with `op` failed: logged and
/// counted, never dropped (JetStream delivers it again).
pub fn settle_failed(bridge: &str, op: &'static str, seq: u64, err: &dyn std::fmt::Display) {
    tracing::warn!(seq, op, error = %err, "settling a stream message failed; JetStream delivers it again");
    metrics::counter!("jetbridge_ack_failures_total", "bridge" => bridge.to_string(), "op" => op)
        .increment(1);
}
