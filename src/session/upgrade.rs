//! `GET /rt?token=…`: the WebSocket handshake and the token check, before switching protocols.
//!
//! Refusals are ordinary HTTP error responses with the API's JSON body: 400 when the request
//! is not a WebSocket handshake, 401 when the token is missing, invalid, expired or about to
//! expire. The `x-statebacked-org-id` parameter the official client may add is ignored: this
//! server serves one organization, implied by the token's key.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use base64::Engine as _;
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::{connection, Shared, MIN_TOKEN_LIFETIME};
use crate::api::{error_response, ApiState, Body};
use crate::auth::jwt::EXP_LEEWAY_S;
use crate::auth::Principal;
use crate::clock::now_ms;
use crate::error::ApiError;
use crate::ids::ConnId;

pub(super) async fn accept(
    shared: &Arc<Shared>,
    api: Arc<ApiState>,
    mut request: Request<Incoming>,
) -> Response<Body> {
    let accept_key = match handshake_key(request.version(), request.headers()) {
        Ok(key) => key,
        Err(e) => return refuse(shared, &e),
    };
    let token = query_param(request.uri().query().unwrap_or(""), "token");
    let principal = match api.auth.authenticate(token.as_deref(), None).await {
        Ok(principal) => principal,
        Err(e) => return refuse(shared, &e),
    };
    if let Err(e) = check_lifetime(&principal, now_ms()) {
        return refuse(shared, &e);
    }
    let on_upgrade = hyper::upgrade::on(&mut request);
    let id = ConnId(shared.next_conn.fetch_add(1, Ordering::Relaxed));
    tokio::spawn(connection::serve(
        shared.clone(),
        api,
        Arc::new(principal),
        on_upgrade,
        id,
    ));
    switching_protocols(&accept_key)
}

fn refuse(shared: &Shared, e: &ApiError) -> Response<Body> {
    shared.counters.refused();
    tracing::debug!(status = e.class().status.as_u16(), error = %e, "websocket upgrade refused");
    error_response(e)
}

/// The `Sec-WebSocket-Accept` value for a valid handshake (RFC 6455 §4.2.1).
fn handshake_key(version: Version, headers: &HeaderMap) -> Result<String, ApiError> {
    let not_websocket =
        |why: &str| ApiError::invalid("upgrade", format!("not a WebSocket handshake: {why}"));
    if version != Version::HTTP_11 {
        return Err(not_websocket("HTTP/1.1 is required"));
    }
    if !has_token(headers, header::UPGRADE, "websocket") {
        return Err(not_websocket("Upgrade: websocket is missing"));
    }
    if !has_token(headers, header::CONNECTION, "upgrade") {
        return Err(not_websocket("Connection: upgrade is missing"));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(not_websocket("Sec-WebSocket-Version must be 13"));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(HeaderValue::as_bytes)
        .ok_or_else(|| not_websocket("Sec-WebSocket-Key is missing"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|_| not_websocket("Sec-WebSocket-Key is not base64"))?;
    if decoded.len() != 16 {
        return Err(not_websocket("Sec-WebSocket-Key must encode 16 bytes"));
    }
    Ok(derive_accept_key(key))
}

/// True when a comma-separated header lists `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Refuses a token whose validity (its `exp` plus the leeway verification allows) ends within
/// [`MIN_TOKEN_LIFETIME`]: the connection would be closed for expiry almost at once.
fn check_lifetime(principal: &Principal, now_ms: i64) -> Result<(), ApiError> {
    let Some(ends_ms) = session_end_ms(principal) else {
        return Ok(());
    };
    let min_ms = MIN_TOKEN_LIFETIME.as_millis() as i64;
    if ends_ms - now_ms < min_ms {
        return Err(ApiError::Unauthenticated("token expired".into()));
    }
    Ok(())
}

/// When a connection authenticated by `principal` must close: `exp` plus the leeway the
/// token check allows, so that a client reconnecting with the same token is refused.
pub(super) fn session_end_ms(principal: &Principal) -> Option<i64> {
    let exp_s = principal.expires_at?;
    Some(
        exp_s
            .saturating_add(EXP_LEEWAY_S as i64)
            .saturating_mul(1000),
    )
}

fn switching_protocols(accept_key: &str) -> Response<Body> {
    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Ok(v) = HeaderValue::from_str(accept_key) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    response
}

/// The first value of `name` in a query string, `application/x-www-form-urlencoded` decoded
/// (what `URLSearchParams` produces).
fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| form_decode(k).as_deref() == Some(name))
        .and_then(|(_, v)| form_decode(v))
}

/// `+` is a space and `%XX` a byte; `None` for a bad escape or bytes that are not UTF-8.
fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    const GOOD: &[(&str, &str)] = &[
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn a_valid_handshake_gets_the_rfc_accept_key() {
        // The example of RFC 6455 §1.3.
        let key = handshake_key(Version::HTTP_11, &headers(GOOD)).unwrap();
        assert_eq!(key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn requests_that_are_not_websocket_handshakes_are_refused_with_400() {
        for skip in 0..GOOD.len() {
            let partial: Vec<_> = GOOD
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, p)| *p)
                .collect();
            let err = handshake_key(Version::HTTP_11, &headers(&partial)).unwrap_err();
            assert_eq!(err.class().status, StatusCode::BAD_REQUEST);
        }
        let mut bad_version = headers(GOOD);
        bad_version.insert("sec-websocket-version", HeaderValue::from_static("8"));
        assert!(handshake_key(Version::HTTP_11, &bad_version).is_err());
        let mut short_key = headers(GOOD);
        short_key.insert("sec-websocket-key", HeaderValue::from_static("c2hvcnQ="));
        assert!(handshake_key(Version::HTTP_11, &short_key).is_err());
        assert!(handshake_key(Version::HTTP_10, &headers(GOOD)).is_err());
    }

    #[test]
    fn the_token_is_read_from_a_form_encoded_query() {
        let q = "x-statebacked-org-id=org_1&token=a.b-c_d.e%2Bf&other";
        assert_eq!(query_param(q, "token").as_deref(), Some("a.b-c_d.e+f"));
        assert_eq!(
            query_param(q, "x-statebacked-org-id").as_deref(),
            Some("org_1")
        );
        assert_eq!(query_param(q, "other").as_deref(), Some(""));
        assert_eq!(query_param("a=1+2", "a").as_deref(), Some("1 2"));
        assert_eq!(query_param("token=%zz", "token"), None);
        assert_eq!(query_param("", "token"), None);
    }

    fn principal(expires_at: Option<i64>) -> Principal {
        Principal {
            key_id: crate::ids::KeyId::generate(),
            scopes: BTreeSet::new(),
            auth_context: serde_json::json!({}),
            expires_at,
        }
    }

    #[test]
    fn tokens_about_to_expire_are_refused_at_upgrade() {
        let now_ms = 1_700_000_000_000;
        let exp_s = now_ms / 1000;
        // exp is now: the leeway still leaves 30 s, more than the minimum.
        assert!(check_lifetime(&principal(Some(exp_s)), now_ms).is_ok());
        // exp passed 28 s ago: 2 s left, under the minimum.
        let err = check_lifetime(&principal(Some(exp_s - 28)), now_ms).unwrap_err();
        assert_eq!(err.class().status, StatusCode::UNAUTHORIZED);
        assert!(check_lifetime(&principal(None), now_ms).is_ok());
        assert_eq!(session_end_ms(&principal(Some(10))), Some(40_000));
    }
}
