//! Who is calling: signing keys, HS256 JWT verification, scopes, admin act-as, and the
//! operator's admin credential created on first start.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use crate::error::ApiError;
use crate::ids::KeyId;
use crate::store::Store;

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
}

/// Verifies bearer tokens against the keys in the store.
///
/// Placeholder surface: the signatures below are the contract the HTTP and WebSocket layers use.
#[derive(Clone)]
pub struct Authenticator {
    store: Arc<dyn Store>,
}

impl Authenticator {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Verifies `token` (without the `Bearer ` prefix) and applies an optional
    /// `x-statebacked-act` header value.
    pub async fn authenticate(
        &self,
        _token: Option<&str>,
        _act_as: Option<&str>,
    ) -> Result<Principal, ApiError> {
        let _ = &self.store;
        Err(ApiError::Unauthenticated(
            "authentication not built yet".into(),
        ))
    }
}
