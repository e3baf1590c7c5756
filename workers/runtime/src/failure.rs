//! Why processing a message failed, and what the consumer loop does about it
//! — decided by the error's type and code, never by its text:
//!
//! - [`FailureClass::Transient`]: infrastructure down or busy (Kafka,
//!   PostgreSQL connection and SQLSTATE classes 08, 40001, 40P01, 53,
//!   57P01–57P03, the registry unreachable or answering 408/429/5xx): retried
//!   with capped, jittered backoff, however long it takes, never dead-lettered.
//! - [`FailureClass::Permanent`]: the message can never succeed (undecodable,
//!   an unknown schema id confirmed by the registry, SQLSTATE classes 22 and
//!   23, a handler's own validation): dead-lettered at once.
//! - [`FailureClass::Unknown`]: anything else: retried up to
//!   `CHORUS_MAX_ATTEMPTS`, then dead-lettered with class `exhausted`.
//! - [`FailureClass::Panic`]: a handler panicked: dead-lettered with class `panic`.

use chorus_avro::{DecodeError, EncodeError};

/// What the loop does with a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    Transient,
    Permanent,
    Unknown,
    Panic,
}

/// A failure with its class, the dead-letter class name it would carry, and its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub class: FailureClass,
    /// `chorus-error-class` if it is dead-lettered: `rejected`,
    /// `wrong_magic_byte`, `database`, …
    pub kind: &'static str,
    pub message: String,
}

impl Failure {
    pub fn new(class: FailureClass, kind: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            class,
            kind,
            message: message.into(),
        }
    }

    pub fn transient(kind: &'static str, message: impl Into<String>) -> Failure {
        Failure::new(FailureClass::Transient, kind, message)
    }

    pub fn permanent(kind: &'static str, message: impl Into<String>) -> Failure {
        Failure::new(FailureClass::Permanent, kind, message)
    }

    pub fn unknown(kind: &'static str, message: impl Into<String>) -> Failure {
        Failure::new(FailureClass::Unknown, kind, message)
    }

    /// A handler panicked; `payload` is what `panic!` was given.
    pub fn panic(payload: &(dyn std::any::Any + Send)) -> Failure {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string());
        Failure::new(
            FailureClass::Panic,
            "panic",
            format!("handler panicked: {message}"),
        )
    }
}

impl Failure {
    /// Whether the failure is the infrastructure's as a whole (the database
    /// or the registry unreachable, Kafka down), not any one message's: a
    /// batch failing so is retried whole rather than split.
    pub fn is_outage(&self) -> bool {
        self.class == FailureClass::Transient && OUTAGE_KINDS.contains(&self.kind)
    }
}

const OUTAGE_KINDS: [&str; 4] = ["connection", "registry", "registry_unavailable", "kafka"];

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Failure {
        let message = format!("database: {}", chorus_avro::error_chain(&e));
        let (class, kind) = match &e {
            sqlx::Error::Database(db) => match db.code() {
                Some(code) if is_connection_state(&code) => (FailureClass::Transient, "connection"),
                Some(code) => (sqlstate_class(&code), "database"),
                None => (FailureClass::Unknown, "database"),
            },
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => (FailureClass::Transient, "connection"),
            _ => (FailureClass::Unknown, "database"),
        };
        Failure::new(class, kind, message)
    }
}

/// The SQLSTATEs of a server gone or going: connection exceptions, the
/// server shutting down or not accepting connections, out of resources.
fn is_connection_state(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// The class of a PostgreSQL error by its SQLSTATE.
pub fn sqlstate_class(code: &str) -> FailureClass {
    match code {
        // serialization failure, deadlock: the transaction lost a race
        "40001" | "40P01" => FailureClass::Transient,
        // admin shutdown, crash shutdown, cannot connect now
        "57P01" | "57P02" | "57P03" => FailureClass::Transient,
        // statement timeout and lock timeout: a busy database, not a bad message
        "57014" | "55P03" => FailureClass::Transient,
        _ => match &code[..code.len().min(2)] {
            // connection exception, insufficient resources
            "08" | "53" => FailureClass::Transient,
            // data exception (an invalid byte, a numeric overflow), integrity
            // constraint violation: this message's content
            "22" | "23" => FailureClass::Permanent,
            _ => FailureClass::Unknown,
        },
    }
}

impl From<&DecodeError> for Failure {
    fn from(e: &DecodeError) -> Failure {
        let class = if e.is_transient() {
            FailureClass::Transient
        } else if e.is_permanent() {
            FailureClass::Permanent
        } else {
            FailureClass::Unknown
        };
        Failure::new(class, e.class(), e.to_string())
    }
}

impl From<EncodeError> for Failure {
    fn from(e: EncodeError) -> Failure {
        match e {
            EncodeError::Invalid(reason) => Failure::permanent(
                "unencodable_output",
                format!("an emitted event does not fit its schema: {reason}"),
            ),
            EncodeError::RegistryUnavailable(_) => Failure::transient("registry", e.to_string()),
            // Not registered, or refused: an operator must act (`chorus
            // schemas register`); the message itself is fine, so it waits.
            other => Failure::transient("registry", other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_decide_the_class() {
        use FailureClass::*;
        for (code, class) in [
            ("08006", Transient),
            ("08001", Transient),
            ("40001", Transient),
            ("40P01", Transient),
            ("53300", Transient),
            ("57P01", Transient),
            ("57P03", Transient),
            ("22021", Permanent), // invalid byte sequence (a NUL in text)
            ("22003", Permanent), // numeric value out of range
            ("23505", Permanent),
            ("23514", Permanent),
            ("42P01", Unknown),
            ("XX000", Unknown),
        ] {
            assert_eq!(sqlstate_class(code), class, "{code}");
        }
    }

    #[test]
    fn decode_errors_keep_their_class_name() {
        let failure = Failure::from(&DecodeError::WrongMagicByte(7));
        assert_eq!(failure.class, FailureClass::Permanent);
        assert_eq!(failure.kind, "wrong_magic_byte");
        let failure = Failure::from(&DecodeError::RegistryUnavailable("down".into()));
        assert_eq!(failure.class, FailureClass::Transient);
        let failure = Failure::from(&DecodeError::RegistryRefused("400".into()));
        assert_eq!(failure.class, FailureClass::Unknown);
        let failure = Failure::from(&DecodeError::UnknownSchemaId(9));
        assert_eq!(failure.class, FailureClass::Permanent);
    }

    #[test]
    fn a_panic_message_is_kept() {
        let failure = Failure::panic(&"boom");
        assert_eq!(failure.class, FailureClass::Panic);
        assert!(failure.message.contains("boom"));
    }

    #[test]
    fn lost_connections_are_transient() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(Failure::from(io).class, FailureClass::Transient);
        assert_eq!(
            Failure::from(sqlx::Error::PoolTimedOut).class,
            FailureClass::Transient
        );
        assert_eq!(
            Failure::from(sqlx::Error::RowNotFound).class,
            FailureClass::Unknown
        );
    }
}
