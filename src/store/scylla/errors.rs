//! How driver failures become store errors, and which of them leave a write's outcome unknown.
//!
//! The distinction that matters is whether the request may have reached the replicas: a
//! refusal before execution (no connection, node unavailable, overloaded) means nothing was
//! written; a timeout, a broken connection or an unreadable reply after sending means the write
//! may or may not have been applied.

use scylla::errors::{
    DbError, ExecutionError, NewSessionError, PagerExecutionError, PrepareError,
    RequestAttemptError,
};

use crate::store::StoreError;

/// What a failed request did to the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    /// Nothing was applied; the same request may succeed later.
    NotApplied(String),
    /// The request may have been applied.
    Uncertain(String),
    /// Nothing was applied and repeating the request will not help (malformed statement,
    /// missing permission, schema mismatch).
    Refused(String),
}

impl Failure {
    /// The store error for a request that is safe to repeat (a read or an idempotent write):
    /// an uncertain outcome is as good as not applied.
    pub(super) fn into_store_error(self) -> StoreError {
        match self {
            Failure::NotApplied(m) | Failure::Uncertain(m) => StoreError::Unavailable(m),
            Failure::Refused(m) => StoreError::Backend(m),
        }
    }

    /// The store error for a lightweight transaction that is not settled by a serial read.
    pub(super) fn into_transaction_error(self) -> StoreError {
        match self {
            Failure::NotApplied(m) => StoreError::Unavailable(m),
            Failure::Uncertain(_) => StoreError::Unknown,
            Failure::Refused(m) => StoreError::Backend(m),
        }
    }
}

/// Classifies a failed execution of one statement named `what`.
pub(super) fn classify(what: &str, e: &ExecutionError) -> Failure {
    let message = format!("{what}: {e}");
    match e {
        ExecutionError::BadQuery(_) | ExecutionError::UseKeyspaceError(_) => {
            Failure::Refused(message)
        }
        ExecutionError::EmptyPlan
        | ExecutionError::PrepareError(_)
        | ExecutionError::ConnectionPoolError(_) => Failure::NotApplied(message),
        ExecutionError::LastAttemptError(attempt) => classify_attempt(attempt, message),
        _ => Failure::Uncertain(message),
    }
}

fn classify_attempt(e: &RequestAttemptError, message: String) -> Failure {
    match e {
        RequestAttemptError::SerializationError(_)
        | RequestAttemptError::CqlRequestSerialization(_)
        | RequestAttemptError::RepreparedIdChanged { .. } => Failure::Refused(message),
        RequestAttemptError::UnableToAllocStreamId => Failure::NotApplied(message),
        RequestAttemptError::DbError(db, _) => classify_db(db, message),
        _ => Failure::Uncertain(message),
    }
}

fn classify_db(e: &DbError, message: String) -> Failure {
    match e {
        DbError::Unavailable { .. }
        | DbError::Overloaded
        | DbError::IsBootstrapping
        | DbError::Unprepared { .. } => Failure::NotApplied(message),
        DbError::RateLimitReached {
            rejected_by_coordinator: true,
            ..
        } => Failure::NotApplied(message),
        DbError::SyntaxError
        | DbError::Invalid
        | DbError::AlreadyExists { .. }
        | DbError::FunctionFailure { .. }
        | DbError::AuthenticationError
        | DbError::Unauthorized
        | DbError::ConfigError
        | DbError::TruncateError
        | DbError::ProtocolError => Failure::Refused(message),
        _ => Failure::Uncertain(message),
    }
}

/// A failed read or idempotent write.
pub(super) fn from_execution(what: &str, e: ExecutionError) -> StoreError {
    classify(what, &e).into_store_error()
}

/// A failed paged read.
pub(super) fn from_pager(what: &str, e: PagerExecutionError) -> StoreError {
    match e {
        PagerExecutionError::NextPageError(e) => {
            StoreError::Unavailable(format!("{what}: reading a page failed: {e}"))
        }
        PagerExecutionError::PrepareError(e) => from_prepare(what, e),
        other => StoreError::Backend(format!("{what}: {other}")),
    }
}

/// A statement the cluster would not prepare: usually a schema older than this build.
pub(super) fn from_prepare(what: &str, e: PrepareError) -> StoreError {
    match &e {
        PrepareError::ConnectionPoolError(_) => {
            StoreError::Unavailable(format!("preparing {what}: {e}"))
        }
        _ => StoreError::Backend(format!(
            "preparing {what} failed ({e}); is the schema applied (statewire schema --apply)?"
        )),
    }
}

/// A session that could not be opened.
pub(super) fn from_new_session(nodes: &[String], e: NewSessionError) -> StoreError {
    StoreError::Unavailable(format!(
        "cannot reach the ScyllaDB cluster at {}: {e}",
        nodes.join(", ")
    ))
}

/// A reply whose shape is not what the statement returns.
pub(super) fn malformed(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: unexpected reply: {e}"))
}

#[cfg(test)]
mod tests {
    use scylla::errors::{BrokenConnectionErrorKind, WriteType};
    use scylla::statement::Consistency;

    use super::*;

    fn db(e: DbError) -> ExecutionError {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(e, "x".into()))
    }

    #[test]
    fn cas_write_timeout_is_uncertain() {
        let e = db(DbError::WriteTimeout {
            consistency: Consistency::LocalSerial,
            received: 1,
            required: 2,
            write_type: WriteType::Cas,
        });
        assert!(matches!(classify("t", &e), Failure::Uncertain(_)));
        assert_eq!(
            classify("t", &e).into_transaction_error().to_string(),
            StoreError::Unknown.to_string()
        );
    }

    #[test]
    fn refusals_before_execution_are_not_applied() {
        let unavailable = db(DbError::Unavailable {
            consistency: Consistency::LocalQuorum,
            required: 2,
            alive: 1,
        });
        assert!(matches!(
            classify("t", &unavailable),
            Failure::NotApplied(_)
        ));
        assert!(matches!(
            classify("t", &db(DbError::Overloaded)),
            Failure::NotApplied(_)
        ));
        assert!(matches!(
            classify("t", &ExecutionError::EmptyPlan),
            Failure::NotApplied(_)
        ));
    }

    #[test]
    fn client_timeouts_and_broken_connections_are_uncertain() {
        let timeout = ExecutionError::RequestTimeout(std::time::Duration::from_secs(1));
        assert!(matches!(classify("t", &timeout), Failure::Uncertain(_)));
        let broken = ExecutionError::LastAttemptError(RequestAttemptError::BrokenConnectionError(
            BrokenConnectionErrorKind::ChannelError.into(),
        ));
        assert!(matches!(classify("t", &broken), Failure::Uncertain(_)));
    }

    #[test]
    fn malformed_statements_are_refused() {
        let e = db(DbError::Invalid);
        assert!(matches!(classify("t", &e), Failure::Refused(_)));
        assert!(matches!(
            classify("t", &e).into_store_error(),
            StoreError::Backend(_)
        ));
    }
}
