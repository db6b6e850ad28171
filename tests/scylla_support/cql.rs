//! A small CQL parser for the shapes statewire uses: `CREATE KEYSPACE`, `CREATE TABLE`, and
//! `SELECT`/`INSERT`/`UPDATE`/`DELETE` with bind markers, literals and `IF` conditions.
//!
//! It checks what a server would check for these shapes (known types, primary keys made of
//! declared columns, clustering order on clustering columns, statements naming existing
//! columns and restricting the whole partition key), and tells the bind markers' types.

use std::collections::BTreeMap;

use super::wire::{CqlType, Value};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(i64),
    Sym(char),
    Op(&'static str),
}

fn tokenize(cql: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = cql.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' || c == '[' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_[]".contains(chars[i]))
            {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Tok::Num(text.parse().map_err(|e| format!("{text}: {e}"))?));
        } else if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated string".into()),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        s.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(s));
        } else if c == '<' && chars.get(i + 1) == Some(&'=') {
            out.push(Tok::Op("<="));
            i += 2;
        } else if c == '>' && chars.get(i + 1) == Some(&'=') {
            out.push(Tok::Op(">="));
            i += 2;
        } else if "(),.;=<>?{}:*".contains(c) {
            out.push(Tok::Sym(c));
            i += 1;
        } else {
            return Err(format!("unexpected character {c:?}"));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn new(cql: &str) -> Result<Self, String> {
        Ok(Self {
            toks: tokenize(cql)?,
            at: 0,
        })
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }
    fn next(&mut self) -> Result<Tok, String> {
        let t = self.toks.get(self.at).cloned().ok_or("unexpected end")?;
        self.at += 1;
        Ok(t)
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }
    fn eat_kw(&mut self, kw: &str) -> bool {
        let yes = self.is_kw(kw);
        if yes {
            self.at += 1;
        }
        yes
    }
    fn kw(&mut self, kw: &str) -> Result<(), String> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(format!("expected {kw}, found {:?}", self.peek()))
        }
    }
    fn eat_sym(&mut self, c: char) -> bool {
        let yes = self.peek() == Some(&Tok::Sym(c));
        if yes {
            self.at += 1;
        }
        yes
    }
    fn sym(&mut self, c: char) -> Result<(), String> {
        if self.eat_sym(c) {
            Ok(())
        } else {
            Err(format!("expected {c:?}, found {:?}", self.peek()))
        }
    }
    fn ident(&mut self) -> Result<String, String> {
        match self.next()? {
            Tok::Ident(s) if !s.contains('[') => Ok(s.to_ascii_lowercase()),
            t => Err(format!("expected a name, found {t:?}")),
        }
    }
    fn done(&mut self) -> Result<(), String> {
        self.eat_sym(';');
        match self.peek() {
            None => Ok(()),
            Some(t) => Err(format!("trailing input at {t:?}")),
        }
    }
    /// `ks.table` → (ks, table).
    fn qualified(&mut self) -> Result<(String, String), String> {
        let ks = self.ident()?;
        self.sym('.')?;
        Ok((ks, self.ident()?))
    }
    fn cql_type(&mut self) -> Result<CqlType, String> {
        let name = self.ident()?;
        let ty = match name.as_str() {
            "text" | "varchar" => CqlType::Text,
            "bigint" => CqlType::BigInt,
            "int" => CqlType::Int,
            "boolean" => CqlType::Boolean,
            "uuid" => CqlType::Uuid,
            "blob" => CqlType::Blob,
            "list" => {
                self.sym('<')?;
                let inner = self.cql_type()?;
                self.sym('>')?;
                CqlType::List(Box::new(inner))
            }
            other => return Err(format!("type {other} is not one statewire uses")),
        };
        Ok(ty)
    }
}

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

fn parse_statement(schema: &Schema, cql: &str) -> Result<Statement, String> {
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
