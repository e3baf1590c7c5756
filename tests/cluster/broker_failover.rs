//! A broker dies, nothing is refused or lost: while orders flow, the broker
//! leading partition 0 of the orders topic is killed (SIGKILL) and started
//! again later. Every POST is accepted (no 503, no lost answer), every
//! order ends with the fate its input designed, the provider's books show
//! one standing authorization per confirmed order, and the stock sold is
//! exactly what was confirmed.

use std::time::Duration;

use chorus_tests::designed::{self, Design};
use chorus_tests::placer::{Refused, Skus, place_until};
use chorus_tests::saga::{Saga, sku};
use chorus_tests::{StackBroker, describe};
use tokio_util::sync::CancellationToken;

/// Ten orders a second.
const EVERY: Duration = Duration::from_millis(100);
/// Orders flow this long before the kill, while the broker is down, and after it is back.
const BEFORE: Duration = Duration::from_secs(5);
const DOWN: Duration = Duration::from_secs(12);
const AFTER: Duration = Duration::from_secs(5);
/// Every order final within this long of being placed, broker kill or not.
const FINAL_WITHIN: Duration = Duration::from_secs(30);
const PLENTY: i64 = 100_000;
const SCARCE: i64 = 5;

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

    let plenty = sku("PLENTY");
    let scarce = sku("SCARCE");
    saga.set_stock(&plenty, PLENTY, "4.00").await;
    saga.set_stock(&scarce, SCARCE, "9.00").await;
    let flowing = CancellationToken::new();
    let skus = Skus {
        plenty: plenty.clone(),
        scarce: scarce.clone(),
        scarce_stock: SCARCE,
    };
    let placer = tokio::spawn(place_until(
        saga.storefront(),
        skus,
        EVERY,
        flowing.clone(),
        Refused::Record,
    ));

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
    flowing.cancel();
    let flow = placer.await.expect("the order placer");

    assert!(
        flow.refused.is_empty(),
        "{} of {} orders refused while a broker was down:\n{}",
        flow.refused.len(),
        flow.refused.len() + flow.placed.len(),
        flow.refused.join("\n")
    );
    let orders = flow.placed;
    designed::wait_final(&saga, &orders, Duration::from_secs(90)).await;
    designed::check(&saga, &orders, &[], Some(FINAL_WITHIN))
        .await
        .assert_as_designed();
    let confirmed = orders
        .iter()
        .filter(|o| o.design == Design::Payable)
        .count() as i32;
    assert_eq!(
        saga.settled_stock(&plenty).await,
        (PLENTY as i32 - confirmed, 0, confirmed)
    );
    assert_eq!(saga.settled_stock(&scarce).await, (SCARCE as i32, 0, 0));
}
