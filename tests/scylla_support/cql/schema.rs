//! `CREATE KEYSPACE` and `CREATE TABLE`: tables, keys, clustering order.

use std::collections::BTreeMap;

use super::statement::{parse_statement, Statement};
use super::{Parser, Tok};
use crate::scylla_support::wire::CqlType;

/// A parsed `CREATE TABLE`.
#[derive(Debug, Clone)]
pub struct Table {
    pub keyspace: String,
    pub name: String,
    /// Columns in declaration order.
    pub columns: Vec<(String, CqlType)>,
    pub partition_key: Vec<String>,
    pub clustering: Vec<String>,
    /// True when the first clustering column is ordered descending.
    pub descending: bool,
}

impl Table {
    pub fn column_type(&self, name: &str) -> Option<&CqlType> {
        self.columns.iter().find(|(c, _)| c == name).map(|(_, t)| t)
    }
    pub fn is_key(&self, name: &str) -> bool {
        self.partition_key
            .iter()
            .chain(&self.clustering)
            .any(|c| c == name)
    }
}

/// Every table of a schema script, by name.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub keyspaces: Vec<String>,
    pub tables: BTreeMap<String, Table>,
}

impl Schema {
    /// Parses and checks each statement of a rendered schema script.
    pub fn parse(statements: &[String]) -> Result<Self, String> {
        let mut schema = Schema::default();
        for s in statements {
            let mut p = Parser::new(s)?;
            p.kw("CREATE")?;
            if p.eat_kw("KEYSPACE") {
                schema
                    .keyspaces
                    .push(parse_keyspace(&mut p).map_err(|e| format!("{s}: {e}"))?);
            } else {
                p.kw("TABLE")?;
                let t = parse_table(&mut p).map_err(|e| format!("{s}: {e}"))?;
                if !schema.keyspaces.contains(&t.keyspace) {
                    return Err(format!("table {} before its keyspace", t.name));
                }
                schema.tables.insert(t.name.clone(), t);
            }
        }
        Ok(schema)
    }

    /// Parses a statement of the store and checks it against the tables.
    pub fn statement(&self, cql: &str) -> Result<Statement, String> {
        parse_statement(self, cql).map_err(|e| format!("{cql}: {e}"))
    }
}

fn skip_map(p: &mut Parser) -> Result<(), String> {
    p.sym('{')?;
    loop {
        match p.next()? {
            Tok::Str(_) => {}
            t => return Err(format!("map key must be a string, found {t:?}")),
        }
        p.sym(':')?;
        match p.next()? {
            Tok::Str(_) | Tok::Num(_) | Tok::Ident(_) => {}
            t => return Err(format!("bad map value {t:?}")),
        }
        if !p.eat_sym(',') {
            break;
        }
    }
    p.sym('}')
}

fn parse_keyspace(p: &mut Parser) -> Result<String, String> {
    p.kw("IF")?;
    p.kw("NOT")?;
    p.kw("EXISTS")?;
    let name = p.ident()?;
    p.kw("WITH")?;
    p.kw("replication")?;
    p.sym('=')?;
    skip_map(p)?;
    while p.eat_kw("AND") {
        p.ident()?;
        p.sym('=')?;
        skip_map(p)?;
    }
    p.done()?;
    Ok(name)
}

fn parse_table(p: &mut Parser) -> Result<Table, String> {
    p.kw("IF")?;
    p.kw("NOT")?;
    p.kw("EXISTS")?;
    let (keyspace, name) = p.qualified()?;
    p.sym('(')?;
    let mut columns: Vec<(String, CqlType)> = Vec::new();
    let mut key: Option<(Vec<String>, Vec<String>)> = None;
    loop {
        if p.eat_kw("PRIMARY") {
            p.kw("KEY")?;
            p.sym('(')?;
            let partition = if p.eat_sym('(') {
                let mut cols = vec![p.ident()?];
                while p.eat_sym(',') {
                    cols.push(p.ident()?);
                }
                p.sym(')')?;
                cols
            } else {
                vec![p.ident()?]
            };
            let mut clustering = Vec::new();
            while p.eat_sym(',') {
                clustering.push(p.ident()?);
            }
            p.sym(')')?;
            key = Some((partition, clustering));
        } else {
            let column = p.ident()?;
            if columns.iter().any(|(c, _)| *c == column) {
                return Err(format!("column {column} declared twice"));
            }
            let ty = p.cql_type()?;
            columns.push((column, ty));
        }
        if !p.eat_sym(',') {
            break;
        }
    }
    p.sym(')')?;
    let (partition_key, clustering) = key.ok_or("no PRIMARY KEY")?;
    for c in partition_key.iter().chain(&clustering) {
        if !columns.iter().any(|(d, _)| d == c) {
            return Err(format!("key column {c} is not declared"));
        }
    }
    let mut descending = false;
    if p.eat_kw("WITH") {
        loop {
            if p.eat_kw("CLUSTERING") {
                p.kw("ORDER")?;
                p.kw("BY")?;
                p.sym('(')?;
                let mut ordered = Vec::new();
                loop {
                    let c = p.ident()?;
                    let desc = if p.eat_kw("DESC") {
                        true
                    } else {
                        p.kw("ASC")?;
                        false
                    };
                    if ordered.is_empty() {
                        descending = desc;
                    }
                    ordered.push(c);
                    if !p.eat_sym(',') {
                        break;
                    }
                }
                p.sym(')')?;
                if ordered != clustering {
                    return Err("CLUSTERING ORDER must list the clustering columns in order".into());
                }
            } else {
                p.ident()?;
                p.sym('=')?;
                match p.next()? {
                    Tok::Num(_) | Tok::Str(_) => {}
                    Tok::Sym('{') => {
                        p.at -= 1;
                        skip_map(p)?;
                    }
                    t => return Err(format!("bad table option value {t:?}")),
                }
            }
            if !p.eat_kw("AND") {
                break;
            }
        }
    }
    p.done()?;
    Ok(Table {
        keyspace,
        name,
        columns,
        partition_key,
        clustering,
        descending,
    })
}
