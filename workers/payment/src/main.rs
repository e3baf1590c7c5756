//! The payment worker process.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    chorus_runtime::run_worker(
        "payment",
        9103,
        &chorus_payment::MIGRATOR,
        |ctx| async move {
            chorus_payment::PaymentHandler::from_env(&ctx.pool) // provider chosen from CHORUS_PAYMENT_PROVIDER etc.
        },
    )
    .await
}
