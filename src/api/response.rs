//! What handlers answer, and how it becomes an HTTP response.
//!
//! The State Backed client never parses 201 and 204 bodies and always parses other 2xx bodies
//! as JSON, so a handler answers either [`Reply::Json`] (200) or an empty 201/204.

use http::{HeaderValue, Response, StatusCode};
use serde::Serialize;

use super::{router, Body};
use crate::error::ApiError;

/// A handler's successful answer.
#[derive(Debug)]
pub(super) enum Reply {
    /// 200 with a JSON body.
    Json(serde_json::Value),
    /// 201, no body.
    Created,
    /// 204, no body.
    NoContent,
}

impl Reply {
    /// 200 with `value` serialized as JSON.
    pub fn json(value: impl Serialize) -> Result<Reply, ApiError> {
        serde_json::to_value(value)
            .map(Reply::Json)
            .map_err(|e| ApiError::Internal(format!("response does not serialize: {e}")))
    }

    pub fn into_response(self) -> Response<Body> {
        match self {
            Reply::Json(value) => json(StatusCode::OK, &value),
            Reply::Created => empty(StatusCode::CREATED),
            Reply::NoContent => empty(StatusCode::NO_CONTENT),
        }
    }
}

/// A JSON response with `content-type: application/json`.
pub(super) fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A response with no body.
pub(super) fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::default());
    *r.status_mut() = status;
    r
}

/// `{error, code, parameter?}` with the error's status.
pub(super) fn error(e: &ApiError) -> Response<Body> {
    json(e.class().status, &e.body())
}

/// Like [`error`], adding `Allow` to a 405 so the client learns the path's methods.
pub(super) fn error_with_allow(e: &ApiError, path: &str) -> Response<Body> {
    let mut r = error(e);
    if matches!(e, ApiError::MethodNotAllowed) {
        if let Some(allow) = router::allow_header(path).and_then(|a| a.parse().ok()) {
            r.headers_mut().insert(http::header::ALLOW, allow);
        }
    }
    r
}
