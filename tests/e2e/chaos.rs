//! `chorus chaos poison` and `chorus chaos check` against a deployment: a
//! few orders down every path, the framing poison (random bytes, a wrong
//! magic byte, an unknown schema id) on every input topic — the first 12 that
//! `chaos poison` sends — then every invariant checked; a dead-lettered event
//! of a real order is caught and named, with a non-zero exit.

use std::time::Duration;

use chorus_avro::Topic;
use chorus_tests::saga::{Saga, sku};
use chorus_tests::{describe, run, stdout};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use serde_json::Value;

fn check(saga: &Saga, poison: &std::path::Path) -> (bool, Value, std::process::Output) {
    let output = run(saga.chorus().args([
        "chaos",
        "check",
        "--json",
        "--poison",
        poison.to_str().unwrap(),
    ]));
    let report: Value = serde_json::from_str(&stdout(&output))
        .unwrap_or_else(|e| panic!("{e}: {}", describe(&output)));
    (output.status.success(), report, output)
}

#[tokio::test]
async fn poison_is_accounted_for_and_every_invariant_holds() {
    let saga = Saga::start().await;
    let (tea, cake) = (sku("TEA"), sku("CAKE"));
    saga.set_stock(&tea, 10, "3.20").await;
    saga.set_stock(&cake, 1, "4.00").await;
    let mut orders = Vec::new();
    for (customer, items, token) in [
        ("ann", vec![(tea.as_str(), 2)], "tok_ok"),
        ("ben", vec![(tea.as_str(), 1), (cake.as_str(), 1)], "tok_ok"),
        ("cid", vec![(tea.as_str(), 1)], "tok_decline"),
        ("dee", vec![(cake.as_str(), 1)], "tok_ok"),
    ] {
        let order_id = saga.place_ok(customer, &items, token).await;
        orders.push((customer, order_id));
    }
    for (customer, order_id) in &orders {
        saga.wait_final(customer, order_id, Duration::from_secs(60))
            .await;
    }
    saga.deliveries(None, orders.len() as i64).await;

    let file = std::env::temp_dir().join(format!("chorus-poison-{}.json", uuid::Uuid::new_v4()));
    let sent = run(saga.chorus().args([
        "chaos",
        "poison",
        "--count",
        "12",
        "--out",
        file.to_str().unwrap(),
    ]));
    assert!(sent.status.success(), "{}", describe(&sent));
    let summary = stdout(&sent);
    assert!(
        summary.starts_with("sent 12 poison messages\n"),
        "{summary}"
    );
    for topic in ["orders", "inventory", "inventory.commands", "payments"] {
        let name = format!("{}.{topic}", saga.topics.namespace());
        for kind in ["random_bytes", "wrong_magic_byte", "unknown_schema_id"] {
            assert!(
                summary.contains(&format!("  {name:<32} {kind:<20} 1\n")),
                "{summary}"
            );
        }
    }
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(written["count"], 12);
    assert_eq!(written["namespace"], saga.topics.namespace());

    // The workers take a moment to dead-letter or reject it all.
    let mut last = None;
    for _ in 0..60 {
        let (ok, report, output) = check(&saga, &file);
        if ok {
            last = None;
            assert_eq!(report["ok"], true);
            let poison = &report["invariants"].as_array().unwrap()[5];
            assert_eq!(poison["figures"]["sent"], 12, "{report}");
            assert_eq!(poison["figures"]["dead-lettered"], 12, "{report}");
            break;
        }
        last = Some(describe(&output));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    if let Some(failure) = last {
        panic!("invariants still violated after 60 s:\n{failure}");
    }
    let table = run(saga
        .chorus()
        .args(["chaos", "check", "--poison", file.to_str().unwrap()]));
    assert!(table.status.success(), "{}", describe(&table));
    assert!(stdout(&table).contains("every poison message dead-lettered or rejected"));

    // A real order's event in a dead-letter topic is a violation, named.
    let (_, order_id) = &orders[0];
    // Poison shares the topic: read more of it until the order's event is in.
    let mut placed = None;
    for count in 1..=64 {
        placed = saga
            .stack
            .read(
                &saga.topics.name(Topic::Orders),
                count,
                Duration::from_secs(10),
            )
            .await
            .into_iter()
            .find(|m| m.key() == Some(order_id.as_bytes()));
        if placed.is_some() {
            break;
        }
    }
    let placed = placed.expect("the first order's OrderPlaced");
    let producer = saga.stack.producer();
    producer
        .send(
            FutureRecord::to(&saga.topics.dead_letter(Topic::Orders))
                .key(order_id.as_str())
                .payload(placed.payload().unwrap()),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let (ok, report, output) = check(&saga, &file);
    std::fs::remove_file(&file).ok();
    assert!(!ok, "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invariants violated: no event of a real order dead-lettered"),
        "{stderr}"
    );
    let violated: Vec<&Value> = report["invariants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["ok"] == false)
        .collect();
    assert_eq!(violated.len(), 1, "{report}");
    assert_eq!(
        violated[0]["violations"][0],
        format!(
            "{}: an event of order {order_id}",
            saga.topics.dead_letter(Topic::Orders)
        )
    );
}
