//! The order worker process.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    chorus_runtime::run_worker("order", 9101, &chorus_order::MIGRATOR, |ctx| async move {
        chorus_order::OrderHandler::from_env(&chorus_runtime::Env::process())?
            .with_census(ctx.metrics.registry())
    })
    .await
}
