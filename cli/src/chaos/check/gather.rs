//! Reading the facts: every table and topic the invariants speak of, whole.
//! Only reads; a database or topic that cannot be read is an error naming
//! it, never an invariant that silently holds.

use std::collections::BTreeMap;

use anyhow::Context;
use chorus_avro::{Codec, Event, Topic};
use rdkafka::message::{Message, OwnedMessage};
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgPool;

use super::facts::*;
use crate::args::{CheckArgs, Global};
use crate::chaos::poison::PoisonFile;
use crate::dlq::DeadLetter;
use crate::read_model::connect;
use crate::topic_reader::{Step, TopicReader};

pub async fn facts(global: &Global, args: &CheckArgs) -> anyhow::Result<Facts> {
    let timeout = global.timeout();
    let gateway = connect(&args.gateway_db, "gateway database", timeout).await?;
    let orders = connect(&args.order_db, "order database", timeout).await?;
    let inventory = connect(&args.inventory_db, "inventory database", timeout).await?;
    let payment = connect(&args.payment_db, "payment database", timeout).await?;
    let notification = connect(&args.notification_db, "notification database", timeout).await?;
    let (charges, void_marker) = charges(&payment).await?;
    let mut facts = Facts {
        accepted: accepted(&gateway).await?,
        orders: order_facts(&orders).await?,
        stock: stock(&inventory).await?,
        charges,
        void_marker,
        calls: calls(&payment).await?,
        deliveries: deliveries(&notification).await?,
        poison: match &args.poison {
            Some(path) => Some(PoisonFile::read(path)?.messages),
            None => None,
        },
        designed_from: args.designed_fates_from,
        ..Facts::default()
    };
    read_topics(global, &mut facts).await?;
    Ok(facts)
}

async fn accepted(pool: &PgPool) -> anyhow::Result<Vec<Accepted>> {
    let rows: Vec<(String, bool, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT order_id::text, published, created_at FROM accepted_orders")
            .fetch_all(pool)
            .await
            .context("reading accepted_orders")?;
    Ok(rows
        .into_iter()
        .map(|(order_id, published, created)| Accepted {
            order_id,
            published,
            created_at: created.timestamp_millis(),
        })
        .collect())
}

type OrderRow = (
    String,
    String,
    Option<String>,
    Option<Decimal>,
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
    Value,
    Value,
);

async fn order_facts(pool: &PgPool) -> anyhow::Result<Vec<OrderFact>> {
    let rows: Vec<OrderRow> = sqlx::query_as(
        "SELECT order_id, status, reason, total, created_at, updated_at, history, items FROM order_status",
    )
    .fetch_all(pool)
    .await
    .context("reading order_status")?;
    Ok(rows
        .into_iter()
        .map(
            |(order_id, status, reason, total, created, updated, history, items)| {
                let reserved = status == "CONFIRMED"
                    || history
                        .as_array()
                        .is_some_and(|h| h.iter().any(|step| step["status"] == "RESERVED"));
                let lines = items
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .filter_map(|i| {
                                Some((i["sku"].as_str()?.to_string(), i["quantity"].as_i64()?))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                OrderFact {
                    order_id,
                    status,
                    reason,
                    total,
                    created_at: created.timestamp_millis(),
                    updated_at: updated.timestamp_millis(),
                    reserved,
                    lines,
                }
            },
        )
        .collect())
}

async fn stock(pool: &PgPool) -> anyhow::Result<Vec<StockFact>> {
    let rows: Vec<(String, i32, i32, i32)> =
        sqlx::query_as("SELECT sku, available, reserved, sold FROM stock_levels")
            .fetch_all(pool)
            .await
            .context("reading stock_levels")?;
    Ok(rows
        .into_iter()
        .map(|(sku, available, reserved, sold)| StockFact {
            sku,
            available: available.into(),
            reserved: reserved.into(),
            sold: sold.into(),
        })
        .collect())
}

/// The sandbox's charges, and whether it marks voided ones (`voided_at`).
async fn charges(pool: &PgPool) -> anyhow::Result<(Vec<ChargeFact>, bool)> {
    let void_marker: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT FROM information_schema.columns
                        WHERE table_name = 'sandbox_charges' AND column_name = 'voided_at')",
    )
    .fetch_one(pool)
    .await
    .context("reading the columns of sandbox_charges")?;
    let sql = if void_marker {
        "SELECT idempotency_key, amount, voided_at IS NOT NULL FROM sandbox_charges"
    } else {
        "SELECT idempotency_key, amount, false FROM sandbox_charges"
    };
    let rows: Vec<(String, Decimal, bool)> = sqlx::query_as(sql)
        .fetch_all(pool)
        .await
        .context("reading sandbox_charges")?;
    let charges = rows
        .into_iter()
        .map(|(order_id, amount, voided)| ChargeFact {
            order_id,
            amount,
            voided,
        })
        .collect();
    Ok((charges, void_marker))
}

/// The sandbox's own log of the calls it received, in the order they came.
async fn calls(pool: &PgPool) -> anyhow::Result<Vec<CallFact>> {
    let rows: Vec<(String, String, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT idempotency_key, kind, at FROM sandbox_calls ORDER BY id")
            .fetch_all(pool)
            .await
            .context("reading sandbox_calls")?;
    rows.into_iter()
        .map(|(key, kind, at)| {
            let kind = match kind.as_str() {
                "authorize" => CallKind::Authorize,
                "void" => CallKind::Void,
                other => anyhow::bail!("sandbox_calls: a call of unknown kind {other:?}"),
            };
            Ok(CallFact {
                key,
                kind,
                at: at.timestamp_millis(),
            })
        })
        .collect()
}

/// Read as JSON rows: older tables lack the `status` column (every row delivered).
async fn deliveries(pool: &PgPool) -> anyhow::Result<Vec<DeliveryFact>> {
    let rows: Vec<Value> = sqlx::query_scalar(
        "SELECT jsonb_build_object('order_id', d.order_id, 'final_status', d.final_status,
                                   'channel', d.channel, 'status', to_jsonb(d) -> 'status')
         FROM deliveries AS d",
    )
    .fetch_all(pool)
    .await
    .context("reading deliveries")?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let text = |name: &str| row[name].as_str().unwrap_or_default().to_string();
            DeliveryFact {
                order_id: text("order_id"),
                final_status: text("final_status"),
                channel: text("channel"),
                status: row["status"].as_str().unwrap_or("delivered").to_string(),
            }
        })
        .collect())
}

/// The adjustments, the NotificationSent events and every dead letter.
async fn read_topics(global: &Global, facts: &mut Facts) -> anyhow::Result<()> {
    let catalogue = global.catalogue();
    let reader = TopicReader::new(&global.kafka()?, global.timeout())?;
    let codec = Codec::new(&global.codec_config(false)?, catalogue.clone())?;
    let commands = catalogue.name(Topic::InventoryCommands);
    let mut last: BTreeMap<String, (i64, i64, Adjustment)> = BTreeMap::new();
    for message in read_whole(&reader, &commands).await? {
        if let Ok(Event::StockAdjusted(a)) = codec.decode(message.payload()).await
            && a.available >= 0
            && a.unit_price >= Decimal::ZERO
            && !a.sku.trim().is_empty()
        {
            let at = message.timestamp().to_millis().unwrap_or_default();
            let place = (at, message.offset());
            let adjustment = Adjustment {
                available: a.available.into(),
                at,
            };
            if last.get(&a.sku).is_none_or(|(t, o, _)| (*t, *o) < place) {
                last.insert(a.sku, (place.0, place.1, adjustment));
            }
        }
    }
    facts.adjustments = last.into_iter().map(|(sku, (_, _, a))| (sku, a)).collect();

    for message in read_whole(&reader, &catalogue.name(Topic::Notifications)).await? {
        if let Ok(Event::NotificationSent(sent)) = codec.decode(message.payload()).await {
            facts.sent.push(SentFact {
                order_id: sent.order_id,
                final_status: sent.final_status,
                channel: sent.channel,
                event_id: sent.event_id,
            });
        }
    }
    for &topic in Topic::ALL {
        let name = catalogue.dead_letter(topic);
        for message in read_whole(&reader, &name).await? {
            let letter = DeadLetter::of(&message);
            let original = match (
                letter.original_topic,
                letter.original_partition,
                letter.original_offset,
            ) {
                (Some(t), Some(p), Some(o)) => Some((t, p, o)),
                _ => None,
            };
            facts.dead_letters.push(DeadLetterFact {
                topic: name.clone(),
                key: letter.key,
                valid_event: codec.decode(message.payload()).await.is_ok(),
                original,
            });
        }
    }
    Ok(())
}

/// Every message of `topic` now (none when the topic does not exist).
async fn read_whole(reader: &TopicReader, topic: &str) -> anyhow::Result<Vec<OwnedMessage>> {
    let partitions = reader.partitions_of(&[topic.to_string()]).await?;
    let mut stretches = Vec::new();
    for partition in partitions.get(topic).into_iter().flatten() {
        stretches.push(reader.whole(topic, *partition)?);
    }
    reader
        .read(&stretches, |_| Step::Keep)
        .await
        .with_context(|| format!("reading {topic}"))
}
