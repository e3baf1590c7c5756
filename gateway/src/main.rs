//! `chorus-gateway`: loads the configuration, starts logging, builds the
//! application and serves until SIGINT/SIGTERM.

use std::process::ExitCode;

use chorus_gateway::{Application, GatewayConfig};
use chorus_platform::Env;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = match GatewayConfig::from_env(&Env::process()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("chorus-gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match Application::build(config).await {
        Ok(application) => application.run_until_stopped().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chorus-gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}
