//! Paths to routes, methods to handlers, and the scope each handler needs.
//!
//! Paths are split on `/` and matched segment by segment; empty segments are ignored, so a
//! base URL with a trailing slash still works. Names in paths must be State Backed names
//! (`^[a-zA-Z0-9_-]{1,128}$`), else the request is refused with 400 naming the segment.

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::{
    instance_admin, instances, keys, machines, response, upload, versions, ApiState, Body,
};
use crate::auth::{Principal, Route as Scope, ACT_AS_HEADER};
use crate::error::ApiError;
use crate::ids::{InstanceKey, InstanceName, MachineName};

/// A recognized path, with its parameters parsed.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Route {
    Healthz,
    Metrics,
    RealTime,
    Upload,
    Machines,
    Machine(MachineName),
    Versions(MachineName),
    Version(MachineName, String),
    Instances(MachineName),
    Instance(InstanceKey),
    InstanceEvents(InstanceKey),
    InstanceAdmin(InstanceKey),
    InstanceStatus(InstanceKey),
    InstanceVersion(InstanceKey),
    Keys,
    Key(String),
}

/// The path the upload form is posted to (`codeUploadUrl`).
pub(super) const UPLOAD_PATH: &str = "/uploads";

impl Route {
    /// `Ok(None)` for a path no route has.
    pub fn parse(path: &str) -> Result<Option<Route>, ApiError> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let machine = |s: &str| MachineName::parse(s);
        let instance = |m: &str, i: &str| -> Result<InstanceKey, ApiError> {
            Ok(InstanceKey::new(machine(m)?, InstanceName::parse(i)?))
        };
        let route = match segments.as_slice() {
            ["healthz"] => Route::Healthz,
            ["metrics"] => Route::Metrics,
            ["rt"] => Route::RealTime,
            ["uploads"] => Route::Upload,
            ["machines"] => Route::Machines,
            ["machines", m] => Route::Machine(machine(m)?),
            ["machines", m, "v"] => Route::Versions(machine(m)?),
            ["machines", m, "v", id] => Route::Version(machine(m)?, (*id).to_owned()),
            ["machines", m, "i"] => Route::Instances(machine(m)?),
            ["machines", m, "i", i] => Route::Instance(instance(m, i)?),
            ["machines", m, "i", i, "events"] => Route::InstanceEvents(instance(m, i)?),
            ["machines", m, "i", i, "admin"] => Route::InstanceAdmin(instance(m, i)?),
            ["machines", m, "i", i, "status"] => Route::InstanceStatus(instance(m, i)?),
            ["machines", m, "i", i, "v"] => Route::InstanceVersion(instance(m, i)?),
            ["keys"] => Route::Keys,
            ["keys", id] => Route::Key((*id).to_owned()),
            _ => return Ok(None),
        };
        Ok(Some(route))
    }

    /// The methods this path answers, for 405 and preflights.
    pub fn methods(&self) -> &'static [Method] {
        const GET: &[Method] = &[Method::GET];
        const POST: &[Method] = &[Method::POST];
        const PUT: &[Method] = &[Method::PUT];
        const DELETE: &[Method] = &[Method::DELETE];
        const GET_POST: &[Method] = &[Method::GET, Method::POST];
        match self {
            Route::Healthz | Route::Metrics | Route::RealTime => GET,
            Route::Upload => POST,
            Route::Machines | Route::Versions(_) | Route::InstanceEvents(_) | Route::Keys => {
                GET_POST
            }
            Route::Machine(_) => &[Method::GET, Method::POST, Method::DELETE],
            Route::Version(..) | Route::InstanceStatus(_) | Route::InstanceVersion(_) => PUT,
            Route::Instances(_) | Route::InstanceAdmin(_) => GET,
            Route::Instance(_) => &[Method::GET, Method::DELETE],
            Route::Key(_) => DELETE,
        }
    }
}

/// The `Allow` header value for `path`, if it is a known route.
pub(super) fn allow_header(path: &str) -> Option<String> {
    let route = Route::parse(path).ok().flatten()?;
    let mut methods: Vec<&str> = route.methods().iter().map(Method::as_str).collect();
    methods.push("OPTIONS");
    Some(methods.join(", "))
}

/// Answers an `OPTIONS` request: 204 with `Allow` for known paths (CORS headers are added by
/// the caller), 404 otherwise.
pub(super) fn preflight(path: &str) -> Response<Body> {
    match allow_header(path) {
        Some(allow) => {
            let mut r = response::empty(StatusCode::NO_CONTENT);
            if let Ok(v) = allow.parse() {
                r.headers_mut().insert(http::header::ALLOW, v);
            }
            r
        }
        None => response::error(&ApiError::NotFound(format!("route {path}"))),
    }
}

/// Routes the request to its handler, after checking method, token and scope.
pub(super) async fn dispatch(
    api: &Arc<ApiState>,
    request: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let path = request.uri().path().to_owned();
    let Some(route) = Route::parse(&path)? else {
        return Err(ApiError::NotFound(format!("route {path}")));
    };
    let method = request.method().clone();
    if !route.methods().contains(&method) {
        return Err(ApiError::MethodNotAllowed);
    }
    match &route {
        Route::Healthz => return Ok(health(api)),
        Route::Metrics => return Ok(metrics(api)),
        Route::RealTime => return Ok(real_time(api, request).await),
        Route::Upload => return Ok(upload::receive(api, request).await?.into_response()),
        _ => {}
    }
    let scope = scope_of(&route, &method);
    let principal = authenticate(api, &request, scope).await?;
    let m = Method::GET == method;
    let reply = match route {
        Route::Machines if m => machines::list(api, request).await,
        Route::Machines => machines::create(api, request).await,
        Route::Machine(name) => match method {
            Method::GET => machines::get(api, &name).await,
            Method::DELETE => machines::delete(api, &name, request).await,
            _ => instances::create(api, principal, &name, request).await,
        },
        Route::Versions(name) if m => versions::list(api, &name, request).await,
        Route::Versions(name) => versions::provisional(api, &name, request).await,
        Route::Version(name, signed) => versions::finalize(api, &name, &signed, request).await,
        Route::Instances(name) => instances::list(api, &name, request).await,
        Route::Instance(key) if m => instances::get(api, principal, key).await,
        Route::Instance(key) => instance_admin::delete(api, key, request).await,
        Route::InstanceEvents(key) if m => instance_admin::history(api, key, request).await,
        Route::InstanceEvents(key) => instances::send_event(api, principal, key, request).await,
        Route::InstanceAdmin(key) => instance_admin::admin_view(api, key).await,
        Route::InstanceStatus(key) => instance_admin::set_status(api, key, request).await,
        Route::InstanceVersion(key) => instance_admin::set_version(api, key, request).await,
        Route::Keys if m => keys::list(api, request).await,
        Route::Keys => keys::create(api, request).await,
        Route::Key(id) => keys::delete(api, &id).await,
        Route::Healthz | Route::Metrics | Route::RealTime | Route::Upload => {
            unreachable!("answered before authentication")
        }
    }?;
    Ok(reply.into_response())
}

/// The scope table entry of an authenticated route and method.
fn scope_of(route: &Route, method: &Method) -> Scope {
    let get = *method == Method::GET;
    match route {
        Route::Machines if get => Scope::ListMachines,
        Route::Machines => Scope::CreateMachine,
        Route::Machine(_) => match *method {
            Method::GET => Scope::GetMachine,
            Method::DELETE => Scope::DeleteMachine,
            _ => Scope::CreateInstance,
        },
        Route::Versions(_) if get => Scope::ListMachineVersions,
        Route::Versions(_) => Scope::CreateMachineVersion,
        Route::Version(..) => Scope::FinalizeMachineVersion,
        Route::Instances(_) => Scope::ListInstances,
        Route::Instance(_) if get => Scope::GetInstanceState,
        Route::Instance(_) => Scope::DeleteInstance,
        Route::InstanceEvents(_) if get => Scope::ListTransitions,
        Route::InstanceEvents(_) => Scope::SendEvent,
        Route::InstanceAdmin(_) => Scope::GetInstanceAdmin,
        Route::InstanceStatus(_) => Scope::SetInstanceStatus,
        Route::InstanceVersion(_) => Scope::SetDesiredVersion,
        Route::Keys if get => Scope::ListKeys,
        Route::Keys => Scope::CreateKey,
        Route::Key(_) => Scope::DeleteKey,
        Route::Healthz | Route::Metrics | Route::RealTime | Route::Upload => {
            unreachable!("{route:?} needs no token")
        }
    }
}

/// Verifies the bearer token (and `x-statebacked-act`) and checks the route's scope.
async fn authenticate(
    api: &ApiState,
    request: &Request<Incoming>,
    scope: Scope,
) -> Result<Principal, ApiError> {
    let headers = request.headers();
    let token = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    let act_as = match headers.get(ACT_AS_HEADER) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::invalid(ACT_AS_HEADER, "header is not valid UTF-8"))?,
        ),
        None => None,
    };
    let principal = api.auth.authenticate(token, act_as).await?;
    principal.authorize(scope)?;
    Ok(principal)
}

/// The token of an `Authorization: Bearer <token>` header; the scheme is case-insensitive.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn health(api: &ApiState) -> Response<Body> {
    if api.is_shutting_down() {
        response::error(&ApiError::ShuttingDown)
    } else {
        response::json(StatusCode::OK, &serde_json::json!({"status": "ok"}))
    }
}

fn metrics(api: &ApiState) -> Response<Body> {
    match &api.metrics {
        Some(renderer) => {
            let mut r = Response::new(Body::from(renderer.render()));
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        None => response::error(&ApiError::NotFound("route /metrics".to_owned())),
    }
}

async fn real_time(api: &Arc<ApiState>, request: Request<Incoming>) -> Response<Body> {
    match &api.realtime {
        Some(handler) => handler.upgrade(api.clone(), request).await,
        None => response::error(&ApiError::NotFound("route /rt".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_backed_paths_map_to_routes() {
        let key = |m: &str, i: &str| {
            InstanceKey::new(
                MachineName::parse(m).unwrap(),
                InstanceName::parse(i).unwrap(),
            )
        };
        let m = MachineName::parse("toggle").unwrap();
        let cases = [
            ("/machines", Route::Machines),
            ("/machines/toggle", Route::Machine(m.clone())),
            ("/machines/toggle/", Route::Machine(m.clone())),
            ("/machines/toggle/v", Route::Versions(m.clone())),
            (
                "/machines/toggle/v/abc.def",
                Route::Version(m.clone(), "abc.def".into()),
            ),
            ("/machines/toggle/i", Route::Instances(m.clone())),
            (
                "/machines/toggle/i/a-1",
                Route::Instance(key("toggle", "a-1")),
            ),
            (
                "/machines/toggle/i/a/events",
                Route::InstanceEvents(key("toggle", "a")),
            ),
            (
                "/machines/toggle/i/a/admin",
                Route::InstanceAdmin(key("toggle", "a")),
            ),
            (
                "/machines/toggle/i/a/status",
                Route::InstanceStatus(key("toggle", "a")),
            ),
            (
                "/machines/toggle/i/a/v",
                Route::InstanceVersion(key("toggle", "a")),
            ),
            ("/keys", Route::Keys),
            ("/keys/sbk_x", Route::Key("sbk_x".into())),
            ("/healthz", Route::Healthz),
            ("/rt", Route::RealTime),
        ];
        for (path, route) in cases {
            assert_eq!(Route::parse(path).unwrap(), Some(route), "{path}");
        }
    }

    #[test]
    fn unknown_paths_have_no_route_and_bad_names_are_invalid() {
        assert_eq!(Route::parse("/nope").unwrap(), None);
        assert_eq!(Route::parse("/machines/a/b/c/d/e/f").unwrap(), None);
        let err = Route::parse("/machines/bad%20name").unwrap_err();
        assert_eq!(err.parameter(), Some("machineName"));
        let err = Route::parse("/machines/ok/i/bad.name").unwrap_err();
        assert_eq!(err.parameter(), Some("machineInstanceName"));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_a_token() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn health_turns_503_once_shutdown_begins() {
        let store: Arc<dyn crate::store::Store> =
            Arc::new(crate::store::memory::MemoryStore::new());
        let config = Arc::new(crate::config::Config::default());
        let runtime = crate::runtime::Runtime::new(config.runtime_config()).unwrap();
        let registry =
            crate::registry::Registry::new(store.clone(), runtime.clone(), &config.registry);
        let api = ApiState::new(
            config,
            store.clone(),
            runtime,
            crate::auth::Authenticator::new(store),
            registry,
            super::super::UploadSigner::from_key(b"k"),
            "127.0.0.1:1".parse().unwrap(),
        );
        assert_eq!(health(&api).status(), StatusCode::OK);
        api.begin_shutdown();
        assert_eq!(health(&api).status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn allow_lists_the_methods_of_the_path() {
        assert_eq!(
            allow_header("/machines/m").as_deref(),
            Some("GET, POST, DELETE, OPTIONS")
        );
        assert_eq!(allow_header("/nope"), None);
    }
}
