//! Support for the end-to-end suites: reach the real stack (or fail saying how
//! to start it), give each test its own topics, run the `chorus` binary, and
//! (`saga`) run a whole deployment of the services for one test.

pub mod cluster_stack;
pub mod designed;
pub mod placer;
pub mod saga;
pub mod storefront;

pub use cluster_stack::StackBroker;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use chorus_avro::{Codec, CodecConfig, RegistrySettings, TopicCatalogue};
use chorus_platform::KafkaSettings;
use chorus_platform::topics::{TopicSpec, ensure_topics_with};
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};

pub const HOW_TO_START: &str =
    "start the stack with `make up` (or run everything with `make test`)";

/// Addresses of the real stack, from the same `CHORUS_…` variables the services read.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The plaintext listeners: the stack's administrator (no ACL applies).
    pub brokers: String,
    pub registry: String,
    /// The authorizing SASL listeners the services connect through, each
    /// with its own principal (`CHORUS_TEST_KAFKA_SASL_BROKERS`).
    pub sasl_brokers: String,
}

impl Stack {
    /// The stack from the environment, checked reachable; panics with how to start it.
    pub async fn get() -> Stack {
        let stack = Stack {
            brokers: env_or("CHORUS_KAFKA_BROKERS", "127.0.0.1:9092"),
            registry: env_or(
                "CHORUS_SCHEMA_REGISTRY_URL",
                "http://127.0.0.1:8081/apis/ccompat/v7",
            ),
            sasl_brokers: env_or("CHORUS_TEST_KAFKA_SASL_BROKERS", "127.0.0.1:9094"),
        };
        if let Err(problem) = stack.check(Duration::from_secs(5)).await {
            panic!("{problem}");
        }
        stack
    }

    /// What service `service` reads to connect through the authorizing
    /// listener with its own principal: the stack's development user
    /// `chorus-<service>`, whose password is its name.
    pub fn service_kafka_env(&self, service: &str) -> Vec<(String, String)> {
        let user = format!("chorus-{service}");
        [
            ("CHORUS_KAFKA_BROKERS", self.sasl_brokers.clone()),
            ("CHORUS_KAFKA_SECURITY_PROTOCOL", "sasl_plaintext".into()),
            ("CHORUS_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512".into()),
            ("CHORUS_KAFKA_SASL_USERNAME", user.clone()),
            ("CHORUS_KAFKA_SASL_PASSWORD", user),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The Kafka settings of this stack (plaintext, as `make up` runs it).
    pub fn kafka(&self) -> KafkaSettings {
        KafkaSettings::plaintext(self.brokers.clone())
    }

    /// An idempotent producer to this stack's Kafka, for tests that put
    /// messages on topics themselves.
    pub fn producer(&self) -> rdkafka::producer::FutureProducer {
        self.kafka()
            .producer(Duration::from_secs(10), Duration::ZERO)
            .expect("a Kafka producer")
    }

    pub fn registry_settings(&self) -> RegistrySettings {
        RegistrySettings::new(self.registry.clone())
    }

    /// Checks every component, naming the first unreachable one and how to start it.
    pub async fn check(&self, timeout: Duration) -> Result<(), String> {
        self.kafka()
            .fetch_metadata(None, timeout)
            .await
            .map_err(|e| {
                format!("the end-to-end tests need the real stack: {e}; {HOW_TO_START}")
            })?;
        let registry = chorus_avro::RegistryClient::new(&self.registry_settings(), timeout)
            .map_err(|e| e.to_string())?;
        registry.subjects().await.map_err(|e| {
            format!("the end-to-end tests need the real stack: {e}; {HOW_TO_START}")
        })?;
        Ok(())
    }

    /// A fresh topic namespace with all its topics created, for one test alone.
    /// The configuration of worker `name` run in this process against this
    /// stack, in `topics`' namespace, with the database at `database_url` and
    /// its health address on a free port (returned, `host:port`). `extra`
    /// comes first, so its variables win.
    pub fn worker_config(
        &self,
        name: &str,
        topics: &TopicCatalogue,
        database_url: &str,
        extra: &[(&str, &str)],
    ) -> (chorus_runtime::WorkerConfig, String) {
        let port = saga::free_port();
        let http = format!("127.0.0.1:{port}");
        let partitions = topics.partitions().to_string();
        let mut pairs = extra.to_vec();
        pairs.extend([
            ("CHORUS_KAFKA_BROKERS", self.brokers.as_str()),
            ("CHORUS_SCHEMA_REGISTRY_URL", self.registry.as_str()),
            ("CHORUS_TOPIC_NAMESPACE", topics.namespace()),
            ("CHORUS_TOPIC_PARTITIONS", partitions.as_str()),
            ("CHORUS_DATABASE_URL", database_url),
            ("CHORUS_HTTP_ADDR", http.as_str()),
        ]);
        let env = chorus_platform::Env::from_pairs(&pairs);
        let config = chorus_runtime::WorkerConfig::from(&env, name, port)
            .expect("the test worker's configuration");
        (config, http)
    }

    pub async fn fresh_topics(&self) -> TopicCatalogue {
        let namespace = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let catalogue = TopicCatalogue::new(namespace, 2);
        // As `chorus topics create` makes them: replicated min(3, brokers)
        // times, two in sync from three on.
        let timeout = Duration::from_secs(30);
        let spec = TopicSpec::for_cluster(&self.kafka(), None, None, timeout)
            .await
            .expect("the cluster's brokers");
        ensure_topics_with(&self.kafka(), &catalogue, spec, timeout)
            .await
            .expect("creating the test's topics");
        catalogue
    }

    pub fn codec(&self, catalogue: &TopicCatalogue, auto_register: bool) -> Codec {
        let config = CodecConfig {
            registry: self.registry_settings(),
            auto_register,
            timeout: Duration::from_secs(10),
        };
        Codec::new(&config, catalogue.clone()).expect("codec")
    }

    /// The `chorus` binary, pointed at this stack and namespace.
    pub fn chorus(&self, catalogue: &TopicCatalogue) -> Command {
        let mut command = Command::new(chorus_bin());
        command
            .env("CHORUS_KAFKA_BROKERS", &self.brokers)
            .env("CHORUS_SCHEMA_REGISTRY_URL", &self.registry)
            .env("CHORUS_TOPIC_NAMESPACE", catalogue.namespace())
            .env(
                "CHORUS_TOPIC_PARTITIONS",
                catalogue.partitions().to_string(),
            );
        command
    }

    /// The offset consumer group `group` has committed for
    /// `topic`/`partition`, if any: a worker commits an offset once the
    /// messages before it are applied.
    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        let consumer: BaseConsumer = self
            .kafka()
            .client_config()
            .set("group.id", group)
            .create()
            .expect("consumer");
        let mut query = TopicPartitionList::new();
        query.add_partition(topic, partition);
        let found = consumer
            .committed_offsets(query, Duration::from_secs(10))
            .expect("committed offsets");
        match found.elements()[0].offset() {
            Offset::Offset(offset) => Some(offset),
            _ => None,
        }
    }

    /// Waits (up to 30 s) until `group` has committed past `offset` of
    /// `topic`/`partition`, i.e. has applied the message there.
    pub async fn wait_committed_past(&self, group: &str, topic: &str, partition: i32, offset: i64) {
        for _ in 0..300 {
            if self
                .committed(group, topic, partition)
                .is_some_and(|o| o > offset)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{group} never committed past {topic} {partition}:{offset}");
    }

    /// Reads `count` messages of a topic from the beginning, or fails after `timeout`.
    pub async fn read(&self, topic: &str, count: usize, timeout: Duration) -> Vec<OwnedMessage> {
        let consumer: StreamConsumer = self
            .kafka()
            .client_config()
            .set("group.id", format!("test-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let partitions = self
            .kafka()
            .topic_partitions(topic, timeout)
            .await
            .expect("metadata");
        assert!(!partitions.is_empty(), "topic {topic} does not exist");
        let mut assignment = TopicPartitionList::new();
        for partition in partitions {
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .expect("assignment");
        }
        consumer.assign(&assignment).expect("assign");
        let mut messages = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while messages.len() < count {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(m)) => messages.push(m.detach()),
                Ok(Err(e)) => panic!("reading {topic}: {e}"),
                Err(_) => panic!(
                    "only {} of {count} messages arrived on {topic} within {timeout:?}",
                    messages.len()
                ),
            }
        }
        messages.sort_by_key(|m| (m.partition(), m.offset()));
        messages
    }
}

/// The `chorus` binary that `make test` builds (`CHORUS_BIN`), or the debug build.
pub fn chorus_bin() -> PathBuf {
    let path = std::env::var_os("CHORUS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/chorus")
        });
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --bin chorus` (make test does)",
        path.display()
    );
    path
}

/// Runs a command and returns its output, with stdout and stderr in any panic message.
pub fn run(command: &mut Command) -> Output {
    command.output().expect("running chorus")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// The process's exit status, or None (after killing it) when it is still
/// running after `seconds`.
pub fn exit_within(
    mut child: std::process::Child,
    seconds: u64,
) -> Option<std::process::ExitStatus> {
    for _ in 0..seconds * 10 {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Starts worker binary `chorus-<worker>` alone against this stack's registry,
/// in `topics`' namespace, with the database at `database_url`, `env` (its
/// Kafka settings, and any other) and its output in
/// `target/e2e-logs/<namespace>/<log_name>.log` (returned): for tests of how
/// a worker starts, refuses to, or stops.
pub fn spawn_worker(
    stack: &Stack,
    worker: &str,
    log_name: &str,
    topics: &TopicCatalogue,
    database_url: &str,
    env: &[(String, String)],
) -> (std::process::Child, PathBuf) {
    let logs = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/e2e-logs")
        .join(topics.namespace());
    std::fs::create_dir_all(&logs).unwrap();
    let log = logs.join(format!("{log_name}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let binary = chorus_bin().with_file_name(format!("chorus-{worker}"));
    let child = Command::new(&binary)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("CHORUS_SCHEMA_REGISTRY_URL", &stack.registry)
        .env("CHORUS_TOPIC_NAMESPACE", topics.namespace())
        .env("CHORUS_TOPIC_PARTITIONS", topics.partitions().to_string())
        .env("CHORUS_DATABASE_URL", database_url)
        .env("CHORUS_HTTP_ADDR", "127.0.0.1:0")
        .env("CHORUS_PAYMENT_TOKEN_KEY", saga::PAYMENT_TOKEN_KEY)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::from(out.try_clone().unwrap()))
        .stderr(std::process::Stdio::from(out))
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
    (child, log)
}
