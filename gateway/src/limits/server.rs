//! The HTTP/1.1 server: accepts connections up to
//! `CHORUS_GATEWAY_MAX_CONNECTIONS` (more wait in the listen backlog, so the
//! cap, not the file-descriptor limit, is what a flood meets) and up to
//! `CHORUS_GATEWAY_MAX_CONNECTIONS_PER_ADDR` from one peer address (more are
//! closed at once; trusted proxies are exempt, as they carry many clients),
//! closes a connection that is slow to send its headers or idle too long
//! (see [`connection`](super::connection)), and at shutdown stops accepting,
//! lets every connection finish its request in flight and waits for them.
//!
//! Each connection runs in a task of its own, as in any HTTP server; the
//! connection cap's permits account for them, and the server returns only
//! once every permit is back.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::Limits;
use super::client_addr::{PeerAddr, TrustedProxies};
use super::connection::{Activity, Watched};
use crate::metrics::ConnectionMetrics;

/// The pause after an accept error such as running out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `shutdown`, then drains (see the module's header).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    metrics: ConnectionMetrics,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let total = u32::try_from(limits.max_connections).context("CHORUS_GATEWAY_MAX_CONNECTIONS")?;
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = Arc::new(PerAddress {
        max: limits.max_connections_per_addr,
        trusted: limits.trusted_proxies.clone(),
        open: Mutex::new(HashMap::new()),
    });
    let mut builder = http1::Builder::new();
    // The connection's own clocks time the headers (hyper's would also
    // close keep-alive connections idle for the header timeout).
    builder.timer(TokioTimer::new()).header_read_timeout(None);
    let settings = Arc::new(ConnectionSettings {
        builder,
        router,
        header_timeout: limits.header_timeout,
        idle_timeout: limits.idle_timeout,
        metrics: metrics.clone(),
        shutdown: shutdown.clone(),
    });
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.context("the connection cap closed")?,
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    if !is_connection_error(&e) {
                        tracing::warn!(error = %e, %addr, "accepting a connection failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let Some(slot) = per_address.enter(peer.ip()) else {
            tracing::debug!(%peer, "too many connections from this address; closed");
            metrics.closed.with_label_values(&["per_address"]).inc();
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(settings.clone().serve(stream, peer, (permit, slot)));
    }
    drop(listener);
    // Every connection holds a permit until it ends.
    let _all = connections.acquire_many(total).await;
    Ok(())
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

struct ConnectionSettings {
    builder: http1::Builder,
    router: Router,
    header_timeout: Duration,
    idle_timeout: Duration,
    metrics: ConnectionMetrics,
    shutdown: CancellationToken,
}

impl ConnectionSettings {
    /// One connection, until the client closes it, it times out, or shutdown.
    async fn serve(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        _held: (OwnedSemaphorePermit, AddressSlot),
    ) {
        let _open = OpenConnection::count(&self.metrics);
        let activity = Activity::new(self.header_timeout, self.idle_timeout);
        let io = TokioIo::new(Watched::new(stream, activity.clone()));
        let router = self.router.clone();
        let requests = activity.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let in_flight = requests.begin();
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(PeerAddr(peer));
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await;
                drop(in_flight);
                Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
            }
        });
        let mut connection = pin!(self.builder.serve_connection(io, service));
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "connection ended");
                }
            }
            // No request is in flight: the connection is dropped, closing
            // the socket (a graceful close would wait for the headers).
            why = activity.expired() => {
                tracing::debug!(%peer, reason = why.reason(), "connection timed out; closed");
                self.metrics.closed.with_label_values(&[why.reason()]).inc();
            }
            () = self.shutdown.cancelled() => {
                connection.as_mut().graceful_shutdown();
                // The request in flight finishes (the supervisor bounds shutdown).
                let _ = connection.await;
            }
        }
    }
}

/// A connection counted in `chorus_gateway_connections_open` until dropped.
struct OpenConnection(prometheus::IntGauge);

impl OpenConnection {
    fn count(metrics: &ConnectionMetrics) -> OpenConnection {
        metrics.open.inc();
        OpenConnection(metrics.open.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Connections open per peer address.
struct PerAddress {
    max: usize,
    trusted: TrustedProxies,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerAddress {
    fn enter(self: &Arc<Self>, addr: IpAddr) -> Option<AddressSlot> {
        if self.trusted.contains(addr) {
            return Some(AddressSlot(None));
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(addr).or_default();
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(AddressSlot(Some((self.clone(), addr))))
    }
}

/// One connection counted against its address; `None`: a trusted proxy's.
struct AddressSlot(Option<(Arc<PerAddress>, IpAddr)>);

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Some((per_address, addr)) = &self.0 {
            let mut open = per_address.open.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(count) = open.get_mut(addr) {
                *count -= 1;
                if *count == 0 {
                    open.remove(addr);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpSocket;

    async fn connect(from: &str, to: SocketAddr) -> TcpStream {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        socket.connect(to).await.unwrap()
    }

    /// Sends a request and reads the first bytes of an answer, or `None`
    /// when the connection is closed or nothing comes within `within`.
    async fn ask(stream: &mut TcpStream, within: Duration) -> Option<String> {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: gateway\r\n\r\n")
            .await
            .ok()?;
        let mut buffer = [0u8; 64];
        match tokio::time::timeout(within, stream.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => Some(String::from_utf8_lossy(&buffer[..n]).into_owned()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn connections_are_capped_per_address_and_in_all() {
        let limits = Limits {
            max_connections: 2,
            max_connections_per_addr: 1,
            ..Limits::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let shutdown = CancellationToken::new();
        let metrics = crate::metrics::Metrics::new().connection_metrics();
        let server = tokio::spawn({
            let (shutdown, metrics) = (shutdown.clone(), metrics.clone());
            async move { serve(listener, router, &limits, metrics, shutdown).await }
        });
        let second = Duration::from_secs(1);

        let mut first = connect("127.0.0.2", addr).await;
        assert!(
            ask(&mut first, second)
                .await
                .unwrap()
                .starts_with("HTTP/1.1 200")
        );
        // A second connection from the same address is closed unanswered.
        let mut same = connect("127.0.0.2", addr).await;
        assert_eq!(ask(&mut same, second).await, None);
        let closed = metrics.closed.with_label_values(&["per_address"]);
        assert_eq!(closed.get(), 1);
        // Another address is served; with it, the cap of all is reached.
        let mut other = connect("127.0.0.3", addr).await;
        assert!(ask(&mut other, second).await.is_some());
        // A third address waits in the backlog until a connection ends.
        let mut third = connect("127.0.0.4", addr).await;
        assert_eq!(ask(&mut third, Duration::from_millis(300)).await, None);
        drop(first);
        let mut buffer = [0u8; 64];
        let n = tokio::time::timeout(second, third.read(&mut buffer))
            .await
            .expect("served once a place was free")
            .unwrap();
        assert!(String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 200"));
        assert_eq!(metrics.open.get(), 2);

        drop((same, other, third));
        shutdown.cancel();
        tokio::time::timeout(second, server)
            .await
            .expect("the server drains")
            .unwrap()
            .unwrap();
        assert_eq!(metrics.open.get(), 0);
    }
}
