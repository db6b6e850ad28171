//! The authenticator and the keys API over a real store: keys created through the API sign
//! tokens that verify; deleted and unknown keys, missing scopes and act-as are refused with
//! precise errors.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use statewire::auth::keys::{CreateKeyRequest, CreatedKey};
use statewire::auth::scopes::{self, Route};
use statewire::auth::sign::{sign_token, SignOptions};
use statewire::auth::{Authenticator, Principal};
use statewire::error::ApiError;
use statewire::ids::KeyId;
use statewire::store::memory::MemoryStore;
use statewire::store::{PageRequest, Store};

const TEST_TIMEOUT: Duration = Duration::from_secs(20);

async fn within_timeout<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .expect("test timed out")
}

fn setup() -> (Arc<dyn Store>, Authenticator) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let auth = Authenticator::new(Arc::clone(&store));
    (store, auth)
}

fn request(name: &str, scopes: Option<&[&str]>, use_preset: Option<&str>) -> CreateKeyRequest {
    CreateKeyRequest {
        name: name.to_owned(),
        scopes: scopes.map(|s| s.iter().map(|s| (*s).to_owned()).collect()),
        use_preset: use_preset.map(str::to_owned),
    }
}

fn token(key: &CreatedKey, act: Value) -> String {
    let options = SignOptions {
        expires_in: Duration::from_secs(3600),
        issuer: Some("https://backend.example/".into()),
    };
    sign_token(&key.id, &key.key, &act, &options).unwrap().token
}

fn unauthenticated(result: Result<Principal, ApiError>) -> String {
    match result {
        Err(ApiError::Unauthenticated(message)) => message,
        other => panic!("expected Unauthenticated, got {other:?}"),
    }
}

#[tokio::test]
async fn a_token_of_a_created_key_authenticates_with_the_keys_scopes() {
    within_timeout(async {
        let (_, auth) = setup();
        let key = auth
            .create_key(request("backend", None, Some("production")))
            .await
            .unwrap();
        assert!(key.key.starts_with("sbsec_"));
        let principal = auth
            .authenticate(Some(&token(&key, json!({"sub": "user-1"}))), None)
            .await
            .unwrap();
        assert_eq!(principal.key_id, key.id);
        assert_eq!(principal.auth_context, json!({"sub": "user-1"}));
        let expected: Vec<&str> = scopes::PRODUCTION_SCOPES.to_vec();
        assert_eq!(
            principal
                .scopes
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            {
                let mut sorted = expected.clone();
                sorted.sort();
                sorted
            }
        );
        assert!(principal.expires_at.is_some());
    })
    .await;
}

#[tokio::test]
async fn a_missing_token_is_unauthenticated() {
    within_timeout(async {
        let (_, auth) = setup();
        let err = auth.authenticate(None, None).await.unwrap_err();
        assert_eq!(err.class().status, 401);
        assert_eq!(err.body()["error"], "missing bearer token");
    })
    .await;
}

#[tokio::test]
async fn a_token_naming_an_unknown_key_is_refused() {
    within_timeout(async {
        let (_, auth) = setup();
        let stranger = CreatedKey {
            id: KeyId::generate(),
            key: "sbsec_not-stored".into(),
        };
        let message = unauthenticated(
            auth.authenticate(Some(&token(&stranger, json!({}))), None)
                .await,
        );
        assert_eq!(message, format!("unknown signing key {}", stranger.id));
    })
    .await;
}

#[tokio::test]
async fn a_deleted_key_stops_working_at_once_even_when_cached() {
    within_timeout(async {
        let (_, auth) = setup();
        let key = auth
            .create_key(request("k", None, Some("production")))
            .await
            .unwrap();
        let jwt = token(&key, json!({"sub": "u"}));
        auth.authenticate(Some(&jwt), None).await.unwrap();

        auth.delete_key(&key.id).await.unwrap();
        let message = unauthenticated(auth.authenticate(Some(&jwt), None).await);
        assert_eq!(message, format!("unknown signing key {}", key.id));

        let again = auth.delete_key(&key.id).await.unwrap_err();
        assert!(matches!(again, ApiError::NotFound(_)), "{again:?}");
    })
    .await;
}

#[tokio::test]
async fn a_key_deleted_behind_the_cache_stops_working_once_forgotten() {
    within_timeout(async {
        let (store, auth) = setup();
        let key = auth
            .create_key(request("k", None, Some("ci")))
            .await
            .unwrap();
        let jwt = token(&key, json!({}));
        auth.authenticate(Some(&jwt), None).await.unwrap();
        assert!(store.delete_key(&key.id).await.unwrap());
        auth.forget_key(&key.id);
        unauthenticated(auth.authenticate(Some(&jwt), None).await);
    })
    .await;
}

#[tokio::test]
async fn a_token_signed_with_the_wrong_secret_is_refused_even_for_a_known_key() {
    within_timeout(async {
        let (_, auth) = setup();
        let key = auth
            .create_key(request("k", None, Some("production")))
            .await
            .unwrap();
        let forged = CreatedKey {
            id: key.id.clone(),
            key: "sbsec_guessed".into(),
        };
        let message = unauthenticated(
            auth.authenticate(Some(&token(&forged, json!({"sub": "admin"}))), None)
                .await,
        );
        assert_eq!(
            message,
            format!("token signature does not match key {}", key.id)
        );
    })
    .await;
}

#[tokio::test]
async fn a_route_needing_a_scope_the_key_lacks_is_forbidden() {
    within_timeout(async {
        let (_, auth) = setup();
        let key = auth
            .create_key(request("k", None, Some("production")))
            .await
            .unwrap();
        let principal = auth
            .authenticate(Some(&token(&key, json!({}))), None)
            .await
            .unwrap();
        let err = principal.authorize(Route::ListKeys).unwrap_err();
        assert_eq!(err.class().status, 403);
        assert_eq!(err.class().code, "missing-scope");
        assert_eq!(err.to_string(), "missing scope tokens.admin");
        assert!(principal.authorize(Route::GetInstanceState).is_ok());
        assert!(principal.require("machines.write").is_err());
    })
    .await;
}

#[tokio::test]
async fn sending_events_accepts_either_events_write_or_instances_write() {
    within_timeout(async {
        let (_, auth) = setup();
        for scope in ["events.write", "instances.write"] {
            let key = auth
                .create_key(request(scope, Some(&[scope]), None))
                .await
                .unwrap();
            let principal = auth
                .authenticate(Some(&token(&key, json!({}))), None)
                .await
                .unwrap();
            assert!(principal.authorize(Route::SendEvent).is_ok(), "{scope}");
        }
        let key = auth
            .create_key(request("reader", Some(&["state.read"]), None))
            .await
            .unwrap();
        let principal = auth
            .authenticate(Some(&token(&key, json!({}))), None)
            .await
            .unwrap();
        let err = principal.authorize(Route::SendEvent).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing scope instances.write or events.write"
        );
    })
    .await;
}

#[tokio::test]
async fn act_as_replaces_the_auth_context_for_admin_keys() {
    within_timeout(async {
        let (_, auth) = setup();
        let admin = auth
            .create_key(request(
                "ops",
                Some(&["org.keys.write", "instances.write"]),
                None,
            ))
            .await
            .unwrap();
        let principal = auth
            .authenticate(
                Some(&token(&admin, json!({"sub": "operator"}))),
                Some(r#"{"sub":"user-7","plan":"pro"}"#),
            )
            .await
            .unwrap();
        assert_eq!(
            principal.auth_context,
            json!({"sub": "user-7", "plan": "pro"})
        );
    })
    .await;
}

#[tokio::test]
async fn act_as_without_the_admin_scope_is_forbidden() {
    within_timeout(async {
        let (_, auth) = setup();
        let key = auth
            .create_key(request("k", None, Some("production")))
            .await
            .unwrap();
        let err = auth
            .authenticate(Some(&token(&key, json!({}))), Some(r#"{"sub":"victim"}"#))
            .await
            .unwrap_err();
        assert!(matches!(err, ApiError::ActAsForbidden), "{err:?}");
        assert_eq!(err.class().status, 403);
        // Not even malformed JSON tells a non-admin anything more.
        let err = auth
            .authenticate(Some(&token(&key, json!({}))), Some("{nope"))
            .await
            .unwrap_err();
        assert!(matches!(err, ApiError::ActAsForbidden), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn malformed_act_as_json_from_an_admin_is_an_invalid_parameter() {
    within_timeout(async {
        let (_, auth) = setup();
        let admin = auth
            .create_key(request("ops", Some(&["org.keys.write"]), None))
            .await
            .unwrap();
        for header in ["{nope", "\"user\"", "[1]"] {
            let err = auth
                .authenticate(Some(&token(&admin, json!({}))), Some(header))
                .await
                .unwrap_err();
            assert_eq!(err.parameter(), Some("x-statebacked-act"), "{header}");
            assert_eq!(err.class().status, 400);
        }
    })
    .await;
}

#[tokio::test]
async fn keys_are_listed_without_secrets_and_with_union_scopes() {
    within_timeout(async {
        let (_, auth) = setup();
        let created = auth
            .create_key(request("deploy", Some(&["logs.read"]), Some("ci")))
            .await
            .unwrap();
        let list = auth
            .list_keys(&PageRequest {
                cursor: None,
                limit: 10,
            })
            .await
            .unwrap();
        assert_eq!(list.keys.len(), 1);
        let listed = &list.keys[0];
        assert_eq!(listed.id, created.id);
        assert_eq!(listed.name, "deploy");
        assert_eq!(
            listed.scopes,
            [
                "machines.read",
                "machines.write",
                "machine-versions.read",
                "machine-versions.write",
                "logs.read"
            ]
        );
        let body = serde_json::to_value(&list).unwrap();
        assert!(body.get("cursor").is_none());
        assert!(body["keys"][0]["createdAt"]
            .as_str()
            .unwrap()
            .ends_with('Z'));
        assert!(!body.to_string().contains(&created.key));
    })
    .await;
}

#[tokio::test]
async fn key_listing_pages_with_a_cursor() {
    within_timeout(async {
        let (_, auth) = setup();
        for i in 0..5 {
            auth.create_key(request(&format!("k{i}"), None, Some("ci")))
                .await
                .unwrap();
        }
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = auth
                .list_keys(&PageRequest { cursor, limit: 2 })
                .await
                .unwrap();
            assert!(page.keys.len() <= 2);
            seen.extend(page.keys.into_iter().map(|k| k.id));
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 5);
    })
    .await;
}

#[tokio::test]
async fn invalid_key_requests_name_the_bad_parameter() {
    within_timeout(async {
        let (store, auth) = setup();
        let cases = [
            (request("k", Some(&["instances.delete"]), None), "scopes"),
            (request("k", None, Some("staging")), "use"),
            (request("k", None, None), "scopes"),
            (request("  ", None, Some("ci")), "name"),
        ];
        for (req, parameter) in cases {
            let err = auth.create_key(req).await.unwrap_err();
            assert_eq!(err.parameter(), Some(parameter), "{err}");
        }
        let page = PageRequest {
            cursor: None,
            limit: 10,
        };
        assert!(store.list_keys(&page).await.unwrap().items.is_empty());
    })
    .await;
}

#[tokio::test]
async fn many_concurrent_requests_on_a_cold_key_all_authenticate() {
    within_timeout(async {
        let (_, auth) = setup();
        let key = auth
            .create_key(request("k", None, Some("production")))
            .await
            .unwrap();
        let jwt = token(&key, json!({"sub": "u"}));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let auth = auth.clone();
                let jwt = jwt.clone();
                tokio::spawn(async move { auth.authenticate(Some(&jwt), None).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
    })
    .await;
}
