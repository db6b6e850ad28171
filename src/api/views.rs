//! The JSON shapes of the State Backed API, built from stored records.

use serde::Serialize;
use serde_json::Value;

use crate::clock::rfc3339_ms;
use crate::runtime::public_context;
use crate::store::{InstanceRecord, VersionRecord};

/// `State`: what create, get and send-event answer. Only `context.public` leaves the server.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StateView<'a> {
    pub ts: i64,
    pub state: &'a Value,
    pub public_context: Value,
    pub tags: &'a [String],
    pub done: bool,
}

impl<'a> StateView<'a> {
    pub fn of(record: &'a InstanceRecord) -> Self {
        Self {
            ts: record.ts_ms,
            state: &record.state,
            public_context: public_context(&record.context),
            tags: &record.tags,
            done: record.done,
        }
    }
}

/// `MachineVersionInfo`: `{id, createdAt, clientInfo}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct VersionInfo {
    pub id: String,
    pub created_at: String,
    pub client_info: String,
}

impl VersionInfo {
    pub fn of(record: &VersionRecord) -> Self {
        Self {
            id: record.id.to_string(),
            created_at: rfc3339_ms(record.created_at_ms),
            client_info: record.client_info.clone(),
        }
    }
}
