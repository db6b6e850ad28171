//! Hot instances: a sharded map, one cold load per instance, one event at a time per instance.
