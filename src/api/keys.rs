//! `/keys`: signing keys, handed to the authenticator (which keeps its key cache in step).

use http::Request;
use hyper::body::Incoming;

use super::response::Reply;
use super::{body, ApiState};
use crate::auth::keys::{parse_key_id, CreateKeyRequest};
use crate::error::ApiError;

/// `POST /keys` `{name, scopes?, use?}` → 200 `{id, key}`; the secret is shown only here.
pub(super) async fn create(api: &ApiState, request: Request<Incoming>) -> Result<Reply, ApiError> {
    let req: CreateKeyRequest = body::json(request, api.json_body_limit_bytes()).await?;
    Reply::json(api.auth.create_key(req).await?)
}

/// `GET /keys?cursor=` → `{keys, cursor?}`, without secrets.
pub(super) async fn list(api: &ApiState, request: Request<Incoming>) -> Result<Reply, ApiError> {
    Reply::json(api.auth.list_keys(&body::page(request.uri())).await?)
}

/// `DELETE /keys/{id}` → 204; tokens of that key are refused from then on.
pub(super) async fn delete(api: &ApiState, id: &str) -> Result<Reply, ApiError> {
    api.auth.delete_key(&parse_key_id(id)?).await?;
    Ok(Reply::NoContent)
}
