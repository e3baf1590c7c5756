//! Caps on long-polls (`GET /v1/orders/{id}?wait=…`) waiting at once: in all
//! (`CHORUS_GATEWAY_LONG_POLLS`) and per token subject
//! (`CHORUS_GATEWAY_LONG_POLLS_PER_SUBJECT`), so that one customer cannot
//! hold thousands of connections open and all of them together never take
//! every request's place. Over a cap the request answers 429
//! `long_poll_limit` with `Retry-After` at once instead of waiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{AppError, ErrorCode};

/// What a refused long-poll is told to wait before trying again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

pub struct LongPolls {
    total: usize,
    per_subject: usize,
    waiting: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    total: usize,
    by_subject: HashMap<String, usize>,
}

impl LongPolls {
    pub fn new(total: usize, per_subject: usize) -> Arc<LongPolls> {
        Arc::new(LongPolls {
            total,
            per_subject,
            waiting: Mutex::new(Waiting::default()),
        })
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for one long-poll of `subject`, held until the guard drops.
    pub fn enter(self: &Arc<LongPolls>, subject: &str) -> Result<LongPoll, AppError> {
        let mut waiting = self.waiting();
        let of_subject = waiting.by_subject.get(subject).copied().unwrap_or(0);
        let refused = if of_subject >= self.per_subject {
            Some(format!(
                "this customer already has {} long-polls waiting, the most allowed; \
                 retry after Retry-After seconds, or read without `wait`",
                self.per_subject
            ))
        } else if waiting.total >= self.total {
            Some(format!(
                "the gateway already holds {} long-polls, the most it allows; \
                 retry after Retry-After seconds, or read without `wait`",
                self.total
            ))
        } else {
            None
        };
        if let Some(message) = refused {
            return Err(AppError::Limited {
                code: ErrorCode::LongPollLimit,
                message,
                retry_after: RETRY_AFTER,
            });
        }
        waiting.total += 1;
        *waiting.by_subject.entry(subject.to_string()).or_default() += 1;
        Ok(LongPoll {
            polls: self.clone(),
            subject: subject.to_string(),
        })
    }

    /// Long-polls waiting now.
    pub fn waiting_now(&self) -> usize {
        self.waiting().total
    }
}

/// One long-poll's place; dropping it frees the place.
pub struct LongPoll {
    polls: Arc<LongPolls>,
    subject: String,
}

impl Drop for LongPoll {
    fn drop(&mut self) {
        let mut waiting = self.polls.waiting();
        waiting.total = waiting.total.saturating_sub(1);
        if let Some(count) = waiting.by_subject.get_mut(&self.subject) {
            *count -= 1;
            if *count == 0 {
                waiting.by_subject.remove(&self.subject);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(result: Result<LongPoll, AppError>) -> ErrorCode {
        result.err().expect("refused").code()
    }

    #[test]
    fn each_subject_and_all_together_are_capped() {
        let polls = LongPolls::new(3, 2);
        let a1 = polls.enter("alice").unwrap();
        let _a2 = polls.enter("alice").unwrap();
        assert_eq!(code(polls.enter("alice")), ErrorCode::LongPollLimit);
        let _b1 = polls.enter("bob").unwrap();
        // Three wait: nobody else may, whoever it is.
        assert_eq!(code(polls.enter("carol")), ErrorCode::LongPollLimit);
        drop(a1);
        assert_eq!(polls.waiting_now(), 2);
        let _c1 = polls.enter("carol").unwrap();
        assert_eq!(polls.waiting_now(), 3);
    }
}
