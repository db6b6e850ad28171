//! Instances as operators see them: history, full state, status, desired version, delete.
//! None of these ask the machine's authorizers; the scopes (`instances.admin`,
//! `instances.write`) are the whole check.

use http::Request;
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::response::Reply;
use super::versions::version_info;
use super::views::VersionInfo;
use super::{body, signing, ApiState};
use crate::clock::rfc3339_ms;
use crate::error::ApiError;
use crate::ids::{InstanceKey, MachineVersionId};
use crate::store::InstanceStatus;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TransitionRow {
    created_at: String,
    state: Value,
    event: Value,
}

/// `GET /machines/{m}/i/{i}/events?cursor=` → `{transitions, cursor?}`, newest first.
pub(super) async fn history(
    api: &ApiState,
    key: InstanceKey,
    request: Request<Incoming>,
) -> Result<Reply, ApiError> {
    api.registry.load(&key).await?;
    let page = api
        .store
        .list_transitions(&key, &body::page(request.uri()))
        .await?;
    let rows: Vec<TransitionRow> = page
        .items
        .into_iter()
        .map(|t| TransitionRow {
            created_at: rfc3339_ms(t.created_at_ms),
            state: t.state,
            event: t.event,
        })
        .collect();
    Reply::page("transitions", rows, page.cursor)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AdminView<'a> {
    state: &'a Value,
    context: &'a Value,
    tags: &'a [String],
    done: bool,
    status: InstanceStatus,
    machine_version: Option<VersionInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    desired_machine_version: Option<VersionInfo>,
    created_at: String,
}

/// `GET /machines/{m}/i/{i}/admin` → `AdministrativeInstanceState`, full context included.
pub(super) async fn admin_view(api: &ApiState, key: InstanceKey) -> Result<Reply, ApiError> {
    let record = api.registry.load(&key).await?;
    let machine_version = version_info(api, &key.machine, Some(&record.machine_version)).await?;
    let desired = version_info(api, &key.machine, record.desired_machine_version.as_ref()).await?;
    Reply::json(AdminView {
        state: &record.state,
        context: &record.context,
        tags: &record.tags,
        done: record.done,
        status: record.status,
        machine_version,
        desired_machine_version: desired,
        created_at: rfc3339_ms(record.created_at_ms),
    })
}

#[derive(Deserialize)]
struct SetStatus {
    status: InstanceStatus,
}

/// `PUT /machines/{m}/i/{i}/status` with `{status: "running"|"paused"}` → 204.
pub(super) async fn set_status(
    api: &ApiState,
    key: InstanceKey,
    request: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let req: SetStatus = body::json(request, api.json_body_limit_bytes()).await?;
    api.registry.set_status(key, req.status).await?;
    Ok(Reply::NoContent)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetVersion {
    target_machine_version_id: String,
}

/// `PUT /machines/{m}/i/{i}/v` with `{targetMachineVersionId}`.
///
/// Migrations are not supported: the only version an instance can reach is its own, which
/// answers 201 and changes nothing. Any other stored version of the machine answers 400
/// `no-migration-path`; an unknown version 404.
pub(super) async fn set_version(
    api: &ApiState,
    key: InstanceKey,
    request: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let req: SetVersion = body::json(request, api.json_body_limit_bytes()).await?;
    let target = MachineVersionId::parse(&req.target_machine_version_id).ok_or_else(|| {
        ApiError::invalid(
            "targetMachineVersionId",
            "targetMachineVersionId must look like ver_…",
        )
    })?;
    let record = api.registry.load(&key).await?;
    if record.machine_version == target {
        return Ok(Reply::Created);
    }
    if api
        .store
        .get_version(&key.machine, &target)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound(format!(
            "machine version {target} of machine {}",
            key.machine
        )));
    }
    Err(ApiError::NoMigrationPath(format!(
        "no migration path from {} to {target}; migrations are not supported",
        record.machine_version
    )))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteInstance {
    #[serde(default)]
    danger_data_will_be_deleted_forever: bool,
    #[serde(default)]
    hmac_sha256_of_machine_instance_name_with_machine_name_key: String,
}

/// `DELETE /machines/{m}/i/{i}` with the HMAC confirmation → 204; 404 when missing.
pub(super) async fn delete(
    api: &ApiState,
    key: InstanceKey,
    request: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let req: DeleteInstance = body::json(request, api.json_body_limit_bytes()).await?;
    if !req.danger_data_will_be_deleted_forever {
        return Err(ApiError::invalid(
            "dangerDataWillBeDeletedForever",
            "dangerDataWillBeDeletedForever must be true",
        ));
    }
    if !signing::confirmation_matches(
        key.machine.as_str(),
        key.instance.as_str(),
        &req.hmac_sha256_of_machine_instance_name_with_machine_name_key,
    ) {
        return Err(ApiError::invalid(
            "hmacSha256OfMachineInstanceNameWithMachineNameKey",
            "hmacSha256OfMachineInstanceNameWithMachineNameKey must be the base64url \
             HMAC-SHA256 of the instance name keyed by the machine name",
        ));
    }
    api.registry.delete(key).await?;
    Ok(Reply::NoContent)
}
