//! `chorus-gateway`: loads the configuration, starts logging and tracing,
//! builds the application and serves until SIGINT/SIGTERM (exit 0), or
//! until one of its tasks fails (exit 1, naming the task).

use std::process::ExitCode;

use chorus_gateway::{Application, GatewayConfig};
use chorus_platform::{Env, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match GatewayConfig::from_env(&Env::process()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("chorus-gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Kept to the end: dropping it flushes the spans not exported yet.
    let _telemetry = match telemetry::init("gateway", config.otlp_endpoint.as_deref()) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("chorus-gateway: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = match Application::build(config).await {
        Ok(application) => application.run_until_stopped().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A failed task is named here, e.g. "the order batcher task panicked: …".
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "gateway failed");
            eprintln!("chorus-gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}
