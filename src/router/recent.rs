//! A bounded memory of a bridge's recent posts, by (channel, event id): an
//! edit or delete right behind its message, or a redelivery after NATS lost
//! its consumer state, finds the copy before (or without) the record landing.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::bridge::Posted;
use crate::bus::IdMap;
use crate::cache::Bounded;

/// Recent posts of one bridge, shared by its workers and kept across
/// leaderships. Cheap to clone.
#[derive(Clone)]
pub struct Recent(Arc<Mutex<Bounded<String, Posted>>>);

/// Posts remembered per bridge (older ones are found in the id map).
pub const RECENT_POSTS: usize = 8192;

impl Default for Recent {
    fn default() -> Self {
        Recent(Arc::new(Mutex::new(Bounded::new(RECENT_POSTS))))
    }
}

impl Recent {
    fn lock(&self) -> MutexGuard<'_, Bounded<String, Posted>> {
        // Plain data; a panic elsewhere cannot leave it torn.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, channel: &str, event_id: &str) -> Option<Posted> {
        self.lock().get(&IdMap::key(channel, event_id)).cloned()
    }

    /// Remember (or update) the copy of `event_id` in `channel`.
    pub fn insert(&self, channel: &str, event_id: &str, posted: &Posted) {
        self.lock()
            .insert(IdMap::key(channel, event_id), posted.clone());
    }
}
