//! A measurement, not a check (`--ignored`): how long `chorus trace` takes
//! for one order among 100,000 on topics of the default 6 partitions. It
//! fills a fresh namespace with 100,000 orders' worth of events (five per
//! order, produced as fast as the broker takes them, so every one falls in
//! the trace's time window: the worst case for it), gives one of them a
//! read model built with the order and notification workers' migrations,
//! and prints the time the command took. Run it with
//! `CHORUS_BIN=… cargo test -p chorus-tests --test e2e trace_scale -- --ignored --nocapture`
//! (`CHORUS_TRACE_SCALE_ORDERS` changes the count).

use std::time::{Duration, Instant};

use chorus_avro::{Event, EventType, TopicCatalogue};
use chorus_platform::testing::TestDb;
use chorus_platform::topics::ensure_topics;
use chorus_tests::{Stack, describe, run, stdout};
use futures::StreamExt;
use rdkafka::producer::FutureRecord;
use serde_json::Value;

/// The saga's events of one order, as the services publish them.
const SAGA: [EventType; 5] = [
    EventType::OrderPlaced,
    EventType::StockReserved,
    EventType::PaymentAuthorized,
    EventType::OrderConfirmed,
    EventType::NotificationSent,
];

#[tokio::test]
#[ignore = "a measurement: fills Kafka with 500,000 messages and prints a timing"]
async fn trace_among_100k_orders() {
    let orders: usize = std::env::var("CHORUS_TRACE_SCALE_ORDERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let stack = Stack::get().await;
    let namespace = format!("scale{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let topics = TopicCatalogue::new(namespace, chorus_avro::DEFAULT_PARTITIONS);
    ensure_topics(&stack.kafka(), &topics, 1, Duration::from_secs(30))
        .await
        .unwrap();
    let registered = run(stack.chorus(&topics).args(["schemas", "register"]));
    assert!(registered.status.success(), "{}", describe(&registered));

    // Payloads of the real size, encoded once per type: the trace skips
    // other orders' messages by key, so their bodies only cost their bytes.
    let codec = stack.codec(&topics, false);
    let mut templates = Vec::new();
    for event_type in SAGA {
        let payload = codec
            .encode(&event_type.example("o-template"))
            .await
            .unwrap();
        templates.push((topics.topic_of(event_type), payload));
    }
    let traced = orders / 2;
    let traced_id = uuid::Uuid::new_v4().to_string();
    let mut traced_events: Vec<(String, Vec<u8>)> = Vec::new();
    for event_type in SAGA {
        let event: Event = event_type.example(&traced_id);
        traced_events.push((
            topics.topic_of(event_type),
            codec.encode(&event).await.unwrap(),
        ));
    }

    let producer = stack
        .kafka()
        .producer(Duration::from_secs(120), Duration::from_millis(20))
        .unwrap();
    let started = Instant::now();
    let placed_at = chrono::Utc::now();
    let ids: Vec<String> = (0..orders)
        .map(|i| {
            if i == traced {
                traced_id.clone()
            } else {
                uuid::Uuid::new_v4().to_string()
            }
        })
        .collect();
    // Each order's five events in saga order, orders interleaved in time.
    let sends = ids
        .iter()
        .flat_map(|id| (0..SAGA.len()).map(move |step| (id, step)));
    futures::stream::iter(sends)
        .map(|(id, step)| {
            let (topic, payload) = if *id == traced_id {
                &traced_events[step]
            } else {
                &templates[step]
            };
            let producer = &producer;
            async move {
                producer
                    .send(
                        FutureRecord::to(topic)
                            .key(id.as_str())
                            .payload(payload.as_slice()),
                        Duration::from_secs(120),
                    )
                    .await
                    .map_err(|(e, _)| e)
                    .unwrap();
            }
        })
        .buffer_unordered(20_000)
        .collect::<Vec<()>>()
        .await;
    eprintln!(
        "produced {} messages for {orders} orders in {:.1} s",
        orders * SAGA.len(),
        started.elapsed().as_secs_f64()
    );

    // The traced order's read model and notification, in databases built
    // with the workers' own migrations.
    let order_db = TestDb::create(&[]).await;
    for sql in [
        include_str!("../../workers/order/migrations/1001_orders.sql"),
        include_str!("../../workers/order/migrations/1002_order_status.sql"),
        include_str!("../../workers/order/migrations/1003_deadline_and_cancellation.sql"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&order_db.pool)
            .await
            .unwrap();
    }
    sqlx::query(
        "INSERT INTO orders (order_id, customer_id, currency, items, total, status, history, created_at, updated_at)
         VALUES ($1, 'c-1', 'EUR', '[]', 10, 'CONFIRMED',
                 jsonb_build_array(jsonb_build_object('status', 'CONFIRMED', 'at', now())), $2, $2)",
    )
    .bind(&traced_id)
    .bind(placed_at)
    .execute(&order_db.pool)
    .await
    .unwrap();
    let notification_db = TestDb::create(&[]).await;
    sqlx::raw_sql(include_str!(
        "../../workers/notification/migrations/1001_deliveries.sql"
    ))
    .execute(&notification_db.pool)
    .await
    .unwrap();

    for extra in [&[][..], &["--all-partitions"][..]] {
        let mut command = stack.chorus(&topics);
        command
            .env("CHORUS_ORDER_DB_URL", &order_db.url)
            .env("CHORUS_NOTIFICATION_DB_URL", &notification_db.url)
            .args(["trace", &traced_id, "--json"])
            .args(extra);
        let started = Instant::now();
        let output = run(&mut command);
        let took = started.elapsed();
        assert!(output.status.success(), "{}", describe(&output));
        let trace: Value = serde_json::from_str(&stdout(&output)).unwrap();
        assert_eq!(trace["timeline"].as_array().unwrap().len(), SAGA.len());
        eprintln!(
            "chorus trace {} among {orders} orders: {:.3} s, {} messages scanned in {} partitions",
            extra.join(" "),
            took.as_secs_f64(),
            trace["scanned"]["messages"],
            trace["scanned"]["partitions"]
        );
    }
    // Half a million messages are worth giving back.
    let admin: rdkafka::admin::AdminClient<_> = stack.kafka().client_config().create().unwrap();
    let names = topics.all_names();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    admin
        .delete_topics(&names, &rdkafka::admin::AdminOptions::new())
        .await
        .unwrap();
}
