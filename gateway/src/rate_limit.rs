//! Keyed rate limits with `governor` (GCRA, one cell per key): per token
//! subject, and per client address (checked before the token is verified).
//! Each key may send `burst` requests at once and `per_sec` sustained; a
//! refused request learns how long until its next one would pass. One gateway
//! process enforces its own limit; several replicas each allow the full rate.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::Quota;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;

/// Keys idle long enough to be back at a full burst are forgotten once
/// this many are tracked.
const SWEEP_THRESHOLD: usize = 10_000;

type Keyed<K, C> =
    governor::RateLimiter<K, DefaultKeyedStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// A rate limit per key: a token subject (`String`) unless said otherwise.
pub struct RateLimiter<K: Hash + Eq + Clone = String, C: Clock = DefaultClock> {
    limiter: Keyed<K, C>,
    clock: C,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(per_sec: u32, burst: u32) -> RateLimiter<K> {
        RateLimiter::with_clock(per_sec, burst, DefaultClock::default())
    }
}

impl<K: Hash + Eq + Clone, C: Clock + Clone> RateLimiter<K, C> {
    pub fn with_clock(per_sec: u32, burst: u32, clock: C) -> RateLimiter<K, C> {
        let at_least_one = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(at_least_one(per_sec)).allow_burst(at_least_one(burst));
        RateLimiter {
            limiter: Keyed::dashmap_with_clock(quota, clock.clone()),
            clock,
        }
    }

    /// Lets one request of `key` pass, or says how long until one would.
    pub fn check<Q: ToOwned<Owned = K> + ?Sized>(&self, key: &Q) -> Result<(), Duration> {
        if self.limiter.len() >= SWEEP_THRESHOLD {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn a_burst_passes_then_the_sustained_rate_applies() {
        let clock = FakeRelativeClock::default();
        let limiter: RateLimiter<String, _> = RateLimiter::with_clock(10, 3, clock.clone());
        for _ in 0..3 {
            assert!(limiter.check("alice").is_ok());
        }
        let wait = limiter.check("alice").unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        // Subjects do not share a limit.
        assert!(limiter.check("bob").is_ok());
        // One more request passes every 1/10 s.
        clock.advance(Duration::from_millis(100));
        assert!(limiter.check("alice").is_ok());
        assert!(limiter.check("alice").is_err());
        // After a pause the whole burst is back.
        clock.advance(Duration::from_secs(1));
        for _ in 0..3 {
            assert!(limiter.check("alice").is_ok());
        }
    }
}
