//! A bounded memory of a bridge's recent posts, by (channel, event id): an
//! edit or delete right behind its message, or a redelivery after NATS lost
//! its consumer state, finds the copy before (or without) the record landing.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::bridge::Posted;
use crate::bus::IdMap;

/// Recent posts of one bridge, shared by its workers and kept across
/// leaderships. Cheap to clone.
#[derive(Clone, Default)]
pub struct Recent(Arc<Mutex<RecentPosts>>);

#[derive(Default)]
pub struct RecentPosts {
    map: HashMap<String, Posted>,
    order: VecDeque<String>,
}

impl RecentPosts {
    const MAX: usize = 8192;
}

impl Recent {
    fn lock(&self) -> MutexGuard<'_, RecentPosts> {
        // Plain data; a panic elsewhere cannot leave it torn.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, channel: &str, event_id: &str) -> Option<Posted> {
        self.lock().map.get(&IdMap::key(channel, event_id)).cloned()
    }

    /// Remember (or update) the copy of `event_id` in `channel`.
    pub fn insert(&self, channel: &str, event_id: &str, posted: &Posted) {
        let key = IdMap::key(channel, event_id);
        let mut r = self.lock();
        if r.map.insert(key.clone(), posted.clone()).is_none() {
            r.order.push_back(key);
            if r.order.len() > RecentPosts::MAX
                && let Some(old) = r.order.pop_front()
            {
                r.map.remove(&old);
            }
        }
    }
}
