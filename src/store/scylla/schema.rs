//! `schema.cql`: filling in its template fields, splitting it into statements, and the tables and
//! columns it defines (which `connect` checks against the cluster).

use std::collections::{BTreeMap, BTreeSet};

use tracing::debug;

use super::config::{validate_keyspace, ScyllaConfig, ScyllaConfigError};
use super::connect::open_session;
use super::errors::classify;
use crate::store::StoreError;

/// The schema file shipped with this build, with `{{…}}` template fields.
pub const SCHEMA_TEMPLATE: &str = include_str!("../../../schema.cql");

/// Replication used when none is given: three replicas in every datacenter.
pub const DEFAULT_REPLICATION: &str =
    "{'class': 'NetworkTopologyStrategy', 'replication_factor': 3}";

/// Keyspace options that turn off tablets, for ScyllaDB releases without lightweight
/// transactions on tablet keyspaces.
pub const NO_TABLETS_OPTION: &str = " AND tablets = {'enabled': false}";

/// How to fill in the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaParams {
    pub keyspace: String,
    /// A CQL replication map, e.g. `{'class': 'NetworkTopologyStrategy', 'dc1': 3}`.
    pub replication: String,
    /// Create the keyspace with tablets turned off (ScyllaDB only).
    pub no_tablets: bool,
}

impl Default for SchemaParams {
    fn default() -> Self {
        Self {
            keyspace: "statewire".to_owned(),
            replication: DEFAULT_REPLICATION.to_owned(),
            no_tablets: false,
        }
    }
}

/// Why the schema could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error(transparent)]
    Keyspace(#[from] ScyllaConfigError),
    #[error("replication must be a CQL map like {{'class': 'NetworkTopologyStrategy', 'dc1': 3}}, got {0:?}")]
    Replication(String),
}

/// The schema with keyspace, replication and keyspace options filled in.
pub fn render(params: &SchemaParams) -> Result<String, SchemaError> {
    validate_keyspace(&params.keyspace)?;
    let replication = params.replication.trim();
    let looks_like_map = replication.starts_with('{')
        && replication.ends_with('}')
        && replication.contains("'class'")
        && !replication.contains(';')
        && !replication.contains("--");
    if !looks_like_map {
        return Err(SchemaError::Replication(params.replication.clone()));
    }
    let options = if params.no_tablets {
        NO_TABLETS_OPTION
    } else {
        ""
    };
    Ok(SCHEMA_TEMPLATE
        .replace("{{keyspace}}", &params.keyspace)
        .replace("{{replication}}", replication)
        .replace("{{keyspace_options}}", options))
}

/// Runs the rendered schema against the cluster of `config`, one statement at a time, and
/// returns how many statements ran. `on_statement` is told about each before it is sent.
/// Every statement is `IF NOT EXISTS`, so a partly applied schema can simply be applied again.
pub async fn apply(
    config: &ScyllaConfig,
    params: &SchemaParams,
    mut on_statement: impl FnMut(&str),
) -> Result<usize, StoreError> {
    let script = render(params).map_err(|e| StoreError::Backend(e.to_string()))?;
    let session = open_session(config).await?;
    let statements = split_statements(&script);
    for statement in &statements {
        on_statement(statement);
        debug!(statement = %statement, "applying schema statement");
        session
            .query_unpaged(statement.as_str(), ())
            .await
            .map_err(|e| classify(&statement_head(statement), &e).into_store_error())?;
    }
    Ok(statements.len())
}

/// The statements of a CQL script, without comments and the final `;`, in order. Quoted
/// strings and identifiers are kept intact; `--`, `//` and `/* */` comments are dropped.
pub fn split_statements(script: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                current.push(c);
                // A doubled quote inside a quoted string is an escaped quote; the loop simply
                // closes and reopens, which keeps both characters.
                for q in chars.by_ref() {
                    current.push(q);
                    if q == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => skip_line(&mut chars),
            '/' if chars.peek() == Some(&'/') => skip_line(&mut chars),
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for n in chars.by_ref() {
                    if last == '*' && n == '/' {
                        break;
                    }
                    last = n;
                }
                current.push(' ');
            }
            ';' => push_statement(&mut statements, &mut current),
            _ => current.push(c),
        }
    }
    push_statement(&mut statements, &mut current);
    statements
}

/// The start of a statement, enough to recognise it in an error message.
fn statement_head(statement: &str) -> String {
    statement
        .split_whitespace()
        .take(6)
        .collect::<Vec<_>>()
        .join(" ")
}

fn skip_line(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for n in chars.by_ref() {
        if n == '\n' {
            break;
        }
    }
}

/// Normalizes whitespace (outside quotes it is insignificant) and keeps non-empty statements.
fn push_statement(statements: &mut Vec<String>, current: &mut String) {
    let text = std::mem::take(current);
    let normalized = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if !normalized.is_empty() {
        statements.push(normalized);
    }
}

/// Table name → column names, for every `CREATE TABLE` in the rendered schema.
pub fn tables(script: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for statement in split_statements(script) {
        let Some(rest) = strip_prefix_ci(&statement, "CREATE TABLE IF NOT EXISTS ") else {
            continue;
        };
        let Some((name, body)) = rest.split_once('(') else {
            continue;
        };
        let table = name
            .trim()
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        let mut columns = BTreeSet::new();
        for definition in top_level_items(body) {
            let first = definition.split_whitespace().next().unwrap_or_default();
            if !first.eq_ignore_ascii_case("PRIMARY") && !first.is_empty() {
                columns.insert(first.to_owned());
            }
        }
        out.insert(table, columns);
    }
    out
}

/// The comma-separated items of a parenthesized list, up to its closing parenthesis, ignoring
/// commas nested in `<>` or `()`.
fn top_level_items(body: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut depth = 0i32;
    let mut current = String::new();
    for c in body.chars() {
        match c {
            '(' | '<' => depth += 1,
            ')' if depth == 0 => break,
            ')' | '>' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut current).trim().to_owned());
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    items.push(current.trim().to_owned());
    items
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_fills_every_template_field() {
        let script = render(&SchemaParams {
            keyspace: "sw_test".into(),
            replication: "{'class': 'NetworkTopologyStrategy', 'dc1': 3}".into(),
            no_tablets: true,
        })
        .unwrap();
        assert!(!script.contains("{{"), "template field left");
        let first = &split_statements(&script)[0];
        assert_eq!(
            first,
            "CREATE KEYSPACE IF NOT EXISTS sw_test WITH replication = \
             {'class': 'NetworkTopologyStrategy', 'dc1': 3} AND tablets = {'enabled': false}"
        );
    }

    #[test]
    fn rendering_refuses_a_replication_that_is_not_a_map() {
        let params = SchemaParams {
            replication: "{'class': 'SimpleStrategy'}; DROP TABLE x".into(),
            ..SchemaParams::default()
        };
        assert!(render(&params).is_err());
        let params = SchemaParams {
            keyspace: "Bad-Name".into(),
            ..SchemaParams::default()
        };
        assert!(render(&params).is_err());
    }

    #[test]
    fn splitting_drops_comments_and_keeps_quoted_semicolons() {
        let script = "-- a; comment\nCREATE X ('a;b', \"c--d\"); /* x; */ // y;\nSELECT 1 ;";
        assert_eq!(
            split_statements(script),
            ["CREATE X ('a;b', \"c--d\")", "SELECT 1"]
        );
    }

    #[test]
    fn every_table_of_the_schema_is_found_with_its_columns() {
        let script = render(&SchemaParams::default()).unwrap();
        let tables = tables(&script);
        let names: Vec<&str> = tables.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "bundle_chunks",
                "bundles",
                "instance_names",
                "instances",
                "machines",
                "meta",
                "signing_keys",
                "transitions",
                "uploads",
                "versions",
                "wakeups"
            ]
        );
        let instances = &tables["instances"];
        for column in ["machine", "version", "write_id", "effects", "tags"] {
            assert!(instances.contains(column), "instances.{column} missing");
        }
        assert!(!instances.contains("PRIMARY"));
    }
}
