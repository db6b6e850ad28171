//! Instances as end users see them: create, read, send an event, list.
//!
//! Create, read and send answer `State` (`{ts, state, publicContext, tags, done}`); the
//! authorizers see the caller's `authContext`, and only `context.public` is ever returned.

use std::collections::HashMap;

use http::Request;
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::response::Reply;
use super::versions::version_info;
use super::views::{StateView, VersionInfo};
use super::{body, ApiState};
use crate::auth::Principal;
use crate::clock::rfc3339_ms;
use crate::error::ApiError;
use crate::ids::{InstanceKey, InstanceName, MachineName, MachineVersionId};
use crate::registry::CreateRequest;
use crate::store::InstanceStatus;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateInstance {
    slug: String,
    #[serde(default)]
    context: Option<Value>,
    #[serde(default)]
    machine_version_id: Option<String>,
}

/// `POST /machines/{m}` → 200 `State`; 409 when the name exists, 403 when `allowWrite`
/// (initialization) refuses.
pub(super) async fn create(
    api: &ApiState,
    principal: Principal,
    machine: &MachineName,
    request: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let req: CreateInstance = body::json(request, api.json_body_limit_bytes()).await?;
    let instance = InstanceName::parse(req.slug)
        .map_err(|_| ApiError::invalid("slug", "slug must match ^[a-zA-Z0-9_-]{1,128}$"))?;
    let context = match req.context {
        None | Some(Value::Null) => json!({}),
        Some(c @ Value::Object(_)) => c,
        Some(_) => return Err(ApiError::invalid("context", "context must be an object")),
    };
    let version = match req.machine_version_id {
        Some(id) => MachineVersionId::parse(&id).ok_or_else(|| {
            ApiError::invalid("machineVersionId", "machineVersionId must look like ver_…")
        })?,
        None => current_version(api, machine).await?,
    };
    let key = InstanceKey::new(machine.clone(), instance);
    let request = CreateRequest {
        version,
        context,
        auth_context: principal.auth_context,
    };
    let record = api.registry.create(key, request).await?;
    Reply::json(StateView::of(&record))
}

pub(crate) async fn current_version(
    api: &ApiState,
    machine: &MachineName,
) -> Result<MachineVersionId, ApiError> {
    let record = api
        .store
        .get_machine(machine)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("machine {machine}")))?;
    record.current_version.ok_or_else(|| {
        ApiError::invalid(
            "machineVersionId",
            format!("machine {machine} has no current version; pass machineVersionId"),
        )
    })
}

/// `GET /machines/{m}/i/{i}` → 200 `State`; 404 when missing, 403 when `allowRead` refuses.
pub(super) async fn get(
    api: &ApiState,
    principal: Principal,
    key: InstanceKey,
) -> Result<Reply, ApiError> {
    let record = api.registry.read(&key, &principal.auth_context).await?;
    Reply::json(StateView::of(&record))
}

#[derive(Deserialize)]
struct SendEvent {
    event: Value,
}

/// `POST /machines/{m}/i/{i}/events` with `{event}` → 200 `State` once the transition is
/// durable; 409 when paused, 403 when `allowWrite` refuses.
pub(super) async fn send_event(
    api: &ApiState,
    principal: Principal,
    key: InstanceKey,
    request: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let req: SendEvent = body::json(request, api.json_body_limit_bytes()).await?;
    let event = normalize_event(req.event)?;
    let record = api
        .registry
        .send_event(key, event, principal.auth_context)
        .await?;
    Reply::json(StateView::of(&record))
}

/// A string event becomes `{type}`; an object must carry a non-empty string `type`.
pub(crate) fn normalize_event(event: Value) -> Result<Value, ApiError> {
    match event {
        Value::String(t) if !t.is_empty() => Ok(json!({ "type": t })),
        Value::Object(o)
            if o.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| !t.is_empty()) =>
        {
            Ok(Value::Object(o))
        }
        _ => Err(ApiError::invalid(
            "event",
            "event must be a non-empty string or an object with a string type",
        )),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InstanceRow {
    slug: String,
    created_at: String,
    status: InstanceStatus,
    machine_version: Option<VersionInfo>,
}

/// `GET /machines/{m}/i?cursor=` → `{instances, cursor?}`.
pub(super) async fn list(
    api: &ApiState,
    machine: &MachineName,
    request: Request<Incoming>,
) -> Result<Reply, ApiError> {
    if api.store.get_machine(machine).await?.is_none() {
        return Err(ApiError::NotFound(format!("machine {machine}")));
    }
    let page = api
        .store
        .list_instances(machine, &body::page(request.uri()))
        .await?;
    // Instances of a page mostly share a few versions: look each one up once.
    let mut versions: HashMap<MachineVersionId, Option<VersionInfo>> = HashMap::new();
    let mut rows = Vec::with_capacity(page.items.len());
    for item in page.items {
        if !versions.contains_key(&item.machine_version) {
            let info = version_info(api, machine, Some(&item.machine_version)).await?;
            versions.insert(item.machine_version.clone(), info);
        }
        let info = versions[&item.machine_version].clone();
        rows.push(InstanceRow {
            slug: item.name,
            created_at: rfc3339_ms(item.created_at_ms),
            status: item.status,
            machine_version: info,
        });
    }
    Reply::page("instances", rows, page.cursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_events_become_objects_and_typeless_ones_are_refused() {
        assert_eq!(
            normalize_event(json!("TOGGLE")).unwrap(),
            json!({"type": "TOGGLE"})
        );
        let obj = json!({"type": "SET", "value": 3});
        assert_eq!(normalize_event(obj.clone()).unwrap(), obj);
        for bad in [
            json!(""),
            json!({}),
            json!({"type": 1}),
            json!(3),
            json!(null),
        ] {
            let err = normalize_event(bad).unwrap_err();
            assert_eq!(err.parameter(), Some("event"));
        }
    }
}
