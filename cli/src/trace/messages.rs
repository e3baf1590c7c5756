//! Finding one order's messages without reading whole topics: every producer
//! uses librdkafka's default partitioner (CRC-32 of the key modulo the
//! partition count), so in each topic only the partition the order id
//! hashes to can hold them, and only from shortly before the order was
//! created (`offsets_for_times`) to shortly after its last activity.

use anyhow::Context;
use chrono::{DateTime, Utc};
use rdkafka::message::{Message, OwnedMessage};
use serde::Serialize;

use crate::topic_reader::{Step, Stretch, TopicReader};

/// The partition librdkafka's `consistent_random` partitioner gives `key`.
pub fn key_partition(key: &[u8], partitions: usize) -> i32 {
    const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    (CRC32.checksum(key) as usize % partitions.max(1)) as i32
}

/// Which part of the topics a trace reads.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// Read from the first message at or after this time.
    pub from: DateTime<Utc>,
    /// Stop a partition at its first message after this time (None: at its end).
    pub until: Option<DateTime<Utc>>,
    /// Every partition rather than the one the key hashes to.
    pub all_partitions: bool,
}

/// What the read covered.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Scanned {
    pub partitions: usize,
    pub messages: u64,
}

/// The messages keyed `order_id` in `topics` within `window`, as read (by
/// topic, partition, offset).
pub async fn order_messages(
    reader: &TopicReader,
    topics: &[String],
    order_id: &str,
    window: &Window,
) -> anyhow::Result<(Vec<OwnedMessage>, Scanned)> {
    let mut chosen = Vec::new();
    for (topic, partitions) in reader.partitions_of(topics).await? {
        if window.all_partitions {
            chosen.extend(partitions.iter().map(|&p| (topic.clone(), p)));
        } else {
            let mut ids = partitions.clone();
            ids.sort_unstable();
            let index = key_partition(order_id.as_bytes(), ids.len());
            chosen.push((topic, ids[index as usize]));
        }
    }
    let starts = reader.offsets_after(&chosen, window.from.timestamp_millis().max(0))?;
    let mut stretches = Vec::new();
    for (topic, partition) in &chosen {
        let (_, end) = reader.watermarks(topic, *partition)?;
        // No message at or after `from`: nothing of the order can be there.
        if let Some(&start) = starts.get(&(topic.clone(), *partition)) {
            stretches.push(Stretch {
                topic: topic.clone(),
                partition: *partition,
                start,
                end,
            });
        }
    }
    let until = window.until.map(|u| u.timestamp_millis());
    let mut scanned = Scanned {
        partitions: stretches.len(),
        messages: 0,
    };
    let key = order_id.as_bytes();
    let messages = reader
        .read(&stretches, |message| {
            scanned.messages += 1;
            match (until, message.timestamp().to_millis()) {
                (Some(until), Some(at)) if at > until => Step::StopPartition,
                _ if message.key() == Some(key) => Step::Keep,
                _ => Step::Skip,
            }
        })
        .await
        .with_context(|| format!("reading the messages of order {order_id}"))?;
    Ok((messages, scanned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partition_is_the_crc32_of_the_key_modulo_the_count() {
        // CRC-32 (IEEE) check value of "123456789" is 0xCBF43926.
        assert_eq!(key_partition(b"123456789", 6), (0xCBF4_3926u32 % 6) as i32);
        assert_eq!(key_partition(b"anything", 1), 0);
    }

    /// The in-process mock broker inside librdkafka partitions exactly as a
    /// producer talking to the real one does: the client picks the partition.
    #[tokio::test]
    async fn it_agrees_with_librdkafkas_default_partitioner() {
        use rdkafka::ClientConfig;
        use rdkafka::mocking::MockCluster;
        use rdkafka::producer::{FutureProducer, FutureRecord};

        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic("keyed", 6, 1).unwrap();
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .create()
            .unwrap();
        for n in 0..200 {
            let key = format!("{}", uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, &[n]));
            let delivery = producer
                .send(
                    FutureRecord::to("keyed").key(&key).payload("x"),
                    std::time::Duration::from_secs(10),
                )
                .await
                .unwrap();
            assert_eq!(
                delivery.partition,
                key_partition(key.as_bytes(), 6),
                "{key}"
            );
        }
    }
}
