//! A small CQL parser for the shapes statewire uses: `CREATE KEYSPACE`, `CREATE TABLE`, and
//! `SELECT`/`INSERT`/`UPDATE`/`DELETE` with bind markers, literals, `IF` conditions and an
//! INSERT's `USING TTL`.
//!
//! It checks what a server would check for these shapes (known types, primary keys made of
//! declared columns, clustering order on clustering columns, statements naming existing
//! columns and restricting the whole partition key), and tells the bind markers' types.

mod schema;
mod statement;

pub use schema::{Schema, Table};
pub use statement::{Condition, Kind, Operand, Statement};

use super::wire::CqlType;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
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

pub(super) struct Parser {
    toks: Vec<Tok>,
    pub(super) at: usize,
}

impl Parser {
    pub(super) fn new(cql: &str) -> Result<Self, String> {
        Ok(Self {
            toks: tokenize(cql)?,
            at: 0,
        })
    }
    pub(super) fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }
    pub(super) fn next(&mut self) -> Result<Tok, String> {
        let t = self.toks.get(self.at).cloned().ok_or("unexpected end")?;
        self.at += 1;
        Ok(t)
    }
    pub(super) fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }
    pub(super) fn eat_kw(&mut self, kw: &str) -> bool {
        let yes = self.is_kw(kw);
        if yes {
            self.at += 1;
        }
        yes
    }
    pub(super) fn kw(&mut self, kw: &str) -> Result<(), String> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(format!("expected {kw}, found {:?}", self.peek()))
        }
    }
    pub(super) fn eat_sym(&mut self, c: char) -> bool {
        let yes = self.peek() == Some(&Tok::Sym(c));
        if yes {
            self.at += 1;
        }
        yes
    }
    pub(super) fn sym(&mut self, c: char) -> Result<(), String> {
        if self.eat_sym(c) {
            Ok(())
        } else {
            Err(format!("expected {c:?}, found {:?}", self.peek()))
        }
    }
    pub(super) fn ident(&mut self) -> Result<String, String> {
        match self.next()? {
            Tok::Ident(s) if !s.contains('[') => Ok(s.to_ascii_lowercase()),
            t => Err(format!("expected a name, found {t:?}")),
        }
    }
    pub(super) fn done(&mut self) -> Result<(), String> {
        self.eat_sym(';');
        match self.peek() {
            None => Ok(()),
            Some(t) => Err(format!("trailing input at {t:?}")),
        }
    }
    /// `ks.table` → (ks, table).
    pub(super) fn qualified(&mut self) -> Result<(String, String), String> {
        let ks = self.ident()?;
        self.sym('.')?;
        Ok((ks, self.ident()?))
    }
    pub(super) fn cql_type(&mut self) -> Result<CqlType, String> {
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
