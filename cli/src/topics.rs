//! `chorus topics create|list|check`.

use anyhow::Context;
use chorus_platform::KafkaSettings;
use chorus_platform::topic_check::check_topics;
use chorus_platform::topics::{TopicCreation, TopicSpec, ensure_topics_with};
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::args::{CreateTopicsArgs, Global};

/// The replication factor and min.insync.replicas `create` uses (and
/// `check` expects): the flags' or the cluster's fit.
async fn spec(
    global: &Global,
    kafka: &KafkaSettings,
    args: &CreateTopicsArgs,
) -> anyhow::Result<TopicSpec> {
    Ok(TopicSpec::for_cluster(
        kafka,
        args.replication_factor,
        args.min_insync_replicas,
        global.timeout(),
    )
    .await?)
}

pub async fn create(global: &Global, args: &CreateTopicsArgs) -> anyhow::Result<()> {
    let catalogue = global.catalogue();
    let kafka = global.kafka()?;
    let spec = spec(global, &kafka, args).await?;
    let results = ensure_topics_with(&kafka, &catalogue, spec, global.timeout()).await?;
    for result in results {
        match result {
            TopicCreation::Created(name) => println!("created  {name}"),
            TopicCreation::AlreadyExisted(name) => println!("exists   {name}"),
        }
    }
    Ok(())
}

/// Exit 1 (an error) when any topic is missing or differs.
pub async fn check(global: &Global, args: &CreateTopicsArgs) -> anyhow::Result<()> {
    let catalogue = global.catalogue();
    let kafka = global.kafka()?;
    let spec = spec(global, &kafka, args).await?;
    let checks = check_topics(&kafka, &catalogue, spec, global.timeout()).await?;
    for check in &checks {
        println!("{check}");
    }
    let unfit = checks.iter().filter(|c| !c.fits()).count();
    anyhow::ensure!(
        unfit == 0,
        "{unfit} of {} topics do not fit the catalogue (partitions {}, replication factor {}{})",
        checks.len(),
        catalogue.partitions(),
        spec.replication_factor,
        spec.min_insync_replicas
            .map_or(String::new(), |n| format!(", min.insync.replicas {n}"))
    );
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
