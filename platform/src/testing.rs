//! Test support shared by the workers: a throwaway PostgreSQL database per
//! test, migrated on creation and dropped afterwards (also when the test
//! panics); a test that cannot reach PostgreSQL fails saying how to start it.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor, PgConnection, PgPool};

/// Where the admin connection goes unless `CHORUS_TEST_PG_ADMIN_URL` says otherwise.
pub const DEFAULT_ADMIN_URL: &str = "postgres://chorus:chorus@127.0.0.1:55432/postgres";

/// A database of its own for one test, dropped when the value is.
pub struct TestDb {
    pub pool: PgPool,
    /// The database's URL, for processes under test.
    pub url: String,
    name: String,
    admin: PgConnectOptions,
}

impl TestDb {
    /// Whether `role` holds `privilege` (`SELECT`, `INSERT`, …) on `table`
    /// of this database.
    pub async fn has_table_privilege(&self, role: &str, table: &str, privilege: &str) -> bool {
        sqlx::query_scalar::<_, bool>("SELECT has_table_privilege($1, $2, $3)")
            .bind(role)
            .bind(table)
            .bind(privilege)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// A fresh database migrated with `migrators`, reached through
    /// `CHORUS_TEST_PG_ADMIN_URL` (default [`DEFAULT_ADMIN_URL`]); panics
    /// with the problem, naming PostgreSQL and how to start it.
    pub async fn create(migrators: &[&Migrator]) -> TestDb {
        let url =
            std::env::var("CHORUS_TEST_PG_ADMIN_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.into());
        TestDb::try_create(&url, migrators)
            .await
            .unwrap_or_else(|problem| panic!("{problem}"))
    }

    /// Makes sure the cluster has the login-less role `role` (the admin role
    /// needs CREATEROLE), so that migrations granting to it grant; safe to
    /// call from tests running at once.
    pub async fn ensure_role(role: &str) {
        let url =
            std::env::var("CHORUS_TEST_PG_ADMIN_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.into());
        let admin: PgConnectOptions = url.parse().expect("the admin URL parses");
        let mut conn = connect(&admin)
            .await
            .unwrap_or_else(|problem| panic!("{problem}"));
        conn.execute(AssertSqlSafe(format!(
            "DO $$ BEGIN CREATE ROLE {role} NOLOGIN;
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        )))
        .await
        .unwrap_or_else(|e| panic!("creating role {role} (the admin role needs CREATEROLE): {e}"));
        conn.close().await.ok();
    }

    /// A fresh database next to the one `admin_url` names (its role needs
    /// CREATEDB), migrated with each of `migrators` in turn; each ignores the
    /// versions the others applied.
    pub async fn try_create(admin_url: &str, migrators: &[&Migrator]) -> Result<TestDb, String> {
        let admin: PgConnectOptions = admin_url.parse().map_err(|e| format!("{admin_url}: {e}"))?;
        let mut conn = connect(&admin).await?;
        let name = format!("chorus_test_{}", uuid::Uuid::new_v4().simple());
        let created = conn
            .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .map_err(|e| format!("creating the test database (the role needs CREATEDB): {e}"));
        conn.close().await.ok();
        created?;
        // From here on dropping `db` drops the database again, should anything fail.
        let db = TestDb {
            pool: PgPoolOptions::new()
                // Enough for the concurrency tests' parallel transactions.
                .max_connections(24)
                .connect_lazy_with(admin.clone().database(&name)),
            url: format!(
                "{}/{name}",
                admin_url
                    .rsplit_once('/')
                    .map_or(admin_url, |(base, _)| base)
            ),
            name,
            admin,
        };
        db.pool
            .acquire()
            .await
            .map_err(|e| format!("connecting to {}: {e}", db.name))?;
        for source in migrators {
            let mut migrator = Migrator::with_migrations(source.iter().cloned().collect());
            migrator.set_ignore_missing(true);
            migrator
                .run(&db.pool)
                .await
                .map_err(|e| format!("migrating the test database: {e}"))?;
        }
        Ok(db)
    }
}

async fn connect(options: &PgConnectOptions) -> Result<PgConnection, String> {
    let unreachable = |cause: String| {
        format!(
            "PostgreSQL unreachable at {}:{}: start the stack with `make up` ({cause})",
            options.get_host(),
            options.get_port()
        )
    };
    tokio::time::timeout(Duration::from_secs(10), options.connect())
        .await
        .map_err(|_| unreachable("timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop cannot await and runs inside the test's runtime, which cannot
        // be blocked on: a helper thread with its own runtime does the
        // cleanup while this one waits. FORCE ends the pool's connections.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut conn = connect(&admin).await?;
                conn.execute(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await
                .map_err(|e| e.to_string())?;
                conn.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!(
                "could not drop test database {}: cleanup panicked",
                self.name
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_postgres_fails_saying_how_to_start_it() {
        let Err(problem) =
            TestDb::try_create("postgres://chorus:chorus@127.0.0.1:1/postgres", &[]).await
        else {
            panic!("port 1 should refuse connections");
        };
        assert!(
            problem.starts_with(
                "PostgreSQL unreachable at 127.0.0.1:1: start the stack with `make up` ("
            ),
            "{problem}"
        );
    }
}
