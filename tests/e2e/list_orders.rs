//! `GET /v1/orders` and `chorus order list` against a whole deployment:
//! orders placed through the gateway and recorded by the real order worker
//! in its read model. Paging through one customer's 250 orders while more of
//! theirs keep arriving returns each of the 250 exactly once and nothing of
//! anyone else's; a customer cannot read another's list; an admin can.

use std::collections::BTreeSet;
use std::time::Duration;

use chorus_tests::saga::{Saga, sku};
use chorus_tests::{describe, run, stdout};
use futures::StreamExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Orders of the customer who pages.
const ORDERS: usize = 250;
/// Orders of another customer, placed among them.
const OTHERS: usize = 10;
/// An odd page size: pages never line up with anything.
const PAGE: usize = 7;

/// Waits until the order worker has recorded `count` orders of `customer`
/// in its read model (the view the gateway lists from).
async fn recorded(saga: &Saga, customer: &str, count: usize) {
    let orders = saga.db("order").await;
    for _ in 0..1200 {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM order_status WHERE customer_id = $1")
            .bind(customer)
            .fetch_one(&orders)
            .await
            .unwrap();
        if n as usize >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the read model never held {count} orders of {customer}");
}

/// Waits until the order worker has recorded one order in its read model.
async fn recorded_order(saga: &Saga, order_id: &str) {
    let orders = saga.db("order").await;
    for _ in 0..1200 {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM order_status WHERE order_id = $1")
                .bind(order_id)
                .fetch_optional(&orders)
                .await
                .unwrap();
        if found.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the read model never held order {order_id}");
}

async fn get(saga: &Saga, token: &str, query: &str) -> (u16, Value) {
    let response = saga
        .http
        .get(format!("{}/v1/orders{query}", saga.gateway_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn ids(page: &Value) -> Vec<String> {
    page["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap().to_string())
        .collect()
}

/// Places orders in parallel; their ids.
async fn place_many(saga: &Saga, customer: &str, sku: &str, count: usize) -> BTreeSet<String> {
    futures::stream::iter(0..count)
        .map(|_| async move { saga.place_ok(customer, &[(sku, 1)], "tok_ok").await })
        .buffer_unordered(16)
        .collect()
        .await
}

#[tokio::test]
async fn paging_returns_each_order_once_while_new_ones_arrive_and_only_the_callers() {
    let saga = Saga::start().await;
    let mug = sku("LIST");
    saga.set_stock(&mug, 100_000, "3.00").await;
    let (alice, bob) = (
        saga.token("alice", "customer"),
        saga.token("bob", "customer"),
    );
    let bobs = place_many(&saga, "bob", &mug, OTHERS).await;
    let placed = place_many(&saga, "alice", &mug, ORDERS).await;
    assert_eq!(placed.len(), ORDERS);
    recorded(&saga, "bob", OTHERS).await;
    recorded(&saga, "alice", ORDERS).await;

    // While alice pages, her orders keep arriving: a flow of its own, and
    // one recorded in the read model between every two pages, so each page
    // starts with newer orders at the head of the list than the last one saw.
    let flowing = CancellationToken::new();
    let flow = {
        let (shop, mug, flowing) = (saga.storefront(), mug.clone(), flowing.clone());
        tokio::spawn(async move {
            let mut arrived = BTreeSet::new();
            while !flowing.is_cancelled() {
                arrived.insert(shop.place_ok("alice", &[(&mug, 1)], "tok_ok").await);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            arrived
        })
    };
    let mut arrived = BTreeSet::new();
    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut placed_at: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            None => format!("?limit={PAGE}"),
            Some(next) => format!("?limit={PAGE}&cursor={next}"),
        };
        let (status, page) = get(&saga, &alice, &query).await;
        assert_eq!(status, 200, "{page}");
        assert!(ids(&page).len() <= PAGE, "{page}");
        placed_at.extend(
            page["orders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["placed_at"].as_str().unwrap().to_string()),
        );
        pages.push(ids(&page));
        let Some(next) = page["next"].as_str() else {
            break;
        };
        cursor = Some(next.to_string());
        let order_id = saga.place_ok("alice", &[(&mug, 1)], "tok_ok").await;
        recorded_order(&saga, &order_id).await;
        arrived.insert(order_id);
        assert!(pages.len() < 1000, "the list never ends");
    }
    flowing.cancel();
    arrived.extend(flow.await.unwrap());

    let seen: Vec<&String> = pages.iter().flatten().collect();
    let distinct: BTreeSet<&String> = seen.iter().copied().collect();
    assert_eq!(distinct.len(), seen.len(), "an order was listed twice");
    let missing: Vec<&String> = placed.iter().filter(|id| !distinct.contains(id)).collect();
    assert!(missing.is_empty(), "orders never listed: {missing:?}");
    let foreign: Vec<&&String> = distinct
        .iter()
        .filter(|id| !placed.contains(**id) && !arrived.contains(**id))
        .collect();
    assert!(foreign.is_empty(), "orders not alice's: {foreign:?}");
    assert!(bobs.iter().all(|id| !distinct.contains(id)));
    // Newest first, across pages too (RFC 3339 in UTC sorts as text).
    assert!(placed_at.windows(2).all(|w| w[0] >= w[1]), "{placed_at:?}");
    eprintln!(
        "{} pages of {PAGE}: {} orders, {} of them arrived while paging",
        pages.len(),
        seen.len(),
        seen.len() - ORDERS
    );

    // Whose orders: bob sees his own; alice may not name him; an admin may.
    let (status, page) = get(&saga, &bob, "?limit=100").await;
    assert_eq!(status, 200);
    assert_eq!(ids(&page).into_iter().collect::<BTreeSet<_>>(), bobs);
    let (status, refused) = get(&saga, &alice, "?customer=bob").await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"]["code"], "forbidden");
    let ops = saga.token("ops", "admin");
    let (status, page) = get(&saga, &ops, "?customer=bob&limit=100").await;
    assert_eq!(status, 200);
    assert_eq!(ids(&page).into_iter().collect::<BTreeSet<_>>(), bobs);

    // Bad parameters: 400 naming the field.
    for (query, field) in [
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?status=SHIPPED", "status"),
        ("?since=last-week", "since"),
        ("?cursor=0123", "cursor"),
    ] {
        let (status, error) = get(&saga, &alice, query).await;
        assert_eq!(status, 400, "{query}: {error}");
        assert_eq!(error["error"]["code"], "invalid_field", "{query}");
        assert_eq!(error["error"]["field"], field, "{query}");
    }
}

/// Every line `chorus order list` printed, as JSON.
fn listed(output: &std::process::Output) -> Vec<Value> {
    assert!(output.status.success(), "{}", describe(output));
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[tokio::test]
async fn chorus_order_list_prints_a_page_or_follows_next_to_the_end() {
    let saga = Saga::start().await;
    let cup = sku("CUP");
    saga.set_stock(&cup, 1000, "2.50").await;
    let bobs = place_many(&saga, "bob", &cup, 8).await;
    place_many(&saga, "carol", &cup, 2).await;
    for order_id in &bobs {
        saga.wait_final("bob", order_id, Duration::from_secs(60))
            .await;
    }
    recorded(&saga, "carol", 2).await;
    let list = |args: &[&str]| {
        let mut command = saga.chorus();
        command.args(["order", "list"]).args(args);
        run(&mut command)
    };

    // One page, and where the next starts.
    let output = list(&["--sub", "bob", "--limit", "3"]);
    assert_eq!(listed(&output).len(), 3);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let next = stderr
        .trim()
        .strip_prefix("more orders: --cursor ")
        .unwrap_or_else(|| panic!("{}", describe(&output)))
        .to_string();
    let rest = listed(&list(&[
        "--sub", "bob", "--limit", "3", "--cursor", &next, "--all",
    ]));
    assert_eq!(rest.len(), 5);

    // Every page, filtered, as the customer and as an admin.
    for args in [
        &["--sub", "bob", "--limit", "3", "--all"][..],
        &["--sub", "bob", "--status", "CONFIRMED", "--all"],
        &[
            "--sub",
            "ops",
            "--role",
            "admin",
            "--customer",
            "bob",
            "--all",
        ],
        &["--sub", "bob", "--since", "2020-01-01T00:00:00Z", "--all"],
    ] {
        let orders = listed(&list(args));
        let ids: BTreeSet<String> = orders
            .iter()
            .map(|o| o["order_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids, bobs, "{args:?}");
    }
    let everyone = listed(&list(&["--sub", "ops", "--role", "admin", "--all"]));
    assert_eq!(everyone.len(), 10);

    // Refused: the gateway's error JSON alone on stderr, exit non-zero.
    for (args, code) in [
        (&["--sub", "bob", "--customer", "carol"][..], "forbidden"),
        (&["--sub", "bob", "--limit", "0"], "invalid_field"),
    ] {
        let output = list(args);
        assert!(!output.status.success(), "{}", describe(&output));
        assert!(output.stdout.is_empty(), "{}", describe(&output));
        let error: Value = serde_json::from_slice(&output.stderr)
            .unwrap_or_else(|e| panic!("{e}: {}", describe(&output)));
        assert_eq!(error["error"]["code"], code, "{args:?}");
    }
}
