//! `/machines` and `/machines/{m}`: create, list, read and delete machines.

use futures_util::future::try_join_all;
use http::Request;
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::response::Reply;
use super::versions::version_info;
use super::views::VersionInfo;
use super::{body, signing, ApiState};
use crate::clock::{now_ms, rfc3339_ms};
use crate::error::ApiError;
use crate::ids::{IndexName, MachineName};
use crate::store::MachineRecord;

#[derive(Deserialize)]
struct CreateMachine {
    slug: String,
    #[serde(default)]
    indexes: Vec<String>,
}

/// `POST /machines` → 201; 409 when the name is taken.
pub(super) async fn create(api: &ApiState, request: Request<Incoming>) -> Result<Reply, ApiError> {
    let req: CreateMachine = body::json(request, api.json_body_limit_bytes()).await?;
    let name = MachineName::parse(req.slug)
        .map_err(|_| ApiError::invalid("slug", "slug must match ^[a-zA-Z0-9_-]{1,128}$"))?;
    let mut indexes = Vec::with_capacity(req.indexes.len());
    for index in req.indexes {
        let index = IndexName::parse(index).map_err(|_| {
            ApiError::invalid("indexes", "index names must match ^[a-zA-Z0-9_-]{1,128}$")
        })?;
        if !indexes.contains(&index.to_string()) {
            indexes.push(index.to_string());
        }
    }
    let record = MachineRecord {
        name: name.clone(),
        created_at_ms: now_ms(),
        indexes,
        current_version: None,
    };
    if !api.store.create_machine(&record).await? {
        return Err(ApiError::Conflict(format!("machine {name} already exists")));
    }
    tracing::debug!(machine = %name, "machine created");
    Ok(Reply::Created)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MachineRow {
    slug: String,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    current_version: Option<VersionInfo>,
}

/// `GET /machines?cursor=` → `{machines, cursor?}`.
pub(super) async fn list(api: &ApiState, request: Request<Incoming>) -> Result<Reply, ApiError> {
    let page = api.store.list_machines(&body::page(request.uri())).await?;
    let rows = try_join_all(page.items.iter().map(|m| async move {
        Ok::<_, ApiError>(MachineRow {
            slug: m.name.to_string(),
            created_at: rfc3339_ms(m.created_at_ms),
            current_version: version_info(api, &m.name, m.current_version.as_ref()).await?,
        })
    }))
    .await?;
    Reply::page("machines", rows, page.cursor)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MachineView {
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    current_version: Option<VersionInfo>,
    indexes: Vec<String>,
}

/// `GET /machines/{m}` → `{machine: {createdAt, currentVersion?, indexes}}`; 404 when unknown.
pub(super) async fn get(api: &ApiState, name: &MachineName) -> Result<Reply, ApiError> {
    let machine = api
        .store
        .get_machine(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("machine {name}")))?;
    let view = MachineView {
        created_at: rfc3339_ms(machine.created_at_ms),
        current_version: version_info(api, name, machine.current_version.as_ref()).await?,
        indexes: machine.indexes,
    };
    Reply::json(json!({ "machine": view }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteMachine {
    #[serde(default)]
    danger_data_will_be_deleted_forever: bool,
    #[serde(default)]
    hmac_sha256_of_machine_name_with_machine_name_key: String,
}

/// `DELETE /machines/{m}` with the HMAC confirmation → 204; 409 while instances exist.
///
/// The instance check and the delete are two store calls: an instance created between them
/// is deleted with the machine's versions and can no longer run.
pub(super) async fn delete(
    api: &ApiState,
    name: &MachineName,
    request: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let req: DeleteMachine = body::json(request, api.json_body_limit_bytes()).await?;
    if !req.danger_data_will_be_deleted_forever {
        return Err(ApiError::invalid(
            "dangerDataWillBeDeletedForever",
            "dangerDataWillBeDeletedForever must be true",
        ));
    }
    if !signing::confirmation_matches(
        name.as_str(),
        name.as_str(),
        &req.hmac_sha256_of_machine_name_with_machine_name_key,
    ) {
        return Err(ApiError::invalid(
            "hmacSha256OfMachineNameWithMachineNameKey",
            "hmacSha256OfMachineNameWithMachineNameKey must be the base64url HMAC-SHA256 of \
             the machine name keyed by the machine name",
        ));
    }
    if api.store.get_machine(name).await?.is_none() {
        return Err(ApiError::NotFound(format!("machine {name}")));
    }
    if api.store.has_instances(name).await? {
        return Err(ApiError::Conflict(format!(
            "machine {name} still has instances; delete them first"
        )));
    }
    if !api.store.delete_machine(name).await? {
        return Err(ApiError::NotFound(format!("machine {name}")));
    }
    tracing::debug!(machine = %name, "machine deleted");
    Ok(Reply::NoContent)
}
