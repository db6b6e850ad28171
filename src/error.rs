//! The one map from internal errors to what a client sees.
//!
//! Every failure a request can meet becomes an [`ApiError`]; [`ApiError::class`] is the single,
//! exhaustive function that decides its HTTP status and stable error code. HTTP bodies are
//! `{error, code, parameter?}`; WebSocket errors are `{type: "error", requestId, status, code}`
//! with the same status and code. The text a client sees is safe to show; the full cause is
//! logged by whoever turns the error into a response.

use http::StatusCode;

use crate::registry::RegistryError;
use crate::runtime::RuntimeError;
use crate::store::StoreError;

/// A failure on its way to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A parameter is missing or malformed; `parameter` names it when known.
    #[error("{message}")]
    InvalidParameter {
        message: String,
        parameter: Option<String>,
    },
    /// The body is not the JSON the route expects.
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    /// No usable bearer token: missing, malformed, badly signed, expired, unknown key.
    #[error("{0}")]
    Unauthenticated(String),
    /// The token is valid but lacks a scope the route needs.
    #[error("missing scope {0}")]
    MissingScope(String),
    /// `x-statebacked-act` was sent with a token that may not impersonate.
    #[error("acting as another user requires an admin token")]
    ActAsForbidden,
    /// The machine's `allowRead` or `allowWrite` said no.
    #[error("rejected by machine authorizer")]
    RejectedByAuthorizer,
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with the current state (duplicate create, paused instance,
    /// machine with instances).
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// An uploaded machine bundle is over a size limit; `what` is `gzipped` or `unzipped`.
    #[error("{what} machine bundle is larger than {limit} bytes")]
    BundleTooLarge { what: &'static str, limit: usize },
    /// The multipart upload's signature fields do not match the server's secret.
    #[error("{0}")]
    UploadForbidden(String),
    /// No chain of migrations leads to the requested version (migrations are not supported,
    /// so only the instance's own version is reachable).
    #[error("{0}")]
    NoMigrationPath(String),
    /// An instance kept changing under concurrent writers elsewhere; retrying may succeed.
    #[error("{0}")]
    Contended(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A bound on what one client may hold was reached (e.g. subscriptions on one WebSocket).
    #[error("{0}")]
    LimitExceeded(String),
    /// The machine runtime refused or failed the call.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server is shutting down and takes no new work.
    #[error("server is shutting down")]
    ShuttingDown,
    /// A bug or an unexpected failure; details are only logged.
    #[error("internal error")]
    Internal(String),
}

/// What the client sees of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorClass {
    pub status: StatusCode,
    pub code: &'static str,
    /// Expected errors are logged at debug, unexpected ones at error.
    pub expected: bool,
}

const fn class(status: StatusCode, code: &'static str, expected: bool) -> ErrorClass {
    ErrorClass {
        status,
        code,
        expected,
    }
}

impl ApiError {
    pub fn invalid(parameter: &str, message: impl Into<String>) -> Self {
        ApiError::InvalidParameter {
            message: message.into(),
            parameter: Some(parameter.to_owned()),
        }
    }

    /// The exhaustive map: status, stable code, and whether the error is expected.
    pub fn class(&self) -> ErrorClass {
        use StatusCode as S;
        match self {
            ApiError::InvalidParameter { .. } => class(S::BAD_REQUEST, "invalid-parameter", true),
            ApiError::MalformedJson(_) => class(S::BAD_REQUEST, "invalid-parameter", true),
            ApiError::Unauthenticated(_) => class(S::UNAUTHORIZED, "unauthorized", true),
            ApiError::MissingScope(_) => class(S::FORBIDDEN, "missing-scope", true),
            ApiError::ActAsForbidden => class(S::FORBIDDEN, "missing-scope", true),
            ApiError::RejectedByAuthorizer => {
                class(S::FORBIDDEN, "rejected-by-machine-authorizer", true)
            }
            ApiError::NotFound(_) => class(S::NOT_FOUND, "not-found", true),
            ApiError::Conflict(_) => class(S::CONFLICT, "invalid-state", true),
            ApiError::PayloadTooLarge { .. } => {
                class(S::PAYLOAD_TOO_LARGE, "payload-too-large", true)
            }
            ApiError::BundleTooLarge { .. } => {
                class(S::PAYLOAD_TOO_LARGE, "payload-too-large", true)
            }
            ApiError::UploadForbidden(_) => class(S::FORBIDDEN, "invalid-upload-signature", true),
            ApiError::NoMigrationPath(_) => class(S::BAD_REQUEST, "no-migration-path", true),
            ApiError::Contended(_) => class(S::SERVICE_UNAVAILABLE, "instance-contended", true),
            ApiError::MethodNotAllowed => class(S::METHOD_NOT_ALLOWED, "method-not-allowed", true),
            ApiError::LimitExceeded(_) => class(S::TOO_MANY_REQUESTS, "limit-exceeded", true),
            ApiError::Runtime(e) => match e {
                RuntimeError::InvalidBundle(_) => class(S::BAD_REQUEST, "invalid-bundle", true),
                RuntimeError::BundleTooLarge { .. } => {
                    class(S::PAYLOAD_TOO_LARGE, "payload-too-large", true)
                }
                RuntimeError::MachineThrew(_) => {
                    class(S::UNPROCESSABLE_ENTITY, "machine-error", true)
                }
                RuntimeError::Deadline(_) => {
                    class(S::UNPROCESSABLE_ENTITY, "machine-timeout", true)
                }
                RuntimeError::OutOfMemory => {
                    class(S::UNPROCESSABLE_ENTITY, "machine-out-of-memory", true)
                }
                RuntimeError::ContextTooLarge { .. } => {
                    class(S::PAYLOAD_TOO_LARGE, "context-too-large", true)
                }
                RuntimeError::BadInput(_) => class(S::BAD_REQUEST, "invalid-parameter", true),
                RuntimeError::Trap(_) => class(S::UNPROCESSABLE_ENTITY, "machine-trap", true),
                RuntimeError::Internal(_) => class(S::INTERNAL_SERVER_ERROR, "internal", false),
                RuntimeError::TooManyPinned { .. } => {
                    class(S::SERVICE_UNAVAILABLE, "machine-busy", true)
                }
                RuntimeError::GuestLost(_) => class(S::UNPROCESSABLE_ENTITY, "machine-trap", true),
                RuntimeError::Throttled => class(S::SERVICE_UNAVAILABLE, "machine-busy", true),
            },
            ApiError::Store(e) => match e {
                StoreError::Unknown => class(S::SERVICE_UNAVAILABLE, "store-unavailable", false),
                StoreError::Unavailable(_) => {
                    class(S::SERVICE_UNAVAILABLE, "store-unavailable", false)
                }
                StoreError::Backend(_) => class(S::INTERNAL_SERVER_ERROR, "internal", false),
                StoreError::Corrupt(_) => class(S::INTERNAL_SERVER_ERROR, "internal", false),
                StoreError::InvalidCursor => class(S::BAD_REQUEST, "invalid-parameter", true),
            },
            ApiError::ShuttingDown => class(S::SERVICE_UNAVAILABLE, "shutting-down", true),
            ApiError::Internal(_) => class(S::INTERNAL_SERVER_ERROR, "internal", false),
        }
    }

    /// The text a client may see. Unexpected errors never leak their cause.
    pub fn public_message(&self) -> String {
        if self.class().expected {
            self.to_string()
        } else {
            "internal error".to_owned()
        }
    }

    /// The offending parameter, for 400 bodies.
    pub fn parameter(&self) -> Option<&str> {
        match self {
            ApiError::InvalidParameter { parameter, .. } => parameter.as_deref(),
            _ => None,
        }
    }

    /// The JSON body of an HTTP error: `{error, code, parameter?}`.
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "error": self.public_message(),
            "code": self.class().code,
        });
        if let Some(p) = self.parameter() {
            body["parameter"] = p.into();
        }
        body
    }
}

impl From<crate::ids::InvalidName> for ApiError {
    fn from(e: crate::ids::InvalidName) -> Self {
        ApiError::invalid(e.field, e.to_string())
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::InstanceNotFound(key) => ApiError::NotFound(format!("instance {key}")),
            RegistryError::AlreadyExists(_) | RegistryError::Paused(_) => {
                ApiError::Conflict(e.to_string())
            }
            RegistryError::VersionNotFound { machine, version } => {
                ApiError::NotFound(format!("machine version {version} of machine {machine}"))
            }
            RegistryError::Rejected => ApiError::RejectedByAuthorizer,
            RegistryError::Contended { .. } => ApiError::Contended(e.to_string()),
            RegistryError::MissingCode(_) | RegistryError::TaskFailed(_) => {
                ApiError::Internal(e.to_string())
            }
            RegistryError::Runtime(e) => ApiError::Runtime(e),
            RegistryError::Store(e) => ApiError::Store(e),
            RegistryError::ShuttingDown => ApiError::ShuttingDown,
        }
    }
}
