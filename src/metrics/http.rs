//! Metrics of the HTTP API: requests by route pattern, method and status, and their latency.

use std::time::Duration;

use ::metrics::{counter, describe_counter, describe_histogram, histogram, SharedString};
use http::{Method, StatusCode};

pub const REQUESTS_TOTAL: &str = "statewire_http_requests_total";
pub const REQUEST_DURATION_SECONDS: &str = "statewire_http_request_duration_seconds";

pub const NAMES: &[&str] = &[REQUESTS_TOTAL, REQUEST_DURATION_SECONDS];

/// The `route` value of requests whose path matches no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The method as a label: the standard methods by name, anything else as `other`, so a
/// client cannot mint label values.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_label(status: StatusCode) -> SharedString {
    match status.canonical_reason() {
        Some(_) => SharedString::from(status.as_u16().to_string()),
        None => SharedString::const_str("other"),
    }
}

/// A request to `route` (the route's pattern, e.g. `/machines/:machineName`, never the path)
/// was answered with `status`, `elapsed` after it arrived. For `/rt` this is the upgrade's
/// answer, not the life of the connection.
pub fn request_finished(
    route: &'static str,
    method: &Method,
    status: StatusCode,
    elapsed: Duration,
) {
    let method = method_label(method);
    counter!(REQUESTS_TOTAL, "route" => route, "method" => method, "status" => status_label(status))
        .increment(1);
    histogram!(REQUEST_DURATION_SECONDS, "route" => route, "method" => method)
        .record(elapsed.as_secs_f64());
}

pub(super) fn describe() {
    describe_counter!(
        REQUESTS_TOTAL,
        "HTTP requests answered, by route pattern, method and status"
    );
    describe_histogram!(
        REQUEST_DURATION_SECONDS,
        "time from a request's arrival to its response, by route pattern and method"
    );
}
