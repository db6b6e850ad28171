//! The keys API (`POST /keys`, `GET /keys`, `DELETE /keys/{keyId}`) and key minting.
//!
//! A key is an id `sbk_` + 22 base64url characters and a secret `sbsec_` + base64url of
//! [`SECRET_BYTES`] random bytes. The secret is returned once, by [`create_key`], and never
//! listed. The functions here work on the store only; to make a deleted key stop verifying at
//! once on this server, delete through [`crate::auth::Authenticator::delete_key`], which also
//! drops the key from the verification cache.

use std::time::{SystemTime, UNIX_EPOCH};

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
        created_at: iso8601_ms(record.created_at_ms),
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the Unix epoch (proleptic Gregorian, UTC).
pub fn iso8601_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let ms_of_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_date(days);
    let (h, rem) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
    let (m, rem) = (rem / 60_000, rem % 60_000);
    let (s, milli) = (rem / 1_000, rem % 1_000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

/// Year, month (1–12) and day (1–31) of the day `days` after 1970-01-01.
fn civil_date(days: i64) -> (i64, i64, i64) {
    // Count from 0000-03-01 so that leap days fall at the end of each 400-year era's years.
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
    fn dates_format_like_to_iso_string() {
        assert_eq!(iso8601_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(iso8601_ms(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
        assert_eq!(iso8601_ms(-1), "1969-12-31T23:59:59.999Z");
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
