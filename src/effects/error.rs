//! Why a `fetch` failed: the message the machine sees, and the outcome the metrics count.

use crate::metrics::fetch::Outcome;

use super::policy::Denial;

/// A failed `fetch`. Its text is the `error` of the `ok: false` result, so it is written for
/// machine authors: it names the host and the setting to change, never internal details.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// The request the machine made cannot be sent as it is.
    #[error("{0}")]
    Invalid(String),
    #[error("request body larger than {limit} bytes (effects.fetch.max_request_bytes)")]
    RequestTooLarge { limit: u64 },
    #[error("fetch to {host} refused: {denial} (see effects.fetch.allow)")]
    Refused { host: String, denial: Denial },
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("cannot connect to {host}: {reason}")]
    Connect { host: String, reason: String },
    #[error("tls handshake with {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error("http exchange with {host} failed: {reason}")]
    Http { host: String, reason: String },
    #[error("redirect from {host} failed: {reason}")]
    Redirect { host: String, reason: String },
    #[error("more than {max} redirects (effects.fetch.max_redirects)")]
    TooManyRedirects { max: u32 },
    #[error("fetch to {host} timed out after {ms} ms (effects.fetch.timeout_ms)")]
    Timeout { host: String, ms: u64 },
    #[error("response larger than {limit} bytes (effects.fetch.max_response_bytes)")]
    TooLarge { limit: u64 },
}

impl FetchError {
    /// The `outcome` label this failure is counted under.
    pub fn outcome(&self) -> Outcome {
        match self {
            FetchError::Invalid(_) | FetchError::RequestTooLarge { .. } => Outcome::Invalid,
            FetchError::Refused { .. } => Outcome::Refused,
            FetchError::Timeout { .. } => Outcome::Timeout,
            FetchError::TooLarge { .. } => Outcome::TooLarge,
            FetchError::Resolve { .. }
            | FetchError::Connect { .. }
            | FetchError::Tls { .. }
            | FetchError::Http { .. }
            | FetchError::Redirect { .. }
            | FetchError::TooManyRedirects { .. } => Outcome::Failed,
        }
    }
}
