//! The notification worker process.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    chorus_runtime::run_worker(
        "notification",
        9104,
        &chorus_notification::MIGRATOR,
        |_ctx| async move {
            chorus_notification::NotificationHandler::from_env() // channels chosen from CHORUS_NOTIFY_LOG, CHORUS_WEBHOOK_URL, CHORUS_SMTP_URL
        },
    )
    .await
}
