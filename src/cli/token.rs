//! `statewire token` and `statewire smply-login`: bearer tokens for this server, made without a
//! running server.
//!
//! `token --admin` signs with the operator's key from `<data-dir>/admin-key.json` (created by
//! the first `statewire serve`); `token --key … --secret …` signs an end-user token exactly as
//! `@statebacked/token` does. The token is the last line of stdout. `smply-login` stores a
//! long-lived admin token where the `smply` CLI looks for its session.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{json, Value};

use statewire::auth::admin::{self, AdminKey};
use statewire::auth::keys;
use statewire::auth::sign::{self, SignOptions, SignedToken};
use statewire::clock::rfc3339_ms;
use statewire::ids::KeyId;

/// Default data directory, shared with `statewire serve`.
const DEFAULT_DATA_DIR: &str = "./statewire-data";

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("signer").required(true).args(["admin", "key"]))]
pub struct Args {
    /// Sign with the operator's admin key from <data-dir>/admin-key.json.
    #[arg(long, conflicts_with_all = ["key", "secret"])]
    admin: bool,
    /// Data directory of the server (holds admin-key.json).
    #[arg(long, env = "STATEWIRE_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Id of the key to sign an end-user token with (sbk_…).
    #[arg(long, requires = "secret")]
    key: Option<String>,
    /// Secret of that key (sbsec_…).
    #[arg(long, requires = "key")]
    secret: Option<String>,
    /// End-user claims, a JSON object placed in the token's `act` claim; it becomes the
    /// authContext. Required with --key; with --admin it defaults to {"sub":"admin"}.
    #[arg(long, required_unless_present = "admin")]
    claims: Option<String>,
    /// Lifetime of the token, like 30m, 24h or 7d.
    #[arg(long, default_value = "24h")]
    expires_in: String,
    /// `iss` claim; defaults to https://<key id>.client.statebacked.dev/ like @statebacked/token.
    #[arg(long)]
    issuer: Option<String>,
}

#[derive(clap::Args)]
pub struct SmplyLoginArgs {
    /// Data directory of the server (holds admin-key.json).
    #[arg(long, env = "STATEWIRE_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Home directory whose .smply/credentials is written; defaults to $HOME.
    #[arg(long)]
    home: Option<PathBuf>,
    /// Lifetime of the stored admin token.
    #[arg(long, default_value = "365d")]
    expires_in: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let expires_in = sign::parse_duration(&args.expires_in)?;
    let claims = args.claims.as_deref().map(parse_claims).transpose()?;
    let signed = if args.admin {
        let admin = admin::read_admin_key(&args.data_dir)?;
        let act = claims.unwrap_or_else(|| json!({"sub": "admin"}));
        sign_with(&admin.id, &admin.secret, &act, expires_in, args.issuer)?
    } else {
        let (Some(key), Some(secret), Some(act)) = (args.key, args.secret, claims) else {
            anyhow::bail!("--key needs --secret and --claims");
        };
        let key =
            KeyId::parse(&key).with_context(|| format!("--key {key:?} is not a key id (sbk_…)"))?;
        sign_with(&key, &secret, &act, expires_in, args.issuer)?
    };
    println!("{}", signed.token);
    Ok(())
}

pub fn smply_login(args: SmplyLoginArgs) -> anyhow::Result<()> {
    let expires_in = sign::parse_duration(&args.expires_in)?;
    let admin = admin::read_admin_key(&args.data_dir)?;
    let home = match args.home {
        Some(home) => home,
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .context("HOME is not set; pass --home")?,
    };
    let path = home.join(".smply").join("credentials");
    let signed = admin.sign(&json!({"sub": "admin"}), expires_in)?;
    let session = smply_session(&admin, &signed);
    let backup = back_up_existing(&path)?;
    let mut body = serde_json::to_vec_pretty(&session)?;
    body.push(b'\n');
    admin::write_private_file(&path, &body)
        .with_context(|| format!("cannot write {}", path.display()))?;

    if let Some(backup) = backup {
        println!("moved the previous smply session to {}", backup.display());
    }
    println!(
        "wrote {} (admin token of key {}, valid until {})",
        path.display(),
        admin.id,
        rfc3339_ms(signed.expires_at_s as i64 * 1000)
    );
    println!(
        "smply now acts as this server's operator; give it the server's address on each call, \
         e.g. with the smply that setup pins, from the repository root:"
    );
    println!(
        "  NODE_OPTIONS=--experimental-websocket npx --prefix tests/compat smply machines list \
         -u http://127.0.0.1:<port>"
    );
    Ok(())
}

fn parse_claims(text: &str) -> anyhow::Result<Value> {
    let claims: Value = serde_json::from_str(text).context("--claims is not valid JSON")?;
    anyhow::ensure!(claims.is_object(), "--claims must be a JSON object");
    Ok(claims)
}

fn sign_with(
    key: &KeyId,
    secret: &str,
    act: &Value,
    expires_in: Duration,
    issuer: Option<String>,
) -> anyhow::Result<SignedToken> {
    let options = SignOptions { expires_in, issuer };
    Ok(sign::sign_token(key, secret, act, &options)?)
}

/// The session object smply keeps for its login provider: it sends `access_token` as the
/// bearer and only refreshes once `expires_at` has passed, so the admin token's expiry is used.
fn smply_session(admin: &AdminKey, signed: &SignedToken) -> Value {
    let now = rfc3339_ms(signed.issued_at_s as i64 * 1000);
    json!({
        "access_token": signed.token,
        "token_type": "bearer",
        "expires_in": signed.expires_at_s - signed.issued_at_s,
        "expires_at": signed.expires_at_s,
        "refresh_token": keys::mint_secret(),
        "user": {
            "id": uuid::Uuid::new_v4().to_string(),
            "aud": "authenticated",
            "role": "authenticated",
            "email": "admin@statewire.local",
            "app_metadata": {"provider": "statewire", "providers": ["statewire"]},
            "user_metadata": {"statewire_key_id": admin.id},
            "identities": [],
            "created_at": now,
            "updated_at": now,
        },
    })
}

/// Moves an existing session file aside, unless it is one this command wrote, so that a
/// hosted-service login is not lost. An older backup is never overwritten.
fn back_up_existing(path: &Path) -> anyhow::Result<Option<PathBuf>> {
    let existing = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let ours = serde_json::from_slice::<Value>(&existing)
        .ok()
        .and_then(|v| v.pointer("/user/app_metadata/provider").cloned())
        == Some(Value::from("statewire"));
    if ours {
        return Ok(None);
    }
    let mut backup = path.with_extension("bak");
    if backup.exists() {
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        backup = path.with_extension(format!("bak.{now_s}"));
    }
    std::fs::rename(path, &backup)
        .with_context(|| format!("cannot move {} aside", path.display()))?;
    Ok(Some(backup))
}
