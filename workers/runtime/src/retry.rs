//! Capped exponential backoff for transient failures.

use std::time::Duration;

/// The delay before retry number `attempt` (1-based): doubles from `base`, capped at `cap`.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
    base.saturating_mul(factor).min(cap)
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
}
