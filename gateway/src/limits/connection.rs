//! What one connection is doing, and when it has waited too long: a
//! connection must deliver a request's complete headers within the header
//! timeout of that request's first byte (its first request: of being
//! opened), and may wait idle between requests for the idle timeout. A
//! request being handled stops both clocks; the request timeout bounds it.
//!
//! The reads of the socket ([`Watched`]) and the requests the server hands
//! to the router ([`Activity::begin`]) move the clocks; [`Activity::expired`]
//! resolves when the connection is due to be closed.

use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Which clock ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    Header,
    Idle,
}

impl Expired {
    /// As the metric's `reason` label says it.
    pub fn reason(self) -> &'static str {
        match self {
            Expired::Header => "header_timeout",
            Expired::Idle => "idle_timeout",
        }
    }
}

/// No byte of a next request has arrived yet.
const NONE: u64 = u64::MAX;

pub struct Activity {
    opened: Instant,
    header_timeout: Duration,
    idle_timeout: Duration,
    /// Requests being handled.
    in_flight: AtomicUsize,
    /// Requests handed to the router so far.
    served: AtomicUsize,
    /// Milliseconds after `opened` when the last request ended.
    idle_since: AtomicU64,
    /// Milliseconds after `opened` of the first byte read while idle, or `NONE`.
    first_byte: AtomicU64,
    changed: Notify,
}

impl Activity {
    pub fn new(header_timeout: Duration, idle_timeout: Duration) -> Arc<Activity> {
        Arc::new(Activity {
            opened: Instant::now(),
            header_timeout,
            idle_timeout,
            in_flight: AtomicUsize::new(0),
            served: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            first_byte: AtomicU64::new(NONE),
            changed: Notify::new(),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.opened + Duration::from_millis(ms)
    }

    /// Bytes arrived on the socket.
    fn read_some(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self
                .first_byte
                .compare_exchange(NONE, self.now_ms(), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.changed.notify_one();
        }
    }

    /// A request's headers are in and it goes to the router; the returned
    /// guard ends it when dropped (its handler has answered).
    pub fn begin(self: &Arc<Activity>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.served.fetch_add(1, Ordering::AcqRel);
        self.first_byte.store(NONE, Ordering::Release);
        self.changed.notify_one();
        InFlight(self.clone())
    }

    /// When the connection is due to close as things stand, if at all, and why.
    fn deadline(&self) -> Option<(Instant, Expired)> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let first_byte = self.first_byte.load(Ordering::Acquire);
        Some(if first_byte != NONE {
            (self.at(first_byte) + self.header_timeout, Expired::Header)
        } else if self.served.load(Ordering::Acquire) == 0 {
            (self.opened + self.header_timeout, Expired::Header)
        } else {
            let idle_since = self.at(self.idle_since.load(Ordering::Acquire));
            (idle_since + self.idle_timeout, Expired::Idle)
        })
    }

    /// Resolves once a deadline passes with nothing having moved it.
    pub async fn expired(&self) -> Expired {
        loop {
            let mut changed = pin!(self.changed.notified());
            changed.as_mut().enable();
            match self.deadline() {
                None => changed.await,
                Some((deadline, _)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {
                            if let Some((due, why)) = self.deadline()
                                && due <= Instant::now()
                            {
                                return why;
                            }
                        }
                        () = changed => {}
                    }
                }
            }
        }
    }
}

/// A request being handled on a connection.
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        activity
            .idle_since
            .store(activity.now_ms(), Ordering::Release);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
        activity.changed.notify_one();
    }
}

/// A socket whose reads move its connection's clocks.
pub struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Watched<S> {
        Watched { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read_some();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real time (short), as the workspace's Tokio has no paused clock.
    const HEADER: Duration = Duration::from_millis(200);
    const IDLE: Duration = Duration::from_millis(600);

    async fn expires_after(activity: &Activity) -> Duration {
        let start = Instant::now();
        activity.expired().await;
        start.elapsed()
    }

    #[tokio::test]
    async fn the_clock_that_ran_out_is_named() {
        let activity = Activity::new(HEADER, IDLE);
        assert_eq!(activity.expired().await, Expired::Header);
        drop(activity.begin());
        assert_eq!(activity.expired().await, Expired::Idle);
    }

    fn about(measured: Duration, expected: Duration) {
        assert!(
            measured >= expected && measured < expected + Duration::from_millis(150),
            "{measured:?}, expected {expected:?}"
        );
    }

    #[tokio::test]
    async fn a_new_connection_has_the_header_timeout_for_its_first_request() {
        let activity = Activity::new(HEADER, IDLE);
        about(expires_after(&activity).await, HEADER);
    }

    #[tokio::test]
    async fn between_requests_the_idle_timeout_then_the_header_timeout_from_the_first_byte() {
        let activity = Activity::new(HEADER, IDLE);
        drop(activity.begin());
        tokio::time::sleep(Duration::from_millis(300)).await;
        activity.read_some();
        about(expires_after(&activity).await, HEADER);
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_lasts_the_idle_timeout() {
        let activity = Activity::new(HEADER, IDLE);
        drop(activity.begin());
        about(expires_after(&activity).await, IDLE);
    }

    #[tokio::test]
    async fn a_request_in_flight_stops_the_clocks() {
        let activity = Activity::new(HEADER, IDLE);
        let request = activity.begin();
        let waiting = {
            let activity = activity.clone();
            tokio::spawn(async move { expires_after(&activity).await })
        };
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(!waiting.is_finished());
        drop(request);
        about(waiting.await.unwrap(), Duration::from_millis(800) + IDLE);
    }
}
