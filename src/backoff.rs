//! Jittered exponential backoff, shared by every retry loop (NATS, bridges,
//! deliveries) so they all back off the same way and never retry in lockstep.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            attempt: 0,
        }
    }

    /// The next delay: `base * 2^attempt`, capped at `max`, with "equal jitter"
    /// (between half and all of it) so that many clients spread out.
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.attempt.min(20));
        let capped = exp.min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = capped / 2;
        half + half.mul_f64(fastrand::f64())
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        for _ in 0..10 {
            let d = b.next_delay();
            assert!(d <= Duration::from_secs(1), "{d:?} over cap");
        }
        let late = b.next_delay();
        assert!(
            late >= Duration::from_millis(500),
            "{late:?} under half the cap"
        );
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
