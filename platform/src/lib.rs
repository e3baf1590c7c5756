//! What every chorus process stands on, workers, gateway and CLI alike:
//! configuration from the environment, Kafka and schema-registry client
//! settings (security included), topic administration, readiness probes,
//! logs and traces, shutdown on signal, supervision of background tasks,
//! bearer-token claims, and redaction of credentials. The worker machinery
//! itself lives in `chorus-runtime`.

pub mod access_check;
pub mod acl_apply;
pub mod acls;
pub mod config;
pub mod dev_mode;
pub mod health;
pub mod kafka;
pub mod kafka_admin;
mod kafka_auth;
pub mod payment_token;
pub mod redact;
pub mod registry;
pub mod secret;
pub mod shutdown;
pub mod supervisor;
pub mod telemetry;
/// Test support: a throwaway, migrated PostgreSQL database per test.
#[cfg(feature = "testing")]
pub mod testing;
pub mod token;
pub mod topic_check;
pub mod topics;

/// An error and its sources on one line; one definition for the whole
/// workspace, in `chorus-avro` (which cannot depend on this crate).
pub use chorus_avro::error_chain;
pub use config::{ConfigError, Env, check_scheme, check_secure_url};
pub use kafka::{KafkaSettings, KafkaUnreachable};
pub use kafka_auth::is_authentication_failure;
pub use redact::redact;
pub use registry::registry_from_env;
pub use secret::Secret;
pub use supervisor::{Supervisor, TaskFailure};
