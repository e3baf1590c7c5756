//! The databases a test gateway talks to, each fresh (`chorus_test_<random>`,
//! dropped afterwards) and migrated as in production: the gateway's own with
//! its migrations, the order and inventory services' with theirs, so the
//! gateway reads the very views it reads in production.

use chorus_gateway::store::Store;
use chorus_platform::testing::TestDb;

/// The databases a gateway talks to, each fresh and migrated as in
/// production: its own, and the order and inventory services' read models.
pub struct TestDbs {
    pub gateway: TestDb,
    pub order: TestDb,
    pub inventory: TestDb,
}

impl TestDbs {
    pub async fn create() -> TestDbs {
        let (gateway, order, inventory) = (
            [&chorus_gateway::MIGRATOR],
            [&chorus_order::MIGRATOR],
            [&chorus_inventory::MIGRATOR],
        );
        let (gateway, order, inventory) = tokio::join!(
            TestDb::create(&gateway),
            TestDb::create(&order),
            TestDb::create(&inventory),
        );
        TestDbs {
            gateway,
            order,
            inventory,
        }
    }

    pub fn store(&self) -> Store {
        Store::new(
            self.gateway.pool.clone(),
            self.order.pool.clone(),
            self.inventory.pool.clone(),
        )
    }

    /// The `CHORUS_…_URL` variables of a gateway process using them.
    pub fn env(&self) -> [(&'static str, &str); 3] {
        [
            ("CHORUS_DATABASE_URL", self.gateway.url.as_str()),
            ("CHORUS_ORDER_DB_URL", self.order.url.as_str()),
            ("CHORUS_INVENTORY_DB_URL", self.inventory.url.as_str()),
        ]
    }
}
