//! A worker whose Kafka consumer fails fatally never stalls with its
//! partitions. It replaces the consumer (a static member fenced once, when its
//! session ended while the group's coordinator moved, takes its partitions
//! back), and fenced again and again it stops, loudly: two replicas given
//! the same instance id (a misconfiguration the README warns of) fence each
//! other until the first gives up, naming the likely cause.

use std::time::Duration;

use chorus_platform::testing::TestDb;
use chorus_tests::{Stack, describe, exit_within, run, spawn_worker};

#[tokio::test]
async fn a_worker_fenced_by_a_replica_with_its_instance_id_stops_naming_why() {
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    let applied = run(stack.chorus(&topics).args(["acls", "apply"]));
    assert!(applied.status.success(), "{}", describe(&applied));
    let db = TestDb::create(&[]).await;
    let mut env = stack.service_kafka_env("order");
    env.extend([
        ("CHORUS_INSTANCE_ID".to_string(), "twin".to_string()),
        // Heartbeats every 2 s: the fenced replica learns of it soon.
        (
            "CHORUS_KAFKA_SESSION_TIMEOUT_MS".to_string(),
            "6000".to_string(),
        ),
    ]);

    let (first, first_log) = spawn_worker(&stack, "order", "order-first", &topics, &db.url, &env);
    let read = |log: &std::path::Path| std::fs::read_to_string(log).unwrap_or_default();
    for _ in 0..600 {
        if read(&first_log).contains("partitions assigned") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        read(&first_log).contains("partitions assigned"),
        "the first replica never got its partitions:\n{}",
        read(&first_log)
    );

    let (mut second, _) = spawn_worker(&stack, "order", "order-second", &topics, &db.url, &env);
    let status = tokio::task::spawn_blocking(move || exit_within(first, 60))
        .await
        .unwrap();
    let _ = second.kill();
    let _ = second.wait();
    let log = read(&first_log);
    let status = status.unwrap_or_else(|| {
        panic!("the fenced replica still runs a minute after its twin started:\n{log}")
    });
    assert!(!status.success(), "the fenced replica exited 0:\n{log}");
    assert!(
        log.contains("Kafka's consumer failed fatally; replacing it")
            && log.contains("another replica running with this CHORUS_INSTANCE_ID")
            && log.contains("FencedInstanceId"),
        "the fenced replica does not say why it stopped:\n{log}"
    );
}
