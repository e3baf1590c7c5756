//! A deploy cancels no order: while orders flow, each service is stopped and
//! started again (a rolling restart, SIGTERM) or each worker crashes and is
//! restarted at once (SIGKILL), every replica under its stable instance id
//! and health port as a deployment runs it. Every order still ends with the
//! fate its input designed, final within 20 s of being placed by its own
//! status history, and the payment provider's own books show exactly one
//! standing authorization per confirmed order and none for a cancelled one.

use std::time::Duration;

use chorus_tests::designed::{self, Design, Stop};
use chorus_tests::placer::{Refused, Skus, place_until};
use chorus_tests::saga::{Saga, sku};
use chrono::Utc;
use tokio_util::sync::CancellationToken;

/// Four orders a second.
const EVERY: Duration = Duration::from_millis(250);
/// Orders flow this long before the first restart, between two and after the last.
const BETWEEN: Duration = Duration::from_secs(6);
/// Every order final within this long of being placed, restart or not.
const FINAL_WITHIN: Duration = Duration::from_secs(20);
/// Stock of the SKU payable and declined orders buy (never runs out).
const PLENTY: i64 = 100_000;
/// Stock of the SKU out-of-stock orders ask `SCARCE + 1` of.
const SCARCE: i64 = 5;

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
        Refused::AskAgain,
    ));
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
    flowing.cancel();
    let orders = placer.await.expect("the order placer").placed;

    // Past the default deadline (60 s): an order a restart stalled ends, as
    // `timeout`, and shows here as the wrong fate.
    designed::wait_final(&saga, &orders, Duration::from_secs(90)).await;
    designed::check(&saga, &orders, &payment_stops, Some(FINAL_WITHIN))
        .await
        .assert_as_designed();

    // Stock conserved: sold exactly what was confirmed, nothing left reserved.
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
