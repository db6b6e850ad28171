//! The in-memory schedule: which instances to wake, and when. Pure bookkeeping; the worker
//! owns the clock and the tasks.

use std::collections::{BTreeSet, HashMap};

use crate::ids::InstanceKey;

/// One wake-up time per instance, ordered by time, plus the instances whose delivery task
/// is running now.
#[derive(Debug, Default)]
pub(super) struct Schedule {
    by_time: BTreeSet<(i64, InstanceKey)>,
    by_key: HashMap<InstanceKey, i64>,
    /// Instances being delivered; `true` when they came due again meanwhile.
    running: HashMap<InstanceKey, bool>,
}

impl Schedule {
    /// Sets the instance's wake-up time to `at` (`None` forgets it), as the latest commit says.
    pub fn set(&mut self, key: &InstanceKey, at: Option<i64>) {
        if let Some(old) = self.by_key.remove(key) {
            self.by_time.remove(&(old, key.clone()));
        }
        if let Some(at) = at {
            self.by_key.insert(key.clone(), at);
            self.by_time.insert((at, key.clone()));
        }
    }

    /// Wakes the instance at `at` unless it is already to be woken earlier. For hints that may
    /// be stale (an index scan, the result of a delivery that raced a commit): an extra
    /// wake-up costs one read, a missed one a late timer.
    pub fn arm_earlier(&mut self, key: &InstanceKey, at: i64) {
        match self.by_key.get(key) {
            Some(&old) if old <= at => {}
            _ => self.set(key, Some(at)),
        }
    }

    /// The earliest wake-up time.
    pub fn next_wake(&self) -> Option<i64> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Removes and returns the instances due at `now_ms` that are not being delivered
    /// already, and marks them running. Those already running are flagged to go again.
    pub fn take_due(&mut self, now_ms: i64) -> Vec<InstanceKey> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.by_time.first() {
            if *at > now_ms {
                break;
            }
            let Some((_, key)) = self.by_time.pop_first() else {
                break;
            };
            self.by_key.remove(&key);
            match self.running.get_mut(&key) {
                Some(again) => *again = true,
                None => {
                    self.running.insert(key.clone(), false);
                    due.push(key);
                }
            }
        }
        due
    }

    /// Called when a delivery task for `key` is done with a pass: `true` when the instance
    /// came due again during the pass (the task makes another); otherwise the task is over
    /// and the instance is woken again at `next` (or at what a later commit says).
    pub fn finish_pass(&mut self, key: &InstanceKey, next: Option<i64>) -> bool {
        match self.running.get_mut(key) {
            Some(again) if *again => {
                *again = false;
                true
            }
            _ => {
                self.running.remove(key);
                if let Some(at) = next {
                    self.arm_earlier(key, at);
                }
                false
            }
        }
    }

    /// Instances with a wake-up time.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{InstanceName, MachineName};

    fn key(name: &str) -> InstanceKey {
        InstanceKey::new(
            MachineName::parse("m").unwrap(),
            InstanceName::parse(name).unwrap(),
        )
    }

    #[test]
    fn instances_come_due_in_time_order_and_never_before_their_time() {
        let mut s = Schedule::default();
        s.set(&key("b"), Some(200));
        s.set(&key("a"), Some(100));
        s.set(&key("c"), Some(300));
        assert_eq!(s.next_wake(), Some(100));
        assert!(s.take_due(99).is_empty());
        assert_eq!(s.take_due(200), [key("a"), key("b")]);
        assert_eq!(s.next_wake(), Some(300));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn the_latest_commit_replaces_the_wake_time_and_none_forgets_it() {
        let mut s = Schedule::default();
        s.set(&key("a"), Some(100));
        s.set(&key("a"), Some(500));
        assert_eq!(s.next_wake(), Some(500));
        s.set(&key("a"), None);
        assert_eq!(s.next_wake(), None);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn hints_only_move_a_wake_time_earlier() {
        let mut s = Schedule::default();
        s.arm_earlier(&key("a"), 300);
        s.arm_earlier(&key("a"), 400);
        assert_eq!(s.next_wake(), Some(300));
        s.arm_earlier(&key("a"), 100);
        assert_eq!(s.next_wake(), Some(100));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn an_instance_due_while_running_goes_again_instead_of_twice() {
        let mut s = Schedule::default();
        s.set(&key("a"), Some(10));
        assert_eq!(s.take_due(10), [key("a")]);
        s.set(&key("a"), Some(20));
        assert!(s.take_due(20).is_empty(), "not a second task");
        assert!(
            s.finish_pass(&key("a"), Some(500)),
            "the running task goes again"
        );
        assert!(!s.finish_pass(&key("a"), Some(500)));
        assert_eq!(s.next_wake(), Some(500));
        assert_eq!(s.take_due(500), [key("a")], "no longer running");
    }

    #[test]
    fn a_finished_pass_keeps_an_earlier_time_set_by_a_commit_meanwhile() {
        let mut s = Schedule::default();
        s.set(&key("a"), Some(10));
        s.take_due(10);
        s.set(&key("a"), Some(40));
        assert!(!s.finish_pass(&key("a"), Some(90)));
        assert_eq!(s.next_wake(), Some(40));
        s.take_due(40);
        assert!(!s.finish_pass(&key("a"), None));
        assert_eq!(s.next_wake(), None);
    }
}
