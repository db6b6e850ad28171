//! Key scopes, the `use` presets, and the one table of which scope each route needs.
//!
//! Scope names are the State Backed `KeyScope` values plus `indexes.read`, which the index query
//! needs and `smply` offers although the published enum lacks it. The table in [`scopes_for`]
//! is the single source of truth for the HTTP and WebSocket layers: a caller is let through
//! when its key holds at least one of the listed scopes.

use std::collections::BTreeSet;

use crate::error::ApiError;

pub const EVENTS_WRITE: &str = "events.write";
pub const EVENTS_READ: &str = "events.read";
pub const STATE_READ: &str = "state.read";
pub const INSTANCES_READ: &str = "instances.read";
pub const INSTANCES_WRITE: &str = "instances.write";
pub const INSTANCES_ADMIN: &str = "instances.admin";
pub const INDEXES_READ: &str = "indexes.read";
pub const MACHINES_READ: &str = "machines.read";
pub const MACHINES_WRITE: &str = "machines.write";
pub const MACHINES_ADMIN: &str = "machines.admin";
pub const MACHINE_VERSIONS_READ: &str = "machine-versions.read";
pub const MACHINE_VERSIONS_WRITE: &str = "machine-versions.write";
pub const ANALYTICS_READ: &str = "analytics.read";
pub const ORG_READ: &str = "org.read";
pub const ORG_WRITE: &str = "org.write";
pub const ORG_KEYS_WRITE: &str = "org.keys.write";
pub const ORG_MEMBERS_WRITE: &str = "org-members.write";
pub const LOGS_READ: &str = "logs.read";
pub const TOKENS_ADMIN: &str = "tokens.admin";

/// Every scope a key may hold, in the order listings show them.
pub const ALL_SCOPES: &[&str] = &[
    EVENTS_WRITE,
    EVENTS_READ,
    STATE_READ,
    INSTANCES_READ,
    INSTANCES_WRITE,
    INSTANCES_ADMIN,
    INDEXES_READ,
    MACHINES_READ,
    MACHINES_WRITE,
    MACHINES_ADMIN,
    MACHINE_VERSIONS_READ,
    MACHINE_VERSIONS_WRITE,
    ANALYTICS_READ,
    ORG_READ,
    ORG_WRITE,
    ORG_KEYS_WRITE,
    ORG_MEMBERS_WRITE,
    LOGS_READ,
    TOKENS_ADMIN,
];

/// The scope that makes a key an admin key: it may create keys, and only its tokens may act as
/// another user through `x-statebacked-act` (the client documents act-as as needing "an admin
/// token with enough permission to create keys").
pub const ADMIN_SCOPE: &str = ORG_KEYS_WRITE;

/// `use: "production"`: what a backend that signs end-user tokens needs.
pub const PRODUCTION_SCOPES: &[&str] = &[EVENTS_WRITE, STATE_READ, INSTANCES_WRITE, INDEXES_READ];

/// `use: "ci"`: what a pipeline that publishes machine versions needs.
pub const CI_SCOPES: &[&str] = &[
    MACHINES_READ,
    MACHINES_WRITE,
    MACHINE_VERSIONS_READ,
    MACHINE_VERSIONS_WRITE,
];

/// The canonical spelling of `scope`, if it is one. The docs' spelling `org-keys.write` is
/// taken as `org.keys.write`.
pub fn canonical_scope(scope: &str) -> Option<&'static str> {
    if scope == "org-keys.write" {
        return Some(ORG_KEYS_WRITE);
    }
    ALL_SCOPES.iter().copied().find(|s| *s == scope)
}

/// The scopes of a `use` preset, if `name` is one.
pub fn preset(name: &str) -> Option<&'static [&'static str]> {
    match name {
        "production" => Some(PRODUCTION_SCOPES),
        "ci" => Some(CI_SCOPES),
        _ => None,
    }
}

/// The scopes a new key gets: the union of `scopes` and the `use` preset, in [`ALL_SCOPES`]
/// order without duplicates. At least one of the two must be given and the result must not be
/// empty; an unknown scope or preset is refused naming its parameter.
pub fn resolve(
    scopes: Option<&[String]>,
    use_preset: Option<&str>,
) -> Result<Vec<String>, ApiError> {
    let mut chosen = BTreeSet::new();
    if let Some(name) = use_preset {
        let preset = preset(name).ok_or_else(|| {
            ApiError::invalid(
                "use",
                format!("use must be \"production\" or \"ci\", not {name:?}"),
            )
        })?;
        chosen.extend(preset.iter().copied());
    }
    for scope in scopes.unwrap_or_default() {
        let canonical = canonical_scope(scope)
            .ok_or_else(|| ApiError::invalid("scopes", format!("unknown scope {scope:?}")))?;
        chosen.insert(canonical);
    }
    if chosen.is_empty() {
        return Err(ApiError::invalid(
            "scopes",
            "a key needs at least one scope: send scopes or use",
        ));
    }
    Ok(ALL_SCOPES
        .iter()
        .filter(|s| chosen.contains(*s))
        .map(|s| (*s).to_owned())
        .collect())
}

/// Every route or WebSocket command that needs a bearer token. `POST /tokens` (token exchange)
/// and the code upload (authorized by its signed upload fields) take none and are not listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `GET /machines`
    ListMachines,
    /// `POST /machines`
    CreateMachine,
    /// `GET /machines/{m}`
    GetMachine,
    /// `DELETE /machines/{m}`
    DeleteMachine,
    /// `GET /machines/{m}/v`
    ListMachineVersions,
    /// `POST /machines/{m}/v` (provisional version)
    CreateMachineVersion,
    /// `PUT /machines/{m}/v/{signedId}`
    FinalizeMachineVersion,
    /// `POST /machines/{m}/migrations`
    CreateMigration,
    /// `PUT /machines/{m}/migrations/{signedId}`
    FinalizeMigration,
    /// `POST /machines/{m}`, or the WebSocket `create-instance` command.
    CreateInstance,
    /// `GET /machines/{m}/i`
    ListInstances,
    /// `GET /machines/{m}/i/{i}`, the WebSocket `get-instance` command and
    /// `subscribe-to-instance`.
    GetInstanceState,
    /// `POST /machines/{m}/i/{i}/events`, or the WebSocket `send-event` command.
    SendEvent,
    /// `GET /machines/{m}/i/{i}/events`
    ListTransitions,
    /// `GET /machines/{m}/i/{i}/admin`
    GetInstanceAdmin,
    /// `PUT /machines/{m}/i/{i}/v`
    SetDesiredVersion,
    /// `PUT /machines/{m}/i/{i}/status`
    SetInstanceStatus,
    /// `DELETE /machines/{m}/i/{i}`
    DeleteInstance,
    /// `GET /machines/{m}/indexes/{index}/query`
    QueryIndex,
    /// `GET /logs`
    GetLogs,
    /// `GET /idps`, `POST /idps`, `DELETE /idps`
    ManageIdentityProviders,
    /// `GET /token-providers`, `POST /token-providers`, `DELETE /token-providers/{service}`
    ManageTokenProviders,
    /// `GET /keys`
    ListKeys,
    /// `POST /keys`
    CreateKey,
    /// `DELETE /keys/{keyId}`
    DeleteKey,
    /// `GET /orgs`
    ListOrgs,
    /// `POST /orgs`; the spec lists no scope, this server asks for `org.write`.
    CreateOrg,
    /// `GET /billing`
    GetBilling,
}

/// The scopes that let a caller use `route`; holding any one of them is enough.
///
/// Sending an event accepts `instances.write` (the spec) or `events.write` (the docs); the
/// production preset carries both, so either kind of key keeps working.
pub fn scopes_for(route: Route) -> &'static [&'static str] {
    use Route as R;
    match route {
        R::ListMachines | R::GetMachine => &[MACHINES_READ],
        R::CreateMachine => &[MACHINES_WRITE],
        R::DeleteMachine => &[MACHINES_ADMIN],
        R::ListMachineVersions => &[MACHINE_VERSIONS_READ],
        R::CreateMachineVersion
        | R::FinalizeMachineVersion
        | R::CreateMigration
        | R::FinalizeMigration => &[MACHINE_VERSIONS_WRITE],
        R::CreateInstance | R::SetDesiredVersion => &[INSTANCES_WRITE],
        R::ListInstances => &[INSTANCES_READ],
        R::GetInstanceState => &[STATE_READ],
        R::SendEvent => &[INSTANCES_WRITE, EVENTS_WRITE],
        R::ListTransitions | R::GetInstanceAdmin | R::SetInstanceStatus | R::DeleteInstance => {
            &[INSTANCES_ADMIN]
        }
        R::QueryIndex => &[INDEXES_READ],
        R::GetLogs => &[LOGS_READ],
        R::ManageIdentityProviders | R::ManageTokenProviders | R::ListKeys => &[TOKENS_ADMIN],
        R::CreateKey | R::DeleteKey => &[ORG_KEYS_WRITE],
        R::ListOrgs => &[ORG_READ],
        R::CreateOrg | R::GetBilling => &[ORG_WRITE],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn production_preset_matches_the_docs() {
        let got = resolve(None, Some("production")).unwrap();
        assert_eq!(
            got,
            strings(&[EVENTS_WRITE, STATE_READ, INSTANCES_WRITE, INDEXES_READ])
        );
    }

    #[test]
    fn ci_preset_matches_the_docs() {
        let got = resolve(None, Some("ci")).unwrap();
        assert_eq!(
            got,
            strings(&[
                MACHINES_READ,
                MACHINES_WRITE,
                MACHINE_VERSIONS_READ,
                MACHINE_VERSIONS_WRITE
            ])
        );
    }

    #[test]
    fn use_and_scopes_together_give_their_union_without_duplicates() {
        let scopes = strings(&[STATE_READ, LOGS_READ, LOGS_READ]);
        let got = resolve(Some(&scopes), Some("production")).unwrap();
        assert_eq!(
            got,
            strings(&[
                EVENTS_WRITE,
                STATE_READ,
                INSTANCES_WRITE,
                INDEXES_READ,
                LOGS_READ
            ])
        );
    }

    #[test]
    fn unknown_scope_is_refused_naming_scopes() {
        let scopes = strings(&["instances.delete"]);
        let err = resolve(Some(&scopes), None).unwrap_err();
        assert_eq!(err.parameter(), Some("scopes"));
        assert!(err.to_string().contains("instances.delete"), "{err}");
    }

    #[test]
    fn unknown_use_is_refused_naming_use() {
        let err = resolve(None, Some("staging")).unwrap_err();
        assert_eq!(err.parameter(), Some("use"));
    }

    #[test]
    fn a_key_without_any_scope_is_refused() {
        assert_eq!(resolve(None, None).unwrap_err().parameter(), Some("scopes"));
        assert_eq!(
            resolve(Some(&[]), None).unwrap_err().parameter(),
            Some("scopes")
        );
    }

    #[test]
    fn indexes_read_and_the_docs_spelling_of_org_keys_write_are_accepted() {
        let scopes = strings(&["indexes.read", "org-keys.write"]);
        let got = resolve(Some(&scopes), None).unwrap();
        assert_eq!(got, strings(&[INDEXES_READ, ORG_KEYS_WRITE]));
    }

    #[test]
    fn every_route_needs_only_known_scopes() {
        use Route as R;
        let routes = [
            R::ListMachines,
            R::CreateMachine,
            R::GetMachine,
            R::DeleteMachine,
            R::ListMachineVersions,
            R::CreateMachineVersion,
            R::FinalizeMachineVersion,
            R::CreateMigration,
            R::FinalizeMigration,
            R::CreateInstance,
            R::ListInstances,
            R::GetInstanceState,
            R::SendEvent,
            R::ListTransitions,
            R::GetInstanceAdmin,
            R::SetDesiredVersion,
            R::SetInstanceStatus,
            R::DeleteInstance,
            R::QueryIndex,
            R::GetLogs,
            R::ManageIdentityProviders,
            R::ManageTokenProviders,
            R::ListKeys,
            R::CreateKey,
            R::DeleteKey,
            R::ListOrgs,
            R::CreateOrg,
            R::GetBilling,
        ];
        for route in routes {
            let needed = scopes_for(route);
            assert!(!needed.is_empty(), "{route:?}");
            for scope in needed {
                assert!(
                    ALL_SCOPES.contains(scope),
                    "{route:?} needs unknown {scope}"
                );
            }
        }
    }

    #[test]
    fn production_keys_can_send_events_create_instances_and_read_state() {
        for route in [
            Route::SendEvent,
            Route::CreateInstance,
            Route::GetInstanceState,
            Route::QueryIndex,
        ] {
            assert!(
                scopes_for(route)
                    .iter()
                    .any(|s| PRODUCTION_SCOPES.contains(s)),
                "{route:?}"
            );
        }
    }
}
