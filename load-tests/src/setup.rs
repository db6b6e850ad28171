//! Preparing a server for a scenario over its public API, with an admin token: the machine and
//! its version (uploaded in the three steps the official client uses), a signing key for
//! end-user tokens, and instances.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context as _;
use hyper::Method;
use serde_json::{json, Value};

use crate::http::Http;
use crate::token::Signer;

/// A machine ready to take instances, and the key that signs its users' tokens.
pub struct Bench {
    pub addr: SocketAddr,
    pub machine: String,
    pub signer: Signer,
}

/// Creates machine `machine` from the module at `module`, makes it current, and creates a key
/// with the scopes a user of the toggle needs.
pub async fn prepare(
    addr: SocketAddr,
    admin: &str,
    machine: &str,
    module: &Path,
) -> anyhow::Result<Bench> {
    let code =
        std::fs::read(module).with_context(|| format!("cannot read {}", module.display()))?;
    let mut http = Http::connect(addr).await?;
    http.json(Method::POST, "/machines", admin, &json!({"slug": machine}))
        .await?
        .expect(201, "create machine")?;
    upload_version(&mut http, admin, machine, &code).await?;
    let key = http
        .json(
            Method::POST,
            "/keys",
            admin,
            &json!({"name": "load", "scopes": ["instances.write", "state.read", "events.write"]}),
        )
        .await?
        .expect(200, "create key")?
        .json()?;
    let signer = Signer {
        key_id: key["id"].as_str().context("no key id")?.to_owned(),
        secret: key["key"].as_str().context("no key secret")?.to_owned(),
    };
    Ok(Bench {
        addr,
        machine: machine.to_owned(),
        signer,
    })
}

impl Bench {
    /// Creates `instances` over one connection, each as the user named like it.
    pub async fn create_instances(&self, instances: &[String]) -> anyhow::Result<()> {
        let mut http = Http::connect(self.addr).await?;
        let path = format!("/machines/{}", self.machine);
        for name in instances {
            let token = self.signer.for_instance(name);
            http.json(Method::POST, &path, &token, &json!({"slug": name}))
                .await?
                .expect(200, "create instance")?;
        }
        Ok(())
    }
}

/// The three steps of a version upload, as the official client does them.
async fn upload_version(
    http: &mut Http,
    admin: &str,
    machine: &str,
    code: &[u8],
) -> anyhow::Result<()> {
    let step1 = http
        .json(
            Method::POST,
            &format!("/machines/{machine}/v"),
            admin,
            &Value::Null,
        )
        .await?
        .expect(200, "provisional version")?
        .json()?;
    let url = step1["codeUploadUrl"]
        .as_str()
        .context("no codeUploadUrl")?;
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = &path[path.find('/').unwrap_or(path.len())..];
    let boundary = "statewire-load-boundary";
    let mut body = Vec::new();
    let mut field = |name: &str, value: &str| {
        body.extend_from_slice(
            format!("--{boundary}\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    };
    for (name, value) in step1["codeUploadFields"]
        .as_object()
        .context("no codeUploadFields")?
    {
        field(name, value.as_str().unwrap_or(""));
    }
    field("content-type", "application/javascript");
    body.extend_from_slice(
        format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{machine}.js\"\r\n\
             content-type: application/javascript\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(code);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let uploaded = http
        .call(
            Method::POST,
            path,
            None,
            &format!("multipart/form-data; boundary={boundary}"),
            body,
        )
        .await?;
    anyhow::ensure!(
        (200..300).contains(&uploaded.status),
        "upload: status {}",
        uploaded.status
    );
    let signed = step1["machineVersionId"]
        .as_str()
        .context("no machineVersionId")?;
    http.json(
        Method::PUT,
        &format!("/machines/{machine}/v/{signed}"),
        admin,
        &json!({"clientInfo": "load", "makeCurrent": true}),
    )
    .await?
    .expect(200, "finalize version")?;
    Ok(())
}
