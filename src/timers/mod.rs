//! Durable delayed events (`after`, delayed sends), re-armed on restart.
