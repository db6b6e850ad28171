//! Newtypes for every name and id that crosses a module boundary.
//!
//! Names chosen by users (machines, instances, indexes) follow the State Backed pattern
//! `^[a-zA-Z0-9_-]{1,128}$`. Ids minted by the server are a prefix, `_`, and the 16 bytes of a
//! random UUID in unpadded base64url (22 characters), e.g. `ver_…`, `sbk_…`.

use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Why a name or id was refused; `field` names the offending parameter for the 400 body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} must match ^[a-zA-Z0-9_-]{{1,128}}$")]
pub struct InvalidName {
    pub field: &'static str,
}

/// True when `s` is 1–128 characters of `[a-zA-Z0-9_-]`.
pub fn is_valid_name(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

macro_rules! user_name {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks the State Backed name pattern.
            pub fn parse(s: impl Into<String>) -> Result<Self, InvalidName> {
                let s = s.into();
                if is_valid_name(&s) {
                    Ok(Self(s))
                } else {
                    Err(InvalidName { field: $field })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidName;
            fn try_from(s: String) -> Result<Self, InvalidName> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

user_name!(
    /// A machine's slug, chosen by its author.
    MachineName,
    "machineName"
);
user_name!(
    /// An instance's slug, chosen by the caller that creates it.
    InstanceName,
    "machineInstanceName"
);
user_name!(
    /// The name of a per-machine index.
    IndexName,
    "indexName"
);

macro_rules! minted_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh random id with this type's prefix.
            pub fn generate() -> Self {
                Self(pretty_id($prefix, uuid::Uuid::new_v4()))
            }

            /// Accepts any string with the right prefix and a non-empty url-safe tail.
            pub fn parse(s: &str) -> Option<Self> {
                let tail = s.strip_prefix($prefix)?.strip_prefix('_')?;
                let ok = !tail.is_empty()
                    && tail.len() <= 64
                    && tail
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                ok.then(|| Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

minted_id!(
    /// A finalized machine version, `ver_…`.
    MachineVersionId,
    "ver"
);
minted_id!(
    /// A signing key, `sbk_…`.
    KeyId,
    "sbk"
);
minted_id!(
    /// The organization this server acts as, `org_…`.
    OrgId,
    "org"
);

/// `prefix_` + base64url (no padding) of the UUID's 16 bytes.
pub fn pretty_id(prefix: &str, id: uuid::Uuid) -> String {
    let tail = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes());
    format!("{prefix}_{tail}")
}

/// One instance: the machine it runs and its own name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InstanceKey {
    pub machine: MachineName,
    pub instance: InstanceName,
}

impl InstanceKey {
    pub fn new(machine: MachineName, instance: InstanceName) -> Self {
        Self { machine, instance }
    }
}

impl fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.machine, self.instance)
    }
}

/// A WebSocket connection, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_state_backed_pattern() {
        assert!(MachineName::parse("toggle_1-a").is_ok());
        assert!(MachineName::parse("").is_err());
        assert!(MachineName::parse("a".repeat(128)).is_ok());
        assert!(MachineName::parse("a".repeat(129)).is_err());
        assert!(InstanceName::parse("user 1").is_err());
        assert!(InstanceName::parse("ü").is_err());
    }

    #[test]
    fn minted_ids_have_prefix_and_22_char_tail() {
        let id = MachineVersionId::generate();
        let tail = id.as_str().strip_prefix("ver_").unwrap();
        assert_eq!(tail.len(), 22);
        assert_eq!(MachineVersionId::parse(id.as_str()), Some(id));
        assert!(KeyId::parse("ver_abc").is_none());
        assert!(KeyId::parse("sbk_").is_none());
    }
}
