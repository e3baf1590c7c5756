//! What following an order costs the databases the gateway reads: a
//! storefront that long-polls each order from its 202 to its final status
//! (`?wait=&seen=`, as `chorus load` does) is answered from the shared
//! poller's reads, not from reads of each GET's own, and another customer's
//! long-poll on an order the gateway just accepted is 404 at once. Counted
//! with `pg_stat_statements` in this deployment's own databases (the stack
//! preloads it), so other tests running at the same time do not count.

use std::time::{Duration, Instant};

use chorus_platform::testing::DEFAULT_ADMIN_URL;
use chorus_tests::saga::{Saga, sku};
use sqlx::{Connection, PgConnection};

/// Orders followed one after another.
const ORDERS: u32 = 12;
const FINAL_WITHIN: Duration = Duration::from_secs(60);
/// The poller's shortest tick (the gateway's `status_watch::MIN_INTERVAL`).
const MIN_TICK: Duration = Duration::from_millis(5);

/// Read statements in the deployment's order and gateway databases.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Reads {
    /// Reads of a GET's own: `order_status` by id, `accepted_orders` by id.
    direct: i64,
    /// The shared poller's one query per tick.
    poller: i64,
    /// `pg_stat_statements_info.dealloc`: when it moves, entries were evicted
    /// and the counts of the interval are not to be trusted.
    dealloc: i64,
}

struct ReadCounter {
    conn: PgConnection,
    order_db: String,
    gateway_db: String,
}

impl ReadCounter {
    async fn connect(saga: &Saga) -> ReadCounter {
        let url =
            std::env::var("CHORUS_TEST_PG_ADMIN_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.into());
        let conn = PgConnection::connect(&url)
            .await
            .expect("connecting to PostgreSQL's admin database");
        let name = |service: &str| {
            let url = saga.db_url(service);
            url.rsplit_once('/').expect("a database URL").1.to_string()
        };
        ReadCounter {
            conn,
            order_db: name("order"),
            gateway_db: name("gateway"),
        }
    }

    async fn reads(&mut self) -> Reads {
        // Readiness probes (`LIMIT 0`) and the batcher's lookup of conflicting
        // keys are not reads of an order's status.
        let (direct, poller, dealloc): (i64, i64, i64) = sqlx::query_as(
            "SELECT \
               COALESCE(sum(s.calls) FILTER (WHERE s.query NOT LIKE '%unnest%'), 0)::bigint, \
               COALESCE(sum(s.calls) FILTER (WHERE s.query LIKE '%unnest%' \
                                             AND s.query LIKE '%order_status%'), 0)::bigint, \
               (SELECT dealloc FROM pg_stat_statements_info) \
             FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid \
             WHERE s.query ILIKE 'SELECT%' AND s.query NOT LIKE '%LIMIT 0%' \
               AND ((d.datname = $1 AND s.query LIKE '%order_status%') \
                 OR (d.datname = $2 AND s.query LIKE '%FROM accepted_orders WHERE order_id%'))",
        )
        .bind(&self.order_db)
        .bind(&self.gateway_db)
        .fetch_one(&mut self.conn)
        .await
        .expect("reading pg_stat_statements (the stack preloads it)");
        Reads {
            direct,
            poller,
            dealloc,
        }
    }
}

#[tokio::test]
async fn following_orders_to_final_costs_no_read_of_the_gets_own() {
    let saga = Saga::start().await;
    let mug = sku("READS");
    saga.set_stock(&mug, 1000, "5.00").await;
    let mut counter = ReadCounter::connect(&saga).await;

    // pg_stat_statements evicts entries when full; an interval during which
    // it did is counted again.
    for _ in 0..3 {
        let before = counter.reads().await;
        let started = Instant::now();
        for _ in 0..ORDERS {
            let order_id = saga.place_ok("reader", &[(&mug, 1)], "tok_ok").await;
            let order = saga.wait_final("reader", &order_id, FINAL_WITHIN).await;
            assert_eq!(order["status"], "CONFIRMED", "{order}");
        }
        let elapsed = started.elapsed();
        let after = counter.reads().await;
        if after.dealloc != before.dealloc {
            continue;
        }
        let direct = (after.direct - before.direct) as f64 / f64::from(ORDERS);
        let poller = after.poller - before.poller;
        eprintln!(
            "{ORDERS} orders in {elapsed:?}: {direct:.2} reads of the GETs' own per order, \
             {poller} poller reads ({:.2} per order)",
            poller as f64 / f64::from(ORDERS)
        );
        // Before the owner memory: a read of order_status (and of
        // accepted_orders while the read model lacked the order) before each
        // wait, 2–4 per order.
        assert!(
            direct <= 0.5,
            "{direct:.2} reads of the GETs' own per followed order"
        );
        // One query per tick for all waiters, never one per waiter or per GET
        // beyond the first read an idle poller makes at once.
        let ticks = (elapsed.as_secs_f64() / MIN_TICK.as_secs_f64()).ceil() as i64;
        assert!(
            poller <= ticks + 2 * i64::from(ORDERS),
            "{poller} poller reads in {elapsed:?}"
        );
        return;
    }
    panic!("pg_stat_statements evicted entries during every attempt");
}

#[tokio::test]
async fn another_customers_long_poll_on_a_just_accepted_order_is_404_at_once() {
    let saga = Saga::start().await;
    let mug = sku("READS");
    saga.set_stock(&mug, 1000, "5.00").await;
    let mut counter = ReadCounter::connect(&saga).await;
    let order_id = saga.place_ok("alice", &[(&mug, 1)], "tok_ok").await;
    let before = counter.reads().await;
    let started = Instant::now();
    let response = saga
        .http
        .get(format!(
            "{}/v1/orders/{order_id}?wait=30&seen=PENDING",
            saga.gateway_url
        ))
        .bearer_auth(saga.token("mallory", "customer"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let after = counter.reads().await;
    if after.dealloc == before.dealloc {
        assert_eq!(after.direct, before.direct, "the 404 read the order");
    }
    // Its owner still follows it to the end.
    let order = saga.wait_final("alice", &order_id, FINAL_WITHIN).await;
    assert_eq!(order["status"], "CONFIRMED", "{order}");
}
