//! Twitch Shared Chat: while channels share their chat, a message sent in one
//! also arrives in the others' IRC, with `source-room-id` (the channel it was
//! sent in) and `source-id` (its id there). When the channel it was sent in is
//! read too, only that copy is stored; a copy is stored only when it is the
//! one that reached us (with where it came from). And a message is not relayed
//! into a channel whose viewers already saw it: one sharing chat with the
//! channel it was sent in, or the channel itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cache::Bounded;

/// How long two channels count as sharing chat after the last message seen
/// mirrored between them.
const SESSION_QUIET: Duration = Duration::from_secs(10 * 60);

/// What the reader learned, shared with deliveries.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<Inner>,
}

struct Inner {
    /// Channel login → its room id (from ROOMSTATE).
    rooms: HashMap<String, String>,
    /// Pairs of channel logins seen sharing chat (in sorted order), when last.
    pairs: Bounded<(String, String), Instant>,
}

/// Shared Chat pairs remembered at most (a session joins a few channels).
pub const SHARED_PAIRS: usize = 256;

impl Default for Inner {
    fn default() -> Self {
        Inner {
            rooms: HashMap::new(),
            pairs: Bounded::new(SHARED_PAIRS),
        }
    }
}

fn pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Plain data; a panic elsewhere cannot leave it torn.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Channel `login` is room `room_id` (a ROOMSTATE).
    pub fn room(&self, login: &str, room_id: &str) {
        self.lock()
            .rooms
            .insert(login.to_string(), room_id.to_string());
    }

    /// The joined channel whose room id is `room_id`, if any.
    pub fn login_of(&self, room_id: &str) -> Option<String> {
        let inner = self.lock();
        inner
            .rooms
            .iter()
            .find(|(_, r)| *r == room_id)
            .map(|(l, _)| l.clone())
    }

    /// A message sent in `from` was seen mirrored into `into`.
    pub fn seen(&self, from: &str, into: &str) {
        let mut inner = self.lock();
        // Sessions over long ago are forgotten first.
        if inner.pairs.len() == inner.pairs.capacity() {
            inner.pairs.retain(|_, t| t.elapsed() < SESSION_QUIET);
        }
        inner.pairs.insert(pair(from, into), Instant::now());
    }

    /// Whether viewers of `into` already see what is said in `from`: the same
    /// channel, or one it shares chat with now.
    pub fn sees(&self, from: &str, into: &str) -> bool {
        if from == into {
            return true;
        }
        self.lock()
            .pairs
            .get(&pair(from, into))
            .is_some_and(|t| t.elapsed() < SESSION_QUIET)
    }

    /// The login of the channel with room id `room_id` (see [`Sessions::room`]).
    pub fn room_id_of(&self, login: &str) -> Option<String> {
        self.lock().rooms.get(login).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_symmetric_and_rooms_map_both_ways() {
        let s = Sessions::default();
        s.room("alpha", "100");
        s.room("beta", "200");
        assert_eq!(s.login_of("200").as_deref(), Some("beta"));
        assert_eq!(s.room_id_of("alpha").as_deref(), Some("100"));
        assert!(!s.sees("alpha", "beta"));
        s.seen("alpha", "beta");
        assert!(s.sees("beta", "alpha") && s.sees("alpha", "beta"));
        assert!(s.sees("gamma", "gamma") && !s.sees("alpha", "gamma"));
    }
}
