//! The operator's admin credential: a key holding every scope, created on first start.
//!
//! The key lives in the store like any other (name `admin`) and its id and secret are written
//! to `<data_dir>/admin-key.json` as `{"id","secret"}`, mode 0600, atomically (temporary file,
//! fsync, rename, fsync of the directory). The store is written first, so a crash in between
//! leaves at worst an unused key, never a file naming a key that does not exist.
//!
//! On later starts the file is read back and checked against the store. When they disagree the
//! server refuses to start and says how; it never re-creates a key that was deleted, since an
//! operator may have deleted it on purpose. When the file is missing a new admin key is minted;
//! an older admin key recorded in the store is left valid (another server sharing the store may
//! use it) and reported in the log.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::keys;
use crate::auth::scopes::ALL_SCOPES;
use crate::auth::sign::{self, SignError, SignOptions, SignedToken};
use crate::ids::KeyId;
use crate::store::{Store, StoreError};

/// File name of the credential inside the data directory.
pub const ADMIN_KEY_FILE: &str = "admin-key.json";

/// Name of the admin key in key listings.
pub const ADMIN_KEY_NAME: &str = "admin";

/// Meta entry holding the id of the admin key this store was given last.
const ADMIN_KEY_META: &str = "auth.admin_key_id";

/// Why the admin credential could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum AdminKeyError {
    #[error("no admin key at {}: start `statewire serve` with this data directory once to create it", path.display())]
    Missing { path: PathBuf },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not an admin key file of the form {{\"id\",\"secret\"}}: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error(
        "{} names key {id}, which is not in the store (it was deleted, or the file belongs to \
         another data store); move the file away to mint a new admin key",
        path.display()
    )]
    NotInStore { path: PathBuf, id: KeyId },
    #[error(
        "{} holds a different secret for key {id} than the store; restore the matching file, or \
         move it away to mint a new admin key",
        path.display()
    )]
    SecretMismatch { path: PathBuf, id: KeyId },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The admin key's id and secret, as stored in `admin-key.json`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminKey {
    pub id: KeyId,
    pub secret: String,
}

impl std::fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminKey")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl AdminKey {
    /// A token of this key, signed like `@statebacked/token`, with `act` as the authContext.
    pub fn sign(&self, act: &Value, expires_in: Duration) -> Result<SignedToken, SignError> {
        let options = SignOptions {
            expires_in,
            issuer: None,
        };
        sign::sign_token(&self.id, &self.secret, act, &options)
    }
}

/// `<data_dir>/admin-key.json`.
pub fn admin_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(ADMIN_KEY_FILE)
}

/// Reads the credential file; `Missing` when there is none. Needs no store and no server.
pub fn read_admin_key(data_dir: &Path) -> Result<AdminKey, AdminKeyError> {
    let path = admin_key_path(data_dir);
    read_file(&path)?.ok_or(AdminKeyError::Missing { path })
}

/// Returns the admin credential, creating the key and its file on first start.
pub async fn ensure_admin_key(
    store: &dyn Store,
    data_dir: &Path,
) -> Result<AdminKey, AdminKeyError> {
    let path = admin_key_path(data_dir);
    let from_file = {
        let path = path.clone();
        blocking(move || read_file(&path)).await?
    };
    match from_file {
        Some(admin) => reuse(store, path, admin).await,
        None => create(store, data_dir, path).await,
    }
}

async fn reuse(
    store: &dyn Store,
    path: PathBuf,
    admin: AdminKey,
) -> Result<AdminKey, AdminKeyError> {
    let Some(mut record) = store.get_key(&admin.id).await? else {
        return Err(AdminKeyError::NotInStore { path, id: admin.id });
    };
    if record.secret != admin.secret {
        return Err(AdminKeyError::SecretMismatch { path, id: admin.id });
    }
    let all: Vec<String> = ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    if record.scopes != all {
        record.scopes = all;
        store.put_key(&record).await?;
        tracing::info!(key = %admin.id, "admin key given every scope");
    }
    tracing::info!(key = %admin.id, path = %path.display(), "admin key loaded");
    Ok(admin)
}

async fn create(
    store: &dyn Store,
    data_dir: &Path,
    path: PathBuf,
) -> Result<AdminKey, AdminKeyError> {
    if let Some(previous) = previous_admin_key(store).await? {
        tracing::warn!(
            previous_key = %previous,
            path = %path.display(),
            "admin key file missing; minting a new admin key, the previous one stays valid until deleted"
        );
    }
    let scopes = ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    let record = keys::mint_key(ADMIN_KEY_NAME.to_owned(), scopes);
    store.put_key(&record).await?;
    store
        .put_meta(ADMIN_KEY_META, record.id.as_str().as_bytes())
        .await?;
    let admin = AdminKey {
        id: record.id,
        secret: record.secret,
    };
    let dir = data_dir.to_owned();
    let file = admin.clone();
    blocking(move || write_file(&dir, &file)).await?;
    tracing::info!(key = %admin.id, path = %path.display(), "admin key created");
    Ok(admin)
}

/// The admin key recorded in the store, if it still exists.
async fn previous_admin_key(store: &dyn Store) -> Result<Option<KeyId>, AdminKeyError> {
    let Some(raw) = store.get_meta(ADMIN_KEY_META).await? else {
        return Ok(None);
    };
    let Some(id) = std::str::from_utf8(&raw).ok().and_then(KeyId::parse) else {
        return Ok(None);
    };
    Ok(store.get_key(&id).await?.map(|_| id))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AdminKeyError> + Send + 'static,
) -> Result<T, AdminKeyError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AdminKeyError::Io {
            action: "run file task for",
            path: PathBuf::from(ADMIN_KEY_FILE),
            source: std::io::Error::other(e.to_string()),
        })?
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> AdminKeyError {
    let path = path.to_owned();
    move |source| AdminKeyError::Io {
        action,
        path,
        source,
    }
}

fn read_file(path: &Path) -> Result<Option<AdminKey>, AdminKeyError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("read", path)(e)),
    };
    let malformed = |reason: String| AdminKeyError::Malformed {
        path: path.to_owned(),
        reason,
    };
    let admin: AdminKey = serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
    if KeyId::parse(admin.id.as_str()).is_none() {
        return Err(malformed(format!("{} is not a key id", admin.id)));
    }
    if !admin.secret.starts_with(keys::SECRET_PREFIX) {
        return Err(malformed("secret does not start with sbsec_".to_owned()));
    }
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "admin key file is readable by other users; chmod 600 it");
        }
    }
    Ok(Some(admin))
}

/// Writes the credential file (see [`write_private_file`]).
fn write_file(data_dir: &Path, admin: &AdminKey) -> Result<(), AdminKeyError> {
    let path = admin_key_path(data_dir);
    let mut body = serde_json::to_vec_pretty(admin).map_err(|e| AdminKeyError::Malformed {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    body.push(b'\n');
    write_private_file(&path, &body).map_err(io_error("write", &path))
}

/// Replaces `path` atomically with a file of mode 0600 holding `bytes`: a temporary file next
/// to it is written and fsynced, renamed over `path`, and the directory is fsynced. Creates
/// the parent directory (mode 0700) if needed. Readers see the old file or the new one, never
/// a partial one.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("path has no file name"))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}
