//! `subscribe-to-instance` and `unsubscribe-from-instance`, and the connection's table of what
//! it is subscribed to.
//!
//! One connection holds at most one subscription per instance. Each subscribe to an instance
//! (the official client sends one per listener, each with its own `requestId`) re-checks
//! `allowRead`, answers with the current state, and adds its `requestId` to the subscription;
//! an unsubscribe removes its `requestId`, and the subscription ends with the last one. The
//! delivery mode (`diffs`) is the one of the latest subscribe.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::connection::Conn;
use super::protocol::Subscribe;
use super::MAX_SUBSCRIPTIONS_PER_CONNECTION;
use crate::auth::Route;
use crate::error::ApiError;
use crate::fanout::{Mode, Subscription};
use crate::ids::InstanceKey;

/// How often a subscribe looks its topic up again after finding it retired (the instance was
/// deleted, or its idle topic swept, between the lookup and the attach).
const ATTACH_ATTEMPTS: usize = 3;

/// The connection's subscriptions, by instance.
#[derive(Default)]
pub(super) struct Table {
    entries: Mutex<HashMap<InstanceKey, Entry>>,
}

struct Entry {
    subscription: Arc<Subscription>,
    request_ids: Vec<Option<String>>,
}

impl Table {
    fn get(&self, key: &InstanceKey) -> Option<Arc<Subscription>> {
        self.entries.lock().get(key).map(|e| e.subscription.clone())
    }

    fn len(&self) -> usize {
        self.entries.lock().len()
    }

    fn insert(&self, subscription: &Arc<Subscription>, request_id: Option<&str>) {
        let mut entries = self.entries.lock();
        let entry = entries
            .entry(subscription.key().clone())
            .or_insert_with(|| Entry {
                subscription: subscription.clone(),
                request_ids: Vec::new(),
            });
        entry.subscription = subscription.clone();
        let id = request_id.map(str::to_owned);
        if !entry.request_ids.contains(&id) {
            entry.request_ids.push(id);
        }
    }

    /// Removes `request_id` from the instance's subscription; returns the subscription when
    /// that was its last request, for the caller to detach.
    fn remove_request(
        &self,
        key: &InstanceKey,
        request_id: Option<&str>,
    ) -> Option<Arc<Subscription>> {
        let mut entries = self.entries.lock();
        let entry = entries.get_mut(key)?;
        entry.request_ids.retain(|id| id.as_deref() != request_id);
        if entry.request_ids.is_empty() {
            entries.remove(key).map(|e| e.subscription)
        } else {
            None
        }
    }

    /// Forgets a subscription that ended on its own; returns the requests to tell.
    pub fn remove_ended(&self, subscription: &Arc<Subscription>) -> Vec<Option<String>> {
        let mut entries = self.entries.lock();
        match entries.get(subscription.key()) {
            Some(e) if Arc::ptr_eq(&e.subscription, subscription) => entries
                .remove(subscription.key())
                .map(|e| e.request_ids)
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Detaches every subscription; the connection is closing.
    pub fn clear(&self) {
        let entries: Vec<Entry> = self.entries.lock().drain().map(|(_, e)| e).collect();
        for entry in entries {
            entry.subscription.detach();
        }
    }
}

/// Checks the scope and `allowRead`, then attaches the subscription; the current state is
/// offered to the connection's writer at once.
pub(super) async fn subscribe(
    conn: &Conn,
    request_id: Option<&str>,
    request: Subscribe,
) -> Result<(), ApiError> {
    conn.principal.authorize(Route::GetInstanceState)?;
    let fanout = &conn.shared.fanout;
    let key = &request.key;
    let mode = Mode {
        diffs: request.diffs,
        resume_from: request.resume_from,
    };
    for _ in 0..ATTACH_ATTEMPTS {
        // The topic exists before the read, so no commit after the read can be missed.
        let topic = fanout.topic(key);
        let record = match conn
            .api
            .registry
            .read(key, &conn.principal.auth_context)
            .await
        {
            Ok(record) => record,
            Err(e) => {
                fanout.release(&topic);
                return Err(e.into());
            }
        };
        let existing = conn.table.get(key);
        if existing.is_none() && conn.table.len() >= MAX_SUBSCRIPTIONS_PER_CONNECTION {
            fanout.release(&topic);
            return Err(ApiError::LimitExceeded(format!(
                "a connection may subscribe to at most {MAX_SUBSCRIPTIONS_PER_CONNECTION} instances"
            )));
        }
        let subscription = fanout.subscription(&topic, existing.as_ref(), &conn.outbox);
        conn.table.insert(&subscription, request_id);
        if fanout.attach(&subscription, mode, &record).is_ok() {
            tracing::debug!(conn = %conn.id, instance = %key, diffs = mode.diffs, "subscribed");
            return Ok(());
        }
    }
    Err(ApiError::Contended(format!(
        "instance {key} was deleted or re-created while subscribing; try again"
    )))
}

/// Removes the request from its subscription; with the last one, delivery stops at once.
/// Unknown instances and requests are ignored: the client expects no answer.
pub(super) fn unsubscribe(conn: &Conn, request_id: Option<&str>, key: &InstanceKey) {
    if let Some(subscription) = conn.table.remove_request(key, request_id) {
        subscription.detach();
        tracing::debug!(conn = %conn.id, instance = %key, "unsubscribed");
    }
}
