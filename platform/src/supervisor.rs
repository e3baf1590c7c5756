//! The background tasks of a process, each under a name. A task is meant to
//! run until shutdown: one that ends before shutdown was asked for, returns
//! an error or panics is a failure naming it ([`TaskFailure`]), which the
//! process turns into a non-zero exit. After shutdown every task gets one
//! bounded grace period to stop; one still running then is aborted and
//! reported, so a stuck task can never hold a stopping process forever.

use std::any::Any;
use std::future::Future;
use std::time::Duration;

use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;

/// How a supervised task failed; `task` is the name it was spawned under.
#[derive(Debug, thiserror::Error)]
pub enum TaskFailure {
    /// It returned `Ok` while shutdown had not been asked for.
    #[error("the {task} task ended on its own")]
    Ended { task: &'static str },
    #[error("the {task} task failed")]
    Failed {
        task: &'static str,
        #[source]
        error: anyhow::Error,
    },
    #[error("the {task} task panicked: {message}")]
    Panicked { task: &'static str, message: String },
    /// Still running when the grace period after shutdown was over (aborted).
    #[error("the {task} task did not stop within {} ms of shutdown", within.as_millis())]
    DidNotStop {
        task: &'static str,
        within: Duration,
    },
}

impl TaskFailure {
    /// The name of the task that failed.
    pub fn task(&self) -> &'static str {
        match self {
            TaskFailure::Ended { task }
            | TaskFailure::Failed { task, .. }
            | TaskFailure::Panicked { task, .. }
            | TaskFailure::DidNotStop { task, .. } => task,
        }
    }
}

/// Named tasks spawned on the current Tokio runtime; see the module header.
#[derive(Default)]
pub struct Supervisor {
    tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>,
}

impl Supervisor {
    pub fn new() -> Supervisor {
        Supervisor::default()
    }

    /// Spawns `task` under `name` (which failures and logs carry).
    pub fn spawn(
        &mut self,
        name: &'static str,
        task: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        self.tasks.push((name, tokio::spawn(task)));
    }

    /// The names of the tasks still supervised, in spawn order.
    pub fn names(&self) -> Vec<&'static str> {
        self.tasks.iter().map(|(name, _)| *name).collect()
    }

    /// Waits for the first task to end and removes it: `None` when it ended
    /// well after `shutdown` was cancelled, otherwise how it failed. With no
    /// task left it never returns (nothing can fail any more).
    pub async fn first_to_end(&mut self, shutdown: &CancellationToken) -> Option<TaskFailure> {
        if self.tasks.is_empty() {
            return std::future::pending().await;
        }
        let (result, index, _) =
            futures::future::select_all(self.tasks.iter_mut().map(|(_, handle)| handle)).await;
        let task = self.tasks.remove(index).0;
        match result {
            Ok(Ok(())) if shutdown.is_cancelled() => None,
            Ok(Ok(())) => Some(TaskFailure::Ended { task }),
            Ok(Err(error)) => Some(TaskFailure::Failed { task, error }),
            Err(e) => Some(joined_abnormally(task, e)),
        }
    }

    /// After shutdown: waits for every task, all within one `grace` period,
    /// aborting those still running at its end; the first failure, if any.
    pub async fn join(self, grace: Duration) -> Result<(), TaskFailure> {
        let deadline = tokio::time::Instant::now() + grace;
        let mut first = Ok(());
        for (task, mut handle) in self.tasks {
            let failure = match tokio::time::timeout_at(deadline, &mut handle).await {
                Ok(Ok(Ok(()))) => continue,
                Ok(Ok(Err(error))) => TaskFailure::Failed { task, error },
                Ok(Err(e)) => joined_abnormally(task, e),
                Err(_) => {
                    handle.abort();
                    TaskFailure::DidNotStop {
                        task,
                        within: grace,
                    }
                }
            };
            // Only the first is returned: the others are not lost.
            tracing::error!(
                error = crate::error_chain(&failure),
                "task failed at shutdown"
            );
            if first.is_ok() {
                first = Err(failure);
            }
        }
        first
    }
}

fn joined_abnormally(task: &'static str, e: JoinError) -> TaskFailure {
    match e.try_into_panic() {
        Ok(payload) => TaskFailure::Panicked {
            task,
            message: panic_message(payload.as_ref()),
        },
        // Aborted: only `join` aborts, and it reports that itself.
        Err(_) => TaskFailure::Ended { task },
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(a panic without a message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_millis(200);

    async fn forever() -> anyhow::Result<()> {
        std::future::pending().await
    }

    /// A task that stops when `shutdown` is cancelled, as well-behaved ones do.
    fn until(shutdown: &CancellationToken) -> impl Future<Output = anyhow::Result<()>> + use<> {
        let shutdown = shutdown.clone();
        async move {
            shutdown.cancelled().await;
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_task_ending_before_shutdown_is_a_failure_naming_it() {
        let shutdown = CancellationToken::new();
        let mut tasks = Supervisor::new();
        tasks.spawn("poller", until(&shutdown));
        tasks.spawn("batcher", async { Ok(()) });
        let failure = tasks.first_to_end(&shutdown).await.expect("a failure");
        assert!(
            matches!(failure, TaskFailure::Ended { task: "batcher" }),
            "{failure:?}"
        );
        assert_eq!(failure.to_string(), "the batcher task ended on its own");
        assert_eq!(tasks.names(), ["poller"]);
    }

    #[tokio::test]
    async fn a_task_returning_an_error_is_a_failure_with_its_cause() {
        let shutdown = CancellationToken::new();
        let mut tasks = Supervisor::new();
        tasks.spawn("waiting", forever());
        tasks.spawn("pruner", async {
            Err(anyhow::anyhow!("the pool is closed"))
        });
        let failure = tasks.first_to_end(&shutdown).await.expect("a failure");
        assert_eq!(failure.task(), "pruner");
        assert!(matches!(failure, TaskFailure::Failed { .. }), "{failure:?}");
        assert_eq!(
            crate::error_chain(&failure),
            "the pruner task failed: the pool is closed"
        );
    }

    #[tokio::test]
    async fn a_panicking_task_is_a_failure_with_the_panic_message() {
        let shutdown = CancellationToken::new();
        let mut tasks = Supervisor::new();
        tasks.spawn("waiting", forever());
        tasks.spawn("batcher", async { panic!("a batch") });
        let failure = tasks.first_to_end(&shutdown).await.expect("a failure");
        match failure {
            TaskFailure::Panicked { task, message } => {
                assert_eq!(task, "batcher");
                assert_eq!(message, "a batch");
            }
            other => panic!("not a panic: {other:?}"),
        }
    }

    #[tokio::test]
    async fn tasks_ending_after_shutdown_are_a_clean_stop() {
        let shutdown = CancellationToken::new();
        let mut tasks = Supervisor::new();
        tasks.spawn("poller", until(&shutdown));
        tasks.spawn("server", until(&shutdown));
        shutdown.cancel();
        assert!(tasks.first_to_end(&shutdown).await.is_none());
        assert_eq!(tasks.names().len(), 1);
        tasks.join(GRACE).await.expect("a clean stop");
    }

    #[tokio::test]
    async fn a_task_not_stopping_within_the_grace_period_is_aborted_and_named() {
        let shutdown = CancellationToken::new();
        let mut tasks = Supervisor::new();
        tasks.spawn("poller", until(&shutdown));
        let dropped = std::sync::Arc::new(());
        let held = dropped.clone();
        tasks.spawn("stuck", async move {
            let _held = held;
            forever().await
        });
        shutdown.cancel();
        let started = tokio::time::Instant::now();
        let failure = tasks.join(GRACE).await.expect_err("a stuck task");
        assert!(started.elapsed() < GRACE * 5, "{:?}", started.elapsed());
        assert!(
            matches!(failure, TaskFailure::DidNotStop { task: "stuck", within } if within == GRACE),
            "{failure:?}"
        );
        // Aborted: what it held is released.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(std::sync::Arc::strong_count(&dropped), 1);
    }

    #[tokio::test]
    async fn a_task_failing_while_stopping_fails_the_join() {
        let shutdown = CancellationToken::new();
        let mut tasks = Supervisor::new();
        let stopping = shutdown.clone();
        tasks.spawn("relay", async move {
            stopping.cancelled().await;
            Err(anyhow::anyhow!("flush refused"))
        });
        tasks.spawn("poller", until(&shutdown));
        shutdown.cancel();
        let failure = tasks.join(GRACE).await.expect_err("the relay's failure");
        assert!(
            matches!(failure, TaskFailure::Failed { task: "relay", .. }),
            "{failure:?}"
        );
    }
}
