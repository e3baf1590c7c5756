//! The notification worker as production runs it, in this process: the
//! runtime's own entry point (consumer loop, inbox, outbox, the external-call
//! executor, dead letters) driving the notification handler, against the real
//! stack (Kafka, the schema registry, PostgreSQL; `make up`). Each test gets
//! its own topics, consumer group and database, and talks to the worker only
//! as the rest of chorus does: events on the `orders` topic in, deliveries,
//! `NotificationSent` events and dead letters out.

use std::future::Future;
use std::time::Duration;

use chorus_avro::headers::{EVENT_ID, EVENT_TYPE, REDRIVEN_FROM};
use chorus_avro::{Codec, Event, Topic, TopicCatalogue};
use chorus_notification::store::{Delivery, find_delivery};
use chorus_notification::{
    Channel, FinalStatus, NotificationConfig, NotificationHandler, RetryPolicy,
};
use chorus_platform::Env;
use chorus_platform::testing::TestDb;
use chorus_tests::Stack;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::FutureRecord;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a test waits for the worker to get somewhere.
const WITHIN: Duration = Duration::from_secs(30);

/// A running notification worker and what a test needs to talk to it.
pub struct Worker {
    pub stack: Stack,
    pub topics: TopicCatalogue,
    pub db: TestDb,
    codec: Codec,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

/// Runs the notification worker with `channels` (the `CHORUS_NOTIFY_…`,
/// `CHORUS_WEBHOOK_…`, `CHORUS_SMTP_…` variables) on `topics` and `db`,
/// through the runtime's entry point, until `stop`. The tests' one use of the
/// runtime's API, so a change of that API is adapted here alone.
fn run_notification_worker(
    stack: &Stack,
    topics: &TopicCatalogue,
    db: &TestDb,
    channels: &[(&str, &str)],
    stop: CancellationToken,
) -> JoinHandle<anyhow::Result<()>> {
    let (config, _http) = stack.worker_config(
        "notification",
        topics,
        &db.url,
        &[
            ("CHORUS_AUTO_REGISTER_SCHEMAS", "true"),
            // The executor's backoff between "not now" answers.
            ("CHORUS_MAX_BACKOFF_MS", "200"),
        ],
    );
    let mut notification = NotificationConfig::from_env(&Env::from_pairs(channels))
        .expect("the notification channels' config");
    // A channel's own tries within one call, kept short.
    notification.retry = RetryPolicy {
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        ..notification.retry
    };
    tokio::spawn(chorus_runtime::app::serve(
        config,
        &chorus_notification::MIGRATOR,
        move |_| async move { NotificationHandler::from_config(&notification) },
        stop,
    ))
}

impl Worker {
    pub async fn start(channels: &[(&str, &str)]) -> Worker {
        let stack = Stack::get().await;
        let topics = stack.fresh_topics().await;
        // Empty: the worker migrates it at start-up, as in production.
        let db = TestDb::create(&[]).await;
        let codec = stack.codec(&topics, true);
        let stop = CancellationToken::new();
        let task = run_notification_worker(&stack, &topics, &db, channels, stop.clone());
        let worker = Worker {
            stack,
            topics,
            db,
            codec,
            stop,
            task,
        };
        let last = chorus_notification::MIGRATOR
            .iter()
            .map(|m| m.version)
            .max();
        worker
            .wait_for("the worker's migrations", || async {
                let version: Option<i64> =
                    sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
                        .fetch_one(&worker.db.pool)
                        .await
                        .ok()?;
                (version == last).then_some(())
            })
            .await;
        worker
    }

    /// Stops the worker; it must stop cleanly.
    pub async fn stop(self) {
        self.stop.cancel();
        self.task
            .await
            .expect("the worker does not panic")
            .expect("the worker stops cleanly");
    }

    /// Puts `event` on the `orders` topic as a producing worker does: keyed
    /// by its order, its type and id in the headers.
    pub async fn publish(&self, event: &Event) {
        let payload = self.codec.encode(event).await.expect("encoding the event");
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: EVENT_TYPE,
                value: Some(event.event_type().name()),
            })
            .insert(Header {
                key: EVENT_ID,
                value: Some(event.event_id()),
            });
        self.produce(event.key(), &payload, headers).await;
    }

    /// Republishes a dead letter on the topic it came from, as `chorus dlq
    /// redrive` does: its key, its value, the event's own headers and where
    /// it was.
    pub async fn redrive(&self, dead: &OwnedMessage) {
        let own = |name: &str| {
            dead.headers()?
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| std::str::from_utf8(h.value?).ok())
        };
        let from = format!("{}/{}:{}", dead.topic(), dead.partition(), dead.offset());
        let mut headers = OwnedHeaders::new();
        for name in [EVENT_TYPE, EVENT_ID] {
            headers = headers.insert(Header {
                key: name,
                value: own(name),
            });
        }
        headers = headers.insert(Header {
            key: REDRIVEN_FROM,
            value: Some(&from),
        });
        let key = std::str::from_utf8(dead.key().expect("a keyed dead letter")).unwrap();
        self.produce(key, dead.payload().unwrap(), headers).await;
    }

    async fn produce(&self, key: &str, payload: &[u8], headers: OwnedHeaders) {
        let topic = self.topics.name(Topic::Orders);
        self.stack
            .producer()
            .send(
                FutureRecord::to(&topic)
                    .key(key)
                    .payload(payload)
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .expect("producing to the orders topic");
    }

    /// Waits until the worker has applied the event `event_id` (its inbox
    /// holds it): whatever it did with it committed. Events of one order are
    /// applied in the order they were published.
    pub async fn wait_applied(&self, event_id: &str) {
        self.wait_for(&format!("event {event_id} applied"), || async {
            let found: Option<String> =
                sqlx::query_scalar("SELECT event_id FROM inbox WHERE event_id = $1")
                    .bind(event_id)
                    .fetch_optional(&self.db.pool)
                    .await
                    .ok()?;
            found.map(|_| ())
        })
        .await;
    }

    /// The recorded delivery of an order's final state on a channel.
    pub async fn delivery(
        &self,
        order_id: &str,
        final_status: FinalStatus,
        channel: Channel,
    ) -> Option<Delivery> {
        let mut conn = self.db.pool.acquire().await.unwrap();
        find_delivery(&mut conn, order_id, final_status, channel)
            .await
            .unwrap()
    }

    /// Waits until that delivery's status is `status`, and returns it.
    pub async fn wait_delivery(
        &self,
        order_id: &str,
        final_status: FinalStatus,
        channel: Channel,
        status: &str,
    ) -> Delivery {
        self.wait_for(&format!("the {channel} delivery {status}"), || async {
            self.delivery(order_id, final_status, channel)
                .await
                .filter(|d| d.status == status)
        })
        .await
    }

    /// The channels of the `NotificationSent` events the worker wrote for
    /// `order_id` (its outbox: what it publishes), sorted.
    pub async fn notified(&self, order_id: &str) -> Vec<String> {
        let payloads: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id")
                .bind(self.topics.name(Topic::Notifications))
                .fetch_all(&self.db.pool)
                .await
                .unwrap();
        let mut channels = Vec::new();
        for payload in payloads {
            match self.codec.decode(Some(&payload)).await.unwrap() {
                Event::NotificationSent(sent) if sent.order_id == order_id => {
                    channels.push(sent.channel)
                }
                Event::NotificationSent(_) => {}
                other => panic!("expected NotificationSent, got {other:?}"),
            }
        }
        channels.sort();
        channels
    }

    /// The dead letters of the `orders` topic, once there are `count`.
    pub async fn dead_letters(&self, count: usize) -> Vec<OwnedMessage> {
        let dlq = self.topics.dead_letter(Topic::Orders);
        self.stack.read(&dlq, count, WITHIN).await
    }

    /// How many dead letters the `orders` topic has now.
    pub fn dead_letter_count(&self) -> i64 {
        let dlq = self.topics.dead_letter(Topic::Orders);
        let consumer: BaseConsumer = self.stack.kafka().client_config().create().unwrap();
        (0..self.topics.partitions())
            .map(|partition| {
                let (low, high) = consumer
                    .fetch_watermarks(&dlq, partition, Duration::from_secs(10))
                    .unwrap();
                high - low
            })
            .sum()
    }

    /// Asks `probe` until it answers, failing after [`WITHIN`] (or at once
    /// if the worker stopped).
    pub async fn wait_for<T, F, Fut>(&self, what: &str, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            if let Some(found) = probe().await {
                return found;
            }
            assert!(!self.task.is_finished(), "the worker stopped: {what}");
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited {WITHIN:?} in vain for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The value of a message's header.
pub fn header(message: &OwnedMessage, name: &str) -> Option<String> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|value| String::from_utf8_lossy(value).into_owned())
}
