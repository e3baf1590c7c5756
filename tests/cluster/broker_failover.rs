//! A broker dies, nothing is refused or lost: while orders flow, the broker
//! leading partition 0 of the orders topic is killed (SIGKILL) and started
//! again later. Every POST is accepted (no 503, no lost answer), every
//! order ends with the fate its input designed, the provider's books show
//! one standing authorization per confirmed order, and the stock sold is
//! exactly what was confirmed.

use std::time::Duration;

use chorus_tests::placer::{Flowing, Refused};
use chorus_tests::saga::Saga;
use chorus_tests::{StackBroker, describe};

/// Ten orders a second.
const EVERY: Duration = Duration::from_millis(100);
/// Orders flow this long before the kill, while the broker is down, and after it is back.
const BEFORE: Duration = Duration::from_secs(5);
const DOWN: Duration = Duration::from_secs(12);
const AFTER: Duration = Duration::from_secs(5);
/// Every order final within this long of being placed, broker kill or not.
const FINAL_WITHIN: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_of_the_orders_topic_refuses_and_loses_no_order() {
    let saga = Saga::start().await;
    let orders_topic = saga.topics.name(chorus_avro::Topic::Orders);
    let brokers = saga.stack.brokers_in_cluster().await;
    assert!(
        brokers >= 3,
        "this test needs a Kafka cluster of three brokers, the stack has {brokers}: \
         `CHORUS_STACK_BROKERS=3 make up` (make test starts one)"
    );
    let (leader, replicas) = saga.stack.leader_of(&orders_topic, 0).await;
    assert_eq!(replicas, 3, "{orders_topic} must be replicated three times");

    let flow = Flowing::start(&saga, EVERY, Refused::Record).await;

    tokio::time::sleep(BEFORE).await;
    // Started again when the test ends, whatever happens before.
    let broker = StackBroker::kill(leader);
    eprintln!("killed broker {leader}, the leader of {orders_topic}/0");
    tokio::time::sleep(DOWN).await;
    let (new_leader, _) = saga.stack.leader_of(&orders_topic, 0).await;
    assert_ne!(
        new_leader, leader,
        "no other broker took over {orders_topic}/0"
    );
    let restart = tokio::task::spawn_blocking(move || broker.start())
        .await
        .unwrap();
    assert!(restart.status.success(), "{}", describe(&restart));
    eprintln!("broker {leader} is back");
    tokio::time::sleep(AFTER).await;
    let skus = flow.skus.clone();
    let flow = flow.stop().await;

    assert!(
        flow.refused.is_empty(),
        "{} of {} orders refused while a broker was down:\n{}",
        flow.refused.len(),
        flow.refused.len() + flow.placed.len(),
        flow.refused.join("\n")
    );
    skus.assert_ended_as_designed(&saga, &flow.placed, &[], FINAL_WITHIN)
        .await;
}
