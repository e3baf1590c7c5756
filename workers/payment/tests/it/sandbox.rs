//! The sandbox provider keeps its own books: one charge per idempotency key.

use chorus_payment::{AuthorizationRequest, PaymentProvider, ProviderError, SandboxProvider};
use chorus_platform::testing::TestDb;

fn request(order_id: &str, token: &str) -> AuthorizationRequest {
    AuthorizationRequest {
        order_id: order_id.into(),
        amount: "19.99".parse().unwrap(),
        currency: "EUR".into(),
        token: token.into(),
    }
}

#[tokio::test]
async fn the_same_idempotency_key_twice_charges_once_with_one_authorization() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let sandbox = SandboxProvider::new(db.pool.clone());
    let first = sandbox.authorize(&request("o-1", "tok_ok")).await.unwrap();
    let again = sandbox.authorize(&request("o-1", "tok_ok")).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(sandbox.charges("o-1").await.unwrap(), 1);
    assert_eq!(sandbox.calls("o-1").await.unwrap(), 2);
}

#[tokio::test]
async fn concurrent_calls_with_one_key_charge_once() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let sandbox = SandboxProvider::new(db.pool.clone());
    let (first, second) = (request("o-2", "tok_ok"), request("o-2", "tok_ok"));
    let (a, b) = tokio::join!(sandbox.authorize(&first), sandbox.authorize(&second));
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(sandbox.charges("o-2").await.unwrap(), 1);
}

#[tokio::test]
async fn a_key_reused_for_another_amount_is_declined() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let sandbox = SandboxProvider::new(db.pool.clone());
    sandbox.authorize(&request("o-3", "tok_ok")).await.unwrap();
    let other = AuthorizationRequest {
        amount: "5.00".parse().unwrap(),
        ..request("o-3", "tok_ok")
    };
    assert!(matches!(
        sandbox.authorize(&other).await,
        Err(ProviderError::Declined { .. })
    ));
    assert_eq!(sandbox.charges("o-3").await.unwrap(), 1);
}

#[tokio::test]
async fn tokens_decide_the_answer_and_every_call_is_counted() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let sandbox = SandboxProvider::new(db.pool.clone());
    assert_eq!(
        sandbox.authorize(&request("o-4", "tok_decline")).await,
        Err(ProviderError::Declined {
            reason: "card declined".into()
        })
    );
    assert_eq!(
        sandbox.authorize(&request("o-5", "tok_visa")).await,
        Err(ProviderError::Declined {
            reason: "unknown token".into()
        })
    );
    for _ in 0..3 {
        assert!(matches!(
            sandbox.authorize(&request("o-6", "tok_unavailable")).await,
            Err(ProviderError::Unavailable { .. })
        ));
    }
    assert_eq!(sandbox.calls("o-6").await.unwrap(), 3);
    for order in ["o-4", "o-5", "o-6"] {
        assert_eq!(sandbox.charges(order).await.unwrap(), 0, "{order}");
    }
}

#[tokio::test]
async fn a_void_releases_the_keys_charge_once_and_records_no_token() {
    use chorus_payment::{VoidRequest, Voided};
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let sandbox = SandboxProvider::new(db.pool.clone());
    let void = |order: &str| VoidRequest {
        order_id: order.into(),
        authorization_id: None,
    };
    assert_eq!(sandbox.void(&void("o-7")).await, Ok(Voided::NothingToVoid));
    sandbox.authorize(&request("o-7", "tok_ok")).await.unwrap();
    assert_eq!(sandbox.standing_charges("o-7").await.unwrap(), 1);
    assert_eq!(sandbox.void(&void("o-7")).await, Ok(Voided::Voided));
    assert_eq!(
        sandbox.void(&void("o-7")).await,
        Ok(Voided::Voided),
        "voiding twice is harmless"
    );
    assert_eq!(sandbox.standing_charges("o-7").await.unwrap(), 0);
    assert_eq!(sandbox.charges("o-7").await.unwrap(), 1);
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'sandbox_calls'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(!columns.iter().any(|c| c.contains("token")), "{columns:?}");
}
