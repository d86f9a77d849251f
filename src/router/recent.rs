//! A bounded memory of a bridge's recent posts, by (channel, event id): an
//! edit or delete right behind its message, or a redelivery after NATS lost
//! its consumer state, finds the copy before (or without) the record landing.
//! And the other way round, by (channel, platform id): a copy deleted right
//! after it was posted leads to its original before its entry landed.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::bridge::Posted;
use crate::bus::IdMap;
use crate::cache::Bounded;

/// Recent posts of one bridge, shared by its workers and kept across
/// leaderships. Cheap to clone.
#[derive(Clone)]
pub struct Recent(Arc<Mutex<Memory>>);

struct Memory {
    posts: Bounded<String, Posted>,
    /// Copy → its event id; `None` once jetbridge deleted the copy itself.
    copies: Bounded<String, Option<String>>,
}

/// Posts remembered per bridge (older ones are found in the id map).
pub const RECENT_POSTS: usize = 8192;

impl Default for Recent {
    fn default() -> Self {
        Recent(Arc::new(Mutex::new(Memory {
            posts: Bounded::new(RECENT_POSTS),
            copies: Bounded::new(RECENT_POSTS),
        })))
    }
}

/// The key of copy `platform_id` in `channel`.
fn copy_key(channel: &str, platform_id: &str) -> String {
    format!("{channel}\n{platform_id}")
}

impl Recent {
    fn lock(&self) -> MutexGuard<'_, Memory> {
        // Plain data; a panic elsewhere cannot leave it torn.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, channel: &str, event_id: &str) -> Option<Posted> {
        self.lock()
            .posts
            .get(&IdMap::key(channel, event_id))
            .cloned()
    }

    /// Whether a copy of `event_id` in `channel` is remembered.
    pub fn contains(&self, channel: &str, event_id: &str) -> bool {
        self.lock()
            .posts
            .get(&IdMap::key(channel, event_id))
            .is_some()
    }

    /// Remember (or update) the copy of `event_id` in `channel`, and with
    /// `back_links` where its platform ids lead.
    pub fn insert(&self, channel: &str, event_id: &str, posted: Posted, back_links: bool) {
        let key = IdMap::key(channel, event_id);
        let mut m = self.lock();
        for id in posted.ids.iter().filter(|_| back_links) {
            m.copies
                .insert(copy_key(channel, id), Some(event_id.to_string()));
        }
        m.posts.insert(key, posted);
    }

    /// What copy `platform_id` in `channel` is known to be: `Some(Some(event
    /// id))` a copy of that event, `Some(None)` one jetbridge deleted itself,
    /// `None` not known here (ask the id map).
    pub fn copy_of(&self, channel: &str, platform_id: &str) -> Option<Option<String>> {
        self.lock()
            .copies
            .get(&copy_key(channel, platform_id))
            .cloned()
    }

    /// jetbridge deletes the copies `platform_ids` in `channel` itself.
    pub fn forget_copies(&self, channel: &str, platform_ids: &[String]) {
        let mut m = self.lock();
        for id in platform_ids {
            m.copies.insert(copy_key(channel, id), None);
        }
    }
}
