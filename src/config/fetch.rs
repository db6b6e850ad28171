//! `[effects.fetch]`: how machines' `fetch` calls reach the network.
//!
//! ```toml
//! [effects.fetch]
//! allow = ["127.0.0.1:8080", "10.1.0.0/16", "api.internal"]
//! timeout_ms = 30000
//! max_response_bytes = 1048576
//! max_request_bytes = 1048576
//! max_redirects = 5
//! ```
//!
//! Environment: `STATEWIRE_FETCH_ALLOW` (comma-separated), `STATEWIRE_FETCH_TIMEOUT_MS`,
//! `STATEWIRE_FETCH_MAX_RESPONSE_BYTES`, `STATEWIRE_FETCH_MAX_REQUEST_BYTES`,
//! `STATEWIRE_FETCH_MAX_REDIRECTS`.

use serde::{Deserialize, Serialize};

use crate::effects::AddressPolicy;

/// Redirects beyond this are refused as a setting: browsers stop at 20.
pub const MAX_REDIRECTS_LIMIT: u32 = 20;

/// Limits and the address policy of `fetch` from machine code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchConfig {
    /// Addresses (`127.0.0.1`, `[::1]:8080`), CIDR blocks (`10.0.0.0/8`) and host names
    /// (`localhost`, `api.internal:8443`) that may be reached although they are loopback,
    /// private, link-local or otherwise restricted. Public addresses need no entry.
    pub allow: Vec<String>,
    /// Deadline of one `fetch`, every redirect and the whole response body included.
    pub timeout_ms: u64,
    /// Largest response body; a larger one fails the `fetch`.
    pub max_response_bytes: u64,
    /// Largest request body a machine may send.
    pub max_request_bytes: u64,
    /// Redirects followed before the `fetch` fails.
    pub max_redirects: u32,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            timeout_ms: 30_000,
            max_response_bytes: 1024 * 1024,
            max_request_bytes: 1024 * 1024,
            max_redirects: 5,
        }
    }
}

/// The environment variables [`FetchConfig::apply_var`] reads.
pub const FETCH_ENV_VARS: &[&str] = &[
    "STATEWIRE_FETCH_ALLOW",
    "STATEWIRE_FETCH_TIMEOUT_MS",
    "STATEWIRE_FETCH_MAX_RESPONSE_BYTES",
    "STATEWIRE_FETCH_MAX_REQUEST_BYTES",
    "STATEWIRE_FETCH_MAX_REDIRECTS",
];

impl FetchConfig {
    /// Applies one variable of [`FETCH_ENV_VARS`]; `Ok(false)` for any other name, `Err`
    /// with the reason for a bad value.
    pub fn apply_var(&mut self, var: &str, value: &str) -> Result<bool, String> {
        match var {
            "STATEWIRE_FETCH_ALLOW" => {
                self.allow = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "STATEWIRE_FETCH_TIMEOUT_MS" => self.timeout_ms = super::parse_num(value)?,
            "STATEWIRE_FETCH_MAX_RESPONSE_BYTES" => {
                self.max_response_bytes = super::parse_num(value)?
            }
            "STATEWIRE_FETCH_MAX_REQUEST_BYTES" => {
                self.max_request_bytes = super::parse_num(value)?
            }
            "STATEWIRE_FETCH_MAX_REDIRECTS" => self.max_redirects = super::parse_num(value)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Refuses settings `fetch` cannot work with; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if let Err(e) = AddressPolicy::new(&self.allow) {
            return Err(format!("effects.fetch.allow: {e}"));
        }
        if self.timeout_ms == 0 {
            return Err("effects.fetch.timeout_ms must be positive".to_owned());
        }
        if self.max_response_bytes == 0 {
            return Err("effects.fetch.max_response_bytes must be positive".to_owned());
        }
        if self.max_redirects > MAX_REDIRECTS_LIMIT {
            return Err(format!(
                "effects.fetch.max_redirects must be at most {MAX_REDIRECTS_LIMIT}"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::{Config, ConfigError, Overrides};
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_allow_no_restricted_address_and_bound_every_request() {
        let c = Config::load(None, env(&[]), &Overrides::default()).unwrap();
        let f = &c.effects.fetch;
        assert!(f.allow.is_empty());
        assert_eq!(f.timeout_ms, 30_000);
        assert_eq!(f.max_response_bytes, 1_048_576);
        assert_eq!(f.max_redirects, 5);
    }

    #[test]
    fn a_file_section_sets_the_fetch_policy() {
        let dir = tempfile::tempdir().unwrap();
        let path: PathBuf = dir.path().join("statewire.toml");
        std::fs::write(
            &path,
            "[effects.fetch]\nallow = [\"127.0.0.1\", \"10.0.0.0/8\"]\ntimeout_ms = 250\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), env(&[]), &Overrides::default()).unwrap();
        assert_eq!(c.effects.fetch.allow, ["127.0.0.1", "10.0.0.0/8"]);
        assert_eq!(c.effects.fetch.timeout_ms, 250);
        assert_eq!(c.effects.fetch.max_redirects, 5);
    }

    #[test]
    fn every_fetch_variable_is_understood() {
        for var in FETCH_ENV_VARS {
            let sample = if *var == "STATEWIRE_FETCH_ALLOW" {
                "localhost, 127.0.0.1:80"
            } else {
                "3"
            };
            let c = Config::load(None, env(&[(var, sample)]), &Overrides::default()).unwrap();
            assert_ne!(c.effects.fetch, FetchConfig::default(), "{var}");
        }
        let c = Config::load(
            None,
            env(&[("STATEWIRE_FETCH_ALLOW", "localhost, 127.0.0.1:80")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.effects.fetch.allow, ["localhost", "127.0.0.1:80"]);
    }

    #[test]
    fn bad_fetch_settings_are_refused_naming_the_key() {
        let bad = |pairs: &[(&str, &str)]| {
            Config::load(None, env(pairs), &Overrides::default())
                .unwrap_err()
                .to_string()
        };
        assert!(bad(&[("STATEWIRE_FETCH_ALLOW", "10.0.0.0/99")]).contains("effects.fetch.allow"));
        assert!(bad(&[("STATEWIRE_FETCH_TIMEOUT_MS", "0")]).contains("timeout_ms"));
        assert!(bad(&[("STATEWIRE_FETCH_MAX_REDIRECTS", "50")]).contains("max_redirects"));
        let err = Config::load(
            None,
            env(&[("STATEWIRE_FETCH_TIMEOUT_MS", "soon")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::Env { .. }), "{err}");
    }
}
