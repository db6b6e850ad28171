//! Label values that come from users, kept to a bounded set.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use ::metrics::SharedString;
use parking_lot::RwLock;

use crate::ids::MachineName;

/// Distinct machines that get a label value of their own, per process. Not configurable yet:
/// at about 60 series per machine (outcomes × histogram buckets) this caps machine-labelled
/// series near 6,000, which one Prometheus scrape handles easily.
pub const MACHINE_LABELS_MAX: usize = 100;

/// The label value of every machine past the first [`MACHINE_LABELS_MAX`]. The parentheses
/// make it impossible as a machine name, so it never collides with a real one.
pub const OTHER_MACHINES: &str = "(other)";

/// The `machine` label value for `name`: the name itself for the first
/// [`MACHINE_LABELS_MAX`] distinct machines this process has labelled, then
/// [`OTHER_MACHINES`]. A machine keeps its value for the life of the process, even if it is
/// deleted, so series never change meaning.
pub fn machine(name: &MachineName) -> SharedString {
    static LABELS: LazyLock<MachineLabels> =
        LazyLock::new(|| MachineLabels::new(MACHINE_LABELS_MAX));
    LABELS.label(name.as_str())
}

/// First come, first labelled: a set of at most `capacity` names with their label values.
pub struct MachineLabels {
    capacity: usize,
    known: RwLock<HashMap<Box<str>, SharedString>>,
}

impl MachineLabels {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            known: RwLock::new(HashMap::new()),
        }
    }

    /// The label of `name`. Known names take a shared lock only.
    pub fn label(&self, name: &str) -> SharedString {
        if let Some(label) = self.known.read().get(name) {
            return label.clone();
        }
        let mut known = self.known.write();
        if let Some(label) = known.get(name) {
            return label.clone();
        }
        if known.len() >= self.capacity {
            return SharedString::const_str(OTHER_MACHINES);
        }
        let label = SharedString::from(Arc::<str>::from(name));
        known.insert(name.into(), label.clone());
        label
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machines_past_the_cap_share_one_label() {
        let labels = MachineLabels::new(2);
        assert_eq!(&*labels.label("a"), "a");
        assert_eq!(&*labels.label("b"), "b");
        assert_eq!(&*labels.label("c"), OTHER_MACHINES);
        assert_eq!(&*labels.label("d"), OTHER_MACHINES);
    }

    #[test]
    fn a_labelled_machine_keeps_its_label_after_the_cap_is_reached() {
        let labels = MachineLabels::new(1);
        assert_eq!(&*labels.label("a"), "a");
        assert_eq!(&*labels.label("z"), OTHER_MACHINES);
        assert_eq!(&*labels.label("a"), "a");
    }

    #[test]
    fn the_overflow_label_is_not_a_possible_machine_name() {
        assert!(MachineName::parse(OTHER_MACHINES).is_err());
    }
}
