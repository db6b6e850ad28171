//! `create-instance`, `send-event` and `get-instance`: the HTTP routes' work over the socket.
//!
//! Each command goes through the same registry calls, scopes and authorizers as its HTTP
//! route and is answered with a `reply` frame carrying the route's body (`State`) or an
//! `error` frame with the route's status and code. Commands run on their own tasks, so a slow
//! event does not hold up the connection's other frames; their answers may therefore come in
//! another order than the commands were sent, tied together by `requestId`.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::connection::Conn;
use super::protocol::{self, Command};
use crate::api::{current_version, StateView};
use crate::auth::Route;
use crate::error::ApiError;
use crate::fanout::Frame;
use crate::registry::CreateRequest;
use crate::store::InstanceRecord;

/// Runs one command and queues its answer for the writer.
pub(super) async fn run(
    conn: Arc<Conn>,
    request_id: Option<String>,
    command: Command,
    queue_tx: mpsc::Sender<Frame>,
) {
    let frame = match execute(&conn, command).await {
        Ok(record) => protocol::reply(request_id.as_deref(), StateView::of(&record)),
        Err(e) => {
            let class = e.class();
            if class.expected {
                tracing::debug!(conn = %conn.id, status = class.status.as_u16(), code = class.code, error = %e, "command refused");
            } else {
                tracing::error!(conn = %conn.id, status = class.status.as_u16(), code = class.code, error = ?e, "command failed");
            }
            protocol::error(request_id.as_deref(), &e)
        }
    };
    // The writer is gone when the connection closed meanwhile; the answer is moot then.
    let _ = queue_tx.send(frame).await;
}

async fn execute(conn: &Conn, command: Command) -> Result<Arc<InstanceRecord>, ApiError> {
    let api = &conn.api;
    if api.is_shutting_down() {
        return Err(ApiError::ShuttingDown);
    }
    let auth_context = conn.principal.auth_context.clone();
    let record = match command {
        Command::Create {
            key,
            context,
            version,
        } => {
            conn.principal.authorize(Route::CreateInstance)?;
            let version = match version {
                Some(version) => version,
                None => current_version(api, &key.machine).await?,
            };
            let request = CreateRequest {
                version,
                context,
                auth_context,
            };
            api.registry.create(key, request).await?
        }
        Command::SendEvent { key, event } => {
            conn.principal.authorize(Route::SendEvent)?;
            api.registry.send_event(key, event, auth_context).await?
        }
        Command::Get { key } => {
            conn.principal.authorize(Route::GetInstanceState)?;
            api.registry.read(&key, &auth_context).await?
        }
    };
    Ok(record)
}
