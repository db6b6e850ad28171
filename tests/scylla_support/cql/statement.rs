//! `SELECT`, `INSERT`, `UPDATE` and `DELETE` of the store, checked against the tables.

use super::schema::{Schema, Table};
use super::{Parser, Tok};
use crate::scylla_support::wire::{CqlType, Value};

/// Where a value comes from: a bind marker (by position) or a literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Bind(usize),
    Literal(Value),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Select,
    Insert,
    Update,
    Delete,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    None,
    NotExists,
    Exists,
    Equals(Vec<(String, Operand)>),
}

/// A parsed statement of the store.
#[derive(Debug, Clone)]
pub struct Statement {
    pub cql: String,
    pub kind: Kind,
    pub table: String,
    pub keyspace: String,
    pub selected: Vec<String>,
    /// INSERT columns or UPDATE assignments.
    pub assigned: Vec<(String, Operand)>,
    /// `(column, operator, operand)` of the WHERE clause.
    pub restrictions: Vec<(String, &'static str, Operand)>,
    pub limit: Option<Operand>,
    pub condition: Condition,
    /// `USING TTL` of an INSERT, in seconds. The model keeps no TTL; tests read the bound value.
    pub ttl: Option<Operand>,
    /// Name and type of each bind marker, in order.
    pub binds: Vec<(String, CqlType)>,
}

impl Statement {
    pub fn is_lwt(&self) -> bool {
        self.condition != Condition::None
    }
}

fn operand(
    p: &mut Parser,
    name: &str,
    ty: &CqlType,
    binds: &mut Vec<(String, CqlType)>,
) -> Result<Operand, String> {
    match p.next()? {
        Tok::Sym('?') => {
            binds.push((name.to_owned(), ty.clone()));
            Ok(Operand::Bind(binds.len() - 1))
        }
        Tok::Num(n) => match ty {
            CqlType::Int => Ok(Operand::Literal(Value::Int(n as i32))),
            CqlType::BigInt => Ok(Operand::Literal(Value::BigInt(n))),
            _ => Err(format!("number literal for {name} of type {ty:?}")),
        },
        Tok::Str(s) if *ty == CqlType::Text => Ok(Operand::Literal(Value::Text(s))),
        t => Err(format!("bad value for {name}: {t:?}")),
    }
}

fn column<'t>(table: &'t Table, name: &str) -> Result<&'t CqlType, String> {
    table
        .column_type(name)
        .ok_or_else(|| format!("table {} has no column {name}", table.name))
}

pub(super) fn parse_statement(schema: &Schema, cql: &str) -> Result<Statement, String> {
    let mut p = Parser::new(cql)?;
    let mut binds = Vec::new();
    let mut selected = Vec::new();
    let mut assigned = Vec::new();
    let kind;
    let (keyspace, table_name);
    let table;
    if p.eat_kw("SELECT") {
        kind = Kind::Select;
        loop {
            selected.push(p.ident()?);
            if !p.eat_sym(',') {
                break;
            }
        }
        p.kw("FROM")?;
        (keyspace, table_name) = p.qualified()?;
        table = schema
            .tables
            .get(&table_name)
            .ok_or(format!("no table {table_name}"))?;
        for c in &selected {
            column(table, c)?;
        }
    } else if p.eat_kw("INSERT") {
        kind = Kind::Insert;
        p.kw("INTO")?;
        (keyspace, table_name) = p.qualified()?;
        table = schema
            .tables
            .get(&table_name)
            .ok_or(format!("no table {table_name}"))?;
        p.sym('(')?;
        let mut cols = vec![p.ident()?];
        while p.eat_sym(',') {
            cols.push(p.ident()?);
        }
        p.sym(')')?;
        p.kw("VALUES")?;
        p.sym('(')?;
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                p.sym(',')?;
            }
            let ty = column(table, c)?.clone();
            assigned.push((c.clone(), operand(&mut p, c, &ty, &mut binds)?));
        }
        p.sym(')')?;
        for k in table.partition_key.iter().chain(&table.clustering) {
            if !cols.contains(k) {
                return Err(format!("INSERT lacks key column {k}"));
            }
        }
    } else if p.eat_kw("UPDATE") {
        kind = Kind::Update;
        (keyspace, table_name) = p.qualified()?;
        table = schema
            .tables
            .get(&table_name)
            .ok_or(format!("no table {table_name}"))?;
        p.kw("SET")?;
        loop {
            let c = p.ident()?;
            if table.is_key(&c) {
                return Err(format!("UPDATE may not set key column {c}"));
            }
            let ty = column(table, &c)?.clone();
            p.sym('=')?;
            assigned.push((c.clone(), operand(&mut p, &c, &ty, &mut binds)?));
            if !p.eat_sym(',') {
                break;
            }
        }
    } else {
        p.kw("DELETE")?;
        kind = Kind::Delete;
        p.kw("FROM")?;
        (keyspace, table_name) = p.qualified()?;
        table = schema
            .tables
            .get(&table_name)
            .ok_or(format!("no table {table_name}"))?;
    }
    if keyspace != table.keyspace {
        return Err(format!(
            "table {table_name} lives in keyspace {}",
            table.keyspace
        ));
    }
    let mut restrictions = Vec::new();
    if kind != Kind::Insert {
        p.kw("WHERE")?;
        loop {
            let c = p.ident()?;
            let ty = column(table, &c)?.clone();
            let op = match p.next()? {
                Tok::Sym('=') => "=",
                Tok::Sym('<') => "<",
                Tok::Sym('>') => ">",
                Tok::Op(op) => op,
                t => return Err(format!("bad operator {t:?}")),
            };
            restrictions.push((c.clone(), op, operand(&mut p, &c, &ty, &mut binds)?));
            if !p.eat_kw("AND") {
                break;
            }
        }
        check_restrictions(table, kind, &restrictions)?;
    }
    let mut limit = None;
    if p.eat_kw("LIMIT") {
        limit = Some(operand(&mut p, "[limit]", &CqlType::Int, &mut binds)?);
    }
    let mut condition = Condition::None;
    if p.eat_kw("IF") {
        if p.eat_kw("NOT") {
            p.kw("EXISTS")?;
            if kind != Kind::Insert {
                return Err("IF NOT EXISTS only on INSERT".into());
            }
            condition = Condition::NotExists;
        } else if p.eat_kw("EXISTS") {
            condition = Condition::Exists;
        } else {
            let mut eqs = Vec::new();
            loop {
                let c = p.ident()?;
                if table.is_key(&c) {
                    return Err(format!("condition on key column {c}"));
                }
                let ty = column(table, &c)?.clone();
                p.sym('=')?;
                eqs.push((c.clone(), operand(&mut p, &c, &ty, &mut binds)?));
                if !p.eat_kw("AND") {
                    break;
                }
            }
            condition = Condition::Equals(eqs);
        }
        if kind == Kind::Select {
            return Err("IF on SELECT".into());
        }
    }
    let mut ttl = None;
    if p.eat_kw("USING") {
        if kind != Kind::Insert {
            return Err("USING is parsed only after an INSERT".into());
        }
        p.kw("TTL")?;
        ttl = Some(operand(&mut p, "[ttl]", &CqlType::Int, &mut binds)?);
    }
    p.done()?;
    Ok(Statement {
        cql: cql.to_owned(),
        kind,
        table: table_name,
        keyspace,
        selected,
        assigned,
        restrictions,
        limit,
        condition,
        ttl,
        binds,
    })
}

/// The whole partition key by equality; clustering columns as a prefix of equalities with at
/// most one range on the last restricted one; rows (not partitions) for UPDATE.
fn check_restrictions(
    table: &Table,
    kind: Kind,
    restrictions: &[(String, &'static str, Operand)],
) -> Result<(), String> {
    for pk in &table.partition_key {
        if !restrictions.iter().any(|(c, op, _)| c == pk && *op == "=") {
            return Err(format!("WHERE lacks partition key column {pk}"));
        }
    }
    let mut ranged = false;
    let mut restricted = 0;
    for ck in &table.clustering {
        let ops: Vec<&str> = restrictions
            .iter()
            .filter(|(c, ..)| c == ck)
            .map(|(_, op, _)| *op)
            .collect();
        if ops.is_empty() {
            break;
        }
        if ranged {
            return Err(format!("{ck} restricted after a range"));
        }
        if ops.iter().any(|op| *op != "=") {
            ranged = true;
        }
        restricted += 1;
    }
    let key_count = table.partition_key.len() + restricted;
    let restricted_columns = restrictions
        .iter()
        .map(|(c, ..)| c)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if restricted_columns != key_count {
        return Err("WHERE restricts a non-key column or skips a clustering column".into());
    }
    if kind == Kind::Update && restricted != table.clustering.len() {
        return Err("UPDATE must name one row".into());
    }
    if matches!(kind, Kind::Update | Kind::Delete) && ranged {
        return Err("range in a write".into());
    }
    Ok(())
}
