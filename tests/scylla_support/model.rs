//! An in-memory model of the tables, answering the store's statements the way a single
//! CQL node would: partitions, clustering order, LIMIT, upserts, and conditional writes with
//! `[applied]` replies in either the Cassandra shape (row only on failure, condition columns
//! only) or the ScyllaDB shape (the previous row, applied or not).
//!
//! It is a test double for wire-level tests, not a database: no replication, no Paxos, no
//! tombstones, no TTL, no paging (every reply is one page).

use std::collections::BTreeMap;

use parking_lot::Mutex;
use scylla_cql::frame::response::error::DbError;

use super::cql::{Condition, Kind, Operand, Schema, Statement, Table};
use super::wire::{CqlType, Value};

type Row = BTreeMap<String, Value>;
type Partition = BTreeMap<Vec<Value>, Row>;
type Data = BTreeMap<String, BTreeMap<Vec<Value>, Partition>>;

/// How conditional writes describe the row in their reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LwtShape {
    /// Only `[applied]` on success; `[applied]` and the condition's columns on failure.
    Cassandra,
    /// `[applied]` and every column of the row as it was before, applied or not.
    Scylla,
}

/// What the node answers.
#[derive(Debug, Clone)]
pub enum Reply {
    Void,
    Rows {
        keyspace: String,
        table: String,
        columns: Vec<(String, CqlType)>,
        rows: Vec<Vec<Value>>,
    },
    Error(DbError),
}

pub struct Model {
    pub schema: Mutex<Schema>,
    data: Mutex<Data>,
    pub shape: LwtShape,
}

fn resolve(o: &Operand, values: &[Value]) -> Value {
    match o {
        Operand::Bind(i) => values.get(*i).cloned().unwrap_or(Value::Null),
        Operand::Literal(v) => v.clone(),
    }
}

fn compare(row_value: &Value, op: &str, bound: &Value) -> bool {
    match op {
        "=" => row_value == bound,
        "<" => row_value < bound,
        ">" => row_value > bound,
        "<=" => row_value <= bound,
        ">=" => row_value >= bound,
        _ => false,
    }
}

impl Model {
    pub fn new(schema: Schema, shape: LwtShape) -> Self {
        Self {
            schema: Mutex::new(schema),
            data: Mutex::new(BTreeMap::new()),
            shape,
        }
    }

    /// A copy of one row, for assertions.
    pub fn row(&self, table: &str, partition: &[Value], clustering: &[Value]) -> Option<Row> {
        let data = self.data.lock();
        data.get(table)?.get(partition)?.get(clustering).cloned()
    }

    /// Number of rows in a table, across partitions.
    pub fn count(&self, table: &str) -> usize {
        let data = self.data.lock();
        data.get(table)
            .map_or(0, |t| t.values().map(BTreeMap::len).sum())
    }

    pub fn execute(&self, st: &Statement, values: &[Value]) -> Reply {
        let Some(table) = self.schema.lock().tables.get(&st.table).cloned() else {
            return Reply::Error(DbError::Invalid);
        };
        let mut data = self.data.lock();
        let partitions = data.entry(st.table.clone()).or_default();
        match st.kind {
            Kind::Select => select(&table, partitions, st, values),
            Kind::Insert | Kind::Update | Kind::Delete => {
                write(&table, partitions, st, values, self.shape)
            }
        }
    }
}

/// The values of `columns` taken from the WHERE clause or the INSERT list.
fn key_of(columns: &[String], st: &Statement, values: &[Value]) -> Vec<Value> {
    columns
        .iter()
        .filter_map(|c| {
            st.restrictions
                .iter()
                .find(|(r, op, _)| r == c && *op == "=")
                .map(|(_, _, o)| resolve(o, values))
                .or_else(|| {
                    st.assigned
                        .iter()
                        .find(|(a, _)| a == c)
                        .map(|(_, o)| resolve(o, values))
                })
        })
        .collect()
}

fn select(
    table: &Table,
    partitions: &mut BTreeMap<Vec<Value>, Partition>,
    st: &Statement,
    values: &[Value],
) -> Reply {
    let pk = key_of(&table.partition_key, st, values);
    let mut rows: Vec<&Row> = partitions
        .get(&pk)
        .map(|p| {
            p.values()
                .filter(|row| {
                    st.restrictions.iter().all(|(c, op, o)| {
                        let v = row.get(c).cloned().unwrap_or(Value::Null);
                        compare(&v, op, &resolve(o, values))
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if table.descending {
        rows.reverse();
    }
    if let Some(limit) = &st.limit {
        let n = resolve(limit, values).as_int().unwrap_or(i32::MAX).max(0) as usize;
        rows.truncate(n);
    }
    let columns: Vec<(String, CqlType)> = st
        .selected
        .iter()
        .map(|c| {
            (
                c.clone(),
                table.column_type(c).cloned().unwrap_or(CqlType::Text),
            )
        })
        .collect();
    let rows = rows
        .into_iter()
        .map(|row| {
            st.selected
                .iter()
                .map(|c| row.get(c).cloned().unwrap_or(Value::Null))
                .collect()
        })
        .collect();
    Reply::Rows {
        keyspace: table.keyspace.clone(),
        table: table.name.clone(),
        columns,
        rows,
    }
}

fn write(
    table: &Table,
    partitions: &mut BTreeMap<Vec<Value>, Partition>,
    st: &Statement,
    values: &[Value],
    shape: LwtShape,
) -> Reply {
    let pk = key_of(&table.partition_key, st, values);
    let ck = key_of(&table.clustering, st, values);
    let whole_row = ck.len() == table.clustering.len();
    let existing = partitions.get(&pk).and_then(|p| p.get(&ck)).cloned();
    let holds = match &st.condition {
        Condition::None => true,
        Condition::NotExists => existing.is_none(),
        Condition::Exists => existing.is_some(),
        Condition::Equals(eqs) => existing.as_ref().is_some_and(|row| {
            eqs.iter()
                .all(|(c, o)| row.get(c).cloned().unwrap_or(Value::Null) == resolve(o, values))
        }),
    };
    if holds {
        apply(table, partitions, st, values, pk, ck, whole_row);
    }
    if !st.is_lwt() {
        return Reply::Void;
    }
    let mut columns = vec![("[applied]".to_owned(), CqlType::Boolean)];
    let mut row = vec![Value::Boolean(holds)];
    let described: Vec<(String, CqlType)> = match (shape, &st.condition, holds) {
        (LwtShape::Scylla, ..) => table.columns.clone(),
        (LwtShape::Cassandra, _, true) => Vec::new(),
        (LwtShape::Cassandra, Condition::Equals(eqs), false) => eqs
            .iter()
            .map(|(c, _)| {
                (
                    c.clone(),
                    table.column_type(c).cloned().unwrap_or(CqlType::Text),
                )
            })
            .collect(),
        (LwtShape::Cassandra, _, false) if existing.is_some() => table.columns.clone(),
        (LwtShape::Cassandra, ..) => Vec::new(),
    };
    for (c, ty) in described {
        row.push(
            existing
                .as_ref()
                .and_then(|r| r.get(&c))
                .cloned()
                .unwrap_or(Value::Null),
        );
        columns.push((c, ty));
    }
    Reply::Rows {
        keyspace: table.keyspace.clone(),
        table: table.name.clone(),
        columns,
        rows: vec![row],
    }
}

fn apply(
    table: &Table,
    partitions: &mut BTreeMap<Vec<Value>, Partition>,
    st: &Statement,
    values: &[Value],
    pk: Vec<Value>,
    ck: Vec<Value>,
    whole_row: bool,
) {
    match st.kind {
        Kind::Delete => {
            if let Some(p) = partitions.get_mut(&pk) {
                if whole_row {
                    p.remove(&ck);
                } else {
                    p.retain(|key, _| !key.starts_with(&ck));
                }
                if p.is_empty() {
                    partitions.remove(&pk);
                }
            }
        }
        Kind::Insert | Kind::Update => {
            let row = partitions
                .entry(pk.clone())
                .or_default()
                .entry(ck.clone())
                .or_default();
            for (c, v) in table
                .partition_key
                .iter()
                .zip(&pk)
                .chain(table.clustering.iter().zip(&ck))
            {
                row.insert(c.clone(), v.clone());
            }
            for (c, o) in &st.assigned {
                // An empty collection is stored as null, as on a real server.
                match resolve(o, values) {
                    Value::Null => row.remove(c),
                    Value::List(items) if items.is_empty() => row.remove(c),
                    v => row.insert(c.clone(), v),
                };
            }
        }
        Kind::Select => {}
    }
}
