//! Capped exponential backoff with jitter (through `backon`), for everything
//! a worker asks again: a message whose failure may pass, an external call
//! (payment provider, webhook, SMTP), a settlement of its answer.
//!
//! Each pause doubles from the first, and jitter makes it anything between
//! the nominal pause and twice that, never more than the cap: replicas and
//! partitions retrying after one outage do not come back in lock step.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// How patiently something is asked again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included, for failures that may be
    /// permanent; failures known to be transient are retried without limit.
    pub max_attempts: u32,
    pub first_backoff: Duration,
    /// No pause is longer than this.
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
    /// The pauses of a sequence of failures, one per failure, without end.
    pub fn pauses(&self) -> Pauses {
        // Jitter adds up to the nominal pause again, so the nominal pauses
        // stop at half the cap.
        let half_cap = (self.max_backoff / 2).max(Duration::from_millis(1));
        Pauses {
            inner: ExponentialBuilder::default()
                .with_min_delay(self.first_backoff.min(half_cap))
                .with_max_delay(half_cap)
                .with_factor(2.0)
                .with_jitter()
                .without_max_times()
                .build(),
            cap: self.max_backoff,
        }
    }

    /// The pause after failed attempt `attempt` (1-based) of a fresh sequence.
    pub fn backoff_after(&self, attempt: u32) -> Duration {
        self.pauses()
            .nth(attempt.saturating_sub(1).min(64) as usize)
            .unwrap_or(self.max_backoff)
    }

    /// Whether another attempt may follow failed attempt `attempt`, for a
    /// failure that may be permanent.
    pub fn may_retry_after(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }
}

/// The pauses of one sequence of failures (an iterator that never ends).
#[derive(Debug)]
pub struct Pauses {
    inner: ExponentialBackoff,
    cap: Duration,
}

impl Iterator for Pauses {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(self.inner.next().unwrap_or(self.cap).min(self.cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(first_ms: u64, cap_ms: u64) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            first_backoff: Duration::from_millis(first_ms),
            max_backoff: Duration::from_millis(cap_ms),
        }
    }

    #[test]
    fn pauses_grow_with_jitter_and_never_pass_the_cap() {
        let policy = policy(50, 1000);
        for _ in 0..50 {
            let pauses: Vec<u128> = policy.pauses().take(12).map(|d| d.as_millis()).collect();
            // Nominal 50, 100, 200, 400, then 500 (half the cap); jitter adds up to as much again.
            for (pause, nominal) in pauses.iter().zip([50, 100, 200, 400, 500, 500]) {
                assert!((nominal..=2 * nominal).contains(pause), "{pauses:?}");
            }
            assert!(pauses.iter().all(|&p| p <= 1000), "{pauses:?}");
        }
    }

    #[test]
    fn jitter_spreads_retries_of_one_outage() {
        let policy = policy(100, 60_000);
        let third: std::collections::HashSet<u128> = (0..20)
            .map(|_| policy.backoff_after(3).as_millis())
            .collect();
        assert!(third.len() > 1, "twenty sequences paused alike: {third:?}");
    }

    #[test]
    fn the_attempt_budget_counts_the_first_attempt() {
        let policy = RetryPolicy {
            max_attempts: 4,
            ..RetryPolicy::default()
        };
        assert!(policy.may_retry_after(3));
        assert!(!policy.may_retry_after(4));
    }
}
