//! What handlers answer, and how it becomes an HTTP response.
//!
//! The State Backed client never parses 201 and 204 bodies and always parses other 2xx bodies
//! as JSON, so a handler answers either [`Reply::Json`] (200) or an empty 201/204.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use serde::Serialize;

use super::{router, Body};
use crate::error::ApiError;

/// A handler's successful answer.
#[derive(Debug)]
pub(super) enum Reply {
    /// 200 with a JSON body, already serialized.
    Json(Bytes),
    /// 201, no body.
    Created,
    /// 204, no body.
    NoContent,
}

impl Reply {
    /// 200 with `value` serialized as JSON (once, straight to bytes).
    pub fn json(value: impl Serialize) -> Result<Reply, ApiError> {
        serde_json::to_vec(&value)
            .map(|bytes| Reply::Json(bytes.into()))
            .map_err(|e| ApiError::Internal(format!("response does not serialize: {e}")))
    }

    /// A listing page: `{<field>: items, cursor?}`, the cursor only when another page exists.
    pub fn page<T: Serialize>(
        field: &str,
        items: Vec<T>,
        cursor: Option<String>,
    ) -> Result<Reply, ApiError> {
        let mut out = serde_json::Map::new();
        let items = serde_json::to_value(items)
            .map_err(|e| ApiError::Internal(format!("response does not serialize: {e}")))?;
        out.insert(field.to_owned(), items);
        if let Some(cursor) = cursor {
            out.insert("cursor".to_owned(), cursor.into());
        }
        Reply::json(out)
    }

    pub fn into_response(self) -> Response<Body> {
        match self {
            Reply::Json(bytes) => json_bytes(StatusCode::OK, bytes),
            Reply::Created => empty(StatusCode::CREATED),
            Reply::NoContent => empty(StatusCode::NO_CONTENT),
        }
    }
}

/// A JSON response with `content-type: application/json`.
pub(super) fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    json_bytes(
        status,
        serde_json::to_vec(value)
            .unwrap_or_else(|_| b"{}".to_vec())
            .into(),
    )
}

fn json_bytes(status: StatusCode, bytes: Bytes) -> Response<Body> {
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
pub(crate) fn error(e: &ApiError) -> Response<Body> {
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
