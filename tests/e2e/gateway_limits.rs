//! The gateway's limits against a whole deployment. 2,000 connections that
//! send their headers one byte a second do not keep a storefront from
//! placing and reading an order within a second, and each of them is closed
//! once the header timeout has passed (and counted in the metrics). Long-polls past the caps (per
//! customer and in all) answer 429 `long_poll_limit` with `Retry-After` at
//! once, while other customers are served.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chorus_tests::saga::{Saga, order_body, sku};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use crate::runtime_loop::metric;

/// The header timeout of the slow-header test.
const HEADER_TIMEOUT: Duration = Duration::from_secs(3);
const SLOW_CONNECTIONS: usize = 2_000;
/// Slow connections come from these loopback addresses, 500 from each (the
/// per-address cap, 2,500 by default, is not what closes them); the
/// storefront comes from 127.0.0.1.
const SLOW_SOURCES: [&str; 4] = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"];

/// A request's headers, sent one byte a second, never completed in time.
const DRIBBLE: &[u8] =
    b"GET /v1/orders HTTP/1.1\r\nHost: gateway\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";

/// Opens a connection from `source` and sends one byte a second until the
/// gateway closes it (or, failing that, three header timeouts have passed);
/// returns how long it stayed open.
async fn slow_client(source: &str, gateway: SocketAddr) -> Duration {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut stream = socket
        .connect(gateway)
        .await
        .unwrap_or_else(|e| panic!("connecting from {source}: {e}"));
    let opened = Instant::now();
    let mut buffer = [0u8; 512];
    for byte in DRIBBLE.iter().cycle() {
        if opened.elapsed() > 3 * HEADER_TIMEOUT {
            return opened.elapsed();
        }
        if stream.write_all(&[*byte]).await.is_err() {
            return opened.elapsed();
        }
        tokio::select! {
            read = stream.read(&mut buffer) => match read {
                // Closed (or answered, which would be a failure too: the
                // headers were never complete).
                Ok(0) | Err(_) => return opened.elapsed(),
                Ok(_) => panic!("the gateway answered a request whose headers never ended"),
            },
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_neither_keep_orders_waiting_nor_outlast_the_header_timeout() {
    let timeout_ms = HEADER_TIMEOUT.as_millis().to_string();
    let saga = Saga::start_with(&[("CHORUS_GATEWAY_HEADER_TIMEOUT_MS", &timeout_ms)]).await;
    let mug = sku("MUG");
    saga.set_stock(&mug, 1_000, "4.50").await;
    // Kafka connections are warm before anything is measured.
    saga.place_ok("warm-up", &[(&mug, 1)], "tok_ok").await;

    let gateway: SocketAddr = saga
        .gateway_url
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let slow: Vec<_> = (0..SLOW_CONNECTIONS)
        .map(|i| {
            let source = SLOW_SOURCES[i % SLOW_SOURCES.len()];
            tokio::spawn(slow_client(source, gateway))
        })
        .collect();
    // All of them connected and dribbling.
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    let storefront = saga.storefront();
    let started = Instant::now();
    let (status, placed) = storefront
        .try_place("alice", "slowloris-1", &order_body(&[(&mug, 1)], "tok_ok"))
        .await
        .expect("an answer to the order");
    assert_eq!(status, 202, "{placed}");
    let order_id = placed["order_id"].as_str().unwrap();
    let read = saga.order("alice", order_id).await;
    let took = started.elapsed();
    assert_eq!(read["order_id"], Value::from(order_id));
    assert!(
        took < Duration::from_secs(1),
        "placing and reading an order took {took:?} beside {SLOW_CONNECTIONS} slow connections"
    );

    let mut open_for = Vec::with_capacity(SLOW_CONNECTIONS);
    for client in slow {
        open_for.push(client.await.expect("a slow client"));
    }
    let shortest = open_for.iter().min().unwrap();
    let longest = open_for.iter().max().unwrap();
    // Held until the header timeout (none refused earlier), closed right after.
    assert!(
        *shortest >= HEADER_TIMEOUT - Duration::from_millis(200),
        "a slow connection was closed after {shortest:?}, before the header timeout"
    );
    assert!(
        *longest <= HEADER_TIMEOUT + Duration::from_millis(1_500),
        "a slow connection stayed open {longest:?} (header timeout {HEADER_TIMEOUT:?})"
    );
    // Operators see them in the metrics.
    let metrics = saga
        .http
        .get(saga.admin_url("gateway", "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let closed = metric(
        &metrics,
        "chorus_gateway_connections_closed_total",
        &["reason=\"header_timeout\""],
    )
    .unwrap_or_else(|| panic!("no header_timeout closes in:\n{metrics}"));
    assert!(
        closed >= SLOW_CONNECTIONS as f64,
        "{closed} closed for their headers"
    );
}

/// `GET /v1/orders/{id}?wait=…&seen=PENDING` as `customer`: (status, Retry-After, body).
async fn long_poll(
    saga: &Saga,
    customer: &str,
    order_id: &str,
    wait: u64,
) -> (u16, Option<String>, Value) {
    let response = saga
        .http
        .get(format!(
            "{}/v1/orders/{order_id}?wait={wait}&seen=PENDING",
            saga.gateway_url
        ))
        .bearer_auth(saga.token(customer, "customer"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (
        status,
        retry_after,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// An order of `customer` that stays PENDING (no inventory worker runs).
async fn pending_order(saga: &Saga, customer: &str, item: &str) -> String {
    let key = format!("{customer}-{}", uuid::Uuid::new_v4());
    let (status, body) = saga
        .place(customer, &key, &order_body(&[(item, 1)], "tok_ok"))
        .await;
    assert_eq!(status, 202, "{body}");
    body["order_id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polls_past_the_caps_answer_429_while_others_are_served() {
    let mut saga = Saga::start_with(&[
        ("CHORUS_GATEWAY_LONG_POLLS_PER_SUBJECT", "3"),
        ("CHORUS_GATEWAY_LONG_POLLS", "5"),
    ])
    .await;
    // Without the inventory worker orders stay PENDING, so long-polls wait.
    saga.kill("inventory");
    let mug = sku("MUG");
    let alices = pending_order(&saga, "alice", &mug).await;
    let bobs = pending_order(&saga, "bob", &mug).await;
    let saga = &saga;

    let held = |customer: &'static str, order: String| async move {
        let started = Instant::now();
        let answer = long_poll(saga, customer, &order, 4).await;
        (answer, started.elapsed())
    };
    let alice_holds: Vec<_> = (0..3).map(|_| held("alice", alices.clone())).collect();
    let checks = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Alice past her cap: refused at once.
        let started = Instant::now();
        let (status, retry_after, body) = long_poll(saga, "alice", &alices, 4).await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(body["error"]["code"], "long_poll_limit", "{body}");
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert!(started.elapsed() < Duration::from_secs(1));
        // Bob is served: two long-polls of his wait, bringing the total to the cap.
        let bob_holds = futures::future::join_all((0..2).map(|_| held("bob", bobs.clone())));
        let past_total = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            // Carol, under her own cap, meets the cap of all long-polls...
            let carols = pending_order(saga, "carol", &mug).await;
            let (status, retry_after, body) = long_poll(saga, "carol", &carols, 4).await;
            assert_eq!(status, 429, "{body}");
            assert_eq!(body["error"]["code"], "long_poll_limit", "{body}");
            assert!(retry_after.is_some());
            // ...and is served otherwise: her order reads at once.
            let order = saga.order("carol", &carols).await;
            assert_eq!(order["status"], "PENDING");
        };
        let (bob_answers, ()) = tokio::join!(bob_holds, past_total);
        bob_answers
    };
    let (alice_answers, bob_answers) = tokio::join!(futures::future::join_all(alice_holds), checks);
    for ((status, _, body), waited) in alice_answers.iter().chain(&bob_answers) {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["status"], "PENDING");
        assert!(
            *waited >= Duration::from_secs(3),
            "a held long-poll answered after {waited:?}"
        );
    }
    // Their places are free again.
    let (status, _, body) = long_poll(saga, "alice", &alices, 1).await;
    assert_eq!(status, 200, "{body}");
}
