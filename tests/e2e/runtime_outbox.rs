//! The outbox's two ways out, against the real broker and PostgreSQL: the
//! delivery tracker (rows handed to Kafka right after their commit, marked
//! sent once acknowledged, in the worker's next transaction or by the
//! tracker when none comes) and the relay (rows left unsent, republished).

use std::collections::BTreeMap;
use std::time::Duration;

use chorus_avro::Topic;
use chorus_platform::testing::TestDb;
use chorus_runtime::outbox::{self, NewOutboxRow};
use chorus_runtime::outbox_publisher::OutboxPublisher;
use chorus_runtime::outbox_republisher::republish_once;
use chorus_tests::Stack;
use rdkafka::message::Message;

fn row(topic: &str, key: &str, n: usize) -> NewOutboxRow {
    NewOutboxRow {
        event_id: uuid::Uuid::new_v4().to_string(),
        topic: topic.to_string(),
        key: key.to_string(),
        payload: format!("payload-{n}").into_bytes(),
        headers: BTreeMap::from([("chorus-test".to_string(), n.to_string())]),
    }
}

async fn unsent(db: &TestDb) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tracker_publishes_committed_rows_in_order_and_marks_them_sent() {
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    let topic = topics.name(Topic::Orders);
    let db = TestDb::create(&[chorus_runtime::app::runtime_migrator()]).await;
    let producer = stack
        .kafka()
        .producer(Duration::from_secs(10), Duration::from_millis(5))
        .unwrap();
    let mut tx = db.pool.begin().await.unwrap();
    let rows: Vec<NewOutboxRow> = (0..20).map(|n| row(&topic, "same-key", n)).collect();
    let again = rows[3].clone();
    let written = outbox::write(&mut tx, rows).await.unwrap();
    // A row whose event id is already there (its cause applied twice) is not written twice.
    assert!(
        outbox::write(&mut tx, vec![again])
            .await
            .unwrap()
            .is_empty()
    );
    tx.commit().await.unwrap();
    assert_eq!(written.len(), 20);
    assert!(
        written.windows(2).all(|w| w[0].id < w[1].id),
        "ids follow the order given"
    );

    let (publisher, tracker) = OutboxPublisher::start(producer, db.pool.clone());
    publisher.enqueue(written).await;
    drop(publisher);
    tracker.drain().await;
    assert_eq!(unsent(&db).await, 0, "every delivered row is marked sent");

    let messages = stack.read(&topic, 20, Duration::from_secs(30)).await;
    let payloads: Vec<String> = messages
        .iter()
        .map(|m| String::from_utf8_lossy(m.payload().unwrap()).into_owned())
        .collect();
    let expected: Vec<String> = (0..20).map(|n| format!("payload-{n}")).collect();
    assert_eq!(
        payloads, expected,
        "one key, one partition, the order of the rows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_rows_are_marked_sent_in_the_next_transaction_committed() {
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    let topic = topics.name(Topic::Inventory);
    let db = TestDb::create(&[chorus_runtime::app::runtime_migrator()]).await;
    let producer = stack
        .kafka()
        .producer(Duration::from_secs(10), Duration::from_millis(1))
        .unwrap();
    // A tracker that would wait an hour before marking rows on its own.
    let (publisher, tracker) =
        OutboxPublisher::start_marking_after(producer, db.pool.clone(), Duration::from_secs(3600));
    let mut tx = db.pool.begin().await.unwrap();
    let rows: Vec<NewOutboxRow> = (0..10).map(|n| row(&topic, &format!("k{n}"), n)).collect();
    let written = outbox::write(&mut tx, rows).await.unwrap();
    publisher.commit(tx).await.unwrap();
    publisher.enqueue(written).await;
    assert_eq!(
        stack.read(&topic, 10, Duration::from_secs(30)).await.len(),
        10
    );
    // Delivery reports reach the tracker right after the broker's answer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        unsent(&db).await,
        10,
        "no batch committed yet: nothing marked"
    );

    // The worker's next batch, with effects of its own, marks them as it commits.
    let mut tx = db.pool.begin().await.unwrap();
    let next = outbox::write(&mut tx, vec![row(&topic, "k-next", 10)])
        .await
        .unwrap();
    publisher.commit(tx).await.unwrap();
    assert_eq!(unsent(&db).await, 1, "only the new row waits");

    // A transaction that fails keeps the marks it took for the next one.
    publisher.enqueue(next).await;
    assert_eq!(
        stack.read(&topic, 11, Duration::from_secs(30)).await.len(),
        11
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut tx = db.pool.begin().await.unwrap();
    sqlx::query("SELECT 1/0")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    publisher.commit(tx).await.unwrap_err();
    assert_eq!(unsent(&db).await, 1);
    publisher
        .commit(db.pool.begin().await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        unsent(&db).await,
        0,
        "the marks the failed transaction took"
    );
    drop(publisher);
    tracker.drain().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_republisher_publishes_what_was_left_unsent_once() {
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    let topic = topics.name(Topic::Payments);
    let db = TestDb::create(&[chorus_runtime::app::runtime_migrator()]).await;
    let producer = stack.producer();
    // Rows committed by a worker that died before handing them to Kafka.
    let mut tx = db.pool.begin().await.unwrap();
    outbox::write(
        &mut tx,
        (0..5).map(|n| row(&topic, &format!("k{n}"), n)).collect(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // Too young: their own publisher may still be at it.
    assert_eq!(republish_once(&db.pool, &producer).await.unwrap(), 0);
    sqlx::query("UPDATE outbox SET created_at = now() - interval '10 seconds'")
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(republish_once(&db.pool, &producer).await.unwrap(), 5);
    assert_eq!(unsent(&db).await, 0);
    assert_eq!(
        republish_once(&db.pool, &producer).await.unwrap(),
        0,
        "once"
    );
    let messages = stack.read(&topic, 5, Duration::from_secs(30)).await;
    assert_eq!(messages.len(), 5);

    // A row another relay leased a moment ago is left to it.
    let mut tx = db.pool.begin().await.unwrap();
    outbox::write(&mut tx, vec![row(&topic, "k9", 9)])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    sqlx::query(
        "UPDATE outbox SET created_at = now() - interval '10 seconds', relayed_at = now()
         WHERE sent_at IS NULL",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    assert_eq!(republish_once(&db.pool, &producer).await.unwrap(), 0);
}
