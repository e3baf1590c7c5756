//! Capped exponential backoff for transient failures, and the policy a worker
//! follows when it asks a flaky dependency again within one handling.

use std::time::Duration;

/// The delay before retry number `attempt` (1-based): doubles from `base`, capped at `cap`.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
    base.saturating_mul(factor).min(cap)
}

/// How often, and how patiently, a transiently failing dependency (a payment
/// provider, a notification channel) is asked again within one handling of
/// the event; what happens after the last attempt is the caller's business
/// (an outcome of its own, or the consumer loop retrying the event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls in total, the first included; at least 1.
    pub max_attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The pause after failed attempt `attempt` (1-based): `first_backoff`
    /// doubled per attempt, never above `max_backoff`.
    pub fn backoff_after(&self, attempt: u32) -> Duration {
        backoff(attempt, self.first_backoff, self.max_backoff)
    }

    /// Whether another call may follow failed attempt `attempt`.
    pub fn may_retry_after(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }

    /// Every pause of a sequence that fails each time.
    pub fn schedule(&self) -> Vec<Duration> {
        (1..self.max_attempts.max(1))
            .map(|attempt| self.backoff_after(attempt))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_stays_at_the_cap() {
        let ms = Duration::from_millis;
        let delays: Vec<_> = (1..=6).map(|a| backoff(a, ms(100), ms(1000))).collect();
        assert_eq!(
            delays,
            vec![ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        assert_eq!(backoff(u32::MAX, ms(100), ms(1000)), ms(1000));
    }

    #[test]
    fn backoff_doubles_from_50ms_and_stops_at_1s() {
        let policy = RetryPolicy::default();
        let ms: Vec<u128> = (1..=7)
            .map(|a| policy.backoff_after(a).as_millis())
            .collect();
        assert_eq!(ms, [50, 100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.backoff_after(u32::MAX), Duration::from_secs(1));
        assert!(policy.may_retry_after(3) && !policy.may_retry_after(4));
    }

    #[test]
    fn four_attempts_pause_three_times() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.schedule(),
            [50, 100, 200].map(Duration::from_millis).to_vec()
        );
        assert!(policy.may_retry_after(3));
        assert!(!policy.may_retry_after(4));
        let once = RetryPolicy {
            max_attempts: 1,
            ..policy
        };
        assert!(once.schedule().is_empty());
        assert!(!once.may_retry_after(1));
    }
}
