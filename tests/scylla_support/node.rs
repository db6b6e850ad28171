//! A scripted CQL node on a loopback address: `scylla-proxy` in dry mode (no real node
//! behind it) with rules that answer the handshake, PREPARE the store's statements from the
//! schema, EXECUTE them against the table [`Model`], and record every request.
//!
//! Interceptors let a test replace the answer to chosen EXECUTEs (a CAS write timeout, a
//! scripted "not applied"), optionally after applying the write to the model. Requests the
//! node does not understand (the driver's reads of system tables) get a server error, never
//! silence: an unanswered request would hang the session.
//!
//! Each sequential request through the proxy takes about 45 ms on loopback (its sockets do not
//! set TCP_NODELAY, so small replies wait for a delayed ACK); concurrent requests overlap.
//! Tests that need long histories seed the model directly instead of committing each version.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use scylla_cql::frame::protocol_features::ProtocolFeatures;
use scylla_cql::frame::request::RequestV2;
use scylla_cql::frame::response::error::DbError;
use scylla_cql::frame::types::{Consistency, SerialConsistency};
use scylla_proxy::{
    Condition, Node, Proxy, Reaction, RequestFrame, RequestOpcode, RequestReaction, RequestRule,
    ResponseFrame, ResponseOpcode, RunningProxy,
};

use super::cql::{Operand, Schema, Statement};
use super::model::{LwtShape, Model, Reply};
use super::wire::{self, Value};

/// One request as the node received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub opcode: RequestOpcode,
    pub cql: String,
    pub consistency: Option<Consistency>,
    pub serial_consistency: Option<SerialConsistency>,
    pub values: Vec<Value>,
}

/// Decides the answer to an EXECUTE instead of the model; `None` passes it on.
pub type Interceptor = Box<dyn Fn(&Statement, &[Value], &Model) -> Option<Reply> + Send + Sync>;

pub struct NodeState {
    pub model: Model,
    statements: Mutex<Vec<Statement>>,
    ids: Mutex<HashMap<String, usize>>,
    seen: Mutex<Vec<Seen>>,
    interceptors: Mutex<Vec<Interceptor>>,
}

/// A loopback address (127.x.y.z, never 127.0.0.1) unique within this process and random
/// across processes, so test binaries running at the same time do not collide on port 9042.
pub fn fresh_loopback_ip() -> std::net::IpAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static BASE: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| rand::random::<u32>() % 0x00ff_0000);
    let offset = (base + NEXT.fetch_add(1, Ordering::Relaxed)) % 0x00ff_fffe;
    std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x7f00_0002 + offset))
}

pub struct ScriptedNode {
    pub addr: SocketAddr,
    pub state: Arc<NodeState>,
    proxy: RunningProxy,
}

impl ScriptedNode {
    /// Starts a node on a fresh loopback address, port 9042, whose tables are `schema`.
    pub async fn start(schema: Schema, shape: LwtShape) -> Self {
        let addr = SocketAddr::new(fresh_loopback_ip(), 9042);
        let state = Arc::new(NodeState {
            model: Model::new(schema, shape),
            statements: Mutex::new(Vec::new()),
            ids: Mutex::new(HashMap::new()),
            seen: Mutex::new(Vec::new()),
            interceptors: Mutex::new(Vec::new()),
        });
        let proxy = Proxy::builder()
            .with_node(
                Node::builder()
                    .proxy_address(addr)
                    .request_rules(rules(&state))
                    .build_dry_mode(),
            )
            .build()
            .run()
            .await
            .expect("scripted node starts");
        Self { addr, state, proxy }
    }

    /// Adds an interceptor; the first one that answers wins.
    pub fn intercept(
        &self,
        f: impl Fn(&Statement, &[Value], &Model) -> Option<Reply> + Send + Sync + 'static,
    ) {
        self.state.interceptors.lock().push(Box::new(f));
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().clone()
    }

    /// EXECUTEs whose statement text starts with `prefix`.
    pub fn executions(&self, prefix: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.opcode == RequestOpcode::Execute && s.cql.starts_with(prefix))
            .collect()
    }

    /// Puts `rule` before all others (e.g. to drop a connection on a chosen request).
    pub fn prepend_rule(&mut self, rule: RequestRule) {
        self.proxy.running_nodes[0].prepend_request_rules(vec![rule]);
    }

    /// Answers a raw EXECUTE frame as the node would (records it, runs the model).
    pub fn execute_frame(&self, frame: &RequestFrame) {
        self.state.execute(frame);
    }

    pub fn clear_seen(&self) {
        self.state.seen.lock().clear();
    }

    pub async fn stop(self) {
        // Fails with "driver disconnected" once sessions have hung up; that is expected.
        let _ = self.proxy.finish().await;
    }
}

fn respond(frame: &RequestFrame, opcode: ResponseOpcode, body: bytes::Bytes) -> ResponseFrame {
    ResponseFrame::new(frame.params.for_response(), opcode, body)
}

fn error(frame: &RequestFrame, e: DbError) -> ResponseFrame {
    ResponseFrame::forged_error(frame.params.for_response(), e, Some("scripted node"))
        .expect("error frame encodes")
}

fn reply_frame(frame: &RequestFrame, reply: Reply) -> ResponseFrame {
    match reply {
        Reply::Void => respond(frame, ResponseOpcode::Result, wire::void_result()),
        Reply::Rows {
            keyspace,
            table,
            columns,
            rows,
        } => respond(
            frame,
            ResponseOpcode::Result,
            wire::rows_result(&keyspace, &table, &columns, &rows),
        ),
        Reply::Error(e) => error(frame, e),
    }
}

fn on(
    opcode: RequestOpcode,
    f: impl Fn(RequestFrame) -> ResponseFrame + Send + Sync + 'static,
) -> RequestRule {
    RequestRule(
        Condition::RequestOpcode(opcode),
        RequestReaction::forge_response(Arc::new(f)),
    )
}

fn rules(state: &Arc<NodeState>) -> Vec<RequestRule> {
    let prepare_state = Arc::clone(state);
    let execute_state = Arc::clone(state);
    let query_state = Arc::clone(state);
    vec![
        on(RequestOpcode::Options, |frame| {
            let mut options = HashMap::new();
            options.insert(
                "SCYLLA_LWT_ADD_METADATA_MARK".to_owned(),
                vec![format!("LWT_OPTIMIZATION_META_BIT_MASK={}", wire::LWT_MARK)],
            );
            ResponseFrame::forged_supported(frame.params, &options).expect("supported encodes")
        }),
        RequestRule(
            Condition::or(
                Condition::RequestOpcode(RequestOpcode::Startup),
                Condition::RequestOpcode(RequestOpcode::Register),
            ),
            RequestReaction::forge_response(Arc::new(|frame: RequestFrame| {
                ResponseFrame::forged_ready(frame.params)
            })),
        ),
        on(RequestOpcode::Prepare, move |frame| {
            prepare_state.prepare(&frame)
        }),
        on(RequestOpcode::Execute, move |frame| {
            execute_state.execute(&frame)
        }),
        on(RequestOpcode::Query, move |frame| query_state.query(&frame)),
        RequestRule(Condition::True, RequestReaction::forge().server_error()),
    ]
}

impl NodeState {
    fn record(&self, seen: Seen) {
        self.seen.lock().push(seen);
    }

    fn prepare(&self, frame: &RequestFrame) -> ResponseFrame {
        // PREPARE body (v4): the statement as a long string.
        let body = &frame.body;
        let len = i32::from_be_bytes(body[..4].try_into().unwrap()) as usize;
        let cql = String::from_utf8_lossy(&body[4..4 + len]).into_owned();
        self.record(Seen {
            opcode: RequestOpcode::Prepare,
            cql: cql.clone(),
            consistency: None,
            serial_consistency: None,
            values: Vec::new(),
        });
        let statement = match self.model.schema.lock().statement(&cql) {
            Ok(s) => s,
            Err(_) => return error(frame, DbError::Invalid),
        };
        let index = {
            let mut ids = self.ids.lock();
            let mut statements = self.statements.lock();
            *ids.entry(cql).or_insert_with(|| {
                statements.push(statement.clone());
                statements.len() - 1
            })
        };
        let table = self.model.schema.lock().tables[&statement.table].clone();
        // The driver routes by the partition key's bind markers; a literal key part (e.g.
        // `part = 0`) leaves the statement without them, as a server reports it.
        let pk_bind = |pk: &String| -> Option<u16> {
            let in_where = statement
                .restrictions
                .iter()
                .find(|(c, op, _)| c == pk && *op == "=")
                .map(|(_, _, o)| o);
            let in_values = statement
                .assigned
                .iter()
                .find(|(c, _)| c == pk)
                .map(|(_, o)| o);
            match in_where.or(in_values)? {
                Operand::Bind(i) => Some(*i as u16),
                Operand::Literal(_) => None,
            }
        };
        let pk_indexes: Option<Vec<u16>> = table.partition_key.iter().map(pk_bind).collect();
        let id = format!("{index:016}");
        respond(
            frame,
            ResponseOpcode::Result,
            wire::prepared_result(
                id.as_bytes(),
                &statement.keyspace,
                &statement.table,
                &statement.binds,
                &pk_indexes.unwrap_or_default(),
                statement.is_lwt(),
            ),
        )
    }

    fn execute(&self, frame: &RequestFrame) -> ResponseFrame {
        let Ok(RequestV2::Execute(execute)) = frame.deserialize(&ProtocolFeatures::default())
        else {
            return error(frame, DbError::ProtocolError);
        };
        let index = std::str::from_utf8(execute.id.as_ref())
            .ok()
            .and_then(|s| s.parse::<usize>().ok());
        let Some(statement) = index.and_then(|i| self.statements.lock().get(i).cloned()) else {
            return error(
                frame,
                DbError::Unprepared {
                    statement_id: bytes::Bytes::copy_from_slice(execute.id.as_ref()),
                },
            );
        };
        let params = &execute.parameters;
        let values: Result<Vec<Value>, String> = params
            .values
            .iter()
            .zip(&statement.binds)
            .map(|(raw, (_, ty))| wire::decode_value(ty, raw.as_value()))
            .collect();
        let Ok(values) = values else {
            return error(frame, DbError::ProtocolError);
        };
        self.record(Seen {
            opcode: RequestOpcode::Execute,
            cql: statement.cql.clone(),
            consistency: Some(params.consistency),
            serial_consistency: params.serial_consistency,
            values: values.clone(),
        });
        let intercepted = self
            .interceptors
            .lock()
            .iter()
            .find_map(|f| f(&statement, &values, &self.model));
        let reply = intercepted.unwrap_or_else(|| self.model.execute(&statement, &values));
        reply_frame(frame, reply)
    }

    fn query(&self, frame: &RequestFrame) -> ResponseFrame {
        let Ok(RequestV2::Query(query)) = frame.deserialize(&ProtocolFeatures::default()) else {
            return error(frame, DbError::ProtocolError);
        };
        let cql = query.contents.to_string();
        self.record(Seen {
            opcode: RequestOpcode::Query,
            cql: cql.clone(),
            consistency: Some(query.parameters.consistency),
            serial_consistency: query.parameters.serial_consistency,
            values: Vec::new(),
        });
        reply_frame(frame, self.answer_query(&cql))
    }

    /// DDL extends the model's schema; the store's two schema reads are answered from it;
    /// anything else (the driver's own metadata reads) is refused.
    fn answer_query(&self, cql: &str) -> Reply {
        if cql.starts_with("CREATE ") {
            let mut schema = self.model.schema.lock();
            let mut statements: Vec<String> = Vec::new();
            for ks in &schema.keyspaces {
                statements.push(format!(
                    "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {{'class': 'x'}}"
                ));
            }
            statements.extend(schema.tables.values().map(table_ddl));
            statements.push(cql.to_owned());
            return match Schema::parse(&statements) {
                Ok(parsed) => {
                    *schema = parsed;
                    Reply::Void
                }
                Err(_) => Reply::Error(DbError::SyntaxError),
            };
        }
        let schema = self.model.schema.lock();
        let text = |s: &str| Value::Text(s.to_owned());
        for ks in &schema.keyspaces {
            if cql
                == format!(
                "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = '{ks}'"
            ) {
                return Reply::Rows {
                    keyspace: "system_schema".into(),
                    table: "keyspaces".into(),
                    columns: vec![("keyspace_name".into(), wire::CqlType::Text)],
                    rows: vec![vec![text(ks)]],
                };
            }
            if cql == format!(
                "SELECT table_name, column_name FROM system_schema.columns WHERE keyspace_name = '{ks}'"
            ) {
                let rows = schema
                    .tables
                    .values()
                    .filter(|t| t.keyspace == *ks)
                    .flat_map(|t| t.columns.iter().map(|(c, _)| vec![text(&t.name), text(c)]))
                    .collect();
                return Reply::Rows {
                    keyspace: "system_schema".into(),
                    table: "columns".into(),
                    columns: vec![
                        ("table_name".into(), wire::CqlType::Text),
                        ("column_name".into(), wire::CqlType::Text),
                    ],
                    rows,
                };
            }
        }
        if cql.starts_with("SELECT keyspace_name FROM system_schema.keyspaces WHERE") {
            return Reply::Rows {
                keyspace: "system_schema".into(),
                table: "keyspaces".into(),
                columns: vec![("keyspace_name".into(), wire::CqlType::Text)],
                rows: Vec::new(),
            };
        }
        Reply::Error(DbError::ServerError)
    }
}

/// A table's definition again as CQL, so DDL can be re-parsed together with new statements.
fn table_ddl(t: &super::cql::Table) -> String {
    let columns: Vec<String> = t
        .columns
        .iter()
        .map(|(c, ty)| format!("{c} {}", type_name(ty)))
        .collect();
    let clustering: String = t.clustering.iter().map(|c| format!(", {c}")).collect();
    let mut ddl = format!(
        "CREATE TABLE IF NOT EXISTS {}.{} ({}, PRIMARY KEY (({}){clustering}))",
        t.keyspace,
        t.name,
        columns.join(", "),
        t.partition_key.join(", ")
    );
    if let Some(first) = t.clustering.first() {
        let order = if t.descending { "DESC" } else { "ASC" };
        let rest: String = t.clustering[1..]
            .iter()
            .map(|c| format!(", {c} {order}"))
            .collect();
        ddl.push_str(&format!(
            " WITH CLUSTERING ORDER BY ({first} {order}{rest})"
        ));
    }
    ddl
}

fn type_name(ty: &wire::CqlType) -> String {
    match ty {
        wire::CqlType::Text => "text".into(),
        wire::CqlType::BigInt => "bigint".into(),
        wire::CqlType::Int => "int".into(),
        wire::CqlType::Boolean => "boolean".into(),
        wire::CqlType::Uuid => "uuid".into(),
        wire::CqlType::Blob => "blob".into(),
        wire::CqlType::List(inner) => format!("list<{}>", type_name(inner)),
    }
}
