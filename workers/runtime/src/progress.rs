//! Whether the worker's loops are making progress. Each loop beats at least
//! every couple of seconds while it works or waits normally; a loop that has
//! not beaten for [`STALLED_AFTER`] is stuck (blocked on a full queue, a
//! hung call, a lock) and `/readyz` says so, naming it. The metric
//! `chorus_loop_stalled_seconds{loop}` shows the seconds since each loop
//! last beat, so a stall is visible for as long as it lasts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A loop silent for this long is reported stalled; far above any normal
/// pause between beats (a poll, a recovery tick, a batch commit).
pub const STALLED_AFTER: Duration = Duration::from_secs(30);

/// The beat of one loop.
#[derive(Clone)]
pub struct Progress {
    name: &'static str,
    started: Instant,
    last_beat_ms: Arc<AtomicU64>,
}

impl Progress {
    pub fn new(name: &'static str) -> Progress {
        Progress {
            name,
            started: Instant::now(),
            last_beat_ms: Arc::default(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The loop made progress (or waited as it should) just now.
    pub fn beat(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last_beat_ms.store(now, Ordering::Relaxed);
    }

    /// Time since the last beat.
    pub fn silent_for(&self) -> Duration {
        let now = self.started.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_beat_ms.load(Ordering::Relaxed)))
    }

    /// `Err` naming the loop and how long it has been stuck, once it is.
    pub fn check(&self) -> Result<(), String> {
        let silent = self.silent_for();
        if silent >= STALLED_AFTER {
            Err(format!(
                "the {} loop has made no progress for {} s",
                self.name,
                silent.as_secs()
            ))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_that_beats_is_not_stalled_and_one_that_stops_is() {
        let progress = Progress::new("consumer");
        progress.beat();
        assert!(progress.check().is_ok());
        assert!(progress.silent_for() < Duration::from_secs(1));

        let stuck = Progress {
            name: "calls",
            started: Instant::now() - STALLED_AFTER - Duration::from_secs(5),
            last_beat_ms: Arc::default(),
        };
        let error = stuck.check().unwrap_err();
        assert!(error.contains("calls loop"), "{error}");
        assert!(stuck.silent_for() >= STALLED_AFTER);
    }
}
