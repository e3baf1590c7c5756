//! A deploy cancels no order: while orders flow, each service is stopped and
//! started again (a rolling restart, SIGTERM) or each worker crashes and is
//! restarted at once (SIGKILL), every replica under its stable instance id
//! and health port as a deployment runs it. Every order still ends with the
//! fate its input designed, final within 20 s of being placed by its own
//! status history, and the payment provider's own books show exactly one
//! standing authorization per confirmed order and none for a cancelled one.

use std::time::Duration;

use chorus_tests::designed::Stop;
use chorus_tests::placer::{Flowing, Refused};
use chorus_tests::saga::Saga;
use chrono::Utc;

/// Four orders a second.
const EVERY: Duration = Duration::from_millis(250);
/// Orders flow this long before the first restart, between two and after the last.
const BETWEEN: Duration = Duration::from_secs(6);
/// Every order final within this long of being placed, restart or not.
const FINAL_WITHIN: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stopped {
    /// SIGTERM, waited for a clean exit.
    Term,
    /// SIGKILL: no flush, no commit, no goodbye to the group.
    Kill,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_load_ends_every_order_as_designed() {
    let services = ["order", "inventory", "payment", "notification", "gateway"];
    orders_through_restarts(&services, Stopped::Term).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_crashing_and_restarted_at_once_ends_every_order_as_designed() {
    let services = ["order", "inventory", "payment", "notification"];
    orders_through_restarts(&services, Stopped::Kill).await;
}

async fn orders_through_restarts(services: &[&'static str], how: Stopped) {
    let mut saga = Saga::start().await;
    let flow = Flowing::start(&saga, EVERY, Refused::AskAgain).await;
    let mut payment_stops: Vec<Stop> = Vec::new();
    for &service in services {
        tokio::time::sleep(BETWEEN).await;
        let stopping = Utc::now();
        match how {
            Stopped::Term => {
                let status = tokio::task::block_in_place(|| saga.terminate(service));
                assert!(
                    status.success(),
                    "{service} exited with {status} on SIGTERM:\n{}",
                    saga.log(service)
                );
            }
            Stopped::Kill => saga.kill(service),
        }
        saga.spawn(service);
        saga.wait_ready(service).await;
        eprintln!(
            "{service} stopped ({}) and ready again in {:.1} s",
            if how == Stopped::Term {
                "SIGTERM"
            } else {
                "SIGKILL"
            },
            (Utc::now() - stopping).as_seconds_f64()
        );
        if service == "payment" {
            payment_stops.push((stopping, Utc::now()));
        }
    }
    tokio::time::sleep(BETWEEN).await;
    let skus = flow.skus.clone();
    let orders = flow.stop().await.placed;
    skus.assert_ended_as_designed(&saga, &orders, &payment_stops, FINAL_WITHIN)
        .await;
}
