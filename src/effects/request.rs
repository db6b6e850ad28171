//! The `request` object of a `fetch` host operation (docs/machine-abi.md, "Host operations"),
//! checked and turned into what the client sends.

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use serde_json::Value;

use super::error::FetchError;
use super::target::Target;

/// Headers the client sets itself; a machine's values for them are ignored, as a browser
/// ignores them in `fetch`.
const MANAGED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
];

/// Methods `fetch` spells in upper case whatever case the code used.
const NORMALISED_METHODS: &[&str] = &["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];

/// A request ready to send.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    pub method: Method,
    pub target: Target,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl FetchRequest {
    /// Reads the `request` object; a body over `max_body_bytes` is refused.
    pub fn parse(request: &Value, max_body_bytes: u64) -> Result<FetchRequest, FetchError> {
        let invalid = |m: String| FetchError::Invalid(m);
        let Some(obj) = request.as_object() else {
            return Err(invalid("the fetch request is not an object".into()));
        };
        let url = match obj.get("url") {
            Some(Value::String(url)) if !url.trim().is_empty() => url,
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(invalid("the fetch request has no url".into()))
            }
            Some(_) => return Err(invalid("the fetch request's url is not a string".into())),
        };
        let target = Target::parse(url).map_err(invalid)?;
        let method = parse_method(obj.get("method"))?;
        let headers = parse_headers(obj.get("headers"))?;
        let body = parse_body(obj.get("body"), obj.get("bodyBase64"))?;
        if body.len() as u64 > max_body_bytes {
            return Err(FetchError::RequestTooLarge {
                limit: max_body_bytes,
            });
        }
        if !body.is_empty() && (method == Method::GET || method == Method::HEAD) {
            return Err(invalid(format!("a {method} request cannot have a body")));
        }
        Ok(FetchRequest {
            method,
            target,
            headers,
            body,
        })
    }
}

fn parse_method(value: Option<&Value>) -> Result<Method, FetchError> {
    let text = match value {
        None | Some(Value::Null) => return Ok(Method::GET),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(FetchError::Invalid("the method is not a string".into())),
    };
    let upper = text.to_ascii_uppercase();
    let text = if NORMALISED_METHODS.contains(&upper.as_str()) {
        upper.as_str()
    } else {
        text
    };
    if matches!(
        text.to_ascii_uppercase().as_str(),
        "CONNECT" | "TRACE" | "TRACK"
    ) {
        return Err(FetchError::Invalid(format!(
            "the {text} method cannot be fetched"
        )));
    }
    Method::from_bytes(text.as_bytes())
        .map_err(|_| FetchError::Invalid(format!("{text:?} is not a valid method")))
}

fn parse_headers(value: Option<&Value>) -> Result<Vec<(HeaderName, HeaderValue)>, FetchError> {
    let pairs: Vec<(&str, &Value)> = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|pair| match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(name), value]) => Ok((name.as_str(), value)),
                _ => Err(FetchError::Invalid(
                    "a header pair is not [name, value]".into(),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(FetchError::Invalid(
                "headers is neither an object nor a list of pairs".into(),
            ))
        }
    };
    let mut headers = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        let Value::String(value) = value else {
            return Err(FetchError::Invalid(format!(
                "the value of header {name:?} is not a string"
            )));
        };
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| FetchError::Invalid(format!("{name:?} is not a valid header name")))?;
        if MANAGED_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let value = HeaderValue::from_str(value.trim()).map_err(|_| {
            FetchError::Invalid(format!("the value of header {name:?} is not valid"))
        })?;
        headers.push((name, value));
    }
    Ok(headers)
}

fn parse_body(text: Option<&Value>, base64: Option<&Value>) -> Result<Bytes, FetchError> {
    match (text, base64) {
        (Some(Value::String(_)), Some(Value::String(_))) => Err(FetchError::Invalid(
            "the request has both body and bodyBase64".into(),
        )),
        (Some(Value::String(s)), _) => Ok(Bytes::from(s.clone().into_bytes())),
        (_, Some(Value::String(b64))) => base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map(Bytes::from)
            .map_err(|_| FetchError::Invalid("bodyBase64 is not valid base64".into())),
        (None | Some(Value::Null), None | Some(Value::Null)) => Ok(Bytes::new()),
        _ => Err(FetchError::Invalid(
            "body must be a string (or bodyBase64 a base64 string)".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: Value) -> Result<FetchRequest, String> {
        FetchRequest::parse(&v, 16).map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_request_is_read() {
        let r = parse(json!({
            "method": "post", "url": "http://h/p",
            "headers": {"content-type": "text/plain", "host": "evil", "x-a": "1"},
            "body": "hi"
        }))
        .unwrap();
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.target.host, "h");
        let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["content-type", "x-a"]);
        assert_eq!(&r.body[..], b"hi");
    }

    #[test]
    fn binary_bodies_and_header_pairs_are_read() {
        let r = parse(json!({
            "method": "PUT", "url": "https://h/",
            "headers": [["x-b", "2"]], "body": null, "bodyBase64": "AAEC/w=="
        }))
        .unwrap();
        assert_eq!(&r.body[..], &[0, 1, 2, 255]);
        assert_eq!(r.headers[0].0.as_str(), "x-b");
    }

    #[test]
    fn methods_are_normalised_like_fetch_and_unsafe_ones_refused() {
        let m = |m: &str| parse(json!({"method": m, "url": "http://h/"}));
        assert_eq!(m("delete").unwrap().method, Method::DELETE);
        assert_eq!(m("patch").unwrap().method.as_str(), "patch");
        assert!(m("connect").unwrap_err().contains("cannot be fetched"));
        assert!(m("TRACE").is_err());
        assert!(m("bad method").is_err());
    }

    #[test]
    fn malformed_requests_say_what_is_wrong() {
        let cases = [
            (json!("http://h/"), "not an object"),
            (json!({}), "has no url"),
            (json!({"url": 5}), "not a string"),
            (json!({"url": "ftp://h/"}), "only http and https"),
            (
                json!({"url": "http://h/", "headers": {"x": 1}}),
                "not a string",
            ),
            (
                json!({"url": "http://h/", "headers": {"a b": "1"}}),
                "header name",
            ),
            (json!({"url": "http://h/", "bodyBase64": "%%%"}), "base64"),
            (
                json!({"url": "http://h/", "body": "x"}),
                "GET request cannot",
            ),
            (
                json!({"url": "http://h/", "method": "POST", "body": "x".repeat(17)}),
                "larger than 16 bytes",
            ),
        ];
        for (req, expected) in cases {
            let err = parse(req.clone()).unwrap_err();
            assert!(err.contains(expected), "{req}: {err}");
        }
    }
}
