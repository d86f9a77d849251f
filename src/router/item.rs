//! What a channel's queue holds: one stream event on its way to one channel,
//! with what the worker and the coalescing both need to know of it.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::time::Instant;

use super::tracker::Tracker;
use crate::event::{ChatEvent, EventKind};

/// A unit of work for one channel worker.
pub struct Item {
    pub event: Arc<ChatEvent>,
    pub tracker: Arc<Tracker>,
    /// JetStream delivered it before: check the records before posting.
    pub redelivered: bool,
    pub received: Instant,
    /// Not to be relayed before this (a room's moderation hold).
    pub due: Option<Instant>,
}

impl Item {
    /// Since when it could be relayed (a backlog is measured from this).
    pub fn ready_since(&self) -> Instant {
        self.due.map_or(self.received, |d| d.max(self.received))
    }

    pub fn is_due(&self, now: Instant) -> bool {
        self.due.is_none_or(|d| d <= now)
    }
}

/// Whether a delete of `id` is waiting in `queue`: held back, it is never posted.
pub fn withdrawn(queue: &VecDeque<Item>, id: &str) -> bool {
    queue
        .iter()
        .any(|i| i.event.kind == EventKind::Delete && i.event.target.as_deref() == Some(id))
}
