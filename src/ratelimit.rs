//! Per-channel pacing to a platform's published send limit ("N messages per
//! window"), as a sliding window of recent send times. The router owns one per
//! outbound channel; a bridge only declares its limit.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// A platform's published send limit for one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub messages: u32,
    pub per: Duration,
}

/// Sliding-window limiter: at most `rate.messages` sends in any `rate.per`.
#[derive(Debug)]
pub struct Limiter {
    rate: Option<Rate>,
    sent: VecDeque<Instant>,
    /// A platform's 429 (or similar) pushes the next send to at least this time.
    blocked_until: Option<Instant>,
}

impl Limiter {
    /// `None` means no pacing of our own (a platform's retry-after still applies).
    pub fn new(rate: Option<Rate>) -> Self {
        Limiter {
            rate: rate.filter(|r| r.messages > 0),
            sent: VecDeque::new(),
            blocked_until: None,
        }
    }

    /// How long to wait from `now` before the next send is allowed.
    pub fn delay(&mut self, now: Instant) -> Duration {
        let mut wait = Duration::ZERO;
        if let Some(until) = self.blocked_until {
            if until > now {
                wait = until - now;
            } else {
                self.blocked_until = None;
            }
        }
        if let Some(rate) = self.rate {
            while let Some(&t) = self.sent.front() {
                if now.duration_since(t) >= rate.per {
                    self.sent.pop_front();
                } else {
                    break;
                }
            }
            if self.sent.len() >= rate.messages as usize {
                // The oldest send in the window must age out first.
                let oldest = self.sent[self.sent.len() - rate.messages as usize];
                wait = wait.max(rate.per - now.duration_since(oldest));
            }
        }
        wait
    }

    /// Record a send at `now`.
    pub fn record(&mut self, now: Instant) {
        if let Some(rate) = self.rate {
            self.sent.push_back(now);
            while self.sent.len() > rate.messages as usize {
                self.sent.pop_front();
            }
        }
    }

    /// Honour a platform's "retry after".
    pub fn block_for(&mut self, now: Instant, d: Duration) {
        let until = now + d;
        self.blocked_until = Some(self.blocked_until.map_or(until, |u| u.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn twenty_per_thirty_seconds() {
        let mut l = Limiter::new(Some(Rate {
            messages: 20,
            per: Duration::from_secs(30),
        }));
        let start = Instant::now();
        for _ in 0..20 {
            assert_eq!(l.delay(start), Duration::ZERO);
            l.record(start);
        }
        assert_eq!(l.delay(start), Duration::from_secs(30));
        let later = start + Duration::from_secs(30);
        assert_eq!(l.delay(later), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_applies_without_pacing() {
        let mut l = Limiter::new(None);
        let now = Instant::now();
        assert_eq!(l.delay(now), Duration::ZERO);
        l.block_for(now, Duration::from_millis(1500));
        assert_eq!(l.delay(now), Duration::from_millis(1500));
        assert_eq!(
            l.delay(now + Duration::from_millis(1000)),
            Duration::from_millis(500)
        );
        assert_eq!(l.delay(now + Duration::from_secs(2)), Duration::ZERO);
    }
}
