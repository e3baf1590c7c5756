//! Reads bounded stretches of topic partitions: each from a start offset up
//! to the end it had when the read began (or until the caller stops it), so
//! a read always ends, and a broker that stops answering is an error naming
//! the partition rather than a hang.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chorus_platform::KafkaSettings;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};

/// Offsets `[start, end)` of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stretch {
    pub topic: String,
    pub partition: i32,
    pub start: i64,
    pub end: i64,
}

/// What to do with a message just read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Keep,
    Skip,
    /// Skip it and read no further in its partition.
    StopPartition,
}

pub struct TopicReader {
    consumer: StreamConsumer,
    kafka: KafkaSettings,
    timeout: Duration,
}

impl TopicReader {
    /// A reader that gives up on a broker silent for `timeout`.
    pub fn new(kafka: &KafkaSettings, timeout: Duration) -> anyhow::Result<TopicReader> {
        let consumer: StreamConsumer = kafka
            .client_config()
            .set("group.id", format!("chorus-cli-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .create()
            .with_context(|| format!("creating a Kafka consumer for {}", kafka.brokers))?;
        Ok(TopicReader {
            consumer,
            kafka: kafka.clone(),
            timeout,
        })
    }

    /// The partition ids of `topic`; an error when it does not exist.
    pub async fn partitions(&self, topic: &str) -> anyhow::Result<Vec<i32>> {
        let partitions = self.kafka.topic_partitions(topic, self.timeout).await?;
        if partitions.is_empty() {
            bail!("topic {topic} does not exist at {}", self.kafka.brokers);
        }
        Ok(partitions)
    }

    /// The partition ids of each of `topics` that exists, from one metadata request.
    pub async fn partitions_of(
        &self,
        topics: &[String],
    ) -> anyhow::Result<BTreeMap<String, Vec<i32>>> {
        let metadata = self.kafka.fetch_metadata(None, self.timeout).await?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && topics.iter().any(|name| name == t.name()))
            .map(|t| {
                let ids = t.partitions().iter().map(|p| p.id()).collect();
                (t.name().to_string(), ids)
            })
            .collect())
    }

    /// The oldest offset still held and the offset the next message will get.
    pub fn watermarks(&self, topic: &str, partition: i32) -> anyhow::Result<(i64, i64)> {
        self.consumer
            .fetch_watermarks(topic, partition, self.timeout)
            .with_context(|| {
                format!(
                    "reading the offsets of {topic}/{partition} at {}",
                    self.kafka.brokers
                )
            })
    }

    /// Every message a partition holds now.
    pub fn whole(&self, topic: &str, partition: i32) -> anyhow::Result<Stretch> {
        let (start, end) = self.watermarks(topic, partition)?;
        Ok(Stretch {
            topic: topic.to_string(),
            partition,
            start,
            end,
        })
    }

    /// The first offset of each partition whose timestamp is at or after
    /// `millis`; partitions with no such message are left out.
    pub fn offsets_after(
        &self,
        partitions: &[(String, i32)],
        millis: i64,
    ) -> anyhow::Result<HashMap<(String, i32), i64>> {
        let mut query = TopicPartitionList::new();
        for (topic, partition) in partitions {
            query.add_partition_offset(topic, *partition, Offset::Offset(millis))?;
        }
        let found = self
            .consumer
            .offsets_for_times(query, self.timeout)
            .with_context(|| format!("looking up offsets by time at {}", self.kafka.brokers))?;
        Ok(found
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(offset) => Some(((e.topic().to_string(), e.partition()), offset)),
                _ => None,
            })
            .collect())
    }

    /// Reads every stretch, asking `visit` about each message; returns the
    /// kept ones in the order they came (per partition, by offset).
    pub async fn read(
        &self,
        stretches: &[Stretch],
        mut visit: impl FnMut(&BorrowedMessage<'_>) -> Step,
    ) -> anyhow::Result<Vec<OwnedMessage>> {
        let mut open: BTreeMap<(String, i32), i64> = BTreeMap::new();
        let mut assignment = TopicPartitionList::new();
        for s in stretches.iter().filter(|s| s.end > s.start) {
            assignment.add_partition_offset(&s.topic, s.partition, Offset::Offset(s.start))?;
            open.insert((s.topic.clone(), s.partition), s.end);
        }
        if open.is_empty() {
            return Ok(Vec::new());
        }
        self.consumer.assign(&assignment)?;
        let mut kept = Vec::new();
        let mut last_progress = Instant::now();
        while !open.is_empty() {
            let received =
                tokio::time::timeout(Duration::from_millis(500), self.consumer.recv()).await;
            let message = match received {
                Ok(message) => {
                    message.with_context(|| format!("reading from {}", self.kafka.brokers))?
                }
                Err(_) => {
                    // The end of a stretch may be a gap (e.g. a transaction
                    // marker): the consumer's position says it is past it.
                    self.close_passed(&mut open)?;
                    if !open.is_empty() && last_progress.elapsed() > self.timeout {
                        let ((topic, partition), end) = open.iter().next().expect("open");
                        bail!(
                            "reading {topic}/{partition}: no message from {} within {:?} (reading up to offset {end})",
                            self.kafka.brokers,
                            self.timeout
                        );
                    }
                    continue;
                }
            };
            last_progress = Instant::now();
            let key = (message.topic().to_string(), message.partition());
            let Some(&end) = open.get(&key) else {
                continue;
            };
            if message.offset() >= end {
                open.remove(&key);
                continue;
            }
            match visit(&message) {
                Step::Keep => kept.push(message.detach()),
                Step::Skip => {}
                Step::StopPartition => {
                    open.remove(&key);
                    continue;
                }
            }
            if message.offset() + 1 >= end {
                open.remove(&key);
            }
        }
        self.consumer.unassign()?;
        Ok(kept)
    }

    fn close_passed(&self, open: &mut BTreeMap<(String, i32), i64>) -> anyhow::Result<()> {
        let positions = self.consumer.position()?;
        for element in positions.elements() {
            let key = (element.topic().to_string(), element.partition());
            if let (Some(&end), Offset::Offset(position)) = (open.get(&key), element.offset())
                && position >= end
            {
                open.remove(&key);
            }
        }
        Ok(())
    }
}
