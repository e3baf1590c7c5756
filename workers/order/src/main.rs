//! The order worker process.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    chorus_runtime::run_worker("order", 9101, &chorus_order::MIGRATOR, |_ctx| async {
        Ok(chorus_order::OrderHandler::default())
    })
    .await
}
