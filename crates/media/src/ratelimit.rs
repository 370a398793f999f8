//! Token bucket for per-Participant request limits, with time as an input.
//!
//! Implemented as GCRA (the "virtual scheduling" form of a token bucket):
//! one timestamp per bucket instead of a token count and a refill clock,
//! exact with integer durations and no floating point.

use std::time::{Duration, Instant};

/// A request was refused; retrying after `retry_after` would succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    pub retry_after: Duration,
}

/// Allows bursts of `burst` requests, refilled at one per `interval`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    interval: Duration,
    tolerance: Duration,
    /// Theoretical arrival time: when the bucket would be full again.
    tat: Option<Instant>,
}

impl TokenBucket {
    /// `burst` of at least 1 request, then one more each `interval`.
    pub fn new(burst: u32, interval: Duration) -> Self {
        Self {
            interval,
            tolerance: interval * burst.max(1).saturating_sub(1),
            tat: None,
        }
    }

    /// Takes one token at `now`, or says how long until one is available.
    pub fn try_take(&mut self, now: Instant) -> Result<(), RateLimited> {
        let tat = self.tat.map_or(now, |t| t.max(now));
        let ahead = tat.saturating_duration_since(now);
        if ahead > self.tolerance {
            return Err(RateLimited {
                retry_after: ahead - self.tolerance,
            });
        }
        self.tat = Some(tat + self.interval);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3, Duration::from_millis(500));
        for _ in 0..3 {
            assert!(b.try_take(t0).is_ok());
        }
        let err = b.try_take(t0).expect_err("bucket empty");
        assert_eq!(err.retry_after, Duration::from_millis(500));
        assert!(b.try_take(t0 + Duration::from_millis(499)).is_err());
        assert!(b.try_take(t0 + Duration::from_millis(500)).is_ok());
        assert!(b.try_take(t0 + Duration::from_millis(500)).is_err());
        // After a long pause the bucket holds `burst` tokens again, not more.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(b.try_take(later).is_ok());
        }
        assert!(b.try_take(later).is_err());
    }
}
