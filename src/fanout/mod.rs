//! Subscriber sets per instance; each committed change is serialized once and shared.
