//! A worker pointed at a wrong schema-registry URL (the right host, a wrong
//! path: every answer is a 404) waits instead of dead-lettering good
//! traffic as unknown schemas, says it is not ready, and applies every
//! message once it is started again with the right URL.

use std::time::Duration;

use chorus_avro::Event;
use chorus_tests::Stack;

use crate::runtime_loop::{
    Worker, applied, command, database, encoded, metric, send, until_applied,
};

/// The stack's registry host with a path no registry answers under.
fn wrong_prefix(registry: &str) -> String {
    let mut url = url::Url::parse(registry).unwrap();
    url.set_path("/wrong/prefix");
    url.to_string().trim_end_matches('/').to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_answering_404_for_everything_pauses_the_worker_and_loses_nothing() {
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    let db = database().await;
    let wrong = wrong_prefix(&stack.registry);
    let worker = Worker::start(
        &stack,
        &topics,
        db.clone(),
        &[("CHORUS_SCHEMA_REGISTRY_URL", wrong.as_str())],
    )
    .await;
    let events: Vec<Event> = (0..5).map(|i| command(&format!("M-{i}"), "ok")).collect();
    send(&stack, &topics, 0, encoded(&stack, &topics, &events).await).await;

    // Retried again and again (CHORUS_MAX_ATTEMPTS=3 would have exhausted
    // an unknown failure by now), never dead-lettered.
    let mut text = String::new();
    for _ in 0..300 {
        text = worker.metrics().await;
        if metric(&text, "chorus_messages_retried_total", &[]).unwrap_or(0.0) >= 20.0
            || metric(&text, "chorus_messages_dead_lettered_total", &[]).is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        metric(&text, "chorus_messages_dead_lettered_total", &[]),
        None,
        "nothing dead-lettered: {text}"
    );
    assert!(
        metric(&text, "chorus_messages_retried_total", &[]).unwrap_or(0.0) >= 20.0,
        "{text}"
    );
    assert!(applied(&db).await.is_empty());
    let readyz = reqwest::get(format!("http://{}/readyz", worker.http))
        .await
        .unwrap();
    assert_eq!(readyz.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let answer: serde_json::Value = readyz.json().await.unwrap();
    assert_eq!(
        answer["checks"]["schema_registry"], "unavailable",
        "{answer}"
    );
    worker.stop().await;

    // Started again with the right URL (its default, the stack's): every
    // message is applied, in order, and still nothing is dead-lettered.
    let worker = Worker::start(&stack, &topics, db.clone(), &[]).await;
    let rows = until_applied(&db, |rows| rows.len() == 5).await;
    let skus: Vec<&str> = rows.iter().map(|(sku, _)| sku.as_str()).collect();
    assert_eq!(skus, ["M-0", "M-1", "M-2", "M-3", "M-4"]);
    let text = worker.metrics().await;
    assert_eq!(
        metric(&text, "chorus_messages_dead_lettered_total", &[]),
        None,
        "nothing dead-lettered: {text}"
    );
    worker.stop().await;
}
