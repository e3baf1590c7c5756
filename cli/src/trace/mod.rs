//! `chorus trace <order_id>`: one order's whole saga — every message keyed
//! by the order on every chorus topic and dead-letter topic, its status and
//! history from the read model, its notifications, and what it waits for.
//! Reads only the partition each topic keeps the order in, and only around
//! the order's lifetime, so it answers quickly among many orders.

mod messages;
mod report;
mod timeline;

use std::time::Duration;

use anyhow::bail;
use chorus_avro::Codec;
use chrono::{DateTime, Utc};

use crate::args::{Global, TraceArgs};
use crate::read_model::{self, Delivery, OrderView};
use crate::saga_steps::{is_final, waiting_for};
use crate::topic_reader::TopicReader;
use messages::Window;
use report::{Trace, Waiting};

pub async fn trace(global: &Global, args: &TraceArgs) -> anyhow::Result<()> {
    let orders =
        read_model::connect(&args.order_db.url, "order read model", global.timeout()).await?;
    let Some(order) = read_model::order(&orders, &args.order_id).await? else {
        bail!(
            "order {} is unknown: the order read model (order_status at {}) has no such order",
            args.order_id,
            chorus_platform::redact(&args.order_db.url)
        );
    };
    let (deliveries, deliveries_error) = match deliveries(global, args).await {
        Ok(found) => (Some(found), None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };

    let window = window(&order, deliveries.as_deref().unwrap_or_default(), args);
    let reader = TopicReader::new(&global.kafka()?, global.timeout())?;
    let (messages, scanned) = messages::order_messages(
        &reader,
        &global.catalogue().all_names(),
        &args.order_id,
        &window,
    )
    .await?;
    let codec = Codec::new(&global.codec_config(false)?, global.catalogue())?;
    let timeline = timeline::arrange(timeline::decode(&codec, &messages).await);

    let waiting = waiting_for(&order.status).map(|step| Waiting {
        step,
        since: order.last_event_at.unwrap_or(order.updated_at),
    });
    let trace = Trace {
        order,
        timeline,
        deliveries,
        deliveries_error,
        waiting,
        window,
        scanned,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&trace)?);
    } else {
        print!("{}", report::text(&trace, Utc::now()));
    }
    Ok(())
}

async fn deliveries(global: &Global, args: &TraceArgs) -> anyhow::Result<Vec<Delivery>> {
    let pool = read_model::connect(
        &args.notification_db.url,
        "notification database",
        global.timeout(),
    )
    .await?;
    read_model::deliveries(&pool, &args.order_id).await
}

/// From `--before` the order's creation to `--after` its last recorded
/// activity; a saga that has not ended is read to the end of each partition.
fn window(order: &OrderView, deliveries: &[Delivery], args: &TraceArgs) -> Window {
    let last_activity: DateTime<Utc> = [Some(order.updated_at), order.last_event_at]
        .into_iter()
        .flatten()
        .chain(deliveries.iter().filter_map(|d| d.delivered_at))
        .max()
        .unwrap_or(order.updated_at);
    let span = |d: Duration| chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX);
    Window {
        from: order
            .created_at
            .checked_sub_signed(span(args.before))
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
        until: is_final(&order.status).then(|| {
            last_activity
                .checked_add_signed(span(args.after))
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
        }),
        all_partitions: args.all_partitions,
    }
}
