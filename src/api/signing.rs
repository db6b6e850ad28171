//! HMAC-SHA256 signatures: provisional version ids, upload fields, and the confirmations
//! State Backed asks for before deleting machines and instances.
//!
//! The upload step carries no bearer token (the client posts a form to `codeUploadUrl`, as to
//! an S3 presigned POST), so the form's own fields are its authorization: an upload id, an
//! expiry, and a signature over both under a server secret. The secret is 32 random bytes kept
//! in the store's meta table, so every node of a cluster and every restart agree on it.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::Sha256;

use crate::ids::{pretty_id, MachineName};
use crate::store::{Store, StoreError};

type HmacSha256 = Hmac<Sha256>;

const SECRET_META: &str = "upload-signing-key";
const SECRET_BYTES: usize = 32;

/// How long an upload form stays valid after `POST …/v`.
pub(super) const UPLOAD_TTL_MS: i64 = 60 * 60 * 1000;

/// Form field names of `codeUploadFields`.
pub(super) const FIELD_UPLOAD_ID: &str = "uploadId";
pub(super) const FIELD_EXPIRES: &str = "expires";
pub(super) const FIELD_SIGNATURE: &str = "signature";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs and checks upload credentials. Cheap to clone.
#[derive(Clone)]
pub struct UploadSigner {
    key: Arc<[u8]>,
}

impl UploadSigner {
    /// The store's signing secret, created on first use. When two nodes race to create it,
    /// both adopt whatever the store holds after their own write.
    pub async fn load_or_create(store: &dyn Store) -> Result<Self, StoreError> {
        if let Some(key) = store.get_meta(SECRET_META).await? {
            return Ok(Self::from_key(&key));
        }
        let mut key = vec![0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut key);
        store.put_meta(SECRET_META, &key).await?;
        let stored = store.get_meta(SECRET_META).await?.unwrap_or(key);
        Ok(Self::from_key(&stored))
    }

    pub fn from_key(key: &[u8]) -> Self {
        Self { key: key.into() }
    }

    /// HMAC over the parts, each followed by a NUL so that no two part lists collide.
    fn mac(&self, parts: &[&str]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("hmac takes any key length");
        for part in parts {
            mac.update(part.as_bytes());
            mac.update(&[0]);
        }
        mac
    }

    fn verify(&self, parts: &[&str], signature: &str) -> bool {
        let Ok(given) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        self.mac(parts).verify_slice(&given).is_ok()
    }

    /// A fresh provisional version id for `machine`: `upl_<random>.<signature>`. Only ids this
    /// server handed out for this machine pass [`Self::check_provisional`].
    pub(super) fn provisional_id(&self, machine: &MachineName) -> String {
        let id = pretty_id("upl", uuid::Uuid::new_v4());
        let sig = b64(&self
            .mac(&["version", machine.as_str(), &id])
            .finalize()
            .into_bytes());
        format!("{id}.{sig}")
    }

    pub(super) fn check_provisional(&self, machine: &MachineName, signed: &str) -> bool {
        signed
            .split_once('.')
            .is_some_and(|(id, sig)| self.verify(&["version", machine.as_str(), id], sig))
    }

    /// The `codeUploadFields` for one upload.
    pub(super) fn upload_fields(
        &self,
        upload_id: &str,
        expires_at_ms: i64,
    ) -> BTreeMap<&'static str, String> {
        let expires = expires_at_ms.to_string();
        let sig = self.mac(&["upload", upload_id, &expires]).finalize();
        BTreeMap::from([
            (FIELD_UPLOAD_ID, upload_id.to_owned()),
            (FIELD_EXPIRES, expires),
            (FIELD_SIGNATURE, b64(&sig.into_bytes())),
        ])
    }

    /// True when the fields were made by [`Self::upload_fields`] with this secret.
    pub(super) fn check_upload(&self, upload_id: &str, expires: &str, signature: &str) -> bool {
        self.verify(&["upload", upload_id, expires], signature)
    }
}

/// State Backed's delete confirmation: base64url (no padding) of HMAC-SHA256 with the UTF-8
/// machine name as key over the UTF-8 `data` (the machine or instance name), compared in
/// constant time.
pub(super) fn confirmation_matches(machine: &str, data: &str, given: &str) -> bool {
    let Ok(given) =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(given.trim_end_matches('='))
    else {
        return false;
    };
    let mut mac =
        HmacSha256::new_from_slice(machine.as_bytes()).expect("hmac takes any key length");
    mac.update(data.as_bytes());
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provisional_ids_are_bound_to_their_machine() {
        let signer = UploadSigner::from_key(b"k");
        let a = MachineName::parse("a").unwrap();
        let b = MachineName::parse("b").unwrap();
        let id = signer.provisional_id(&a);
        assert!(signer.check_provisional(&a, &id));
        assert!(!signer.check_provisional(&b, &id));
        assert!(!UploadSigner::from_key(b"other").check_provisional(&a, &id));
        assert!(!signer.check_provisional(&a, "upl_x"));
    }

    #[test]
    fn upload_fields_verify_only_unchanged() {
        let signer = UploadSigner::from_key(b"k");
        let f = signer.upload_fields("upl_1.sig", 1000);
        let (id, exp, sig) = (&f[FIELD_UPLOAD_ID], &f[FIELD_EXPIRES], &f[FIELD_SIGNATURE]);
        assert!(signer.check_upload(id, exp, sig));
        assert!(!signer.check_upload(id, "2000", sig));
        assert!(!signer.check_upload("upl_2.sig", exp, sig));
    }

    #[test]
    fn delete_confirmation_matches_a_node_computed_hmac() {
        // crypto.createHmac("sha256", "toggle").update("inst-1").digest("base64url")
        assert!(confirmation_matches(
            "toggle",
            "inst-1",
            "JhB1YOh0L0AhScpjpJ_vjJ7o_7gFbk-7KhgJtBfVBFU"
        ));
        assert!(!confirmation_matches(
            "toggle",
            "inst-2",
            "JhB1YOh0L0AhScpjpJ_vjJ7o_7gFbk-7KhgJtBfVBFU"
        ));
        assert!(!confirmation_matches("toggle", "inst-1", "not base64!"));
    }
}
