//! Verifying bearer tokens signed with a key's secret.
//!
//! Rules, in the order they are checked (each refusal is a [`TokenError`] whose text is safe to
//! show to the caller):
//!
//! 1. The token is three base64url parts separated by dots, at most [`MAX_TOKEN_BYTES`] long.
//! 2. The header's `alg` is exactly `HS256`; anything else (`none`, HS384, HS512, RS256, …) is
//!    refused before any key is looked up, so no algorithm confusion is possible.
//! 3. The header's `kid` names the key (`sbk_…`); a missing kid or an unknown key is refused.
//! 4. The signature is HMAC-SHA256 keyed by the UTF-8 bytes of the whole secret string.
//! 5. `exp` is required and enforced with [`EXP_LEEWAY_S`] of clock skew. `@statebacked/token`
//!    always sets it, so a token without one did not come from a State Backed signer and would
//!    never expire; it is refused. `nbf` is enforced when present.
//! 6. `aud` is not restricted to one value (State Backed tokens say
//!    `https://api.statebacked.dev/`, and a self-hosted server has no audience of its own that
//!    signers know about), but when present it must be a string or an array of strings. `iss`
//!    is arbitrary.
//!
//! The `authContext` is the `act` claim (an object); when `act` has no `sub` and the top level
//! has one, the top-level `sub` is copied in. Without `act` it is `{sub}` when `sub` exists and
//! `{}` otherwise.

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::ids::KeyId;

/// Longest token accepted; real tokens are a few hundred bytes, and a bound keeps a hostile
/// header from costing a large parse.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Clock skew tolerated on `exp` and `nbf`, in seconds. The official client keeps using a
/// token until one second after its `exp`, so a small grace avoids refusing in-flight requests.
pub const EXP_LEEWAY_S: u64 = 30;

/// Why a token was refused. The text names the reason precisely without echoing anything the
/// caller could use to probe keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("missing bearer token")]
    Missing,
    #[error("token is longer than {limit_bytes} bytes")]
    TooLong { limit_bytes: usize },
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg` as sent when it is a short printable name, else a placeholder.
    #[error("unsupported token algorithm {0}: only HS256 is accepted")]
    UnsupportedAlgorithm(String),
    #[error("token header has no kid naming the signing key")]
    MissingKid,
    #[error("unknown signing key {0}")]
    UnknownKey(KeyId),
    #[error("token signature does not match key {0}")]
    BadSignature(KeyId),
    #[error("token expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token has no exp claim")]
    MissingExp,
    /// `exp` is there but is not a whole number of seconds since the epoch that fits 64 bits
    /// (a string, a negative number, `1e300`).
    #[error("token exp claim is not a valid number of seconds")]
    InvalidExp,
}

/// The claims this server reads; anything else in the token is ignored.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    act: Option<Value>,
    #[serde(default)]
    sub: Option<Value>,
    #[serde(default)]
    aud: Option<Value>,
    #[serde(default)]
    exp: Option<Value>,
}

/// What a verified token says about its caller.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    pub auth_context: Value,
    /// `exp`, seconds since epoch.
    pub expires_at: i64,
}

/// Checks the token's shape and header and returns the key that must have signed it.
/// Cheap: no signature work and no store access.
pub fn signing_key_id(token: &str) -> Result<KeyId, TokenError> {
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLong {
            limit_bytes: MAX_TOKEN_BYTES,
        });
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("expected three dot-separated parts"));
    };
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .map_err(|_| TokenError::Malformed("header is not base64url"))?;
    let header: Map<String, Value> = serde_json::from_slice(&header)
        .map_err(|_| TokenError::Malformed("header is not a JSON object"))?;
    match header.get("alg") {
        Some(Value::String(alg)) if alg == "HS256" => {}
        Some(Value::String(alg)) => return Err(TokenError::UnsupportedAlgorithm(printable(alg))),
        _ => return Err(TokenError::Malformed("header has no alg")),
    }
    match header.get("kid") {
        Some(Value::String(kid)) => {
            KeyId::parse(kid).ok_or(TokenError::Malformed("kid is not a key id (sbk_…)"))
        }
        Some(_) => Err(TokenError::Malformed("kid is not a string")),
        None => Err(TokenError::MissingKid),
    }
}

/// Verifies the signature with `key` (the HMAC key of `key_id`) and the time claims, and
/// derives the `authContext`. Call after [`signing_key_id`] has named `key_id`.
pub fn verify(token: &str, key_id: &KeyId, key: &DecodingKey) -> Result<VerifiedToken, TokenError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = EXP_LEEWAY_S;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = false;
    // `exp` is required, but checked below: the library's own presence check also fails on an
    // `exp` it cannot read, which would report a present but invalid claim as missing.
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| {
        match e.into_kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature(key_id.clone()),
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::MissingRequiredClaim(_) => TokenError::MissingExp,
            ErrorKind::InvalidClaimFormat(claim) if claim == "exp" => TokenError::InvalidExp,
            ErrorKind::InvalidClaimFormat(_) => TokenError::Malformed("nbf is not a number"),
            ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
                TokenError::UnsupportedAlgorithm("(header)".to_owned())
            }
            ErrorKind::Json(_) => TokenError::Malformed("claims are not a JSON object"),
            _ => TokenError::Malformed("undecodable token"),
        }
    })?;
    let claims = data.claims;
    check_audience(claims.aud.as_ref())?;
    let expires_at = claims
        .exp
        .as_ref()
        .ok_or(TokenError::MissingExp)?
        .as_f64()
        .ok_or(TokenError::InvalidExp)?
        .floor() as i64;
    let auth_context = auth_context(claims.act, claims.sub)?;
    Ok(VerifiedToken {
        auth_context,
        expires_at,
    })
}

fn check_audience(aud: Option<&Value>) -> Result<(), TokenError> {
    match aud {
        None | Some(Value::String(_)) => Ok(()),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(()),
        Some(_) => Err(TokenError::Malformed(
            "aud must be a string or an array of strings",
        )),
    }
}

fn auth_context(act: Option<Value>, sub: Option<Value>) -> Result<Value, TokenError> {
    let sub = match sub {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(TokenError::Malformed("sub is not a string")),
    };
    let mut context = match act {
        None => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(TokenError::Malformed("act is not a JSON object")),
    };
    if let Some(sub) = sub {
        context.entry("sub").or_insert(Value::String(sub));
    }
    Ok(Value::Object(context))
}

/// `alg` as the caller sent it when it looks like an algorithm name, else a placeholder, so
/// error texts never carry arbitrary input.
fn printable(alg: &str) -> String {
    if !alg.is_empty() && alg.len() <= 16 && alg.bytes().all(|b| b.is_ascii_alphanumeric()) {
        alg.to_owned()
    } else {
        "(unrecognised)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn auth_context_is_act_with_top_level_sub_as_fallback() {
        let got = auth_context(Some(json!({"role": "x"})), Some(json!("u1"))).unwrap();
        assert_eq!(got, json!({"role": "x", "sub": "u1"}));
    }

    #[test]
    fn sub_inside_act_wins_over_top_level_sub() {
        let got = auth_context(Some(json!({"sub": "inner"})), Some(json!("outer"))).unwrap();
        assert_eq!(got, json!({"sub": "inner"}));
    }

    #[test]
    fn without_act_the_context_is_sub_or_empty() {
        assert_eq!(
            auth_context(None, Some(json!("u"))).unwrap(),
            json!({"sub": "u"})
        );
        assert_eq!(auth_context(None, None).unwrap(), json!({}));
    }

    #[test]
    fn act_that_is_not_an_object_is_malformed() {
        assert_eq!(
            auth_context(Some(json!("u")), None).unwrap_err(),
            TokenError::Malformed("act is not a JSON object")
        );
    }

    #[test]
    fn audience_may_be_any_string_or_list_of_strings() {
        assert!(check_audience(None).is_ok());
        assert!(check_audience(Some(&json!("https://api.statebacked.dev/"))).is_ok());
        assert!(check_audience(Some(&json!(["a", "b"]))).is_ok());
        assert!(check_audience(Some(&json!(3))).is_err());
        assert!(check_audience(Some(&json!(["a", 1]))).is_err());
    }

    #[test]
    fn unprintable_algorithms_are_not_echoed() {
        assert_eq!(printable("HS512"), "HS512");
        assert_eq!(printable("<script>"), "(unrecognised)");
        assert_eq!(printable(&"A".repeat(40)), "(unrecognised)");
    }
}
