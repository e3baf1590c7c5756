//! Prometheus metrics of a worker: messages consumed, processed,
//! dead-lettered and retried, processing latency, batch sizes, paused and
//! retrying partitions, consumer lag, panics, external calls, and the outbox
//! backlog and its age. A worker adds its own through [`Metrics::registry`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::progress::Progress;

pub struct Metrics {
    registry: Registry,
    worker: String,
    pub consumed: IntCounterVec,
    pub processed: IntCounterVec,
    pub dead_lettered: IntCounterVec,
    pub retried: IntCounterVec,
    pub processing_seconds: HistogramVec,
    pub batch_size: Histogram,
    pub panics: IntCounter,
    pub calls: IntCounterVec,
    pub outbox_backlog: IntGauge,
    pub outbox_oldest_seconds: Gauge,
    partition_paused: IntGaugeVec,
    retrying: IntGaugeVec,
    consumer_lag: IntGaugeVec,
    loop_stalled_seconds: GaugeVec,
    /// The loops whose silence `loop_stalled_seconds` shows.
    loops: Mutex<Vec<Progress>>,
    /// Each consumed partition's last reported lag, and when.
    lags: Mutex<HashMap<(String, i32), (i64, Instant)>>,
}

impl Metrics {
    pub fn new(worker: &str) -> Metrics {
        let registry = Registry::new_custom(Some("chorus".into()), None).expect("valid prefix");
        let opts = |name: &str, help: &str| Opts::new(name, help).const_label("worker", worker);
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(opts(name, help), labels).expect("metric")
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            IntGaugeVec::new(opts(name, help), labels).expect("metric")
        };
        let metrics = Metrics {
            consumed: counter(
                "messages_consumed_total",
                "Messages received from Kafka",
                &["topic"],
            ),
            processed: counter(
                "messages_processed_total",
                "Messages processed, by outcome (applied, duplicate, ignored, dead_lettered)",
                &["topic", "outcome"],
            ),
            dead_lettered: counter(
                "messages_dead_lettered_total",
                "Messages sent to a dead-letter topic, by error class",
                &["topic", "class"],
            ),
            retried: counter(
                "messages_retried_total",
                "Failed attempts that will be retried",
                &["topic"],
            ),
            processing_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "message_processing_seconds",
                    "Time from a batch's start to its messages' outcome",
                )
                .const_label("worker", worker)
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
                &["topic"],
            )
            .expect("metric"),
            batch_size: Histogram::with_opts(
                HistogramOpts::new("batch_messages", "Messages per processed batch")
                    .const_label("worker", worker)
                    .buckets(vec![
                        1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0,
                    ]),
            )
            .expect("metric"),
            panics: IntCounter::with_opts(opts(
                "panics_total",
                "Handler panics caught (each message dead-lettered with class panic)",
            ))
            .expect("metric"),
            calls: counter(
                "external_calls_total",
                "External calls made, by call and result (answered, retry)",
                &["call", "result"],
            ),
            outbox_backlog: IntGauge::with_opts(opts(
                "outbox_backlog",
                "Outbox rows not yet published to Kafka",
            ))
            .expect("metric"),
            outbox_oldest_seconds: Gauge::with_opts(opts(
                "outbox_oldest_seconds",
                "Age of the oldest outbox row not yet published (0 when none)",
            ))
            .expect("metric"),
            partition_paused: gauge(
                "partition_paused",
                "1 while the partition is paused (retrying, or its queue is full)",
                &["topic", "partition"],
            ),
            retrying: gauge(
                "retrying",
                "1 while the partition's head message waits for a retry",
                &["topic", "partition"],
            ),
            consumer_lag: gauge(
                "consumer_lag",
                "Messages in the partition not yet consumed by this worker's group",
                &["topic", "partition"],
            ),
            loop_stalled_seconds: GaugeVec::new(
                opts(
                    "loop_stalled_seconds",
                    "Seconds since the loop last made progress (a healthy loop stays below a few)",
                ),
                &["loop"],
            )
            .expect("metric"),
            loops: Mutex::default(),
            lags: Mutex::default(),
            worker: worker.to_string(),
            registry,
        };
        for collector in [
            Box::new(metrics.consumed.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(metrics.processed.clone()),
            Box::new(metrics.dead_lettered.clone()),
            Box::new(metrics.retried.clone()),
            Box::new(metrics.processing_seconds.clone()),
            Box::new(metrics.batch_size.clone()),
            Box::new(metrics.panics.clone()),
            Box::new(metrics.calls.clone()),
            Box::new(metrics.outbox_backlog.clone()),
            Box::new(metrics.outbox_oldest_seconds.clone()),
            Box::new(metrics.partition_paused.clone()),
            Box::new(metrics.retrying.clone()),
            Box::new(metrics.consumer_lag.clone()),
            Box::new(metrics.loop_stalled_seconds.clone()),
        ] {
            metrics
                .registry
                .register(collector)
                .expect("unique metric names");
        }
        metrics
    }

    /// The registry, for a worker's own metrics (prefixed `chorus_`).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The worker's name, the `worker` label of every metric.
    pub fn worker(&self) -> &str {
        &self.worker
    }

    pub fn set_paused(&self, topic: &str, partition: i32, paused: bool) {
        self.partition_paused
            .with_label_values(&[topic, &partition.to_string()])
            .set(i64::from(paused));
    }

    pub fn set_retrying(&self, topic: &str, partition: i32, retrying: bool) {
        self.retrying
            .with_label_values(&[topic, &partition.to_string()])
            .set(i64::from(retrying));
    }

    pub fn set_consumer_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.consumer_lag
            .with_label_values(&[topic, &partition.to_string()])
            .set(lag);
        self.lags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((topic.to_string(), partition), (lag, Instant::now()));
    }

    /// The partitions of `topic` this process consumes and had fully
    /// applied (committed lag 0) in a report no older than `fresh`: every
    /// message written to them before that report has taken effect here.
    pub fn caught_up_partitions(&self, topic: &str, fresh: Duration) -> Vec<i32> {
        let lags = self.lags.lock().unwrap_or_else(|e| e.into_inner());
        let mut caught_up: Vec<i32> = lags
            .iter()
            .filter(|((t, _), (lag, at))| t == topic && *lag == 0 && at.elapsed() <= fresh)
            .map(|((_, partition), _)| *partition)
            .collect();
        caught_up.sort_unstable();
        caught_up
    }

    /// A revoked partition's gauges go away with it.
    pub fn forget_partition(&self, topic: &str, partition: i32) {
        self.lags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(topic.to_string(), partition));
        let labels = [topic, &partition.to_string()];
        for gauge in [&self.partition_paused, &self.retrying, &self.consumer_lag] {
            let _ = gauge.remove_label_values(&labels);
        }
    }

    /// Shows `progress` as `chorus_loop_stalled_seconds{loop="<its name>"}`.
    pub fn watch(&self, progress: &Progress) {
        self.loops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(progress.clone());
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        for progress in self.loops.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            self.loop_stalled_seconds
                .with_label_values(&[progress.name()])
                .set(progress.silent_for().as_secs_f64());
        }
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding cannot fail");
        String::from_utf8(buffer).expect("exposition is UTF-8")
    }
}
