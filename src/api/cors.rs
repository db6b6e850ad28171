//! CORS for browser clients.
//!
//! Auth is a bearer header, never a cookie, so responses never allow credentials and a
//! wildcard origin is safe. Preflights (`OPTIONS`) get the methods and the request headers the
//! State Backed client sends; every response to an allowed origin gets
//! `access-control-allow-origin`. Requests from an origin that is not allowed are still
//! answered, without CORS headers, so the browser withholds the response from the page.

use http::{HeaderValue, Response};

use super::Body;
use crate::config::CorsConfig;

const ALLOW_METHODS: &str = "GET, POST, PUT, DELETE, OPTIONS";
const ALLOW_HEADERS: &str = "authorization, content-type, x-statebacked-org-id, x-statebacked-act";
/// How long a browser may reuse a preflight answer.
const MAX_AGE_SECS: &str = "600";

/// Adds the CORS headers `origin` is entitled to.
pub(super) fn decorate(
    cors: &CorsConfig,
    origin: Option<&HeaderValue>,
    preflight: bool,
    response: &mut Response<Body>,
) {
    let Some(origin) = origin else {
        return;
    };
    let any = cors.allowed_origins.iter().any(|o| o == "*");
    let listed = || {
        origin
            .to_str()
            .is_ok_and(|o| cors.allowed_origins.iter().any(|allowed| allowed == o))
    };
    let headers = response.headers_mut();
    if any {
        headers.insert(
            http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    } else if listed() {
        headers.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.append(http::header::VARY, HeaderValue::from_static("origin"));
    } else {
        headers.append(http::header::VARY, HeaderValue::from_static("origin"));
        return;
    }
    if preflight {
        headers.insert(
            http::header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        headers.insert(
            http::header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        headers.insert(
            http::header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE_SECS),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decorated(allowed: &[&str], origin: &str, preflight: bool) -> Response<Body> {
        let cors = CorsConfig {
            allowed_origins: allowed.iter().map(|s| (*s).to_owned()).collect(),
        };
        let mut r = Response::new(Body::default());
        decorate(
            &cors,
            Some(&HeaderValue::from_str(origin).unwrap()),
            preflight,
            &mut r,
        );
        r
    }

    #[test]
    fn any_origin_gets_a_wildcard_and_preflights_get_methods_and_headers() {
        let r = decorated(&["*"], "https://app.example", true);
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], "*");
        assert_eq!(h["access-control-allow-methods"], ALLOW_METHODS);
        assert!(h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("x-statebacked-act"));
        assert!(h.get("access-control-allow-credentials").is_none());
    }

    #[test]
    fn listed_origins_are_echoed_and_others_get_nothing() {
        let r = decorated(&["https://a.example"], "https://a.example", false);
        assert_eq!(
            r.headers()["access-control-allow-origin"],
            "https://a.example"
        );
        assert!(r.headers().get("access-control-allow-methods").is_none());
        let r = decorated(&["https://a.example"], "https://evil.example", true);
        assert!(r.headers().get("access-control-allow-origin").is_none());
        assert!(r.headers().get("access-control-allow-methods").is_none());
    }
}
