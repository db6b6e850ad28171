//! The operator's admin credential and the `token` / `smply-login` commands that use it.

use std::future::Future;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use statewire::auth::admin::{self, AdminKey, AdminKeyError, ADMIN_KEY_FILE};
use statewire::auth::keys::CreateKeyRequest;
use statewire::auth::scopes::{Route, ALL_SCOPES};
use statewire::auth::Authenticator;
use statewire::ids::KeyId;
use statewire::store::memory::MemoryStore;
use statewire::store::{PageRequest, Store};

const TEST_TIMEOUT: Duration = Duration::from_secs(60);

async fn within_timeout<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .expect("test timed out")
}

fn memory_store() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn key_count(store: &dyn Store) -> usize {
    let page = PageRequest {
        cursor: None,
        limit: 1000,
    };
    store.list_keys(&page).await.unwrap().items.len()
}

fn statewire(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_statewire"))
        .args(args)
        .env_remove("STATEWIRE_DATA_DIR")
        .output()
        .expect("statewire runs")
}

fn last_stdout_line(output: &Output) -> String {
    assert!(
        output.status.success(),
        "statewire failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .last()
        .expect("some output")
        .to_owned()
}

#[tokio::test]
async fn first_start_creates_an_admin_key_with_every_scope_and_a_private_file() {
    within_timeout(async {
        let store = memory_store();
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let admin = admin::ensure_admin_key(store.as_ref(), &data_dir)
            .await
            .unwrap();

        let path = data_dir.join(ADMIN_KEY_FILE);
        assert_eq!(mode_of(&path), 0o600);
        let file: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            file,
            json!({"id": admin.id.as_str(), "secret": admin.secret.as_str()})
        );

        let record = store.get_key(&admin.id).await.unwrap().unwrap();
        assert_eq!(record.name, "admin");
        assert_eq!(record.secret, admin.secret);
        assert_eq!(record.scopes, ALL_SCOPES);
        let leftovers: Vec<_> = std::fs::read_dir(&data_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, [ADMIN_KEY_FILE], "no temporary file is left");
    })
    .await;
}

#[tokio::test]
async fn later_starts_reuse_the_same_admin_key() {
    within_timeout(async {
        let store = memory_store();
        let dir = tempfile::tempdir().unwrap();
        let first = admin::ensure_admin_key(store.as_ref(), dir.path())
            .await
            .unwrap();
        let second = admin::ensure_admin_key(store.as_ref(), dir.path())
            .await
            .unwrap();
        assert_eq!(first, second);
        assert_eq!(key_count(store.as_ref()).await, 1);
        assert_eq!(mode_of(&dir.path().join(ADMIN_KEY_FILE)), 0o600);
    })
    .await;
}

#[tokio::test]
async fn a_file_naming_a_key_missing_from_the_store_is_refused_precisely() {
    within_timeout(async {
        let dir = tempfile::tempdir().unwrap();
        let admin = admin::ensure_admin_key(memory_store().as_ref(), dir.path())
            .await
            .unwrap();
        let other_store = memory_store();
        let err = admin::ensure_admin_key(other_store.as_ref(), dir.path())
            .await
            .unwrap_err();
        assert!(matches!(err, AdminKeyError::NotInStore { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(admin.id.as_str()), "{message}");
        assert!(message.contains(ADMIN_KEY_FILE), "{message}");
        assert_eq!(key_count(other_store.as_ref()).await, 0, "nothing minted");
    })
    .await;
}

#[tokio::test]
async fn a_file_whose_secret_differs_from_the_store_is_refused_precisely() {
    within_timeout(async {
        let store = memory_store();
        let dir = tempfile::tempdir().unwrap();
        let admin = admin::ensure_admin_key(store.as_ref(), dir.path())
            .await
            .unwrap();
        let tampered = json!({"id": admin.id.as_str(), "secret": "sbsec_something-else"});
        std::fs::write(dir.path().join(ADMIN_KEY_FILE), tampered.to_string()).unwrap();
        let err = admin::ensure_admin_key(store.as_ref(), dir.path())
            .await
            .unwrap_err();
        assert!(
            matches!(err, AdminKeyError::SecretMismatch { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("different secret"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn a_malformed_file_is_refused_naming_its_path() {
    within_timeout(async {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ADMIN_KEY_FILE), "{\"id\": 3}").unwrap();
        let err = admin::ensure_admin_key(memory_store().as_ref(), dir.path())
            .await
            .unwrap_err();
        assert!(matches!(err, AdminKeyError::Malformed { .. }), "{err:?}");
        assert!(err.to_string().contains(ADMIN_KEY_FILE));
    })
    .await;
}

#[tokio::test]
async fn a_lost_file_mints_a_new_admin_key_and_keeps_the_old_one() {
    within_timeout(async {
        let store = memory_store();
        let dir = tempfile::tempdir().unwrap();
        let first = admin::ensure_admin_key(store.as_ref(), dir.path())
            .await
            .unwrap();
        std::fs::remove_file(dir.path().join(ADMIN_KEY_FILE)).unwrap();
        let second = admin::ensure_admin_key(store.as_ref(), dir.path())
            .await
            .unwrap();
        assert_ne!(first.id, second.id);
        assert!(store.get_key(&first.id).await.unwrap().is_some());
        assert_eq!(admin::read_admin_key(dir.path()).unwrap(), second);
    })
    .await;
}

#[tokio::test]
async fn the_admin_key_signs_admin_tokens_that_may_do_everything() {
    within_timeout(async {
        let store = memory_store();
        let dir = tempfile::tempdir().unwrap();
        let admin = admin::ensure_admin_key(store.as_ref(), dir.path())
            .await
            .unwrap();
        let auth = Authenticator::new(Arc::clone(&store));
        let signed = admin
            .sign(&json!({"sub": "admin"}), Duration::from_secs(60))
            .unwrap();
        let principal = auth.authenticate(Some(&signed.token), None).await.unwrap();
        assert!(principal.is_admin());
        for route in [Route::CreateKey, Route::DeleteMachine, Route::GetLogs] {
            principal.authorize(route).unwrap();
        }
        let created = auth
            .create_key(CreateKeyRequest {
                name: "prod".into(),
                scopes: None,
                use_preset: Some("production".into()),
            })
            .await
            .unwrap();
        assert!(KeyId::parse(created.id.as_str()).is_some());
    })
    .await;
}

#[tokio::test]
async fn token_admin_prints_a_token_that_verifies() {
    within_timeout(async {
        let store = memory_store();
        let dir = tempfile::tempdir().unwrap();
        let admin = admin::ensure_admin_key(store.as_ref(), dir.path())
            .await
            .unwrap();
        let data_dir = dir.path().to_str().unwrap().to_owned();
        let output = tokio::task::spawn_blocking(move || {
            statewire(&[
                "token",
                "--admin",
                "--data-dir",
                &data_dir,
                "--expires-in",
                "2h",
            ])
        })
        .await
        .unwrap();
        let token = last_stdout_line(&output);
        let auth = Authenticator::new(Arc::clone(&store));
        let principal = auth.authenticate(Some(&token), None).await.unwrap();
        assert_eq!(principal.key_id, admin.id);
        assert_eq!(principal.auth_context, json!({"sub": "admin"}));
        let exp = principal.expires_at.unwrap();
        assert!((exp - (now_s() + 7200)).abs() < 60, "exp {exp}");
    })
    .await;
}

#[tokio::test]
async fn token_admin_reads_the_data_dir_from_the_environment_and_takes_claims() {
    within_timeout(async {
        let store = memory_store();
        let dir = tempfile::tempdir().unwrap();
        admin::ensure_admin_key(store.as_ref(), dir.path())
            .await
            .unwrap();
        let data_dir = dir.path().to_owned();
        let output = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_statewire"))
                .args([
                    "token",
                    "--admin",
                    "--claims",
                    r#"{"sub":"ops","team":"a"}"#,
                ])
                .env("STATEWIRE_DATA_DIR", data_dir)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let token = last_stdout_line(&output);
        let principal = Authenticator::new(store)
            .authenticate(Some(&token), None)
            .await
            .unwrap();
        assert_eq!(principal.auth_context, json!({"sub": "ops", "team": "a"}));
    })
    .await;
}

#[tokio::test]
async fn token_with_a_key_signs_an_end_user_token() {
    within_timeout(async {
        let store = memory_store();
        let auth = Authenticator::new(Arc::clone(&store));
        let key = auth
            .create_key(CreateKeyRequest {
                name: "backend".into(),
                scopes: None,
                use_preset: Some("production".into()),
            })
            .await
            .unwrap();
        let (id, secret) = (key.id.to_string(), key.key.clone());
        let output = tokio::task::spawn_blocking(move || {
            statewire(&[
                "token",
                "--key",
                &id,
                "--secret",
                &secret,
                "--claims",
                r#"{"sub":"user-123"}"#,
            ])
        })
        .await
        .unwrap();
        let token = last_stdout_line(&output);
        let principal = auth.authenticate(Some(&token), None).await.unwrap();
        assert_eq!(principal.auth_context, json!({"sub": "user-123"}));
        assert!(!principal.is_admin());
    })
    .await;
}

#[test]
fn token_admin_without_a_credential_file_explains_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let output = statewire(&[
        "token",
        "--admin",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(ADMIN_KEY_FILE), "{stderr}");
    assert!(stderr.contains("statewire serve"), "{stderr}");
}

#[test]
fn token_with_a_key_requires_claims_and_a_secret() {
    let id = KeyId::generate().to_string();
    assert!(!statewire(&["token", "--key", &id, "--secret", "sbsec_x"])
        .status
        .success());
    assert!(!statewire(&["token", "--key", &id, "--claims", "{}"])
        .status
        .success());
    assert!(!statewire(&["token"]).status.success());
}

#[tokio::test]
async fn smply_login_writes_a_private_session_holding_a_working_admin_token() {
    within_timeout(async {
        let store = memory_store();
        let data = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        admin::ensure_admin_key(store.as_ref(), data.path())
            .await
            .unwrap();
        let (data_dir, home_dir) = (
            data.path().to_str().unwrap().to_owned(),
            home.path().to_str().unwrap().to_owned(),
        );
        let output = tokio::task::spawn_blocking(move || {
            statewire(&["smply-login", "--data-dir", &data_dir, "--home", &home_dir])
        })
        .await
        .unwrap();
        let stdout = last_stdout_line(&output);
        assert!(stdout.contains("smply"), "{stdout}");

        let path = home.path().join(".smply").join("credentials");
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(mode_of(&home.path().join(".smply")), 0o700);
        let session: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(session["token_type"], "bearer");
        assert!(session["refresh_token"].is_string());
        assert!(session["user"]["id"].is_string());
        assert!(session["user"]["email"].is_string());
        let expires_at = session["expires_at"].as_i64().unwrap();
        assert!(expires_at > now_s() + 300 * 86_400, "long-lived");
        assert_eq!(session["expires_in"], 365 * 86_400);

        let token = session["access_token"].as_str().unwrap();
        let principal = Authenticator::new(store)
            .authenticate(Some(token), None)
            .await
            .unwrap();
        assert!(principal.is_admin());
        assert_eq!(principal.expires_at, Some(expires_at));
    })
    .await;
}

#[tokio::test]
async fn smply_login_keeps_a_previous_hosted_session_aside() {
    within_timeout(async {
        let store = memory_store();
        let data = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        admin::ensure_admin_key(store.as_ref(), data.path())
            .await
            .unwrap();
        let smply_dir = home.path().join(".smply");
        std::fs::create_dir(&smply_dir).unwrap();
        std::fs::write(
            smply_dir.join("credentials"),
            r#"{"access_token":"hosted"}"#,
        )
        .unwrap();
        let (data_dir, home_dir) = (
            data.path().to_str().unwrap().to_owned(),
            home.path().to_str().unwrap().to_owned(),
        );
        for _ in 0..2 {
            let (data_dir, home_dir) = (data_dir.clone(), home_dir.clone());
            let output = tokio::task::spawn_blocking(move || {
                statewire(&["smply-login", "--data-dir", &data_dir, "--home", &home_dir])
            })
            .await
            .unwrap();
            last_stdout_line(&output);
        }
        let backup = std::fs::read_to_string(smply_dir.join("credentials.bak")).unwrap();
        assert_eq!(backup, r#"{"access_token":"hosted"}"#);
    })
    .await;
}

#[test]
fn admin_key_debug_output_hides_the_secret() {
    let admin = AdminKey {
        id: KeyId::generate(),
        secret: "sbsec_very-secret".into(),
    };
    assert!(!format!("{admin:?}").contains("very-secret"));
}
