//! The embedded store: one redb file, `<data_dir>/statewire.redb`, written by one thread.
//!
//! - `layout`: tables, key encodings and our own value encoding.
//! - `writer`: the writer thread and its group commit (one fsync per batch of writes).
//! - `apply`: the writes the writer knows and how each one is applied.
//! - `read`: reads, each in its own read transaction, never waiting for the writer.
//!
//! The wake-up index is a table written by the same write transaction as the instance row
//! (so by the same fsync): it is exact, and survives a crash exactly as the rows do.
//!
//! Every acknowledged write is committed with `Durability::Immediate`, so a linearizable read
//! is a plain read here. Only one process may open the file at a time (redb locks it).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use redb::{Database, Durability};
use tokio::sync::{mpsc, oneshot};

mod apply;
mod layout;
mod read;
mod store_impl;
mod writer;

use apply::{Op, Reply};
use writer::{Message, Request, Shared};

pub use writer::WriterStats;

use crate::store::StoreError;

/// The file inside the data directory.
pub const FILE_NAME: &str = "statewire.redb";

/// A durable store in a single file. Cheap to share behind an `Arc`; dropping it (or calling
/// `shutdown`) commits what is queued and stops the writer thread.
pub struct EmbeddedStore {
    db: Arc<Database>,
    path: PathBuf,
    /// `None` only while the store is being dropped.
    requests_tx: Option<mpsc::Sender<Message>>,
    thread: parking_lot::Mutex<Option<JoinHandle<()>>>,
    shared: Arc<Shared>,
}

/// Maps any engine error to `StoreError::Backend` with what was being done.
fn backend<E: std::fmt::Display>(context: &'static str) -> impl Fn(E) -> StoreError {
    move |e| StoreError::Backend(format!("{context}: {e}"))
}

impl EmbeddedStore {
    /// Opens `<data_dir>/statewire.redb`, creating the directory, the file and its tables when
    /// missing. Refuses a file written in a newer format than this build knows, and a file that
    /// another process has open.
    pub fn open(data_dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let data_dir = data_dir.as_ref();
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Backend(format!("cannot create {}: {e}", data_dir.display()))
        })?;
        let path = data_dir.join(FILE_NAME);
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Unavailable(format!(
                "{} is already open in another process",
                path.display()
            )),
            other => StoreError::Backend(format!("cannot open {}: {other}", path.display())),
        })?;
        let format_version = prepare(&db, &path)?;
        let db = Arc::new(db);
        let shared = Arc::new(Shared::default());
        let (requests_tx, thread) = writer::spawn(Arc::clone(&db), Arc::clone(&shared))
            .map_err(backend("cannot start the store writer"))?;
        tracing::info!(path = %path.display(), format_version, "store opened");
        Ok(Self {
            db,
            path,
            requests_tx: Some(requests_tx),
            thread: parking_lot::Mutex::new(Some(thread)),
            shared,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counters of the writer since opening.
    pub fn stats(&self) -> WriterStats {
        self.shared.stats()
    }

    /// Fault injection for tests of the failure path: the next batch is rolled back instead of
    /// committed and handled exactly as a failed commit (its ops fail, the store is poisoned).
    pub fn fail_next_commit(&self) {
        self.shared.fail_next_commit();
    }

    /// Queues one write and waits until it is durable (or refused).
    async fn submit(&self, op: Op) -> Result<Reply, StoreError> {
        if let Some(refused) = self.shared.poisoned_error() {
            return Err(refused);
        }
        let closed = || StoreError::Unavailable("store is shut down".to_owned());
        let requests_tx = self.requests_tx.as_ref().ok_or_else(closed)?;
        let (reply_tx, reply_rx) = oneshot::channel();
        requests_tx
            .send(Message::Write(Request { op, reply_tx }))
            .await
            .map_err(|_| closed())?;
        // A dropped reply means the writer died mid-batch: the write may or may not be on disk.
        reply_rx.await.map_err(|_| StoreError::Unknown)?
    }

    /// Stops accepting writes, commits what was queued before, and joins the writer thread.
    async fn stop(&self) -> Result<(), StoreError> {
        if let Some(requests_tx) = &self.requests_tx {
            let (ack_tx, ack_rx) = oneshot::channel();
            if requests_tx.send(Message::Shutdown(ack_tx)).await.is_ok() {
                // An error here means another shutdown got there first; both end the same way.
                let _ = ack_rx.await;
            }
        }
        let thread = self.thread.lock().take();
        if let Some(thread) = thread {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(backend("join store writer"))?
                .map_err(|_| StoreError::Backend("store writer panicked".to_owned()))?;
            let stats = self.stats();
            tracing::info!(
                path = %self.path.display(),
                commits = stats.commits,
                ops = stats.ops,
                "store closed"
            );
        }
        Ok(())
    }
}

/// Creates every table and checks the format version: writes it on a new file, upgrades an
/// older file, refuses a newer one.
///
/// Upgrading from layout 1 only stamps the new number: the tables it lacks were just created
/// (empty), and its instance values are read as they are (they have no wake time, so the
/// empty index is exact for them).
fn prepare(db: &Database, path: &Path) -> Result<u32, StoreError> {
    let stored = {
        let mut txn = db.begin_write().map_err(backend("begin write"))?;
        txn.set_durability(Durability::Immediate)
            .map_err(backend("set durability"))?;
        for table in layout::ALL_TABLES {
            txn.open_table(table).map_err(backend("create table"))?;
        }
        txn.commit().map_err(backend("commit tables"))?;
        read::format_version(db)?
    };
    match stored {
        Some(v) if v > layout::FORMAT_VERSION => Err(StoreError::Backend(format!(
            "{} has store format version {v}, newer than the {} this build reads; \
             run a newer statewire or restore a backup",
            path.display(),
            layout::FORMAT_VERSION
        ))),
        Some(0) => Err(StoreError::Corrupt(format!(
            "{} has store format version 0",
            path.display()
        ))),
        Some(v) if v == layout::FORMAT_VERSION => Ok(v),
        Some(v) => {
            stamp_format_version(db)?;
            tracing::info!(
                path = %path.display(),
                from = v,
                to = layout::FORMAT_VERSION,
                "store format upgraded"
            );
            Ok(layout::FORMAT_VERSION)
        }
        None => {
            stamp_format_version(db)?;
            Ok(layout::FORMAT_VERSION)
        }
    }
}

/// Writes this build's format version, durably.
fn stamp_format_version(db: &Database) -> Result<(), StoreError> {
    let mut txn = db.begin_write().map_err(backend("begin write"))?;
    txn.set_durability(Durability::Immediate)
        .map_err(backend("set durability"))?;
    {
        let mut meta = txn.open_table(layout::META).map_err(backend("open meta"))?;
        let value = layout::encode_raw(&layout::FORMAT_VERSION.to_be_bytes());
        meta.insert(layout::FORMAT_VERSION_KEY.as_bytes(), value.as_slice())
            .map_err(backend("write format version"))?;
    }
    txn.commit().map_err(backend("commit format version"))
}

impl Drop for EmbeddedStore {
    /// Closes the queue, lets the writer commit what is queued, and waits for it. Blocks the
    /// dropping thread for at most the last batch's commit.
    fn drop(&mut self) {
        drop(self.requests_tx.take());
        if let Some(thread) = self.thread.get_mut().take() {
            if thread.join().is_err() {
                tracing::error!(path = %self.path.display(), "store writer panicked");
            }
        }
    }
}
