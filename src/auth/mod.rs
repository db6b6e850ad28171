//! Who is calling: signing keys, HS256 JWT verification, scopes, admin act-as, and the
//! operator's admin credential created on first start.
//!
//! - [`jwt`]: the verification rules for one bearer token and the `authContext` it yields.
//! - [`scopes`]: the scope names, the `use` presets, and the table of scopes per route.
//! - [`keys`]: the keys API and key minting.
//! - [`sign`]: signing tokens exactly as `@statebacked/token` does (CLI, tests).
//! - [`admin`]: the admin key and its `admin-key.json` file.
//!
//! Every route authenticates through [`Authenticator::authenticate`] and then asks the
//! resulting [`Principal`] for the scope of its [`scopes::Route`].

pub mod admin;
mod cache;
pub mod jwt;
pub mod keys;
pub mod scopes;
pub mod sign;

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use crate::error::ApiError;
use crate::ids::KeyId;
use crate::store::{PageRequest, Store};

use cache::{CachedKey, KeyCache};
use jwt::TokenError;
pub use scopes::Route;

/// The header through which an admin token acts as an end user.
pub const ACT_AS_HEADER: &str = "x-statebacked-act";

/// A verified caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The key that signed the token.
    pub key_id: KeyId,
    /// Scopes of that key, e.g. `instances.write`.
    pub scopes: BTreeSet<String>,
    /// The `authContext` handed to `allowRead`/`allowWrite` (the `act` claim, or
    /// `x-statebacked-act` for admin tokens).
    pub auth_context: Value,
    /// Token expiry, seconds since epoch.
    pub expires_at: Option<i64>,
}

impl Principal {
    /// `Err(MissingScope)` unless the principal holds `scope`.
    pub fn require(&self, scope: &str) -> Result<(), ApiError> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(ApiError::MissingScope(scope.to_owned()))
        }
    }

    /// `Err(MissingScope)` unless the principal holds at least one of `scopes`. An empty list
    /// is refused: every authenticated route needs some scope.
    pub fn require_any(&self, scopes: &[&str]) -> Result<(), ApiError> {
        if scopes.iter().any(|s| self.scopes.contains(*s)) {
            Ok(())
        } else {
            Err(ApiError::MissingScope(scopes.join(" or ")))
        }
    }

    /// `Err(MissingScope)` unless the principal may use `route` (see [`scopes::scopes_for`]).
    pub fn authorize(&self, route: Route) -> Result<(), ApiError> {
        self.require_any(scopes::scopes_for(route))
    }

    /// True for tokens of a key that may create keys and act as other users.
    pub fn is_admin(&self) -> bool {
        self.scopes.contains(scopes::ADMIN_SCOPE)
    }
}

/// Verifies bearer tokens against the keys in the store.
///
/// Keys are cached in memory (see the `cache` module for the policy): on the hot path a
/// request costs one HMAC and no store read. Cloning is cheap and clones share the cache.
#[derive(Clone)]
pub struct Authenticator {
    store: Arc<dyn Store>,
    keys: Arc<KeyCache>,
}

impl Authenticator {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            keys: Arc::new(KeyCache::default()),
        }
    }

    /// Verifies `token` (without the `Bearer ` prefix) and applies an optional
    /// `x-statebacked-act` header value.
    ///
    /// Act-as is honoured only for admin keys (scope `org.keys.write`); the header's JSON
    /// object then replaces the token's authContext. The permission is checked before the
    /// JSON, so a non-admin caller gets `ActAsForbidden` whatever it sent; an admin sending
    /// something that is not a JSON object gets `InvalidParameter` naming the header.
    pub async fn authenticate(
        &self,
        token: Option<&str>,
        act_as: Option<&str>,
    ) -> Result<Principal, ApiError> {
        let token = token.ok_or(TokenError::Missing).map_err(refused)?;
        let key_id = jwt::signing_key_id(token).map_err(refused)?;
        let key = self.key(&key_id).await?;
        let verified = jwt::verify(token, &key_id, &key.hmac).map_err(refused)?;
        let mut principal = Principal {
            key_id,
            scopes: key.scopes.clone(),
            auth_context: verified.auth_context,
            expires_at: Some(verified.expires_at),
        };
        if let Some(header) = act_as {
            if !principal.is_admin() {
                return Err(ApiError::ActAsForbidden);
            }
            principal.auth_context = parse_act_as(header)?;
        }
        Ok(principal)
    }

    /// Creates a key (see [`keys::create_key`]).
    pub async fn create_key(
        &self,
        req: keys::CreateKeyRequest,
    ) -> Result<keys::CreatedKey, ApiError> {
        keys::create_key(self.store.as_ref(), req).await
    }

    /// Lists keys without their secrets (see [`keys::list_keys`]).
    pub async fn list_keys(&self, page: &PageRequest) -> Result<keys::KeyList, ApiError> {
        keys::list_keys(self.store.as_ref(), page).await
    }

    /// Deletes a key; its tokens are refused from the moment this returns.
    pub async fn delete_key(&self, id: &KeyId) -> Result<(), ApiError> {
        self.keys.remove(id);
        let result = keys::delete_key(self.store.as_ref(), id).await;
        self.keys.remove(id);
        result
    }

    /// Drops a key from the verification cache, for keys deleted by other means.
    pub fn forget_key(&self, id: &KeyId) {
        self.keys.remove(id);
    }

    async fn key(&self, id: &KeyId) -> Result<Arc<CachedKey>, ApiError> {
        if let Some(key) = self.keys.get(id) {
            return Ok(key);
        }
        let generation = self.keys.generation();
        let Some(record) = self.store.get_key(id).await? else {
            self.keys.forget_missing(id);
            return Err(refused(TokenError::UnknownKey(id.clone())));
        };
        let key = CachedKey::from_record(&record)
            .map(Arc::new)
            .ok_or_else(|| ApiError::Internal(format!("stored key {id} has an empty secret")))?;
        self.keys.insert(id.clone(), Arc::clone(&key), generation);
        Ok(key)
    }
}

/// The token of an `authorization` header value: `Bearer <token>`, scheme case-insensitive.
/// `None` for any other scheme or an empty token.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn refused(e: TokenError) -> ApiError {
    tracing::debug!(reason = %e, "token refused");
    ApiError::Unauthenticated(e.to_string())
}

fn parse_act_as(header: &str) -> Result<Value, ApiError> {
    match serde_json::from_str::<Value>(header) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ApiError::invalid(
            ACT_AS_HEADER,
            "x-statebacked-act must be a JSON object",
        )),
        Err(e) => Err(ApiError::invalid(
            ACT_AS_HEADER,
            format!("x-statebacked-act is not valid JSON: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_taken_from_the_authorization_header() {
        assert_eq!(bearer_token("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc.def.ghi"), None);
    }
}
