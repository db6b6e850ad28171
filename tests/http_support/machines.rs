//! Machines for tests: the raw-wasm toggle example, built from source, and the three-step
//! version upload done the way the official client does it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use http::Method;
use serde_json::{json, Value};

use super::{Reply, TestServer};

/// `examples/raw-wasm-toggle` compiled to `wasm32-wasip1`, once per test binary.
///
/// The machine starts in `off` and flips on `toggle`; every entry into `off` (the initial one
/// included) adds one to `context.public.toggleCount`. Its authorizers allow a caller whose
/// `authContext.sub` equals the instance name.
pub fn toggle_wasm() -> Vec<u8> {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("raw-wasm-toggle");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let output = Command::new(cargo)
            .args(["build", "--release", "--target", "wasm32-wasip1"])
            .arg("--manifest-path")
            .arg(root.join("examples/raw-wasm-toggle/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            .output()
            .expect("cargo runs");
        assert!(
            output.status.success(),
            "building examples/raw-wasm-toggle failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let wasm: PathBuf = target_dir.join("wasm32-wasip1/release/raw_wasm_toggle.wasm");
        std::fs::read(wasm).expect("the built module exists")
    })
    .clone()
}

/// The toggle machine, built off the reactor.
pub async fn toggle() -> Vec<u8> {
    tokio::task::spawn_blocking(toggle_wasm).await.unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

const BOUNDARY: &str = "statewire-test-boundary-7d1f";

/// A `multipart/form-data` body: `fields` in order, then the `file` part.
pub fn form(fields: &[(&str, &str)], file: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        write!(
            body,
            "--{BOUNDARY}\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        )
        .unwrap();
    }
    write!(
        body,
        "--{BOUNDARY}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"machine.js\"\r\n\
         content-type: application/javascript\r\n\r\n"
    )
    .unwrap();
    body.extend_from_slice(file);
    write!(body, "\r\n--{BOUNDARY}--\r\n").unwrap();
    body
}

pub fn form_content_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// Step 1 (`POST /machines/{m}/v[?gzip]`, no body), returning its JSON.
pub async fn provisional(server: &TestServer, machine: &str, gzip: bool) -> Value {
    let path = format!("/machines/{machine}/v{}", if gzip { "?gzip" } else { "" });
    let reply = server.admin().post_empty(&path).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.json()
}

/// Step 2: posts `code` to `codeUploadUrl` with the returned fields, as the client does.
pub async fn upload(server: &TestServer, step1: &Value, code: &[u8], gzipped: bool) -> Reply {
    let url = step1["codeUploadUrl"].as_str().unwrap();
    let path = url.split_once("://").unwrap().1;
    let path = &path[path.find('/').unwrap()..];
    let mut fields: Vec<(String, String)> = step1["codeUploadFields"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    fields.push(("content-type".into(), "application/javascript".into()));
    if gzipped {
        fields.push(("content-encoding".into(), "gzip".into()));
    }
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (&k[..], &v[..])).collect();
    let body = if gzipped {
        form(&fields, &gzip(code))
    } else {
        form(&fields, code)
    };
    server
        .client
        .request(
            Method::POST,
            path,
            &[("content-type", &form_content_type())],
            body,
        )
        .await
}

/// Step 3: `PUT /machines/{m}/v/{signedId}`.
pub async fn finalize(server: &TestServer, machine: &str, step1: &Value, body: &Value) -> Reply {
    let signed = step1["machineVersionId"].as_str().unwrap();
    server
        .admin()
        .put(&format!("/machines/{machine}/v/{signed}"), body)
        .await
}

/// Creates `machine` with `code` as its current version; returns the `ver_…` id.
pub async fn machine_with_version(server: &TestServer, machine: &str, code: &[u8]) -> String {
    server.create_machine(machine).await;
    add_version(server, machine, code, true).await
}

/// Adds a version through all three steps (gzipped, like smply); returns its id.
pub async fn add_version(server: &TestServer, machine: &str, code: &[u8], current: bool) -> String {
    let step1 = provisional(server, machine, true).await;
    let uploaded = upload(server, &step1, code, true).await;
    assert!(uploaded.status.is_success(), "{:?}", uploaded.body);
    let done = finalize(
        server,
        machine,
        &step1,
        &json!({"clientInfo": "test", "makeCurrent": current}),
    )
    .await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    done.json()["machineVersionId"].as_str().unwrap().to_owned()
}
