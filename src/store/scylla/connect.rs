//! Opening a session: contact points, datacenter, credentials, TLS, and the schema check.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::StreamExt;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::load_balancing::DefaultPolicy;

use super::config::ScyllaConfig;
use super::errors::{from_execution, from_new_session, from_pager, malformed};
use super::schema::{self, SchemaParams};
use crate::store::StoreError;

/// Opens a session to the cluster described by `config`. Fails with a message naming the
/// contact points when none can be reached.
pub async fn open_session(config: &ScyllaConfig) -> Result<Session, StoreError> {
    config
        .validate()
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    let nodes = config.contact_points();
    let mut policy = DefaultPolicy::builder().token_aware(true);
    if let Some(dc) = &config.local_datacenter {
        // LOCAL_* levels only mean something if requests stay in the local datacenter.
        policy = policy
            .prefer_datacenter(dc.clone())
            .permit_dc_failover(false);
    }
    let profile = ExecutionProfile::builder()
        .consistency(config.consistency.into())
        .serial_consistency(Some(config.serial_consistency.into()))
        .request_timeout(Some(config.request_timeout()))
        .load_balancing_policy(policy.build())
        .build();
    let mut builder = SessionBuilder::new()
        .known_nodes(&nodes)
        .connection_timeout(config.connect_timeout())
        .default_execution_profile_handle(profile.into_handle())
        .keyspaces_to_fetch([config.keyspace.as_str()]);
    match (&config.username, &config.password) {
        (Some(user), Some(password)) => builder = builder.user(user, password),
        (None, None) => {}
        _ => {
            return Err(StoreError::Backend(
                "ScyllaDB username and password must be given together".to_owned(),
            ))
        }
    }
    if config.tls {
        builder = builder.tls_context(Some(tls::context(config)?));
    } else if config.tls_ca_file.is_some() {
        return Err(StoreError::Backend(
            "a TLS CA file is set but TLS is off (set STATEWIRE_SCYLLA_TLS=true)".to_owned(),
        ));
    }
    // The driver retries unreachable nodes on its own; bound the whole attempt.
    let deadline = config.connect_timeout() * 2 + Duration::from_secs(1);
    match tokio::time::timeout(deadline, builder.build()).await {
        Ok(Ok(session)) => Ok(session),
        Ok(Err(e)) => Err(from_new_session(&nodes, e)),
        Err(_) => Err(StoreError::Unavailable(format!(
            "cannot reach the ScyllaDB cluster at {}: no answer within {} ms",
            nodes.join(", "),
            deadline.as_millis()
        ))),
    }
}

/// Checks that the keyspace exists and holds every table and column of `schema.cql`, so a
/// server with a missing or outdated schema refuses to start instead of failing requests.
pub async fn verify_schema(session: &Session, keyspace: &str) -> Result<(), StoreError> {
    let params = SchemaParams {
        keyspace: keyspace.to_owned(),
        ..SchemaParams::default()
    };
    let script = schema::render(&params).map_err(|e| StoreError::Backend(e.to_string()))?;
    let expected = schema::tables(&script);
    let found = existing_columns(session, keyspace).await?;
    let problems = schema_problems(keyspace, &expected, &found);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Backend(problems))
    }
}

/// Table → columns of `keyspace`, as the cluster describes them; `None` if the keyspace does
/// not exist.
async fn existing_columns(
    session: &Session,
    keyspace: &str,
) -> Result<Option<BTreeMap<String, BTreeSet<String>>>, StoreError> {
    // The keyspace name is a validated plain identifier, so it can be spliced in.
    let ks_query = format!(
        "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = '{keyspace}'"
    );
    let result = session
        .query_unpaged(ks_query, ())
        .await
        .map_err(|e| from_execution("reading system_schema.keyspaces", e))?;
    let rows = result
        .into_rows_result()
        .map_err(|e| malformed("system_schema.keyspaces", e))?;
    if rows.rows_num() == 0 {
        return Ok(None);
    }
    let columns_query = format!(
        "SELECT table_name, column_name FROM system_schema.columns WHERE keyspace_name = '{keyspace}'"
    );
    let pager = session
        .query_iter(columns_query, ())
        .await
        .map_err(|e| from_pager("reading system_schema.columns", e))?;
    let mut stream = pager
        .rows_stream::<(String, String)>()
        .map_err(|e| malformed("system_schema.columns", e))?;
    let mut tables: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    while let Some(row) = stream.next().await {
        let (table, column) = row.map_err(|e| malformed("system_schema.columns", e))?;
        tables.entry(table).or_default().insert(column);
    }
    Ok(Some(tables))
}

/// A readable account of what is missing, or an empty string when nothing is.
fn schema_problems(
    keyspace: &str,
    expected: &BTreeMap<String, BTreeSet<String>>,
    found: &Option<BTreeMap<String, BTreeSet<String>>>,
) -> String {
    let fix = format!("apply the schema with `statewire schema --keyspace {keyspace} --apply`");
    let Some(found) = found else {
        return format!("keyspace {keyspace} does not exist; {fix}");
    };
    let mut missing_tables = Vec::new();
    let mut missing_columns = Vec::new();
    for (table, columns) in expected {
        match found.get(table) {
            None => missing_tables.push(table.as_str()),
            Some(have) => {
                for c in columns.difference(have) {
                    missing_columns.push(format!("{table}.{c}"));
                }
            }
        }
    }
    let mut parts = Vec::new();
    if !missing_tables.is_empty() {
        parts.push(format!("missing tables: {}", missing_tables.join(", ")));
    }
    if !missing_columns.is_empty() {
        parts.push(format!("missing columns: {}", missing_columns.join(", ")));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(
            "keyspace {keyspace} does not match this build's schema ({}); {fix}",
            parts.join("; ")
        )
    }
}

#[cfg(feature = "scylla-tls")]
mod tls {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    use scylla::client::session::{OpenSsl010Config, TlsContext};

    use super::ScyllaConfig;
    use crate::store::StoreError;

    /// Verifies the nodes' certificates against the CA file (or the system trust store). The
    /// driver checks each certificate against the node's IP address, so node certificates
    /// need IP subject alternative names.
    pub(super) fn context(config: &ScyllaConfig) -> Result<TlsContext, StoreError> {
        let fail = |e: openssl::error::ErrorStack| StoreError::Backend(format!("TLS setup: {e}"));
        let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(fail)?;
        if let Some(ca) = &config.tls_ca_file {
            builder
                .set_ca_file(ca)
                .map_err(|e| StoreError::Backend(format!("TLS CA file {}: {e}", ca.display())))?;
        }
        builder.set_verify(SslVerifyMode::PEER);
        Ok(TlsContext::OpenSsl010Config(OpenSsl010Config::new(builder)))
    }
}

#[cfg(not(feature = "scylla-tls"))]
mod tls {
    use scylla::client::session::TlsContext;

    use super::ScyllaConfig;
    use crate::store::StoreError;

    /// This build has no TLS library linked in.
    pub(super) fn context(_config: &ScyllaConfig) -> Result<TlsContext, StoreError> {
        Err(StoreError::Backend(
            "TLS to ScyllaDB needs a build with `--features scylla-tls`".to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(columns: &[&str]) -> BTreeSet<String> {
        columns.iter().map(|c| (*c).to_owned()).collect()
    }

    #[test]
    fn missing_keyspace_tables_and_columns_are_named() {
        let mut expected = BTreeMap::new();
        expected.insert("instances".to_owned(), table(&["machine", "write_id"]));
        expected.insert("meta".to_owned(), table(&["name", "value"]));
        let missing_ks = schema_problems("sw", &expected, &None);
        assert!(
            missing_ks.contains("keyspace sw does not exist"),
            "{missing_ks}"
        );

        let mut found = BTreeMap::new();
        found.insert("instances".to_owned(), table(&["machine"]));
        let partial = schema_problems("sw", &expected, &Some(found.clone()));
        assert!(partial.contains("missing tables: meta"), "{partial}");
        assert!(
            partial.contains("missing columns: instances.write_id"),
            "{partial}"
        );
        assert!(partial.contains("statewire schema --keyspace sw --apply"));

        found.insert("instances".to_owned(), table(&["machine", "write_id", "x"]));
        found.insert("meta".to_owned(), table(&["name", "value"]));
        assert_eq!(schema_problems("sw", &expected, &Some(found)), "");
    }
}
