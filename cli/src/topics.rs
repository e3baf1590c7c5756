//! `chorus topics create|list`.

use anyhow::Context;
use chorus_platform::topics::{TopicCreation, ensure_topics};
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::args::{CreateTopicsArgs, Global};

pub async fn create(global: &Global, args: &CreateTopicsArgs) -> anyhow::Result<()> {
    let catalogue = global.catalogue();
    let results = ensure_topics(
        &global.kafka()?,
        &catalogue,
        args.replication_factor,
        global.timeout(),
    )
    .await?;
    for result in results {
        match result {
            TopicCreation::Created(name) => println!("created  {name}"),
            TopicCreation::AlreadyExisted(name) => println!("exists   {name}"),
        }
    }
    Ok(())
}

pub async fn list(global: &Global) -> anyhow::Result<()> {
    let kafka = global.kafka()?;
    let metadata = kafka.fetch_metadata(None, global.timeout()).await?;
    let timeout = global.timeout();
    let catalogue = global.catalogue();
    let wanted = catalogue.all_names();
    let partitions: Vec<(String, Vec<i32>)> = wanted
        .iter()
        .map(|name| {
            let found = metadata.topics().iter().find(|t| t.name() == name);
            let ids = found
                .map(|t| t.partitions().iter().map(|p| p.id()).collect())
                .unwrap_or_default();
            (name.clone(), ids)
        })
        .collect();
    let rows = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let consumer: BaseConsumer = kafka.client_config().create()?;
        let mut rows = Vec::new();
        for (name, ids) in partitions {
            if ids.is_empty() {
                rows.push(format!("{name:<40} {:>10} {:>10}", "missing", "-"));
                continue;
            }
            let mut messages = 0;
            for id in &ids {
                let (low, high) = consumer
                    .fetch_watermarks(&name, *id, timeout)
                    .with_context(|| {
                        format!("reading offsets of {name}/{id} from {}", kafka.brokers)
                    })?;
                messages += high - low;
            }
            rows.push(format!("{name:<40} {:>10} {messages:>10}", ids.len()));
        }
        Ok(rows)
    })
    .await??;
    println!("{:<40} {:>10} {:>10}", "TOPIC", "PARTITIONS", "MESSAGES");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}
