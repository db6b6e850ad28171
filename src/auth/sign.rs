//! Signing tokens the way `@statebacked/token` does, for the CLI and for tests.
//!
//! The token is an HS256 JWT whose header is `{"alg":"HS256","kid":<key id>}` (no `typ`) and
//! whose claims are `{act, aud, exp, iss, iat}`: the end-user claims live inside `act`, `aud` is
//! `https://api.statebacked.dev/`, and the HMAC key is the UTF-8 bytes of the whole secret,
//! `sbsec_` prefix included.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::Value;

use crate::ids::KeyId;

/// The audience `@statebacked/token` always sets.
pub const STATE_BACKED_AUDIENCE: &str = "https://api.statebacked.dev/";

/// Why a token could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("invalid duration {0:?}: expected a number and a unit, like 30m, 24h or 7 days")]
    InvalidDuration(String),
    #[error("claims must be a JSON object")]
    ClaimsNotObject,
    #[error("secret must not be empty")]
    EmptySecret,
    #[error("signing failed: {0}")]
    Encode(String),
}

/// Options of one signature; `issuer` defaults to `https://<keyId>.client.statebacked.dev/`.
#[derive(Debug, Clone)]
pub struct SignOptions {
    pub expires_in: Duration,
    pub issuer: Option<String>,
}

#[derive(Serialize)]
struct Claims<'a> {
    act: &'a Value,
    aud: &'static str,
    exp: u64,
    iss: String,
    iat: u64,
}

/// A signed token with its time claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedToken {
    pub token: String,
    /// `iat`, seconds since epoch.
    pub issued_at_s: u64,
    /// `exp`, seconds since epoch.
    pub expires_at_s: u64,
}

/// Signs `act` (the end-user claims, an object) with the key `key_id`/`secret`.
pub fn sign_token(
    key_id: &KeyId,
    secret: &str,
    act: &Value,
    options: &SignOptions,
) -> Result<SignedToken, SignError> {
    if !act.is_object() {
        return Err(SignError::ClaimsNotObject);
    }
    if secret.is_empty() {
        return Err(SignError::EmptySecret);
    }
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = Claims {
        act,
        aud: STATE_BACKED_AUDIENCE,
        exp: now_s.saturating_add(options.expires_in.as_secs()),
        iss: options
            .issuer
            .clone()
            .unwrap_or_else(|| format!("https://{key_id}.client.statebacked.dev/")),
        iat: now_s,
    };
    let mut header = Header::new(Algorithm::HS256);
    header.typ = None;
    header.kid = Some(key_id.as_str().to_owned());
    let key = EncodingKey::from_secret(secret.as_bytes())
        .map_err(|e| SignError::Encode(e.to_string()))?;
    let token = jsonwebtoken::encode(&header, &claims, &key)
        .map_err(|e| SignError::Encode(e.to_string()))?;
    Ok(SignedToken {
        token,
        issued_at_s: claims.iat,
        expires_at_s: claims.exp,
    })
}

/// Parses a duration the way `jose` reads `expires.in`: a number (decimals allowed), an
/// optional space, and a unit (`s`, `sec(s)`, `second(s)`, `m`, `min(s)`, `minute(s)`, `h`,
/// `hr(s)`, `hour(s)`, `d`, `day(s)`, `w`, `week(s)`, `y`, `yr(s)`, `year(s)`; a year is 365.25
/// days). Signs and the `ago`/`from now` suffixes are not accepted: a token always expires in
/// the future.
pub fn parse_duration(text: &str) -> Result<Duration, SignError> {
    let invalid = || SignError::InvalidDuration(text.to_owned());
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(invalid)?;
    let (number, unit) = trimmed.split_at(split);
    let unit = unit.strip_prefix(' ').unwrap_or(unit);
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let unit_s: f64 = match unit.to_ascii_lowercase().as_str() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600.0,
        "d" | "day" | "days" => 86_400.0,
        "w" | "week" | "weeks" => 604_800.0,
        "y" | "yr" | "yrs" | "year" | "years" => 31_557_600.0,
        _ => return Err(invalid()),
    };
    let secs = (value * unit_s).round();
    if !secs.is_finite() || secs < 1.0 || secs > u32::MAX as f64 * 100.0 {
        return Err(invalid());
    }
    Ok(Duration::from_secs(secs as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_jose() {
        let cases = [
            ("30m", 1_800),
            ("24h", 86_400),
            ("7d", 604_800),
            ("7 days", 604_800),
            ("1.5h", 5_400),
            ("90s", 90),
            ("2w", 1_209_600),
            ("1y", 31_557_600),
            ("1 Hour", 3_600),
        ];
        for (text, secs) in cases {
            assert_eq!(parse_duration(text).unwrap().as_secs(), secs, "{text}");
        }
    }

    #[test]
    fn durations_without_a_known_unit_are_refused() {
        for text in ["", "24", "h", "24 parsecs", "-1h", "0s", "1h ago", "1..5h"] {
            assert!(parse_duration(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn claims_must_be_an_object() {
        let id = KeyId::generate();
        let options = SignOptions {
            expires_in: Duration::from_secs(60),
            issuer: None,
        };
        let err = sign_token(&id, "sbsec_x", &Value::from("user"), &options).unwrap_err();
        assert!(matches!(err, SignError::ClaimsNotObject));
    }
}
