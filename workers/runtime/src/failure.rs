//! Why processing a message failed, and what the consumer loop does about it
//! — decided by the error's type, SQLSTATE and constraint, never by its text:
//!
//! - [`FailureClass::Transient`]: infrastructure down or busy (Kafka,
//!   PostgreSQL connection and SQLSTATE classes 08, 40001, 40P01, 53,
//!   57P01–57P03, 55P03, the registry unreachable, misrouted — answering 404
//!   even for its subject list — or answering 408/429/5xx): retried with
//!   capped, jittered backoff, however long it takes, never dead-lettered,
//!   and never counted as an attempt.
//! - [`FailureClass::Permanent`]: the message can never succeed (undecodable,
//!   an unknown schema id confirmed by a registry that proves itself one,
//!   SQLSTATE class 22, class 23 on a constraint of the message's content,
//!   a handler's own validation): dead-lettered at once.
//! - [`FailureClass::Unknown`]: anything else, including a statement timeout
//!   (57014: the message may be what makes it slow) and a unique violation
//!   (23505) on a primary key or the outbox's event id — two replicas writing
//!   the same identity at once, which the retry finds written and
//!   deduplicates: retried up to `CHORUS_MAX_ATTEMPTS`, then dead-lettered
//!   with class `exhausted`.
//! - [`FailureClass::Panic`]: a handler panicked: dead-lettered with class `panic`.
//!
//! Attempts count the non-transient failures of a message only: however long
//! an outage lasted, the first unknown failure after it is attempt 1.

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

/// What becomes of a message after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Put back and tried again after a pause.
    Retry,
    /// Copied to the dead-letter topic with this class, after `attempts`.
    DeadLetter { class: &'static str, attempts: u32 },
}

impl Failure {
    /// Whether this failure counts against `CHORUS_MAX_ATTEMPTS`: a
    /// transient one is the infrastructure's, not the message's.
    pub fn counts_as_attempt(&self) -> bool {
        self.class != FailureClass::Transient
    }

    /// What becomes of a message failing so, which failed `counted_before`
    /// times before (in attempts that count).
    pub fn settle(&self, counted_before: u32, max_attempts: u32) -> Settlement {
        let attempts = counted_before + u32::from(self.counts_as_attempt());
        let class = match self.class {
            FailureClass::Transient => return Settlement::Retry,
            FailureClass::Unknown if attempts < max_attempts => return Settlement::Retry,
            FailureClass::Unknown => "exhausted",
            FailureClass::Panic => "panic",
            FailureClass::Permanent => self.kind,
        };
        Settlement::DeadLetter { class, attempts }
    }

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
                Some(code) => database_class(&code, db.constraint()),
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

/// The class and dead-letter kind of a PostgreSQL error, by its SQLSTATE
/// and, for a unique violation, the constraint it names.
fn database_class(code: &str, constraint: Option<&str>) -> (FailureClass, &'static str) {
    if code == "23505" && constraint.is_some_and(is_identity_key) {
        return (FailureClass::Unknown, "unique_race");
    }
    (sqlstate_class(code), "database")
}

/// Whether a unique constraint holds the identity of an event or order —
/// a primary key (PostgreSQL names it `<table>_pkey`: the inbox's event id,
/// an order's id, a delivery's (order, status, channel)) or the outbox's
/// event id — rather than a value of the message's content (a provider's
/// authorization id, a delivery id). Two replicas handling one event, or two
/// events of one order, at once write the same identity; PostgreSQL raises
/// the violation only once the other transaction committed, so the retry
/// finds its row (the inbox's duplicate, a handler's `ON CONFLICT DO
/// NOTHING` or its own lookup) and deduplicates. A message that repeats an
/// identity for good fails every retry and is dead-lettered `exhausted`.
/// Any other unique key repeats content and stays permanent.
fn is_identity_key(constraint: &str) -> bool {
    constraint.ends_with("_pkey") || constraint == "outbox_event_id_key"
}

/// The class of a PostgreSQL error by its SQLSTATE alone.
pub fn sqlstate_class(code: &str) -> FailureClass {
    match code {
        // serialization failure, deadlock: the transaction lost a race
        "40001" | "40P01" => FailureClass::Transient,
        // admin shutdown, crash shutdown, cannot connect now
        "57P01" | "57P02" | "57P03" => FailureClass::Transient,
        // lock timeout: another transaction holds the row; it lets go
        "55P03" => FailureClass::Transient,
        // statement timeout: a busy database, or a statement this message
        // makes slow; retrying it for ever would stall its partition for ever
        "57014" => FailureClass::Unknown,
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
            ("55P03", Transient),
            ("57014", Unknown), // statement timeout: bounded retries
            ("42P01", Unknown),
            ("XX000", Unknown),
        ] {
            assert_eq!(sqlstate_class(code), class, "{code}");
        }
    }

    #[test]
    fn a_unique_violation_on_an_identity_is_a_race_on_content_a_poison() {
        use FailureClass::*;
        for (constraint, expected) in [
            (Some("inbox_pkey"), (Unknown, "unique_race")),
            (Some("orders_pkey"), (Unknown, "unique_race")),
            (Some("outbox_event_id_key"), (Unknown, "unique_race")),
            (
                Some("sandbox_charges_authorization_id_key"),
                (Permanent, "database"),
            ),
            (Some("deliveries_delivery_id_key"), (Permanent, "database")),
            (None, (Permanent, "database")),
        ] {
            assert_eq!(
                database_class("23505", constraint),
                expected,
                "{constraint:?}"
            );
        }
        // Only a unique violation can be a race: a foreign key or a check on
        // a primary key's table is the content's.
        assert_eq!(
            database_class("23503", Some("orders_pkey")),
            (Permanent, "database")
        );
        assert_eq!(
            database_class("23514", Some("orders_pkey")),
            (Permanent, "database")
        );
    }

    /// Needs the stack's PostgreSQL: the constraint comes from the server's error.
    #[tokio::test]
    async fn postgres_names_the_constraint_that_decides() {
        let db = chorus_platform::testing::TestDb::create(&[]).await;
        sqlx::raw_sql(
            "CREATE TABLE race (id TEXT PRIMARY KEY, provider_id TEXT NOT NULL UNIQUE);
             INSERT INTO race VALUES ('o-1', 'p-1');",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        let insert = |id: &'static str, provider_id: &'static str| {
            sqlx::query("INSERT INTO race VALUES ($1, $2)")
                .bind(id)
                .bind(provider_id)
                .execute(&db.pool)
        };
        let same_id = Failure::from(insert("o-1", "p-2").await.unwrap_err());
        assert_eq!(
            (same_id.class, same_id.kind),
            (FailureClass::Unknown, "unique_race")
        );
        let same_content = Failure::from(insert("o-2", "p-1").await.unwrap_err());
        assert_eq!(
            (same_content.class, same_content.kind),
            (FailureClass::Permanent, "database")
        );
        let timed_out = Failure::from(
            sqlx::raw_sql("SET statement_timeout = 10; SELECT pg_sleep(1)")
                .execute(&db.pool)
                .await
                .unwrap_err(),
        );
        assert_eq!(timed_out.class, FailureClass::Unknown, "{timed_out}");
    }

    #[test]
    fn transient_failures_cost_no_attempt() {
        let outage = Failure::transient("connection", "the database is down");
        let unknown = Failure::unknown("database", "nobody knows this one");
        // However long the outage, the message keeps its attempts.
        assert_eq!(outage.settle(0, 3), Settlement::Retry);
        assert!(!outage.counts_as_attempt());
        assert_eq!(unknown.settle(0, 3), Settlement::Retry);
        assert_eq!(unknown.settle(1, 3), Settlement::Retry);
        assert_eq!(
            unknown.settle(2, 3),
            Settlement::DeadLetter {
                class: "exhausted",
                attempts: 3
            }
        );
        assert_eq!(
            Failure::permanent("wrong_topic", "x").settle(0, 3),
            Settlement::DeadLetter {
                class: "wrong_topic",
                attempts: 1
            }
        );
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
