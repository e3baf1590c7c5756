//! A steady flow of orders whose fate is designed before they are placed
//! (see `designed`), for tests that break something while orders flow.

use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::designed::{self, Design, Placed, Stop};
use crate::saga::{Saga, order_body, sku};
use crate::storefront::Storefront;

/// Stock of the SKU payable and declined orders buy (never runs out).
pub const PLENTY: i64 = 100_000;
/// Stock of the SKU out-of-stock orders ask `SCARCE + 1` of.
pub const SCARCE: i64 = 5;

/// A flow of orders on two fresh SKUs, running until [`Flowing::stop`].
pub struct Flowing {
    pub skus: Skus,
    flowing: CancellationToken,
    placer: JoinHandle<Flow>,
}

impl Flowing {
    /// Stocks a plentiful and a scarce SKU and places an order every `every`.
    pub async fn start(saga: &Saga, every: Duration, refused: Refused) -> Flowing {
        let skus = Skus {
            plenty: sku("PLENTY"),
            scarce: sku("SCARCE"),
            scarce_stock: SCARCE,
        };
        saga.set_stock(&skus.plenty, PLENTY, "4.00").await;
        saga.set_stock(&skus.scarce, SCARCE, "9.00").await;
        let flowing = CancellationToken::new();
        let placer = tokio::spawn(place_until(
            saga.storefront(),
            skus.clone(),
            every,
            flowing.clone(),
            refused,
        ));
        Flowing {
            skus,
            flowing,
            placer,
        }
    }

    /// Stops placing; what was placed and refused, once every order is answered.
    pub async fn stop(self) -> Flow {
        self.flowing.cancel();
        self.placer.await.expect("the order placer")
    }
}

/// What the flow does when the gateway does not accept an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Ask again with the same Idempotency-Key, as a storefront would (a
    /// restart of the gateway is expected).
    AskAgain,
    /// Count it and move on: the test promises that nothing is refused.
    Record,
}

/// The SKUs the flow buys: one that never runs out, and one holding
/// `scarce_stock`, of which out-of-stock orders ask one more.
#[derive(Debug, Clone)]
pub struct Skus {
    pub plenty: String,
    pub scarce: String,
    pub scarce_stock: i64,
}

impl Skus {
    /// Every order ends as designed, final within `final_within` of being
    /// placed (`payment_stops`: see [`designed::check`]), and the stock sold
    /// is exactly what was confirmed, nothing left reserved.
    pub async fn assert_ended_as_designed(
        &self,
        saga: &Saga,
        orders: &[Placed],
        payment_stops: &[Stop],
        final_within: Duration,
    ) {
        // Past the default deadline (60 s): an order a fault stalled ends, as
        // `timeout`, and shows here as the wrong fate.
        designed::wait_final(saga, orders, Duration::from_secs(90)).await;
        designed::check(saga, orders, payment_stops, Some(final_within))
            .await
            .assert_as_designed();
        let confirmed = orders
            .iter()
            .filter(|o| o.design == Design::Payable)
            .count() as i32;
        assert_eq!(
            saga.settled_stock(&self.plenty).await,
            (PLENTY as i32 - confirmed, 0, confirmed)
        );
        assert_eq!(
            saga.settled_stock(&self.scarce).await,
            (SCARCE as i32, 0, 0)
        );
    }
}

/// What the flow placed, and what the gateway refused (`Refused::Record`).
#[derive(Debug, Default)]
pub struct Flow {
    pub placed: Vec<Placed>,
    /// One line per refusal: the status (or the transport error) and the body.
    pub refused: Vec<String>,
}

/// Places an order every `every`, each from a task of its own (a slow answer
/// holds that order back, not the flow), until `flowing` is cancelled; returns
/// once each has been answered. One in five declines at the provider, one in
/// five asks for more than there is.
pub async fn place_until(
    shop: Storefront,
    skus: Skus,
    every: Duration,
    flowing: CancellationToken,
    refused: Refused,
) -> Flow {
    let mut tasks = Vec::new();
    let mut tick = tokio::time::interval(every);
    for i in 0.. {
        tokio::select! {
            _ = flowing.cancelled() => break,
            _ = tick.tick() => {}
        }
        let design = match i % 5 {
            1 => Design::Declined,
            3 => Design::OutOfStock,
            _ => Design::Payable,
        };
        let (sku, quantity) = match design {
            Design::OutOfStock => (skus.scarce.clone(), skus.scarce_stock + 1),
            _ => (skus.plenty.clone(), 1),
        };
        let shop = shop.clone();
        tasks.push(tokio::spawn(async move {
            let customer = format!("shopper-{}", i % 25);
            let placed_at = Utc::now();
            let order_id = match refused {
                Refused::AskAgain => {
                    shop.place_ok(&customer, &[(&sku, quantity)], design.token())
                        .await
                }
                Refused::Record => {
                    let body = order_body(&[(&sku, quantity)], design.token());
                    let key = uuid::Uuid::new_v4().to_string();
                    match shop.try_place(&customer, &key, &body).await {
                        Ok((202, answer)) if answer["order_id"].is_string() => {
                            answer["order_id"].as_str().unwrap().to_string()
                        }
                        Ok((status, answer)) => return Err(format!("{status} {answer}")),
                        Err(e) => return Err(format!("no answer: {e}")),
                    }
                }
            };
            Ok(Placed {
                customer,
                order_id,
                design,
                placed_at,
            })
        }));
    }
    let mut flow = Flow::default();
    for task in tasks {
        match task.await.expect("placing an order") {
            Ok(placed) => flow.placed.push(placed),
            Err(refusal) => flow.refused.push(refusal),
        }
    }
    flow
}
