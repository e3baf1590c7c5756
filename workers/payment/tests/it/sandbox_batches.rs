//! The sandbox writes the calls that arrive together in one transaction, and
//! answers every call as if it had been alone: one charge per key, the same
//! authorization to every asker, declines and voids recorded, and a failed
//! batch answered "not now" with nothing of it written.

use std::collections::HashMap;
use std::time::Duration;

use chorus_payment::{
    AuthorizationRequest, PaymentProvider, ProviderError, SandboxProvider, VoidRequest, Voided,
};
use chorus_platform::testing::TestDb;
use rust_decimal::Decimal;
use sqlx::PgPool;
use tokio::task::JoinSet;

fn request(order_id: &str, amount: &str, currency: &str, token: &str) -> AuthorizationRequest {
    AuthorizationRequest {
        order_id: order_id.into(),
        amount: amount.parse().unwrap(),
        currency: currency.into(),
        token: token.into(),
    }
}

/// The write transactions that recorded the calls: each row's `xmin` is the
/// transaction that inserted it.
async fn transactions_recording_calls(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(DISTINCT xmin::text) FROM sandbox_calls")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn count(pool: &PgPool, sql: &'static str, key: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(key)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_charges_charge_once_per_key_in_a_few_transactions() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let sandbox = SandboxProvider::new(db.pool.clone());
    // 200 calls: keys k0..k59 asked three times each, k60..k79 once.
    let asks: Vec<String> = (0..200)
        .map(|i| format!("k{}", if i < 180 { i % 60 } else { i - 120 }))
        .collect();
    let mut calls = JoinSet::new();
    for key in asks.clone() {
        let sandbox = sandbox.clone();
        calls.spawn(async move {
            let answer = sandbox
                .authorize(&request(&key, "19.99", "EUR", "tok_ok"))
                .await;
            (key, answer)
        });
    }
    let mut authorizations: HashMap<String, Vec<String>> = HashMap::new();
    while let Some(done) = calls.join_next().await {
        let (key, answer) = done.unwrap();
        let authorization = answer.unwrap_or_else(|e| panic!("{key}: {e}"));
        authorizations
            .entry(key)
            .or_default()
            .push(authorization.authorization_id);
    }
    assert_eq!(authorizations.len(), 80);
    for (key, ids) in &authorizations {
        let asked = asks.iter().filter(|k| *k == key).count();
        assert_eq!(ids.len(), asked, "{key}");
        assert!(ids.iter().all(|id| *id == ids[0]), "{key}: {ids:?}");
        let charges = count(
            &db.pool,
            "SELECT count(*) FROM sandbox_charges WHERE idempotency_key = $1",
            key,
        )
        .await;
        assert_eq!(charges, 1, "{key}");
        assert_eq!(sandbox.calls(key).await.unwrap(), asked as i64, "{key}");
    }

    let transactions = transactions_recording_calls(&db.pool).await;
    let stats = sandbox.batch_stats();
    eprintln!("200 concurrent calls: {transactions} transactions, {stats:?}");
    assert_eq!(stats.calls, 200);
    assert_eq!(transactions as u64, stats.batches);
    assert!(
        transactions <= 20,
        "200 concurrent calls took {transactions} transactions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_asked_concurrently_for_different_amounts_charges_the_first_and_declines_the_rest()
{
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let sandbox = SandboxProvider::new(db.pool.clone());
    let asks = [
        ("10.00", "EUR"),
        ("20.00", "EUR"),
        ("10.00", "USD"),
        ("10.00", "EUR"),
        ("30.00", "EUR"),
        ("20.00", "EUR"),
    ];
    let mut calls = JoinSet::new();
    for round in 0..5 {
        for (amount, currency) in asks {
            let sandbox = sandbox.clone();
            let asked = request("mixed", amount, currency, "tok_ok");
            calls.spawn(async move { (asked.clone(), sandbox.authorize(&asked).await, round) });
        }
    }
    let (amount, currency, authorization_id): (Decimal, String, String) = {
        let mut answers = Vec::new();
        while let Some(done) = calls.join_next().await {
            answers.push(done.unwrap());
        }
        let charge = sqlx::query_as(
            "SELECT amount, currency, authorization_id FROM sandbox_charges
             WHERE idempotency_key = 'mixed'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        let (amount, currency, authorization_id): &(Decimal, String, String) = &charge;
        for (asked, answer, round) in answers {
            if asked.amount == *amount && asked.currency == *currency {
                assert_eq!(
                    answer.map(|a| a.authorization_id).as_ref(),
                    Ok(authorization_id),
                    "{asked:?} in round {round}"
                );
            } else {
                assert!(
                    matches!(answer, Err(ProviderError::Declined { .. })),
                    "{asked:?} in round {round}: {answer:?}"
                );
            }
        }
        charge
    };
    assert!(authorization_id.starts_with("sbx_"));
    assert!(asks.contains(&(amount.to_string().as_str(), currency.as_str())));
    assert_eq!(sandbox.charges("mixed").await.unwrap(), 1);
    assert_eq!(sandbox.calls("mixed").await.unwrap(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declines_and_voids_asked_together_are_answered_and_recorded_as_one_at_a_time() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let sandbox = SandboxProvider::new(db.pool.clone());
    let mut charged = HashMap::new();
    for i in 0..20 {
        let key = format!("charged-{i}");
        let authorization = sandbox
            .authorize(&request(&key, "5.00", "EUR", "tok_ok"))
            .await
            .unwrap();
        charged.insert(key, authorization.authorization_id);
    }

    let mut calls = JoinSet::new();
    for i in 0..20 {
        for token in ["tok_decline", "tok_unavailable", "tok_visa"] {
            let sandbox = sandbox.clone();
            let key = format!("{token}-{i}");
            calls.spawn(async move {
                let answer = sandbox
                    .authorize(&request(&key, "5.00", "EUR", token))
                    .await;
                match (token, answer) {
                    ("tok_decline", Err(ProviderError::Declined { reason })) => {
                        assert_eq!(reason, "card declined")
                    }
                    ("tok_visa", Err(ProviderError::Declined { reason })) => {
                        assert_eq!(reason, "unknown token")
                    }
                    ("tok_unavailable", Err(ProviderError::Unavailable { .. })) => {}
                    (token, answer) => panic!("{token}: {answer:?}"),
                }
            });
        }
    }
    for (key, authorization_id) in charged.clone() {
        // Each charge voided twice (once by its id, once by the key), and
        // once more by an id that is not the key's.
        for asked in [
            Some(authorization_id.clone()),
            None,
            Some("sbx_other".into()),
        ] {
            let sandbox = sandbox.clone();
            let key = key.clone();
            calls.spawn(async move {
                let mismatched = asked.as_deref() == Some("sbx_other");
                let answer = sandbox
                    .void(&VoidRequest {
                        order_id: key.clone(),
                        authorization_id: asked,
                    })
                    .await;
                if mismatched {
                    assert!(
                        matches!(answer, Err(ProviderError::Declined { .. })),
                        "{key}: {answer:?}"
                    );
                } else {
                    assert_eq!(answer, Ok(Voided::Voided), "{key}");
                }
            });
        }
    }
    for i in 0..20 {
        let sandbox = sandbox.clone();
        calls.spawn(async move {
            let answer = sandbox
                .void(&VoidRequest {
                    order_id: format!("never-charged-{i}"),
                    authorization_id: None,
                })
                .await;
            assert_eq!(answer, Ok(Voided::NothingToVoid));
        });
    }
    while let Some(done) = calls.join_next().await {
        done.unwrap();
    }

    for i in 0..20 {
        for token in ["tok_decline", "tok_unavailable", "tok_visa"] {
            let key = format!("{token}-{i}");
            assert_eq!(sandbox.calls(&key).await.unwrap(), 1, "{key}");
            assert_eq!(sandbox.charges(&key).await.unwrap(), 0, "{key}");
        }
        let key = format!("never-charged-{i}");
        assert_eq!(sandbox.calls(&key).await.unwrap(), 1, "{key}");
        assert_eq!(sandbox.charges(&key).await.unwrap(), 0, "{key}");
    }
    for key in charged.keys() {
        assert_eq!(sandbox.standing_charges(key).await.unwrap(), 0, "{key}");
        assert_eq!(sandbox.calls(key).await.unwrap(), 4, "{key}");
        let voids = count(
            &db.pool,
            "SELECT count(*) FROM sandbox_calls WHERE idempotency_key = $1 AND kind = 'void'",
            key,
        )
        .await;
        assert_eq!(voids, 3, "{key}");
    }

    // voided_at is set once: a later void leaves it as it was.
    let voided_at = |key: &'static str| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_scalar::<_, chrono::DateTime<chrono::Utc>>(
                "SELECT voided_at FROM sandbox_charges WHERE idempotency_key = $1",
            )
            .bind(key)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let first = voided_at("charged-0").await;
    let again = sandbox
        .void(&VoidRequest {
            order_id: "charged-0".into(),
            authorization_id: None,
        })
        .await;
    assert_eq!(again, Ok(Voided::Voided));
    assert_eq!(voided_at("charged-0").await, first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_the_database_refuses_answers_every_call_unavailable_and_records_none_of_it() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let sandbox = SandboxProvider::new(db.pool.clone());
    sandbox
        .authorize(&request("earlier", "5.00", "EUR", "tok_ok"))
        .await
        .unwrap();
    // A charge over 1000 makes the database refuse the statement it is in.
    sqlx::query("ALTER TABLE sandbox_charges ADD CONSTRAINT small CHECK (amount < 1000)")
        .execute(&db.pool)
        .await
        .unwrap();

    // The first call's batch waits for the lock; the next calls queue
    // behind it and share the following batch with the refused charge.
    let lock = lock_sandbox_calls(&db).await;
    let first = {
        let sandbox = sandbox.clone();
        tokio::spawn(async move {
            sandbox
                .authorize(&request("first", "5.00", "EUR", "tok_ok"))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut calls = JoinSet::new();
    for (key, amount, token) in [
        ("big", "5000.00", "tok_ok"),
        ("small", "5.00", "tok_ok"),
        ("declined", "5.00", "tok_decline"),
    ] {
        let sandbox = sandbox.clone();
        calls.spawn(async move {
            (
                key,
                sandbox.authorize(&request(key, amount, "EUR", token)).await,
            )
        });
    }
    {
        let sandbox = sandbox.clone();
        calls.spawn(async move {
            let answer = sandbox
                .void(&VoidRequest {
                    order_id: "earlier".into(),
                    authorization_id: None,
                })
                .await
                .map(|_| chorus_payment::Authorization {
                    authorization_id: "voided".into(),
                });
            ("earlier", answer)
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.rollback().await.unwrap();

    assert!(first.await.unwrap().is_ok());
    while let Some(done) = calls.join_next().await {
        let (key, answer) = done.unwrap();
        assert!(
            matches!(answer, Err(ProviderError::Unavailable { .. })),
            "{key}: {answer:?}"
        );
    }
    assert_eq!(
        sandbox.batch_stats().batches,
        3,
        "{:?}",
        sandbox.batch_stats()
    );
    for key in ["big", "small", "declined"] {
        assert_eq!(sandbox.calls(key).await.unwrap(), 0, "{key}");
        assert_eq!(sandbox.charges(key).await.unwrap(), 0, "{key}");
    }
    assert_eq!(sandbox.calls("earlier").await.unwrap(), 1);
    assert_eq!(sandbox.standing_charges("earlier").await.unwrap(), 1);

    // Asked again, the calls the refused one no longer shares a batch with go through.
    sandbox
        .authorize(&request("small", "5.00", "EUR", "tok_ok"))
        .await
        .unwrap();
    assert_eq!(sandbox.charges("small").await.unwrap(), 1);
}

#[test]
fn a_call_whose_batcher_stops_is_answered_unavailable_and_the_next_call_starts_another() {
    let main = tokio::runtime::Runtime::new().unwrap();
    let (db, pool, held) = main.block_on(async {
        let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
        // The sandbox's only connection, held here: its batcher waits for it.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with((*db.pool.connect_options()).clone())
            .await
            .unwrap();
        let held = pool.acquire().await.unwrap();
        (db, pool, held)
    });
    let sandbox = SandboxProvider::new(pool);

    // A batcher started on another runtime, which then stops.
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let (started, on_other) = std::sync::mpsc::channel();
    let other = {
        let sandbox = sandbox.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let sandbox = sandbox.clone();
                tokio::spawn(async move {
                    sandbox
                        .authorize(&request("on-other", "5.00", "EUR", "tok_ok"))
                        .await
                });
                tokio::time::sleep(Duration::from_millis(100)).await;
            });
            started.send(()).unwrap();
            // Keep the runtime (and its batcher) alive until told.
            stopped.recv().unwrap();
            drop(runtime);
        })
    };
    on_other.recv().unwrap();

    main.block_on(async {
        let waiting = {
            let sandbox = sandbox.clone();
            tokio::spawn(async move {
                sandbox
                    .authorize(&request("waiting", "5.00", "EUR", "tok_ok"))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.send(()).unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("a call whose batcher stopped is answered, not left waiting")
            .unwrap();
        assert!(
            matches!(answer, Err(ProviderError::Unavailable { .. })),
            "{answer:?}"
        );
        drop(held);

        let next = tokio::time::timeout(
            Duration::from_secs(10),
            sandbox.authorize(&request("next", "5.00", "EUR", "tok_ok")),
        )
        .await
        .expect("the next call is answered");
        assert!(next.is_ok(), "{next:?}");
        assert_eq!(sandbox.calls("waiting").await.unwrap(), 0);
        assert_eq!(sandbox.calls("next").await.unwrap(), 1);
        drop(db);
    });
    other.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charge_and_a_void_of_one_key_in_one_batch_leave_nothing_standing() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let sandbox = SandboxProvider::new(db.pool.clone());
    // The first call's batch waits for the lock; the charge and the void
    // queue behind it and share the next batch, which charges before it voids.
    let lock = lock_sandbox_calls(&db).await;
    let first = {
        let sandbox = sandbox.clone();
        tokio::spawn(async move {
            sandbox
                .authorize(&request("first", "5.00", "EUR", "tok_ok"))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let charge = {
        let sandbox = sandbox.clone();
        tokio::spawn(async move {
            sandbox
                .authorize(&request("both", "5.00", "EUR", "tok_ok"))
                .await
        })
    };
    let void = {
        let sandbox = sandbox.clone();
        tokio::spawn(async move {
            sandbox
                .void(&VoidRequest {
                    order_id: "both".into(),
                    authorization_id: None,
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.rollback().await.unwrap();

    assert!(first.await.unwrap().is_ok());
    assert!(charge.await.unwrap().is_ok());
    assert_eq!(void.await.unwrap(), Ok(Voided::Voided));
    assert_eq!(
        sandbox.batch_stats().batches,
        2,
        "{:?}",
        sandbox.batch_stats()
    );
    assert_eq!(sandbox.charges("both").await.unwrap(), 1);
    assert_eq!(sandbox.standing_charges("both").await.unwrap(), 0);
    assert_eq!(sandbox.calls("both").await.unwrap(), 2);
}

/// Holds `sandbox_calls` locked until the transaction is dropped or
/// committed: the next batch waits for it, and calls queue behind it.
async fn lock_sandbox_calls(db: &TestDb) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut lock = db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE sandbox_calls IN EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    lock
}
