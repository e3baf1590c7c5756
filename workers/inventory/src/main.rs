//! The inventory worker process.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    chorus_runtime::run_worker(
        "inventory",
        9102,
        &chorus_inventory::MIGRATOR,
        |_ctx| async { Ok(chorus_inventory::InventoryHandler::default()) },
    )
    .await
}
