//! Layered configuration: defaults, then a TOML file, then `STATEWIRE_*` env, then flags.
