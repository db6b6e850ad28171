//! `Store` for [`EmbeddedStore`]: writes become ops for the writer, reads run here.

use async_trait::async_trait;

use super::apply::{Op, Reply, TableId};
use super::layout::{self, encode_instance, encode_raw, encode_record};
use super::read::{self, Order};
use super::EmbeddedStore;
use crate::ids::{InstanceKey, KeyId, MachineName, MachineVersionId};
use crate::store::{
    CasOutcome, Commit, InstanceRecord, InstanceSummary, KeyRecord, MachineRecord, Page,
    PageRequest, Store, StoreError, TransitionRecord, UploadRecord, VersionRecord, Wakeup,
};

/// A listing row from an instance's key suffix (its name) and stored value.
fn summary(name: &[u8], value: &[u8]) -> Result<InstanceSummary, StoreError> {
    let name = std::str::from_utf8(name)
        .map_err(|_| StoreError::Corrupt("instance name is not UTF-8".to_owned()))?;
    let fields = layout::decode_instance_summary(value)?;
    Ok(InstanceSummary {
        name: name.to_owned(),
        created_at_ms: fields.created_at_ms,
        machine_version: fields.machine_version,
        status: fields.status,
    })
}

fn unexpected(reply: Reply) -> StoreError {
    StoreError::Backend(format!("store writer gave an unexpected reply: {reply:?}"))
}

impl EmbeddedStore {
    /// Runs a listing on the blocking pool. A point read takes about 2 µs and runs inline
    /// (spawn_blocking alone costs about 20 µs here), but a page decodes up to `limit` records
    /// of up to hundreds of kilobytes each, which does not belong on a reactor thread.
    async fn off_reactor<T: Send + 'static>(
        &self,
        list: impl FnOnce(&redb::Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = std::sync::Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || list(&db))
            .await
            .map_err(|e| StoreError::Backend(format!("listing task failed: {e}")))?
    }

    async fn write(&self, op: Op) -> Result<(), StoreError> {
        match self.submit(op).await? {
            Reply::Done | Reply::Flag(_) => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn write_flag(&self, op: Op) -> Result<bool, StoreError> {
        match self.submit(op).await? {
            Reply::Flag(flag) => Ok(flag),
            other => Err(unexpected(other)),
        }
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn create_machine(&self, m: &MachineRecord) -> Result<bool, StoreError> {
        self.write_flag(Op::PutIfAbsent {
            table: TableId::Machines,
            key: m.name.as_str().as_bytes().to_vec(),
            value: encode_record(m)?,
        })
        .await
    }

    async fn get_machine(&self, name: &MachineName) -> Result<Option<MachineRecord>, StoreError> {
        read::get_record(&self.db, layout::MACHINES, name.as_str().as_bytes())
    }

    async fn list_machines(&self, page: &PageRequest) -> Result<Page<MachineRecord>, StoreError> {
        let page = page.clone();
        self.off_reactor(move |db| {
            read::page_records(db, layout::MACHINES, b"", Order::Ascending, &page)
        })
        .await
    }

    /// Does nothing when the machine does not exist.
    async fn set_current_version(
        &self,
        name: &MachineName,
        version: &MachineVersionId,
    ) -> Result<(), StoreError> {
        self.write(Op::SetCurrentVersion {
            machine_key: name.as_str().as_bytes().to_vec(),
            version: version.clone(),
        })
        .await
    }

    async fn delete_machine(&self, name: &MachineName) -> Result<bool, StoreError> {
        self.write_flag(Op::DeleteMachine {
            machine_key: name.as_str().as_bytes().to_vec(),
            prefix: layout::machine_prefix(name),
        })
        .await
    }

    /// A bundle already stored under `hash` is kept as it is.
    async fn put_bundle(&self, hash: &str, code: &[u8]) -> Result<(), StoreError> {
        self.write(Op::PutIfAbsent {
            table: TableId::Bundles,
            key: hash.as_bytes().to_vec(),
            value: encode_raw(code),
        })
        .await
    }

    async fn get_bundle(&self, hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        read::get_raw(&self.db, layout::BUNDLES, hash.as_bytes())
    }

    async fn put_version(&self, v: &VersionRecord) -> Result<(), StoreError> {
        self.write(Op::PutVersion {
            id_key: layout::version_id_key(&v.machine, &v.id),
            order_key: layout::version_key(&v.machine, v.created_at_ms, &v.id),
            value: encode_record(v)?,
        })
        .await
    }

    async fn get_version(
        &self,
        machine: &MachineName,
        id: &MachineVersionId,
    ) -> Result<Option<VersionRecord>, StoreError> {
        let id_key = layout::version_id_key(machine, id);
        read::get_indirect(&self.db, layout::VERSION_IDS, layout::VERSIONS, &id_key)
    }

    async fn list_versions(
        &self,
        machine: &MachineName,
        page: &PageRequest,
    ) -> Result<Page<VersionRecord>, StoreError> {
        let prefix = layout::machine_prefix(machine);
        let page = page.clone();
        self.off_reactor(move |db| {
            read::page_records(db, layout::VERSIONS, &prefix, Order::Descending, &page)
        })
        .await
    }

    async fn put_upload(&self, u: &UploadRecord) -> Result<(), StoreError> {
        self.write(Op::Put {
            table: TableId::Uploads,
            key: u.id.as_bytes().to_vec(),
            value: encode_record(u)?,
        })
        .await
    }

    async fn get_upload(&self, id: &str) -> Result<Option<UploadRecord>, StoreError> {
        read::get_record(&self.db, layout::UPLOADS, id.as_bytes())
    }

    async fn delete_upload(&self, id: &str) -> Result<(), StoreError> {
        self.write(Op::Delete {
            table: TableId::Uploads,
            key: id.as_bytes().to_vec(),
        })
        .await
    }

    async fn load_instance(&self, key: &InstanceKey) -> Result<Option<InstanceRecord>, StoreError> {
        let key = layout::instance_key(key);
        read::get_with(&self.db, layout::INSTANCES, &key, layout::decode_instance)
    }

    /// Every acknowledged write is committed, so this is [`Store::load_instance`].
    async fn load_instance_linearizable(
        &self,
        key: &InstanceKey,
    ) -> Result<Option<InstanceRecord>, StoreError> {
        self.load_instance(key).await
    }

    async fn commit(&self, c: Commit) -> Result<CasOutcome, StoreError> {
        let version = c.validate()?;
        let transition = match &c.transition {
            Some(t) => Some((layout::transition_key(&c.key, version), encode_record(t)?)),
            None => None,
        };
        let op = Op::Commit {
            instance_key: layout::instance_key(&c.key),
            expect: c.expect,
            version,
            wake_at_ms: c.next.effects.wake_at_ms,
            value: encode_instance(&c.next)?,
            transition,
        };
        match self.submit(op).await? {
            Reply::Cas(outcome) => Ok(outcome),
            other => Err(unexpected(other)),
        }
    }

    async fn list_instances(
        &self,
        machine: &MachineName,
        page: &PageRequest,
    ) -> Result<Page<InstanceSummary>, StoreError> {
        let prefix = layout::machine_prefix(machine);
        let page = page.clone();
        self.off_reactor(move |db| {
            read::page(
                db,
                layout::INSTANCES,
                &prefix,
                Order::Ascending,
                &page,
                summary,
            )
        })
        .await
    }

    async fn has_instances(&self, machine: &MachineName) -> Result<bool, StoreError> {
        let prefix = layout::machine_prefix(machine);
        read::any_with_prefix(&self.db, layout::INSTANCES, &prefix)
    }

    async fn list_transitions(
        &self,
        key: &InstanceKey,
        page: &PageRequest,
    ) -> Result<Page<TransitionRecord>, StoreError> {
        let prefix = layout::transition_prefix(key);
        let page = page.clone();
        self.off_reactor(move |db| {
            read::page_records(db, layout::TRANSITIONS, &prefix, Order::Descending, &page)
        })
        .await
    }

    async fn delete_instance(&self, key: &InstanceKey) -> Result<bool, StoreError> {
        self.write_flag(Op::DeleteInstance {
            instance_key: layout::instance_key(key),
            history_prefix: layout::transition_prefix(key),
        })
        .await
    }

    /// One range scan of the index table in its own read transaction, on the blocking pool.
    async fn wakeups_after(
        &self,
        after: Option<&Wakeup>,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<Wakeup>, StoreError> {
        let after = after.map(|w| layout::wakeup_key(w.wake_at_ms, &w.key));
        self.off_reactor(move |db| read::wakeups(db, after.as_deref(), until_ms, limit))
            .await
    }

    async fn put_key(&self, k: &KeyRecord) -> Result<(), StoreError> {
        self.write(Op::Put {
            table: TableId::Keys,
            key: k.id.as_str().as_bytes().to_vec(),
            value: encode_record(k)?,
        })
        .await
    }

    async fn get_key(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        read::get_record(&self.db, layout::KEYS, id.as_str().as_bytes())
    }

    async fn list_keys(&self, page: &PageRequest) -> Result<Page<KeyRecord>, StoreError> {
        let page = page.clone();
        self.off_reactor(move |db| {
            read::page_records(db, layout::KEYS, b"", Order::Ascending, &page)
        })
        .await
    }

    async fn delete_key(&self, id: &KeyId) -> Result<bool, StoreError> {
        self.write_flag(Op::Delete {
            table: TableId::Keys,
            key: id.as_str().as_bytes().to_vec(),
        })
        .await
    }

    async fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        read::get_raw(&self.db, layout::META, name.as_bytes())
    }

    /// The name that holds the file's format version is reserved.
    async fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        if name == layout::FORMAT_VERSION_KEY {
            return Err(StoreError::Backend(format!("meta name {name} is reserved")));
        }
        self.write(Op::Put {
            table: TableId::Meta,
            key: name.as_bytes().to_vec(),
            value: encode_raw(value),
        })
        .await
    }

    async fn shutdown(&self) -> Result<(), StoreError> {
        self.stop().await
    }
}
