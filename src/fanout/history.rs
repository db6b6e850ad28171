//! A bounded per-instance buffer of recent patch frames, for subscribers that resume from a
//! sequence they already hold or that fell behind.

use std::collections::VecDeque;

use super::update::{Base, Frame, Update};

/// Most patches kept per instance.
pub const MAX_ENTRIES: usize = 64;
/// Most patch bytes kept per instance; the oldest patches go first.
pub const MAX_BYTES: usize = 256 * 1024;

#[derive(Debug)]
struct Entry {
    seq: u64,
    base: Base,
    patch: Frame,
}

/// Patches in publication order. Consecutive entries usually chain (each one's base is the
/// previous one's sequence); a seeded update without a patch breaks the chain, and catch-up
/// never crosses a break.
#[derive(Debug, Default)]
pub struct History {
    entries: VecDeque<Entry>,
    bytes: usize,
}

impl History {
    /// Records `update`'s patch, if it has one, evicting the oldest beyond the bounds.
    pub fn push(&mut self, update: &Update) {
        let (Some(base), Some(patch)) = (update.base, update.patch.clone()) else {
            return;
        };
        self.bytes += patch.len();
        self.entries.push_back(Entry {
            seq: update.seq,
            base,
            patch,
        });
        while self.entries.len() > MAX_ENTRIES || (self.bytes > MAX_BYTES && self.entries.len() > 1)
        {
            if let Some(old) = self.entries.pop_front() {
                self.bytes -= old.patch.len();
            }
        }
    }

    /// The patch frames that take a client from `from` to sequence `to`, in order, if the
    /// buffer still holds an unbroken chain and it is smaller than `budget_bytes` (the size
    /// of the full frame that would replace it).
    pub fn chain(&self, from: &Base, to: u64, budget_bytes: usize) -> Option<Vec<Frame>> {
        let start = self.entries.iter().position(|e| e.base.same_as(from))?;
        let mut frames = Vec::new();
        let mut bytes = 0;
        let mut at = from.seq;
        for entry in self.entries.iter().skip(start) {
            if entry.base.seq != at {
                return None;
            }
            bytes += entry.patch.len();
            if bytes >= budget_bytes {
                return None;
            }
            frames.push(entry.patch.clone());
            at = entry.seq;
            if at == to {
                return Some(frames);
            }
        }
        None
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(seq: u64, base: Option<u64>, patch_len: usize) -> Update {
        Update {
            seq,
            ts_ms: seq as i64 * 10,
            base: base.map(|b| Base {
                seq: b,
                ts_ms: Some(b as i64 * 10),
            }),
            full: Frame::from("f".repeat(1000)),
            patch: base.map(|_| Frame::from("p".repeat(patch_len))),
        }
    }

    fn from(seq: u64) -> Base {
        Base {
            seq,
            ts_ms: Some(seq as i64 * 10),
        }
    }

    #[test]
    fn a_chain_runs_from_the_given_base_to_the_target() {
        let mut h = History::default();
        for seq in 2..=5 {
            h.push(&update(seq, Some(seq - 1), 10));
        }
        assert_eq!(h.chain(&from(2), 5, 1000).unwrap().len(), 3);
        assert_eq!(h.chain(&from(1), 3, 1000).unwrap().len(), 2);
        assert!(
            h.chain(&from(0), 5, 1000).is_none(),
            "older than the buffer"
        );
        assert!(
            h.chain(&from(5), 6, 1000).is_none(),
            "newer than the buffer"
        );
    }

    #[test]
    fn a_chain_dearer_than_the_full_frame_is_refused() {
        let mut h = History::default();
        for seq in 2..=5 {
            h.push(&update(seq, Some(seq - 1), 300));
        }
        assert!(h.chain(&from(1), 5, 1000).is_none());
        assert!(h.chain(&from(3), 5, 1000).is_some());
    }

    #[test]
    fn chains_do_not_cross_a_seeded_update() {
        let mut h = History::default();
        h.push(&update(2, Some(1), 10));
        h.push(&update(3, None, 0));
        h.push(&update(5, Some(4), 10));
        assert!(h.chain(&from(1), 5, 1000).is_none());
        assert_eq!(h.chain(&from(4), 5, 1000).unwrap().len(), 1);
    }

    #[test]
    fn a_different_incarnation_with_the_same_sequence_does_not_match() {
        let mut h = History::default();
        h.push(&update(2, Some(1), 10));
        let other = Base {
            seq: 1,
            ts_ms: Some(999),
        };
        assert!(h.chain(&other, 2, 1000).is_none());
        let unknown_ts = Base {
            seq: 1,
            ts_ms: None,
        };
        assert!(h.chain(&unknown_ts, 2, 1000).is_some());
    }

    #[test]
    fn the_buffer_is_bounded_by_count_and_bytes() {
        let mut h = History::default();
        for seq in 1..=(MAX_ENTRIES as u64 * 2) {
            h.push(&update(seq, Some(seq - 1), 10));
        }
        assert_eq!(h.len(), MAX_ENTRIES);
        let mut h = History::default();
        for seq in 1..=10 {
            h.push(&update(seq, Some(seq - 1), MAX_BYTES / 3));
        }
        assert!(h.bytes() <= MAX_BYTES);
        assert_eq!(h.len(), 3);
    }
}
