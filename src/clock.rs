//! The wall clock, as code that decides by time reads it.
//!
//! Events carry wall-clock times (`ts`), and a few decisions compare them with
//! now: when a held message may be relayed, how far back catch-up reads, how
//! late a delivery was. Everything else waits on tokio's clock. A test pauses
//! tokio's clock; a [`Clock::following_tokio`] then moves wall time with it, so
//! both clocks agree and a time-based test gives the same answer on any machine.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// Where wall-clock time comes from.
#[derive(Debug, Clone, Copy, Default)]
pub enum Clock {
    /// The system's clock: what a running process uses.
    #[default]
    System,
    /// Wall time that advances with tokio's clock from an anchor: paused in a
    /// test, it moves only when the test moves tokio's time.
    FollowingTokio { wall: DateTime<Utc>, at: Instant },
}

impl Clock {
    /// Wall time `wall` now, moving on with tokio's clock.
    pub fn following_tokio(wall: DateTime<Utc>) -> Self {
        Clock::FollowingTokio {
            wall,
            at: Instant::now(),
        }
    }

    /// Now, in wall-clock time.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::FollowingTokio { wall, at } => {
                *wall + chrono::Duration::from_std(at.elapsed()).unwrap_or_default()
            }
        }
    }

    /// The tokio instant at which wall time reaches `when` (now, if it has).
    pub fn instant_at(&self, when: DateTime<Utc>) -> Instant {
        let wait = (when - self.now()).to_std().unwrap_or_default();
        Instant::now() + wait
    }

    /// How long ago `when` was (zero for a time still to come).
    pub fn since(&self, when: DateTime<Utc>) -> Duration {
        (self.now() - when).to_std().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_clock_following_paused_tokio_time_moves_only_with_it() {
        let wall = Utc::now();
        let clock = Clock::following_tokio(wall);
        assert_eq!(clock.now(), wall);
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(clock.now(), wall + chrono::Duration::seconds(3));
        let due = clock.instant_at(wall + chrono::Duration::seconds(5));
        assert_eq!(due - Instant::now(), Duration::from_secs(2));
        assert_eq!(clock.since(wall), Duration::from_secs(3));
        // A time already past is due at once.
        assert_eq!(clock.instant_at(wall), Instant::now());
    }
}
