//! The payment worker process.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    chorus_runtime::run_worker(
        "payment",
        9103,
        &chorus_payment::MIGRATOR,
        |ctx| async move {
            // The provider is chosen from CHORUS_PAYMENT_PROVIDER etc.
            chorus_payment::PaymentHandler::for_worker(&ctx)
        },
    )
    .await
}
