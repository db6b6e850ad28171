//! The frames of `/rt`: decoding what clients send and encoding what the server answers.
//!
//! Client → server (JSON text frames, `type` picks the message):
//!
//! | `type` | fields | answer |
//! |---|---|---|
//! | `subscribe-to-instance` | `requestId`, `machineName`, `machineInstanceName`; extension: `diffs` (bool), `lastSeq` (number), `lastTs` (number) | the current state at once, then every change |
//! | `unsubscribe-from-instance` | `requestId`, `machineName`, `machineInstanceName` | none |
//! | `ping` | — | `{"type":"pong"}` |
//! | `create-instance` | `requestId`, `machineName`, `machineInstanceName`, `context`?, `machineVersionId`? | `reply` |
//! | `send-event` | `requestId`, `machineName`, `machineInstanceName`, `event` | `reply` |
//! | `get-instance` | `requestId`, `machineName`, `machineInstanceName` | `reply` |
//!
//! Server → client: `instance-update`, `instance-patch` (see the fan-out), `reply`
//! (`{type, requestId, status: 200, body: State}`), `error` (`{type, requestId, status, code,
//! error, parameter?}`, the same status and code as the HTTP route), `pong`.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::api::normalize_event;
use crate::error::ApiError;
use crate::fanout::{Base, Frame};
use crate::ids::{InstanceKey, InstanceName, MachineName, MachineVersionId};

/// A decoded client message.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Subscribe(Subscribe),
    Unsubscribe(InstanceKey),
    Ping,
    Command(Command),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subscribe {
    pub key: InstanceKey,
    /// Patches after the first full update (`diffs: true`).
    pub diffs: bool,
    /// `lastSeq` (and `lastTs`) of a client resuming with diffs.
    pub resume_from: Option<Base>,
}

/// The request/reply extensions, each answered by one `reply` or `error` frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Create {
        key: InstanceKey,
        context: Value,
        version: Option<MachineVersionId>,
    },
    SendEvent {
        key: InstanceKey,
        event: Value,
    },
    Get {
        key: InstanceKey,
    },
}

/// A client message with the id that ties answers and errors to it. The id is kept even when
/// the rest of the message is invalid, so the error reaches the right caller.
#[derive(Debug)]
pub struct Envelope {
    pub request_id: Option<String>,
    pub request: Result<Request, ApiError>,
}

/// Decodes one text frame. Never fails: problems become the envelope's error.
pub fn decode(text: &str) -> Envelope {
    let mut fields = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(fields)) => fields,
        Ok(_) => {
            return Envelope {
                request_id: None,
                request: Err(not_json("message is not a JSON object".into())),
            }
        }
        Err(e) => {
            return Envelope {
                request_id: None,
                request: Err(not_json(format!("message is not valid JSON: {e}"))),
            }
        }
    };
    let request_id = match fields.remove("requestId") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) => Ok(Some(id)),
        Some(_) => Err(ApiError::invalid("requestId", "requestId must be a string")),
    };
    match request_id {
        Ok(request_id) => Envelope {
            request: decode_request(&mut fields),
            request_id,
        },
        Err(e) => Envelope {
            request_id: None,
            request: Err(e),
        },
    }
}

/// A frame that is not a JSON object: the same status and code as a malformed HTTP body, in
/// words that speak of a message rather than a request body.
fn not_json(message: String) -> ApiError {
    ApiError::InvalidParameter {
        message,
        parameter: None,
    }
}

fn decode_request(fields: &mut Map<String, Value>) -> Result<Request, ApiError> {
    let kind = match fields.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        _ => return Err(ApiError::invalid("type", "a message needs a string type")),
    };
    let request = match kind.as_str() {
        "subscribe-to-instance" => Request::Subscribe(Subscribe {
            key: instance(fields)?,
            diffs: optional_bool(fields, "diffs")?,
            resume_from: resume_from(fields)?,
        }),
        "unsubscribe-from-instance" => Request::Unsubscribe(instance(fields)?),
        "ping" => Request::Ping,
        "create-instance" => Request::Command(Command::Create {
            key: instance(fields)?,
            context: match fields.remove("context") {
                None | Some(Value::Null) => Value::Object(Map::new()),
                Some(c @ Value::Object(_)) => c,
                Some(_) => return Err(ApiError::invalid("context", "context must be an object")),
            },
            version: match fields.remove("machineVersionId") {
                None | Some(Value::Null) => None,
                Some(Value::String(id)) => Some(MachineVersionId::parse(&id).ok_or_else(|| {
                    ApiError::invalid("machineVersionId", "machineVersionId must look like ver_…")
                })?),
                Some(_) => {
                    return Err(ApiError::invalid(
                        "machineVersionId",
                        "machineVersionId must be a string",
                    ))
                }
            },
        }),
        "send-event" => Request::Command(Command::SendEvent {
            key: instance(fields)?,
            event: normalize_event(fields.remove("event").unwrap_or(Value::Null))?,
        }),
        "get-instance" => Request::Command(Command::Get {
            key: instance(fields)?,
        }),
        other => {
            let shown: String = other.chars().take(64).collect();
            return Err(ApiError::invalid(
                "type",
                format!("unknown message type {shown:?}"),
            ));
        }
    };
    Ok(request)
}

fn instance(fields: &Map<String, Value>) -> Result<InstanceKey, ApiError> {
    let text = |name: &'static str| match fields.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(ApiError::invalid(name, format!("{name} must be a string"))),
    };
    Ok(InstanceKey::new(
        MachineName::parse(text("machineName")?)?,
        InstanceName::parse(text("machineInstanceName")?)?,
    ))
}

fn optional_bool(fields: &Map<String, Value>, name: &str) -> Result<bool, ApiError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::invalid(name, format!("{name} must be a boolean"))),
    }
}

/// `lastSeq` (a non-negative integer) and the optional `lastTs`; only read when `diffs` is set.
fn resume_from(fields: &Map<String, Value>) -> Result<Option<Base>, ApiError> {
    if !optional_bool(fields, "diffs")? {
        return Ok(None);
    }
    let seq = match fields.get("lastSeq") {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v.as_u64().ok_or_else(|| {
            ApiError::invalid("lastSeq", "lastSeq must be a non-negative integer")
        })?,
    };
    let ts_ms = match fields.get("lastTs") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| ApiError::invalid("lastTs", "lastTs must be an integer"))?,
        ),
    };
    Ok(Some(Base { seq, ts_ms }))
}

/// `{"type":"error","requestId",…,"status","code","error","parameter"?}`.
pub fn error(request_id: Option<&str>, e: &ApiError) -> Frame {
    let mut frame = Map::new();
    frame.insert("type".into(), "error".into());
    if let Some(id) = request_id {
        frame.insert("requestId".into(), id.into());
    }
    frame.insert("status".into(), e.class().status.as_u16().into());
    if let Value::Object(body) = e.body() {
        frame.extend(body);
    }
    encode(&frame)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Reply<'a, T> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    status: u16,
    body: T,
}

/// `{"type":"reply","requestId","status":200,"body"}`: a command's answer, `body` being what
/// the HTTP route answers.
pub fn reply(request_id: Option<&str>, body: impl Serialize) -> Frame {
    encode(&Reply {
        kind: "reply",
        request_id,
        status: 200,
        body,
    })
}

pub fn pong() -> Frame {
    Frame::from_static(r#"{"type":"pong"}"#)
}

fn encode(frame: &impl Serialize) -> Frame {
    // Frames are maps of strings, numbers and JSON values: serializing cannot fail.
    Frame::from(serde_json::to_string(frame).unwrap_or_else(|_| String::from("{}")))
}

#[cfg(test)]
mod tests;
