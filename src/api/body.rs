//! Request bodies under a size cap, JSON decoding, and query strings.
//!
//! The cap is enforced while reading: a declared `content-length` above it is refused before
//! anything is read, and a body that grows past it (chunked, or lying about its length) is
//! cut off at the first frame that crosses it. Nothing beyond the cap is buffered.

use bytes::Bytes;
use http::{HeaderMap, Request, Uri};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::store::PageRequest;

/// Items per page of every listing.
pub(super) const PAGE_SIZE: usize = 100;

/// The whole body, refused with 413 once it exceeds `limit_bytes`.
pub(super) async fn read_capped(
    request: Request<Incoming>,
    limit_bytes: usize,
) -> Result<Bytes, ApiError> {
    if declared_length(request.headers()).is_some_and(|n| n > limit_bytes as u64) {
        return Err(ApiError::PayloadTooLarge { limit: limit_bytes });
    }
    match Limited::new(request.into_body(), limit_bytes)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => {
            Err(ApiError::PayloadTooLarge { limit: limit_bytes })
        }
        Err(e) => Err(ApiError::invalid(
            "body",
            format!("request body could not be read: {e}"),
        )),
    }
}

/// The `content-length` the client declared, if any.
pub(super) fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// A JSON body that must be present.
pub(super) async fn json<T: DeserializeOwned>(
    request: Request<Incoming>,
    limit_bytes: usize,
) -> Result<T, ApiError> {
    let bytes = read_capped(request, limit_bytes).await?;
    if is_blank(&bytes) {
        return Err(ApiError::MalformedJson("the body is empty".to_owned()));
    }
    decode(&bytes)
}

/// A JSON body that may be absent (the official client sends none on some routes); an empty
/// body reads as `T::default()`.
pub(super) async fn json_or_default<T: DeserializeOwned + Default>(
    request: Request<Incoming>,
    limit_bytes: usize,
) -> Result<T, ApiError> {
    let bytes = read_capped(request, limit_bytes).await?;
    if is_blank(&bytes) {
        return Ok(T::default());
    }
    decode(&bytes)
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

/// Malformed JSON and JSON of the wrong shape are both 400 `invalid-parameter`.
pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::InvalidParameter {
            message: format!("request body: {e}"),
            parameter: None,
        },
        serde_json::error::Category::Syntax
        | serde_json::error::Category::Eof
        | serde_json::error::Category::Io => ApiError::MalformedJson(e.to_string()),
    })
}

/// The first value of query parameter `name`, percent-decoded; a bare `?name` reads as "".
pub(super) fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

/// The page a listing request asks for: its `cursor`, and [`PAGE_SIZE`] items.
pub(super) fn page(uri: &Uri) -> PageRequest {
    PageRequest {
        cursor: query_param(uri, "cursor").filter(|c| !c.is_empty()),
        limit: PAGE_SIZE,
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; malformed
/// escapes are kept as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_found_and_decoded() {
        let uri: Uri = "/machines/m/v?gzip&cursor=a%2Bb+c".parse().unwrap();
        assert_eq!(query_param(&uri, "gzip").as_deref(), Some(""));
        assert_eq!(query_param(&uri, "cursor").as_deref(), Some("a+b c"));
        assert_eq!(query_param(&uri, "missing"), None);
        let uri: Uri = "/x?c=%zz%4".parse().unwrap();
        assert_eq!(query_param(&uri, "c").as_deref(), Some("%zz%4"));
    }

    #[test]
    fn empty_cursor_means_first_page() {
        let uri: Uri = "/machines?cursor=".parse().unwrap();
        assert_eq!(page(&uri).cursor, None);
    }

    #[test]
    fn malformed_json_and_wrong_shapes_are_invalid_parameters() {
        #[derive(Debug, serde::Deserialize)]
        struct Body {
            #[allow(dead_code)]
            slug: String,
        }
        let syntax = decode::<Body>(b"{nope").unwrap_err();
        assert!(matches!(syntax, ApiError::MalformedJson(_)));
        let shape = decode::<Body>(b"{\"slug\": 3}").unwrap_err();
        assert_eq!(shape.class().code, "invalid-parameter");
    }
}
