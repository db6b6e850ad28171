//! Metrics of `fetch` calls made by machine code: how each ended, and how long it took.

use std::time::Duration;

use ::metrics::{counter, describe_counter, describe_histogram, histogram};

pub const REQUESTS_TOTAL: &str = "statewire_fetch_requests_total";
pub const DURATION_SECONDS: &str = "statewire_fetch_duration_seconds";

pub const NAMES: &[&str] = &[REQUESTS_TOTAL, DURATION_SECONDS];

/// How one `fetch` ended; the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response with a status below 400.
    Ok,
    /// A response with a status of 400 or more (still `ok: true` for the machine).
    HttpError,
    /// The address policy refused every address of a host.
    Refused,
    Timeout,
    /// The response body was over the size limit.
    TooLarge,
    /// The request itself was malformed: no URL, another scheme, a bad header, a body too large.
    Invalid,
    /// Resolution, connection, TLS or HTTP failed, or too many redirects.
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Ok,
        Outcome::HttpError,
        Outcome::Refused,
        Outcome::Timeout,
        Outcome::TooLarge,
        Outcome::Invalid,
        Outcome::Failed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::HttpError => "http_error",
            Outcome::Refused => "refused",
            Outcome::Timeout => "timeout",
            Outcome::TooLarge => "too_large",
            Outcome::Invalid => "invalid",
            Outcome::Failed => "failed",
        }
    }
}

/// One `fetch` ended with `outcome`, `elapsed` after the machine asked for it.
pub fn finished(outcome: Outcome, elapsed: Duration) {
    let o = outcome.label();
    counter!(REQUESTS_TOTAL, "outcome" => o).increment(1);
    histogram!(DURATION_SECONDS, "outcome" => o).record(elapsed.as_secs_f64());
}

pub(super) fn describe() {
    describe_counter!(
        REQUESTS_TOTAL,
        "fetch calls made by machine code, by outcome"
    );
    describe_histogram!(
        DURATION_SECONDS,
        "time of one fetch from machine code, redirects and the whole body included, by outcome"
    );
    for outcome in Outcome::ALL {
        counter!(REQUESTS_TOTAL, "outcome" => outcome.label()).increment(0);
    }
}
