//! Signing end-user tokens in this process, so that a run with hundreds of instances does not
//! start the `statewire token` command once per instance.
//!
//! The token is what `statewire token --key … --secret … --claims …` prints: an HS256 JWT with
//! header `{"alg":"HS256","kid":<key id>}` and claims `{act, aud, exp, iss, iat}`, the HMAC key
//! being the bytes of the whole secret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use serde_json::{json, Value};
use sha2::Sha256;

/// Lifetime of the tokens a run signs: longer than any run.
const TOKEN_LIFETIME_S: u64 = 24 * 3600;

/// A signing key of the server (`sbk_…` id and `sbsec_…` secret).
#[derive(Clone)]
pub struct Signer {
    pub key_id: String,
    pub secret: String,
}

impl Signer {
    /// A token whose `authContext` is `act`.
    pub fn sign(&self, act: &Value) -> String {
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let header = json!({"alg": "HS256", "kid": self.key_id});
        let claims = json!({
            "act": act,
            "aud": "https://api.statebacked.dev/",
            "exp": now_s + TOKEN_LIFETIME_S,
            "iss": format!("https://{}.client.statebacked.dev/", self.key_id),
            "iat": now_s,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// A token for the end user named like `instance` (the toggle lets exactly that user read
    /// and write the instance).
    pub fn for_instance(&self, instance: &str) -> String {
        self.sign(&json!({"sub": instance}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(token: &str, i: usize) -> Value {
        let raw = token.split('.').nth(i).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(raw).unwrap()).unwrap()
    }

    #[test]
    fn tokens_carry_the_kid_the_claims_and_a_verifiable_signature() {
        let signer = Signer {
            key_id: "sbk_abc".into(),
            secret: "sbsec_xyz".into(),
        };
        let token = signer.for_instance("i7");
        assert_eq!(part(&token, 0), json!({"alg": "HS256", "kid": "sbk_abc"}));
        let claims = part(&token, 1);
        assert_eq!(claims["act"], json!({"sub": "i7"}));
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            TOKEN_LIFETIME_S
        );

        let (input, signature) = token.rsplit_once('.').unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"sbsec_xyz").unwrap();
        mac.update(input.as_bytes());
        mac.verify_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap())
            .expect("signed with the secret");
    }
}
