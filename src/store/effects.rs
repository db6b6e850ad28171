//! Effect state that lives in the instance row: durable timers, started services, messages
//! waiting to leave, ids of messages already received, and when the host wants to be woken.
//!
//! All of it is written by the same compare-and-set as the snapshot, so a transition and the
//! effects it scheduled become durable together or not at all. The store does not interpret
//! any of it except [`EffectState::wake_at_ms`], which every backend keeps in a wake-up index
//! (see [`super::Wakeup`]). The methods here are pure; the host decides what to change and
//! when, and computes `wake_at_ms` (usually with [`EffectState::earliest_due_ms`]).
//!
//! Every field has a serde default, so records written before effect state existed decode
//! with empty effects, and empty effects are left out of the encoding entirely.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::InstanceKey;

/// How many inbound message ids [`EffectState::received`] keeps for deduplication. Older ids
/// are dropped first, so a message retried after 256 newer ones have arrived is not
/// recognised as a duplicate. Not configurable: every id is stored in the row and travels with
/// each write of it, so the bound is part of the row's size budget.
pub const RECEIVED_CAPACITY: usize = 256;

/// The effect state of one instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EffectState {
    /// Durable delayed events, in the order they were armed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timers: Vec<TimerRecord>,
    /// Invoked services whose start has been committed and whose end has not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceMarker>,
    /// Messages to other instances that are not yet delivered, in the order they were queued.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outbox: Vec<OutboxMessage>,
    /// Delivery ids of inbound messages already applied, oldest first. Kept to at most
    /// [`RECEIVED_CAPACITY`] by [`EffectState::record_received`]; the store does not check it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub received: Vec<String>,
    /// The earliest time (ms since the epoch) at which the host wants to act on this instance
    /// without being asked; `None` when nothing is pending. Every backend indexes it in the
    /// same atomic write as the row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wake_at_ms: Option<i64>,
    /// The instance that spawned this one as a persistent child, where its sends to
    /// `{"kind":"parent"}` go. Set once, when the child is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<InstanceKey>,
}

/// A durable delayed event. Its identity is `(id, seq)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimerRecord {
    /// XState's id of the delayed send (the `after` id, the user's id, or the event type).
    pub id: String,
    /// The instance version whose commit armed the timer (its generation).
    pub seq: u64,
    /// When the event is due, ms since the epoch.
    pub due_at_ms: i64,
    /// The event to deliver.
    pub event: Value,
    /// Where it goes: `None` for the instance itself, else an address such as
    /// `{"kind":"instance","machineName":…,"machineInstanceName":…}` or `{"kind":"parent"}`.
    /// `Some(Value::Null)` is read back as `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Value>,
    /// Failed delivery attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// When the next attempt is due after a failed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at_ms: Option<i64>,
}

impl TimerRecord {
    /// When the timer should next be delivered: its due time, or the next attempt after a
    /// failure, never before the due time.
    pub fn ready_at_ms(&self) -> i64 {
        self.next_attempt_at_ms
            .map_or(self.due_at_ms, |next| next.max(self.due_at_ms))
    }
}

/// Whether a committed service start is still believed to be running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    /// Committed as started; the service may be running on some node.
    Started,
    /// Stopped by the host (settle window closed, guest lost); an error event is owed.
    Interrupted,
}

/// The marker of an invoked service, written in the commit of the transition that starts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceMarker {
    /// The invocation id (XState's child id).
    pub id: String,
    /// The service's source name.
    pub src: String,
    /// The instance version whose commit started it.
    pub started_version: u64,
    pub state: ServiceState,
}

/// What an outbox message asks of its receiver.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutboxKind {
    /// Deliver [`OutboxMessage::event`] to the receiver.
    #[default]
    Send,
    /// Create the receiver (an instance address) with this context unless it exists, at
    /// `machine_version_id` or the machine's current version; `event` is not used. Creating is
    /// idempotent by name, so a retry cannot create it twice.
    SpawnInstance {
        context: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        machine_version_id: Option<String>,
    },
}

/// A message to another instance, kept until it is delivered or given up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// Unique among the sender's messages, e.g. `"<version>:<index>"`.
    pub id: String,
    /// The receiver's address (same shapes as [`TimerRecord::target`]).
    pub to: Value,
    pub event: Value,
    /// Failed delivery attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// When the next attempt is due after a failed one; `None` before the first attempt,
    /// which is due at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at_ms: Option<i64>,
    #[serde(default)]
    pub kind: OutboxKind,
}

impl OutboxMessage {
    /// When the message should next be attempted, given the current time.
    pub fn ready_at_ms(&self, now_ms: i64) -> i64 {
        self.next_attempt_at_ms.unwrap_or(now_ms)
    }

    /// The id the receiver records in [`EffectState::received`]: unique across senders
    /// because names never contain `/` or `#`.
    pub fn delivery_id(&self, sender: &InstanceKey) -> String {
        format!("{sender}#{}", self.id)
    }
}

impl EffectState {
    /// True when there is nothing to store.
    pub fn is_empty(&self) -> bool {
        *self == EffectState::default()
    }

    /// The earliest time any timer or outbox message is ready, `now_ms` for a message that has
    /// not been attempted yet. Services do not count: how long the host lets one run is its
    /// own decision, which it may fold into `wake_at_ms` itself.
    pub fn earliest_due_ms(&self, now_ms: i64) -> Option<i64> {
        let timers = self.timers.iter().map(TimerRecord::ready_at_ms);
        let outbox = self.outbox.iter().map(|m| m.ready_at_ms(now_ms));
        timers.chain(outbox).min()
    }

    /// Adds a timer. Timers with the same id may coexist, as in XState.
    pub fn arm_timer(&mut self, timer: TimerRecord) {
        self.timers.push(timer);
    }

    /// The timer `(id, seq)`; among several armed by one commit, the one due first.
    pub fn timer(&self, id: &str, seq: u64) -> Option<&TimerRecord> {
        self.timer_position(id, seq).map(|i| &self.timers[i])
    }

    /// Mutable access to [`Self::timer`], e.g. to record a failed attempt.
    pub fn timer_mut(&mut self, id: &str, seq: u64) -> Option<&mut TimerRecord> {
        self.timer_position(id, seq).map(|i| &mut self.timers[i])
    }

    /// Removes the timer `(id, seq)` (the one due first if a commit armed several) and
    /// returns it; `None` when it is gone, which a delivery treats as "already fired or
    /// cancelled".
    pub fn remove_timer(&mut self, id: &str, seq: u64) -> Option<TimerRecord> {
        self.timer_position(id, seq).map(|i| self.timers.remove(i))
    }

    /// XState's `cancel(id)`: removes only the newest timer with this id (highest `seq`;
    /// among equals, the last armed). Older timers with the same id keep running. Cancelling
    /// an id with no timer does nothing.
    pub fn cancel_timer(&mut self, id: &str) -> Option<TimerRecord> {
        let newest = self
            .timers
            .iter()
            .enumerate()
            .filter(|(_, t)| t.id == id)
            .max_by_key(|(i, t)| (t.seq, *i))
            .map(|(i, _)| i)?;
        Some(self.timers.remove(newest))
    }

    fn timer_position(&self, id: &str, seq: u64) -> Option<usize> {
        self.timers
            .iter()
            .enumerate()
            .filter(|(_, t)| t.id == id && t.seq == seq)
            .min_by_key(|(i, t)| (t.due_at_ms, *i))
            .map(|(i, _)| i)
    }

    /// Records a started service, replacing an older marker with the same id.
    pub fn start_service(&mut self, marker: ServiceMarker) {
        self.services.retain(|s| s.id != marker.id);
        self.services.push(marker);
    }

    pub fn service(&self, id: &str) -> Option<&ServiceMarker> {
        self.services.iter().find(|s| s.id == id)
    }

    /// Removes the marker of a service that finished (or whose error was delivered).
    pub fn remove_service(&mut self, id: &str) -> Option<ServiceMarker> {
        let i = self.services.iter().position(|s| s.id == id)?;
        Some(self.services.remove(i))
    }

    /// Marks every started service interrupted and returns how many changed.
    pub fn interrupt_services(&mut self) -> usize {
        let mut changed = 0;
        for s in &mut self.services {
            if s.state == ServiceState::Started {
                s.state = ServiceState::Interrupted;
                changed += 1;
            }
        }
        changed
    }

    /// Queues a message for delivery after the commit.
    pub fn queue(&mut self, message: OutboxMessage) {
        self.outbox.push(message);
    }

    pub fn outbox_message(&self, id: &str) -> Option<&OutboxMessage> {
        self.outbox.iter().find(|m| m.id == id)
    }

    pub fn outbox_message_mut(&mut self, id: &str) -> Option<&mut OutboxMessage> {
        self.outbox.iter_mut().find(|m| m.id == id)
    }

    /// Removes a delivered (or abandoned) message.
    pub fn remove_outbox(&mut self, id: &str) -> Option<OutboxMessage> {
        let i = self.outbox.iter().position(|m| m.id == id)?;
        Some(self.outbox.remove(i))
    }

    pub fn has_received(&self, delivery_id: &str) -> bool {
        self.received.iter().any(|r| r == delivery_id)
    }

    /// Remembers an inbound delivery id; `false` when it was already there (a duplicate,
    /// which the caller must not apply again). Keeps at most [`RECEIVED_CAPACITY`] ids,
    /// dropping the oldest.
    pub fn record_received(&mut self, delivery_id: &str) -> bool {
        if self.has_received(delivery_id) {
            return false;
        }
        self.received.push(delivery_id.to_owned());
        let excess = self.received.len().saturating_sub(RECEIVED_CAPACITY);
        self.received.drain(..excess);
        true
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ids::{InstanceName, MachineName};

    fn timer(id: &str, seq: u64, due_at_ms: i64) -> TimerRecord {
        TimerRecord {
            id: id.to_owned(),
            seq,
            due_at_ms,
            event: json!({ "type": id }),
            target: None,
            attempts: 0,
            next_attempt_at_ms: None,
        }
    }

    fn message(id: &str, next_attempt_at_ms: Option<i64>) -> OutboxMessage {
        OutboxMessage {
            id: id.to_owned(),
            to: json!({ "kind": "parent" }),
            event: json!({ "type": "HELLO" }),
            attempts: 0,
            next_attempt_at_ms,
            kind: OutboxKind::Send,
        }
    }

    #[test]
    fn empty_effects_encode_as_an_empty_object_and_missing_fields_default() {
        let empty = EffectState::default();
        assert!(empty.is_empty());
        assert_eq!(serde_json::to_string(&empty).unwrap(), "{}");
        let decoded: EffectState = serde_json::from_str(r#"{"wake_at_ms":5}"#).unwrap();
        assert_eq!(decoded.wake_at_ms, Some(5));
        assert!(decoded.timers.is_empty() && decoded.received.is_empty());
    }

    #[test]
    fn full_effects_round_trip_through_json() {
        let mut e = EffectState {
            wake_at_ms: Some(-3),
            ..EffectState::default()
        };
        let mut t = timer("after-1", 4, 1_000);
        t.target = Some(json!({ "kind": "parent" }));
        t.attempts = 2;
        t.next_attempt_at_ms = Some(1_500);
        e.arm_timer(t);
        e.start_service(ServiceMarker {
            id: "fetchUser".into(),
            src: "fetchUser".into(),
            started_version: 4,
            state: ServiceState::Interrupted,
        });
        let mut spawn = message("4:0", Some(9));
        spawn.kind = OutboxKind::SpawnInstance {
            context: json!({ "n": 1 }),
            machine_version_id: Some("ver_x".into()),
        };
        e.parent = Some(InstanceKey::new(
            MachineName::parse("parent").unwrap(),
            InstanceName::parse("p-1").unwrap(),
        ));
        e.queue(spawn);
        e.record_received("m/i#3:0");
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<EffectState>(&text).unwrap(), e);
        assert!(text.contains(r#""type":"spawn_instance""#), "{text}");
        assert!(text.contains(r#""state":"interrupted""#), "{text}");
    }

    #[test]
    fn a_timer_is_never_ready_before_it_is_due() {
        let mut t = timer("a", 1, 100);
        assert_eq!(t.ready_at_ms(), 100);
        t.next_attempt_at_ms = Some(130);
        assert_eq!(t.ready_at_ms(), 130);
        t.next_attempt_at_ms = Some(50);
        assert_eq!(t.ready_at_ms(), 100);
    }

    #[test]
    fn earliest_due_covers_timers_and_outbox() {
        let mut e = EffectState::default();
        assert_eq!(e.earliest_due_ms(10), None);
        e.arm_timer(timer("a", 1, 300));
        e.arm_timer(timer("b", 1, 200));
        assert_eq!(e.earliest_due_ms(10), Some(200));
        e.queue(message("1:0", Some(250)));
        assert_eq!(e.earliest_due_ms(10), Some(200));
        e.queue(message("1:1", None));
        assert_eq!(e.earliest_due_ms(10), Some(10), "unattempted: due now");
        e.start_service(ServiceMarker {
            id: "s".into(),
            src: "s".into(),
            started_version: 1,
            state: ServiceState::Started,
        });
        assert_eq!(e.earliest_due_ms(10), Some(10), "services do not count");
    }

    #[test]
    fn timers_are_found_and_removed_by_id_and_generation() {
        let mut e = EffectState::default();
        e.arm_timer(timer("t", 1, 100));
        e.arm_timer(timer("t", 2, 100));
        assert_eq!(e.timer("t", 2).unwrap().seq, 2);
        assert!(e.timer("t", 3).is_none());
        e.timer_mut("t", 1).unwrap().attempts = 1;
        assert_eq!(e.remove_timer("t", 1).unwrap().attempts, 1);
        assert!(
            e.remove_timer("t", 1).is_none(),
            "a second fire finds nothing"
        );
        assert_eq!(e.timers.len(), 1);
    }

    #[test]
    fn one_generation_with_two_timers_of_one_id_removes_the_one_due_first() {
        let mut e = EffectState::default();
        e.arm_timer(timer("t", 5, 200));
        e.arm_timer(timer("t", 5, 100));
        assert_eq!(e.remove_timer("t", 5).unwrap().due_at_ms, 100);
        assert_eq!(e.remove_timer("t", 5).unwrap().due_at_ms, 200);
    }

    #[test]
    fn cancel_removes_only_the_newest_timer_with_that_id() {
        let mut e = EffectState::default();
        e.arm_timer(timer("t", 3, 100));
        e.arm_timer(timer("t", 7, 500));
        e.arm_timer(timer("u", 9, 100));
        e.arm_timer(timer("t", 5, 300));
        assert_eq!(e.cancel_timer("t").unwrap().seq, 7);
        let left: Vec<u64> = e
            .timers
            .iter()
            .filter(|t| t.id == "t")
            .map(|t| t.seq)
            .collect();
        assert_eq!(left, [3, 5], "older timers with the id keep running");
        assert!(e.cancel_timer("nope").is_none());
        let mut same = EffectState::default();
        same.arm_timer(timer("t", 2, 100));
        same.arm_timer(timer("t", 2, 900));
        assert_eq!(same.cancel_timer("t").unwrap().due_at_ms, 900, "last armed");
    }

    #[test]
    fn received_ids_are_deduplicated_and_bounded_oldest_first() {
        let mut e = EffectState::default();
        assert!(e.record_received("m/a#1:0"));
        assert!(!e.record_received("m/a#1:0"), "a duplicate is refused");
        for i in 0..RECEIVED_CAPACITY {
            assert!(e.record_received(&format!("m/b#{i}:0")));
        }
        assert_eq!(e.received.len(), RECEIVED_CAPACITY);
        assert!(!e.has_received("m/a#1:0"), "the oldest id was dropped");
        assert!(e.has_received("m/b#0:0"));
        assert!(
            e.record_received("m/a#1:0"),
            "forgotten ids are accepted again"
        );
        assert!(!e.has_received("m/b#0:0"));
    }

    #[test]
    fn services_start_interrupt_and_finish() {
        let mut e = EffectState::default();
        let marker = |id: &str, v| ServiceMarker {
            id: id.into(),
            src: "load".into(),
            started_version: v,
            state: ServiceState::Started,
        };
        e.start_service(marker("a", 1));
        e.start_service(marker("b", 1));
        e.start_service(marker("a", 3));
        assert_eq!(e.services.len(), 2, "a restarted service keeps one marker");
        assert_eq!(e.service("a").unwrap().started_version, 3);
        assert_eq!(e.interrupt_services(), 2);
        assert_eq!(e.interrupt_services(), 0);
        assert_eq!(
            e.remove_service("b").unwrap().state,
            ServiceState::Interrupted
        );
        assert!(e.remove_service("b").is_none());
    }

    #[test]
    fn outbox_messages_are_found_updated_and_removed_by_id() {
        let mut e = EffectState::default();
        e.queue(message("2:0", None));
        e.queue(message("2:1", None));
        e.outbox_message_mut("2:1").unwrap().attempts = 3;
        assert_eq!(e.outbox_message("2:1").unwrap().attempts, 3);
        assert_eq!(e.remove_outbox("2:0").unwrap().id, "2:0");
        assert!(e.outbox_message("2:0").is_none());
        let sender = InstanceKey::new(
            MachineName::parse("parent").unwrap(),
            InstanceName::parse("p-1").unwrap(),
        );
        assert_eq!(e.outbox[0].delivery_id(&sender), "parent/p-1#2:1");
    }
}
