//! Token verification rules, against tokens built here independently of statewire's signer:
//! the way `@statebacked/token` builds them, and hand-crafted hostile variants.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{json, Value};

use statewire::auth::jwt::{self, TokenError};
use statewire::auth::keys::mint_secret;
use statewire::auth::sign::{parse_duration, sign_token, SignOptions};
use statewire::ids::KeyId;

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A token as `@statebacked/token` makes it: header `{alg: HS256, kid}` without `typ`, claims
/// `{act, aud, exp, iss, iat}`, HMAC key = the secret's UTF-8 bytes.
fn statebacked_token(kid: &str, secret: &str, act: Value, exp: i64) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.typ = None;
    header.kid = Some(kid.to_owned());
    let claims = json!({
        "act": act,
        "aud": "https://api.statebacked.dev/",
        "exp": exp,
        "iss": "https://example.com/",
        "iat": now_s(),
    });
    let key = EncodingKey::from_secret(secret.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// A token with an arbitrary header and claims and a made-up signature.
fn crafted(header: Value, claims: Value, signature: &str) -> String {
    format!("{}.{}.{signature}", b64(&header), b64(&claims))
}

struct Key {
    id: KeyId,
    secret: String,
}

impl Key {
    fn new() -> Self {
        Self {
            id: KeyId::generate(),
            secret: mint_secret(),
        }
    }

    fn hmac(&self) -> DecodingKey {
        DecodingKey::from_secret(self.secret.as_bytes()).unwrap()
    }

    /// What the server does with a token: name the key from the header, then verify with it.
    fn check(&self, token: &str) -> Result<jwt::VerifiedToken, TokenError> {
        let kid = jwt::signing_key_id(token)?;
        assert_eq!(kid, self.id, "token names another key");
        jwt::verify(token, &kid, &self.hmac())
    }
}

#[test]
fn a_statebacked_token_verifies_and_its_act_claim_is_the_auth_context() {
    let key = Key::new();
    let exp = now_s() + 3600;
    let token = statebacked_token(
        key.id.as_str(),
        &key.secret,
        json!({"sub": "user-123", "roles": ["a"]}),
        exp,
    );
    let verified = key.check(&token).unwrap();
    assert_eq!(
        verified.auth_context,
        json!({"sub": "user-123", "roles": ["a"]})
    );
    assert_eq!(verified.expires_at, exp);
}

#[test]
fn top_level_sub_fills_in_when_act_has_none() {
    let key = Key::new();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.id.to_string());
    let claims = json!({"act": {"org": "o"}, "sub": "u-9", "exp": now_s() + 60});
    let enc = EncodingKey::from_secret(key.secret.as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&header, &claims, &enc).unwrap();
    let verified = key.check(&token).unwrap();
    assert_eq!(verified.auth_context, json!({"org": "o", "sub": "u-9"}));
}

#[test]
fn statewire_signer_output_verifies_like_a_statebacked_token() {
    let key = Key::new();
    let options = SignOptions {
        expires_in: parse_duration("24h").unwrap(),
        issuer: None,
    };
    let signed = sign_token(&key.id, &key.secret, &json!({"sub": "u"}), &options).unwrap();
    let verified = key.check(&signed.token).unwrap();
    assert_eq!(verified.auth_context, json!({"sub": "u"}));
    assert_eq!(verified.expires_at as u64, signed.expires_at_s);
    assert_eq!(signed.expires_at_s - signed.issued_at_s, 86_400);

    let parts: Vec<&str> = signed.token.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header, json!({"alg": "HS256", "kid": key.id.as_str()}));
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["aud"], "https://api.statebacked.dev/");
    assert_eq!(
        claims["iss"],
        format!("https://{}.client.statebacked.dev/", key.id)
    );
}

#[test]
fn a_token_signed_with_another_secret_is_refused_as_bad_signature() {
    let key = Key::new();
    let token = statebacked_token(
        key.id.as_str(),
        &mint_secret(),
        json!({"sub": "u"}),
        now_s() + 60,
    );
    assert_eq!(
        key.check(&token).unwrap_err(),
        TokenError::BadSignature(key.id.clone())
    );
    assert_eq!(
        TokenError::BadSignature(key.id.clone()).to_string(),
        format!("token signature does not match key {}", key.id)
    );
}

#[test]
fn the_secret_without_its_prefix_is_not_the_hmac_key() {
    let key = Key::new();
    let bare = key.secret.strip_prefix("sbsec_").unwrap();
    let token = statebacked_token(key.id.as_str(), bare, json!({}), now_s() + 60);
    assert!(matches!(
        key.check(&token),
        Err(TokenError::BadSignature(_))
    ));
}

#[test]
fn an_expired_token_is_refused() {
    let key = Key::new();
    let token = statebacked_token(
        key.id.as_str(),
        &key.secret,
        json!({"sub": "u"}),
        now_s() - 3600,
    );
    let err = key.check(&token).unwrap_err();
    assert_eq!(err, TokenError::Expired);
    assert_eq!(err.to_string(), "token expired");
}

#[test]
fn a_token_without_exp_is_refused() {
    let key = Key::new();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.id.to_string());
    let enc = EncodingKey::from_secret(key.secret.as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&header, &json!({"act": {"sub": "u"}}), &enc).unwrap();
    assert_eq!(key.check(&token).unwrap_err(), TokenError::MissingExp);
}

#[test]
fn a_token_whose_exp_is_not_a_number_of_seconds_says_so() {
    let key = Key::new();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.id.to_string());
    let enc = EncodingKey::from_secret(key.secret.as_bytes()).unwrap();
    for exp in [json!(1e300), json!("99999999999"), json!(-5), json!(true)] {
        let claims = json!({"act": {"sub": "u"}, "exp": exp});
        let token = jsonwebtoken::encode(&header, &claims, &enc).unwrap();
        let err = key.check(&token).unwrap_err();
        assert_eq!(err, TokenError::InvalidExp, "{exp}");
        assert_eq!(
            err.to_string(),
            "token exp claim is not a valid number of seconds"
        );
    }
    // A far but representable expiry is accepted.
    let claims = json!({"act": {"sub": "u"}, "exp": 99_999_999_999u64});
    let token = jsonwebtoken::encode(&header, &claims, &enc).unwrap();
    assert!(key.check(&token).is_ok());
}

#[test]
fn a_token_used_before_its_nbf_is_refused() {
    let key = Key::new();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.id.to_string());
    let enc = EncodingKey::from_secret(key.secret.as_bytes()).unwrap();
    let claims = json!({"act": {}, "exp": now_s() + 7200, "nbf": now_s() + 3600});
    let token = jsonwebtoken::encode(&header, &claims, &enc).unwrap();
    assert_eq!(key.check(&token).unwrap_err(), TokenError::NotYetValid);
}

#[test]
fn alg_none_is_refused_before_any_key_is_consulted() {
    let key = Key::new();
    let token = crafted(
        json!({"alg": "none", "kid": key.id.as_str()}),
        json!({"act": {"sub": "admin"}, "exp": now_s() + 60}),
        "",
    );
    let err = jwt::signing_key_id(&token).unwrap_err();
    assert_eq!(err, TokenError::UnsupportedAlgorithm("none".into()));
    assert_eq!(
        err.to_string(),
        "unsupported token algorithm none: only HS256 is accepted"
    );
}

#[test]
fn hs512_signed_with_the_right_secret_is_refused() {
    let key = Key::new();
    let mut header = Header::new(Algorithm::HS512);
    header.kid = Some(key.id.to_string());
    let enc = EncodingKey::from_secret(key.secret.as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&header, &json!({"exp": now_s() + 60}), &enc).unwrap();
    assert_eq!(
        jwt::signing_key_id(&token).unwrap_err(),
        TokenError::UnsupportedAlgorithm("HS512".into())
    );
    // Even if a caller skipped the header check, verification with HS256 would refuse it.
    assert!(jwt::verify(&token, &key.id, &key.hmac()).is_err());
}

#[test]
fn an_rs256_header_is_refused() {
    let key = Key::new();
    let token = crafted(
        json!({"alg": "RS256", "kid": key.id.as_str(), "typ": "JWT"}),
        json!({"exp": now_s() + 60}),
        "c2lnbmF0dXJl",
    );
    assert_eq!(
        jwt::signing_key_id(&token).unwrap_err(),
        TokenError::UnsupportedAlgorithm("RS256".into())
    );
}

#[test]
fn a_token_without_kid_is_refused() {
    let key = Key::new();
    let enc = EncodingKey::from_secret(key.secret.as_bytes()).unwrap();
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"exp": now_s() + 60}),
        &enc,
    )
    .unwrap();
    let err = jwt::signing_key_id(&token).unwrap_err();
    assert_eq!(err, TokenError::MissingKid);
    assert_eq!(
        err.to_string(),
        "token header has no kid naming the signing key"
    );
}

#[test]
fn a_kid_that_is_not_a_key_id_is_refused_as_malformed() {
    let token = crafted(
        json!({"alg": "HS256", "kid": "../etc/passwd"}),
        json!({}),
        "x",
    );
    assert_eq!(
        jwt::signing_key_id(&token).unwrap_err(),
        TokenError::Malformed("kid is not a key id (sbk_…)")
    );
}

#[test]
fn garbage_is_refused_as_malformed() {
    let cases = [
        "garbage",
        "a.b",
        "a.b.c.d",
        "!!!.e30.sig",
        "e30.e30.sig",
        "WzFd.e30.sig",
    ];
    for token in cases {
        let err = jwt::signing_key_id(token).unwrap_err();
        assert!(matches!(err, TokenError::Malformed(_)), "{token}: {err:?}");
        assert!(err.to_string().starts_with("malformed token: "), "{err}");
    }
    assert_eq!(jwt::signing_key_id("").unwrap_err(), TokenError::Missing);
    let huge = "a".repeat(jwt::MAX_TOKEN_BYTES + 1);
    assert!(matches!(
        jwt::signing_key_id(&huge),
        Err(TokenError::TooLong { .. })
    ));
}

#[test]
fn claims_that_are_not_an_object_are_refused() {
    let key = Key::new();
    let header = b64(&json!({"alg": "HS256", "kid": key.id.as_str()}));
    let payload = URL_SAFE_NO_PAD.encode("[1,2]");
    let message = format!("{header}.{payload}");
    let signature = {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.secret.as_bytes()).unwrap();
        mac.update(message.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    };
    let token = format!("{message}.{signature}");
    assert!(matches!(key.check(&token), Err(TokenError::Malformed(_))));
}

#[test]
fn audience_is_not_restricted_but_must_be_strings() {
    let key = Key::new();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.id.to_string());
    let enc = EncodingKey::from_secret(key.secret.as_bytes()).unwrap();
    for (aud, ok) in [
        (json!("https://api.statebacked.dev/"), true),
        (json!("https://elsewhere.example/"), true),
        (json!(["x", "y"]), true),
        (json!(42), false),
        (json!({"a": 1}), false),
    ] {
        let claims = json!({"act": {}, "aud": aud, "exp": now_s() + 60});
        let token = jsonwebtoken::encode(&header, &claims, &enc).unwrap();
        assert_eq!(key.check(&token).is_ok(), ok, "aud {aud}");
    }
}
