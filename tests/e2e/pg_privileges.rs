//! PostgreSQL least privilege, as the stack sets it up (scripts/stack/init.sql)
//! and the services' own migrations leave it: each service's role reaches only
//! its own database, no role is a superuser or owns another service's tables,
//! and the gateway's read-only role reads the views the gateway serves —
//! and no table, no inbox, no outbox (which holds sealed payment tokens) —
//! and never writes.

use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

use chorus_platform::testing::DEFAULT_ADMIN_URL;
use chorus_tests::HOW_TO_START;

/// The service databases, each owned by the role of the same name.
const SERVICES: [&str; 5] = [
    "chorus_order",
    "chorus_inventory",
    "chorus_payment",
    "chorus_notification",
    "chorus_gateway",
];
const READ_ONLY: &str = "chorus_gateway_ro";
/// The databases the read-only role reads (the order read model, stock levels).
const READ_ONLY_READS: [&str; 2] = ["chorus_order", "chorus_inventory"];
/// What the read-only role may read in each: the views the gateway serves.
const GATEWAY_VIEWS: [(&str, &str); 2] = [
    ("chorus_order", "order_status"),
    ("chorus_inventory", "stock_levels"),
];

/// `role` logging in to `database` with the stack's development password
/// (the role's name).
fn login(role: &str, database: &str) -> PgConnectOptions {
    let url =
        std::env::var("CHORUS_TEST_PG_ADMIN_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.into());
    let admin: PgConnectOptions = url.parse().expect("the admin URL parses");
    PgConnectOptions::new()
        .host(admin.get_host())
        .port(admin.get_port())
        .username(role)
        .password(role)
        .database(database)
}

async fn connect(role: &str, database: &str) -> Result<PgConnection, sqlx::Error> {
    login(role, database).connect().await
}

/// The SQLSTATE of a refusal.
fn code(e: &sqlx::Error) -> String {
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned())
        .unwrap_or_else(|| panic!("not a refusal by the server: {e}"))
}

/// Migrates every service database as its own role, as the services do at
/// start-up, so the tables whose owners are checked exist. Once per run:
/// the tests of this file run side by side, and two runs of a migration
/// that waits for other transactions (an index built concurrently) would
/// deadlock on the migrator's lock.
async fn migrate_as_owners() {
    static MIGRATED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    MIGRATED.get_or_init(migrate_once).await;
}

async fn migrate_once() {
    let workers: [(&str, &'static Migrator); 4] = [
        ("chorus_order", &chorus_order::MIGRATOR),
        ("chorus_inventory", &chorus_inventory::MIGRATOR),
        ("chorus_payment", &chorus_payment::MIGRATOR),
        ("chorus_notification", &chorus_notification::MIGRATOR),
    ];
    for (service, migrator) in workers {
        let mut conn = connect(service, service).await.unwrap_or_else(|e| {
            panic!("{service} cannot log in to its own database ({e}); {HOW_TO_START}")
        });
        // Runtime (< 1000) and worker (≥ 1000) migrations share one history.
        for source in [chorus_runtime::app::runtime_migrator(), migrator] {
            let mut m = Migrator::with_migrations(source.iter().cloned().collect());
            m.set_ignore_missing(true);
            m.run(&mut conn).await.expect("migrations");
        }
    }
    let mut conn = connect("chorus_gateway", "chorus_gateway")
        .await
        .expect("the gateway logs in to its own database");
    chorus_gateway::MIGRATOR
        .run(&mut conn)
        .await
        .expect("gateway migrations");
}

#[tokio::test]
async fn each_service_role_reaches_only_its_own_database() {
    migrate_as_owners().await;
    for role in SERVICES {
        for database in SERVICES {
            let result = connect(role, database).await;
            if role == database {
                result.unwrap_or_else(|e| panic!("{role} must reach its own database: {e}"));
            } else {
                let e = result.err().unwrap_or_else(|| {
                    panic!("{role} logged in to {database}, another service's database")
                });
                assert_eq!(code(&e), "42501", "{role} → {database}: {e}");
            }
        }
    }
    for database in SERVICES {
        let result = connect(READ_ONLY, database).await;
        if READ_ONLY_READS.contains(&database) {
            result.unwrap_or_else(|e| panic!("{READ_ONLY} must reach {database}: {e}"));
        } else {
            let e = result
                .err()
                .unwrap_or_else(|| panic!("{READ_ONLY} logged in to {database}"));
            assert_eq!(code(&e), "42501", "{READ_ONLY} → {database}: {e}");
        }
    }
}

#[tokio::test]
async fn no_service_role_is_a_superuser_or_owns_another_services_tables() {
    migrate_as_owners().await;
    let mut admin = connect("chorus", "postgres")
        .await
        .unwrap_or_else(|e| panic!("the admin role cannot log in ({e}); {HOW_TO_START}"));
    for role in SERVICES.iter().chain([READ_ONLY].iter()) {
        let (superuser, create_role, create_db, bypass_rls): (bool, bool, bool, bool) =
            sqlx::query_as(
                "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls
                 FROM pg_roles WHERE rolname = $1",
            )
            .bind(role)
            .fetch_one(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("role {role} is missing ({e}); {HOW_TO_START}"));
        assert!(
            !(superuser || create_role || create_db || bypass_rls),
            "{role}: superuser {superuser}, createrole {create_role}, createdb {create_db}, \
             bypassrls {bypass_rls}"
        );
    }
    admin.close().await.ok();

    for database in SERVICES {
        // The owner reads the catalogue of its own database.
        let mut conn = connect(database, database)
            .await
            .unwrap_or_else(|e| panic!("{database} cannot log in to its own database: {e}"));
        let owners: Vec<(String, String)> = sqlx::query_as(
            "SELECT c.relname::text, pg_get_userbyid(c.relowner)::text
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'S', 'p')",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert!(
            !owners.is_empty(),
            "{database} has no tables after migrating"
        );
        for (relation, owner) in owners {
            assert_eq!(owner, database, "{database}.{relation} is owned by {owner}");
        }
    }
}

#[tokio::test]
async fn the_gateways_read_only_role_reads_and_never_writes() {
    migrate_as_owners().await;
    for (database, view) in GATEWAY_VIEWS {
        let mut conn = connect(READ_ONLY, database).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {view} LIMIT 1")))
            .fetch_optional(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{READ_ONLY} must read {database}.{view}: {e}"));

        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert!(!tables.is_empty(), "{database} has no tables");
        for table in &tables {
            for privilege in [
                "INSERT",
                "UPDATE",
                "DELETE",
                "TRUNCATE",
                "REFERENCES",
                "TRIGGER",
            ] {
                let held: bool = sqlx::query_scalar("SELECT has_table_privilege($1, $2, $3)")
                    .bind(READ_ONLY)
                    .bind(format!("public.{table}"))
                    .bind(privilege)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
                assert!(!held, "{READ_ONLY} holds {privilege} on {database}.{table}");
            }
        }
        // And the server refuses when it tries.
        for statement in [
            format!("DELETE FROM {}", tables[0]),
            format!("TRUNCATE {}", tables[0]),
            "CREATE TABLE chorus_ro_probe (x int)".to_string(),
            "CREATE TEMPORARY TABLE chorus_ro_probe (x int)".to_string(),
        ] {
            let e = sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
                .execute(&mut conn)
                .await
                .err()
                .unwrap_or_else(|| panic!("{READ_ONLY} ran `{statement}` on {database}"));
            assert_eq!(code(&e), "42501", "{statement} on {database}: {e}");
        }
    }
}

#[tokio::test]
async fn the_gateways_read_only_role_reads_only_the_views_the_gateway_serves() {
    migrate_as_owners().await;
    for (database, view) in GATEWAY_VIEWS {
        let mut owner = connect(database, database).await.unwrap();
        let readable: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
               AND has_table_privilege($1, c.oid, 'SELECT')
             ORDER BY 1",
        )
        .bind(READ_ONLY)
        .fetch_all(&mut owner)
        .await
        .unwrap();
        assert_eq!(readable, [view], "{READ_ONLY} reads these of {database}");
        let columns: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.column_privileges
             WHERE grantee = $1 AND table_name <> $2",
        )
        .bind(READ_ONLY)
        .bind(view)
        .fetch_one(&mut owner)
        .await
        .unwrap();
        assert_eq!(columns, 0, "{READ_ONLY} holds column grants in {database}");

        // And the server refuses it the tables, the outbox above all.
        let mut conn = connect(READ_ONLY, database).await.unwrap();
        let table = if database == "chorus_order" {
            "orders"
        } else {
            "catalogue"
        };
        for relation in ["outbox", "inbox", table] {
            let e = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT * FROM {relation} LIMIT 1"
            )))
            .fetch_optional(&mut conn)
            .await
            .err()
            .unwrap_or_else(|| panic!("{READ_ONLY} read {database}.{relation}"));
            assert_eq!(code(&e), "42501", "{database}.{relation}: {e}");
        }
    }
}

/// Every query the gateway sends to the order and inventory databases runs
/// with the read-only role's grants alone.
#[tokio::test]
async fn every_query_of_the_gateway_runs_with_the_read_only_roles_grants() {
    use chorus_gateway::store::{OrderListing, Store};
    use sqlx::postgres::PgPoolOptions;

    migrate_as_owners().await;
    let pool = |role: &str, database: &str| {
        PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(login(role, database))
    };
    let store = Store::new(
        pool("chorus_gateway", "chorus_gateway"),
        pool(READ_ONLY, "chorus_order"),
        pool(READ_ONLY, "chorus_inventory"),
    );
    let order_id = uuid::Uuid::new_v4().to_string();
    store.order_status(&order_id).await.expect("an order");
    store
        .changed_orders(&[order_id.as_str()], &[None])
        .await
        .expect("the long-poll's reads");
    let listing = OrderListing {
        customer: Some("pg-privileges"),
        status: Some("PENDING"),
        since: Some(chrono::Utc::now()),
        after: None,
        limit: 1,
    };
    store.list_orders(&listing).await.expect("a list of orders");
    let everyone = OrderListing {
        customer: None,
        status: None,
        since: None,
        ..listing
    };
    store
        .list_orders(&everyone)
        .await
        .expect("everyone's orders");
    store
        .stock_level("PG-PRIVILEGES")
        .await
        .expect("a stock level");
}
