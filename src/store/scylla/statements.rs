//! Every CQL statement the store runs, prepared once at connect.
//!
//! The keyspace is spliced into the text (`{ks}`) instead of being set with `USE`, so every
//! statement names its table fully and no connection depends on a session keyspace. The
//! keyspace name is validated as a plain identifier before it gets here.

use futures_util::future::try_join_all;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;

use super::config::ScyllaConfig;
use super::errors::from_prepare;
use crate::store::StoreError;

/// What a statement does, which decides its consistency and whether the driver may retry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// A plain read at the configured consistency; safe to retry.
    Read,
    /// A read at the serial consistency level: it first completes any in-flight Paxos round
    /// on the partition, so it sees every transaction acknowledged before it began.
    LinearizableRead,
    /// A plain write whose repetition has no further effect; safe to retry.
    Write,
    /// A lightweight transaction (`IF ...`). Never retried by the driver: a repeated
    /// transaction could apply on top of its own first attempt.
    Transaction,
}

/// One statement as text, for preparation and for tests that inspect what is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementText {
    pub name: &'static str,
    pub kind: StatementKind,
    pub cql: String,
}

macro_rules! statements {
    ($( $(#[$doc:meta])* $field:ident : $kind:ident = $cql:expr ;)*) => {
        /// The prepared form of every statement, with consistency, serial consistency,
        /// idempotence and timeout already set.
        pub(super) struct Statements {
            $( $(#[$doc])* pub $field: PreparedStatement, )*
        }

        /// Every statement of the store for `keyspace`, in preparation order.
        pub fn statement_texts(keyspace: &str) -> Vec<StatementText> {
            vec![$(
                StatementText {
                    name: stringify!($field),
                    kind: StatementKind::$kind,
                    cql: $cql.replace("{ks}", keyspace),
                },
            )*]
        }

        impl Statements {
            /// Prepares every statement concurrently; fails on the first refusal.
            pub(super) async fn prepare(
                session: &Session,
                config: &ScyllaConfig,
            ) -> Result<Self, StoreError> {
                let texts = statement_texts(&config.keyspace);
                let prepared =
                    try_join_all(texts.iter().map(|t| prepare_one(session, config, t))).await?;
                let mut prepared = prepared.into_iter();
                let mut next = || {
                    prepared.next().ok_or_else(|| {
                        StoreError::Backend("fewer prepared statements than texts".to_owned())
                    })
                };
                Ok(Self { $( $field: next()?, )* })
            }
        }
    };
}

const INSTANCE_COLUMNS: &str = "machine_version, desired_machine_version, status, version, \
     ts_ms, snapshot, state, context, tags, done, write_id, created_at_ms, updated_at_ms, effects";

const WAKEUP_COLUMNS: &str = "wake_at_ms, machine, instance";

statements! {
    // Instances.
    /// The instance row at the configured consistency.
    instance_select: Read = format!(
        "SELECT {INSTANCE_COLUMNS} FROM {{ks}}.instances WHERE machine = ? AND instance = ?"
    );
    /// The instance row at the serial consistency: after an uncertain transaction, and for
    /// `load_instance_linearizable`.
    instance_select_serial: LinearizableRead = format!(
        "SELECT {INSTANCE_COLUMNS} FROM {{ks}}.instances WHERE machine = ? AND instance = ?"
    );
    /// Create: applies only when no row exists.
    instance_insert: Transaction = "INSERT INTO {ks}.instances (machine, instance, version, \
        machine_version, desired_machine_version, status, ts_ms, snapshot, state, context, \
        tags, done, write_id, created_at_ms, updated_at_ms, effects) \
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS";
    /// One accepted write: applies only when the stored version is the expected one.
    instance_update: Transaction = "UPDATE {ks}.instances SET version = ?, \
        machine_version = ?, desired_machine_version = ?, status = ?, ts_ms = ?, \
        snapshot = ?, state = ?, context = ?, tags = ?, done = ?, write_id = ?, \
        updated_at_ms = ?, effects = ? WHERE machine = ? AND instance = ? IF version = ?";
    /// Delete, only at the version the caller last saw.
    instance_delete: Transaction =
        "DELETE FROM {ks}.instances WHERE machine = ? AND instance = ? IF version = ?";
    name_insert: Write = "INSERT INTO {ks}.instance_names (machine, instance) VALUES (?, ?)";
    name_delete: Write = "DELETE FROM {ks}.instance_names WHERE machine = ? AND instance = ?";
    names_first: Read = "SELECT instance FROM {ks}.instance_names WHERE machine = ? LIMIT ?";
    names_after: Read =
        "SELECT instance FROM {ks}.instance_names WHERE machine = ? AND instance > ? LIMIT ?";

    // Transition history.
    transition_insert: Write = "INSERT INTO {ks}.transitions (machine, instance, \
        instance_created_at_ms, bucket, version, write_id, event, state, created_at_ms) \
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
    /// Newest first, below a version, within one bucket.
    transitions_below: Read = "SELECT version, event, state, created_at_ms \
        FROM {ks}.transitions WHERE machine = ? AND instance = ? \
        AND instance_created_at_ms = ? AND bucket = ? AND version < ? LIMIT ?";
    transition_write_id: Read = "SELECT write_id FROM {ks}.transitions \
        WHERE machine = ? AND instance = ? AND instance_created_at_ms = ? AND bucket = ? \
        AND version = ?";
    transitions_delete_bucket: Write = "DELETE FROM {ks}.transitions \
        WHERE machine = ? AND instance = ? AND instance_created_at_ms = ? AND bucket = ?";

    // The wake-up index.
    /// The intent written before a transaction that sets a wake time; expires by its TTL.
    wakeup_insert: Write = "INSERT INTO {ks}.wakeups (shard, minute_bucket, wake_at_ms, \
        machine, instance) VALUES (?, ?, ?, ?, ?) USING TTL ?";
    /// One partition's entries in a time range.
    wakeups_between: Read = format!(
        "SELECT {WAKEUP_COLUMNS} FROM {{ks}}.wakeups WHERE shard = ? AND minute_bucket = ? \
         AND wake_at_ms >= ? AND wake_at_ms <= ? LIMIT ?"
    );
    /// One partition's entries at one time and machine, after an instance name.
    wakeups_after_instance: Read = format!(
        "SELECT {WAKEUP_COLUMNS} FROM {{ks}}.wakeups WHERE shard = ? AND minute_bucket = ? \
         AND wake_at_ms = ? AND machine = ? AND instance > ? LIMIT ?"
    );
    /// One partition's entries at one time, after a machine name.
    wakeups_after_machine: Read = format!(
        "SELECT {WAKEUP_COLUMNS} FROM {{ks}}.wakeups WHERE shard = ? AND minute_bucket = ? \
         AND wake_at_ms = ? AND machine > ? LIMIT ?"
    );

    // Machines.
    machine_insert: Transaction = "INSERT INTO {ks}.machines (part, name, created_at_ms, \
        indexes, current_version) VALUES (0, ?, ?, ?, ?) IF NOT EXISTS";
    machine_select: Read = "SELECT name, created_at_ms, indexes, current_version \
        FROM {ks}.machines WHERE part = 0 AND name = ?";
    machines_first: Read = "SELECT name, created_at_ms, indexes, current_version \
        FROM {ks}.machines WHERE part = 0 LIMIT ?";
    machines_after: Read = "SELECT name, created_at_ms, indexes, current_version \
        FROM {ks}.machines WHERE part = 0 AND name > ? LIMIT ?";
    machine_set_current: Transaction = "UPDATE {ks}.machines SET current_version = ? \
        WHERE part = 0 AND name = ? IF EXISTS";
    machine_delete: Transaction =
        "DELETE FROM {ks}.machines WHERE part = 0 AND name = ? IF EXISTS";

    // Versions and code.
    version_insert: Write = "INSERT INTO {ks}.versions (machine, id, created_at_ms, \
        client_info, code_hash, index_selectors) VALUES (?, ?, ?, ?, ?, ?)";
    version_select: Read = "SELECT machine, id, created_at_ms, client_info, code_hash, \
        index_selectors FROM {ks}.versions WHERE machine = ? AND id = ?";
    versions_of_machine: Read = "SELECT machine, id, created_at_ms, client_info, code_hash, \
        index_selectors FROM {ks}.versions WHERE machine = ?";
    versions_delete: Write = "DELETE FROM {ks}.versions WHERE machine = ?";
    bundle_select: Read =
        "SELECT chunk_count, size_bytes FROM {ks}.bundles WHERE hash = ?";
    bundle_insert: Write =
        "INSERT INTO {ks}.bundles (hash, chunk_count, size_bytes) VALUES (?, ?, ?)";
    chunk_insert: Write =
        "INSERT INTO {ks}.bundle_chunks (hash, chunk, data) VALUES (?, ?, ?)";
    chunks_select: Read = "SELECT chunk, data FROM {ks}.bundle_chunks WHERE hash = ?";
    upload_insert: Write = "INSERT INTO {ks}.uploads (id, machine, gzip, created_at_ms, \
        code_hash) VALUES (?, ?, ?, ?, ?)";
    upload_select: Read = "SELECT id, machine, gzip, created_at_ms, code_hash \
        FROM {ks}.uploads WHERE id = ?";
    upload_delete: Write = "DELETE FROM {ks}.uploads WHERE id = ?";

    // Signing keys and server-wide values.
    key_insert: Write = "INSERT INTO {ks}.signing_keys (part, id, name, scopes, secret, \
        created_at_ms) VALUES (0, ?, ?, ?, ?, ?)";
    key_select: Read = "SELECT id, name, scopes, secret, created_at_ms \
        FROM {ks}.signing_keys WHERE part = 0 AND id = ?";
    keys_first: Read = "SELECT id, name, scopes, secret, created_at_ms \
        FROM {ks}.signing_keys WHERE part = 0 LIMIT ?";
    keys_after: Read = "SELECT id, name, scopes, secret, created_at_ms \
        FROM {ks}.signing_keys WHERE part = 0 AND id > ? LIMIT ?";
    key_delete: Write = "DELETE FROM {ks}.signing_keys WHERE part = 0 AND id = ?";
    meta_select: Read = "SELECT value FROM {ks}.meta WHERE name = ?";
    meta_insert: Write = "INSERT INTO {ks}.meta (name, value) VALUES (?, ?)";
}

async fn prepare_one(
    session: &Session,
    config: &ScyllaConfig,
    text: &StatementText,
) -> Result<PreparedStatement, StoreError> {
    let mut p = session
        .prepare(text.cql.as_str())
        .await
        .map_err(|e| from_prepare(text.name, e))?;
    let read_consistency = match text.kind {
        StatementKind::LinearizableRead => config.serial_consistency.as_read_consistency(),
        _ => config.consistency.into(),
    };
    p.set_consistency(read_consistency);
    p.set_serial_consistency(Some(config.serial_consistency.into()));
    p.set_is_idempotent(matches!(
        text.kind,
        StatementKind::Read | StatementKind::LinearizableRead | StatementKind::Write
    ));
    p.set_request_timeout(Some(config.request_timeout()));
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transaction_is_conditional_and_nothing_else_is() {
        for t in statement_texts("ks") {
            let conditional = t.cql.contains(" IF ");
            assert_eq!(
                conditional,
                t.kind == StatementKind::Transaction,
                "{}: {}",
                t.name,
                t.cql
            );
        }
    }

    #[test]
    fn every_statement_names_its_table_in_the_keyspace() {
        for t in statement_texts("ks_9") {
            assert!(t.cql.contains(" ks_9."), "{}: {}", t.name, t.cql);
            assert!(!t.cql.contains("{ks}"), "{}", t.name);
            assert!(!t.cql.contains("  "), "{}: double space", t.name);
        }
    }
}
