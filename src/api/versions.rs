//! `/machines/{m}/v`: versions are made in three steps, as State Backed makes them.
//!
//! 1. `POST /machines/{m}/v[?gzip]` records a provisional upload and answers a signed
//!    provisional id, the URL to post the code to, and the form fields that authorize it.
//! 2. The client posts the code there (see `upload`).
//! 3. `PUT /machines/{m}/v/{signedId}` checks the code in the runtime and turns the upload
//!    into an immutable version with a `ver_…` id.
//!
//! Limit: uploads that are never finalized stay in the store, with their code; nothing
//! collects them yet.

use http::{HeaderMap, Request};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::response::Reply;
use super::router::UPLOAD_PATH;
use super::signing::UPLOAD_TTL_MS;
use super::views::VersionInfo;
use super::{body, ApiState};
use crate::clock::now_ms;
use crate::error::ApiError;
use crate::ids::{MachineName, MachineVersionId};
use crate::runtime::MachineCode;
use crate::store::{MachineRecord, UploadRecord, VersionRecord};

/// `MachineVersionInfo` of `id`, if given and stored.
pub(super) async fn version_info(
    api: &ApiState,
    machine: &MachineName,
    id: Option<&MachineVersionId>,
) -> Result<Option<VersionInfo>, ApiError> {
    let Some(id) = id else {
        return Ok(None);
    };
    Ok(api
        .store
        .get_version(machine, id)
        .await?
        .map(|v| VersionInfo::of(&v)))
}

async fn machine(api: &ApiState, name: &MachineName) -> Result<MachineRecord, ApiError> {
    api.store
        .get_machine(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("machine {name}")))
}

/// `POST /machines/{m}/v[?gzip]` → 200 `{machineVersionId, codeUploadUrl, codeUploadFields}`.
pub(super) async fn provisional(
    api: &ApiState,
    name: &MachineName,
    request: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let gzip = body::query_param(request.uri(), "gzip").is_some_and(|v| v != "false" && v != "0");
    let url = upload_url(api, request.headers())?;
    // The spec's body is `{}`; the official client sends none. Either is accepted.
    let _: Value = body::json_or_default(request, api.json_body_limit_bytes()).await?;
    machine(api, name).await?;

    let signed_id = api.uploads.provisional_id(name);
    let now = now_ms();
    api.store
        .put_upload(&UploadRecord {
            id: signed_id.clone(),
            machine: name.clone(),
            gzip,
            created_at_ms: now,
            code_hash: None,
        })
        .await?;
    let fields = api.uploads.upload_fields(&signed_id, now + UPLOAD_TTL_MS);
    tracing::debug!(machine = %name, gzip, "version upload prepared");
    Reply::json(json!({
        "machineVersionId": signed_id,
        "codeUploadUrl": url,
        "codeUploadFields": fields,
    }))
}

/// Where clients post code: `public_url` when configured, else `http://` + the request's
/// `Host` (or the bound address when there is none) + [`UPLOAD_PATH`].
fn upload_url(api: &ApiState, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(base) = &api.config.public_url {
        return Ok(format!("{}{UPLOAD_PATH}", base.trim_end_matches('/')));
    }
    let host = match headers.get(http::header::HOST) {
        Some(h) => {
            let h = h
                .to_str()
                .ok()
                .filter(|h| h.parse::<http::uri::Authority>().is_ok());
            h.ok_or_else(|| ApiError::invalid("host", "the Host header is not a valid host"))?
                .to_owned()
        }
        None => api.local_addr.to_string(),
    };
    Ok(format!("http://{host}{UPLOAD_PATH}"))
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Finalize {
    #[serde(default)]
    client_info: Option<String>,
    #[serde(default)]
    make_current: Option<bool>,
    #[serde(default)]
    index_selectors: Option<Map<String, Value>>,
}

/// `PUT /machines/{m}/v/{signedId}` → 200 `{machineVersionId: "ver_…"}`; 400 `invalid-bundle`
/// when the runtime refuses the code.
pub(super) async fn finalize(
    api: &ApiState,
    name: &MachineName,
    signed_id: &str,
    request: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let req: Finalize = body::json_or_default(request, api.json_body_limit_bytes()).await?;
    let not_found = || ApiError::NotFound(format!("provisional machine version {signed_id}"));
    if !api.uploads.check_provisional(name, signed_id) {
        return Err(not_found());
    }
    let upload = api
        .store
        .get_upload(signed_id)
        .await?
        .filter(|u| &u.machine == name)
        .ok_or_else(not_found)?;
    let code_hash = upload.code_hash.ok_or_else(|| {
        ApiError::invalid(
            "signedMachineVersionId",
            "no code has been uploaded for this machine version",
        )
    })?;
    let bytes = api
        .store
        .get_bundle(&code_hash)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("uploaded code {code_hash} is missing")))?;
    let code = MachineCode::new(bytes, api.runtime.config().max_bundle_bytes)?;
    let info = api.runtime.check(&code).await?;

    let machine = machine(api, name).await?;
    let index_selectors = merged_selectors(api, &machine, req.index_selectors).await?;
    let version = VersionRecord {
        machine: name.clone(),
        id: MachineVersionId::generate(),
        created_at_ms: now_ms(),
        client_info: req.client_info.unwrap_or_default(),
        code_hash,
        index_selectors,
    };
    api.store.put_version(&version).await?;
    if req.make_current.unwrap_or(false) {
        api.store.set_current_version(name, &version.id).await?;
    }
    api.store.delete_upload(signed_id).await?;
    tracing::debug!(machine = %name, version = %version.id, kind = ?info.kind, "machine version created");
    Reply::json(json!({ "machineVersionId": version.id }))
}

/// The version's index selectors: the ones sent, over the current version's for the indexes
/// not sent. Every key must be one of the machine's indexes and every value a JSONPath string.
async fn merged_selectors(
    api: &ApiState,
    machine: &MachineRecord,
    sent: Option<Map<String, Value>>,
) -> Result<Value, ApiError> {
    let sent = sent.unwrap_or_default();
    for (index, selector) in &sent {
        if !machine.indexes.contains(index) {
            return Err(ApiError::invalid(
                "indexSelectors",
                format!("{index:?} is not an index of machine {}", machine.name),
            ));
        }
        if !selector.is_string() {
            return Err(ApiError::invalid(
                "indexSelectors",
                format!("the selector of {index:?} must be a JSONPath string"),
            ));
        }
    }
    let mut merged = match &machine.current_version {
        Some(current) => match api.store.get_version(&machine.name, current).await? {
            Some(v) => v.index_selectors.as_object().cloned().unwrap_or_default(),
            None => Map::new(),
        },
        None => Map::new(),
    };
    merged.extend(sent);
    Ok(Value::Object(merged))
}

/// `GET /machines/{m}/v?cursor=` → `{versions, cursor?}`, newest first.
pub(super) async fn list(
    api: &ApiState,
    name: &MachineName,
    request: Request<Incoming>,
) -> Result<Reply, ApiError> {
    machine(api, name).await?;
    let page = api
        .store
        .list_versions(name, &body::page(request.uri()))
        .await?;
    let versions: Vec<VersionInfo> = page.items.iter().map(VersionInfo::of).collect();
    Reply::page("versions", versions, page.cursor)
}
