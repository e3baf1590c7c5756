//! Prometheus metrics of a worker: consumed, processed, dead-lettered,
//! retried, processing latency and outbox backlog.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub consumed: IntCounterVec,
    pub processed: IntCounterVec,
    pub dead_lettered: IntCounterVec,
    pub retried: IntCounterVec,
    pub processing_seconds: HistogramVec,
    pub outbox_backlog: IntGauge,
}

impl Metrics {
    pub fn new(worker: &str) -> Metrics {
        let registry = Registry::new_custom(Some("chorus".into()), None).expect("valid prefix");
        let opts = |name: &str, help: &str| Opts::new(name, help).const_label("worker", worker);
        let consumed = IntCounterVec::new(
            opts("messages_consumed_total", "Messages received from Kafka"),
            &["topic"],
        )
        .expect("metric");
        let processed = IntCounterVec::new(
            opts(
                "messages_processed_total",
                "Messages processed, by outcome (applied, duplicate, dead_lettered)",
            ),
            &["topic", "outcome"],
        )
        .expect("metric");
        let dead_lettered = IntCounterVec::new(
            opts(
                "messages_dead_lettered_total",
                "Messages sent to a dead-letter topic",
            ),
            &["topic", "class"],
        )
        .expect("metric");
        let retried = IntCounterVec::new(
            opts(
                "messages_retried_total",
                "Retries after a transient failure",
            ),
            &["topic"],
        )
        .expect("metric");
        let processing_seconds = HistogramVec::new(
            HistogramOpts::new("message_processing_seconds", "Time to process one message")
                .const_label("worker", worker)
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
            &["topic"],
        )
        .expect("metric");
        let outbox_backlog = IntGauge::with_opts(opts(
            "outbox_backlog",
            "Outbox rows not yet published to Kafka",
        ))
        .expect("metric");
        for collector in [
            Box::new(consumed.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(processed.clone()),
            Box::new(dead_lettered.clone()),
            Box::new(retried.clone()),
            Box::new(processing_seconds.clone()),
            Box::new(outbox_backlog.clone()),
        ] {
            registry.register(collector).expect("unique metric names");
        }
        Metrics {
            registry,
            consumed,
            processed,
            dead_lettered,
            retried,
            processing_seconds,
            outbox_backlog,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding cannot fail");
        String::from_utf8(buffer).expect("exposition is UTF-8")
    }
}
