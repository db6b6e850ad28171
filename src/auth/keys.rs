//! The keys API (`POST /keys`, `GET /keys`, `DELETE /keys/{keyId}`) and key minting.
//!
//! A key is an id `sbk_` + 22 base64url characters and a secret `sbsec_` + base64url of
//! [`SECRET_BYTES`] random bytes. The secret is returned once, by [`create_key`], and never
//! listed. The functions here work on the store only; to make a deleted key stop verifying at
//! once on this server, delete through [`crate::auth::Authenticator::delete_key`], which also
//! drops the key from the verification cache.

use crate::clock::now_ms;

use base64::Engine as _;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use crate::auth::scopes;
use crate::error::ApiError;
use crate::ids::KeyId;
use crate::store::{KeyRecord, PageRequest, Store};

/// Random bytes in a secret (256 bits).
pub const SECRET_BYTES: usize = 32;

/// Prefix of every secret.
pub const SECRET_PREFIX: &str = "sbsec_";

/// Longest key name accepted, in bytes.
pub const MAX_KEY_NAME_BYTES: usize = 256;

/// Page size used when the caller asks for none.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// `POST /keys` body: `{name, scopes?, use?}`. When both `scopes` and `use` are sent (smply
/// does), the key gets their union.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateKeyRequest {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_preset: Option<String>,
}

/// `POST /keys` response: `{id, key}`; `key` is the secret, shown only here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedKey {
    pub id: KeyId,
    pub key: String,
}

/// One key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub id: KeyId,
    pub name: String,
    pub scopes: Vec<String>,
    /// ISO 8601 UTC with milliseconds, like JavaScript's `toISOString`.
    #[serde(rename = "createdAt")]
    pub created_at: String,
}

/// `GET /keys` response: `{keys, cursor?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// A fresh secret: `sbsec_` + base64url (no padding) of [`SECRET_BYTES`] bytes from the
/// thread-local CSPRNG.
pub fn mint_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let tail = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    format!("{SECRET_PREFIX}{tail}")
}

/// A new key record with a fresh id and secret; not yet stored.
pub fn mint_key(name: String, scopes: Vec<String>) -> KeyRecord {
    KeyRecord {
        id: KeyId::generate(),
        name,
        scopes,
        secret: mint_secret(),
        created_at_ms: now_ms(),
    }
}

/// Parses the `{keyId}` path segment.
pub fn parse_key_id(text: &str) -> Result<KeyId, ApiError> {
    KeyId::parse(text).ok_or_else(|| ApiError::invalid("keyId", "keyId must look like sbk_…"))
}

/// Validates the request, stores a new key, and returns its id and secret.
pub async fn create_key(store: &dyn Store, req: CreateKeyRequest) -> Result<CreatedKey, ApiError> {
    let name = req.name.trim();
    if name.is_empty() || name.len() > MAX_KEY_NAME_BYTES {
        return Err(ApiError::invalid(
            "name",
            format!("name must be 1 to {MAX_KEY_NAME_BYTES} bytes"),
        ));
    }
    let scopes = scopes::resolve(req.scopes.as_deref(), req.use_preset.as_deref())?;
    let record = mint_key(name.to_owned(), scopes);
    store.put_key(&record).await?;
    tracing::debug!(key = %record.id, scopes = ?record.scopes, "key created");
    Ok(CreatedKey {
        id: record.id,
        key: record.secret,
    })
}

/// One page of keys, without secrets.
pub async fn list_keys(store: &dyn Store, page: &PageRequest) -> Result<KeyList, ApiError> {
    let page = PageRequest {
        cursor: page.cursor.clone(),
        limit: if page.limit == 0 {
            DEFAULT_PAGE_SIZE
        } else {
            page.limit
        },
    };
    let listed = store.list_keys(&page).await?;
    Ok(KeyList {
        keys: listed.items.iter().map(key_info).collect(),
        cursor: listed.cursor,
    })
}

/// Deletes the key from the store; `NotFound` when there is none with that id.
pub async fn delete_key(store: &dyn Store, id: &KeyId) -> Result<(), ApiError> {
    if store.delete_key(id).await? {
        tracing::debug!(key = %id, "key deleted");
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("key {id}")))
    }
}

/// The listed view of a stored key.
pub fn key_info(record: &KeyRecord) -> KeyInfo {
    KeyInfo {
        id: record.id.clone(),
        name: record.name.clone(),
        scopes: record.scopes.clone(),
        created_at: crate::clock::rfc3339_ms(record.created_at_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_prefix_and_256_random_bits() {
        let a = mint_secret();
        let b = mint_secret();
        assert!(a.starts_with("sbsec_"));
        assert_eq!(a.len(), "sbsec_".len() + 43);
        assert_ne!(a, b);
    }

    #[test]
    fn minted_key_ids_have_the_state_backed_shape() {
        let key = mint_key("k".into(), vec!["state.read".into()]);
        let tail = key.id.as_str().strip_prefix("sbk_").unwrap();
        assert_eq!(tail.len(), 22);
    }

    #[test]
    fn create_request_reads_use_and_scopes() {
        let req: CreateKeyRequest =
            serde_json::from_str(r#"{"name":"n","use":"ci","scopes":["logs.read"]}"#).unwrap();
        assert_eq!(req.use_preset.as_deref(), Some("ci"));
        assert_eq!(req.scopes, Some(vec!["logs.read".to_owned()]));
    }

    #[test]
    fn key_info_serializes_with_created_at_and_without_secret() {
        let key = mint_key("k".into(), vec!["state.read".into()]);
        let json = serde_json::to_value(key_info(&key)).unwrap();
        let fields: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        assert_eq!(fields, ["createdAt", "id", "name", "scopes"]);
        assert!(!json.to_string().contains("sbsec_"));
    }
}
