//! Paths to routes, methods to handlers, and the scope each handler needs.
//!
//! Paths are split on `/` and matched segment by segment; empty segments are ignored, so a
//! base URL with a trailing slash still works. Names in paths must be State Backed names
//! (`^[a-zA-Z0-9_-]{1,128}$`), else the request is refused with 400 naming the segment.

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::response::Reply;
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
    /// The code upload, authorized by its signed form fields.
    Upload,
    /// The State Backed API: every one of these needs a bearer token.
    Api(ApiRoute),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum ApiRoute {
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

const GET: &[Method] = &[Method::GET];
const POST: &[Method] = &[Method::POST];
const PUT: &[Method] = &[Method::PUT];
const DELETE: &[Method] = &[Method::DELETE];
const GET_POST: &[Method] = &[Method::GET, Method::POST];

impl Route {
    /// `Ok(None)` for a path no route has.
    pub fn parse(path: &str) -> Result<Option<Route>, ApiError> {
        use ApiRoute as A;
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let machine = |s: &str| MachineName::parse(s);
        let instance = |m: &str, i: &str| -> Result<InstanceKey, ApiError> {
            Ok(InstanceKey::new(machine(m)?, InstanceName::parse(i)?))
        };
        let api = match segments.as_slice() {
            ["healthz"] => return Ok(Some(Route::Healthz)),
            ["metrics"] => return Ok(Some(Route::Metrics)),
            ["rt"] => return Ok(Some(Route::RealTime)),
            ["uploads"] => return Ok(Some(Route::Upload)),
            ["machines"] => A::Machines,
            ["machines", m] => A::Machine(machine(m)?),
            ["machines", m, "v"] => A::Versions(machine(m)?),
            ["machines", m, "v", id] => A::Version(machine(m)?, (*id).to_owned()),
            ["machines", m, "i"] => A::Instances(machine(m)?),
            ["machines", m, "i", i] => A::Instance(instance(m, i)?),
            ["machines", m, "i", i, "events"] => A::InstanceEvents(instance(m, i)?),
            ["machines", m, "i", i, "admin"] => A::InstanceAdmin(instance(m, i)?),
            ["machines", m, "i", i, "status"] => A::InstanceStatus(instance(m, i)?),
            ["machines", m, "i", i, "v"] => A::InstanceVersion(instance(m, i)?),
            ["keys"] => A::Keys,
            ["keys", id] => A::Key((*id).to_owned()),
            _ => return Ok(None),
        };
        Ok(Some(Route::Api(api)))
    }

    /// The methods this path answers, for 405 and preflights.
    pub fn methods(&self) -> &'static [Method] {
        match self {
            Route::Healthz | Route::Metrics | Route::RealTime => GET,
            Route::Upload => POST,
            Route::Api(route) => route.methods(),
        }
    }
}

impl ApiRoute {
    fn methods(&self) -> &'static [Method] {
        use ApiRoute as A;
        match self {
            A::Machines | A::Versions(_) | A::InstanceEvents(_) | A::Keys => GET_POST,
            A::Machine(_) => &[Method::GET, Method::POST, Method::DELETE],
            A::Version(..) | A::InstanceStatus(_) | A::InstanceVersion(_) => PUT,
            A::Instances(_) | A::InstanceAdmin(_) => GET,
            A::Instance(_) => &[Method::GET, Method::DELETE],
            A::Key(_) => DELETE,
        }
    }

    /// The scope table entry of this route and method (one of [`Self::methods`]).
    fn scope(&self, method: &Method) -> Scope {
        use ApiRoute as A;
        let get = *method == Method::GET;
        match self {
            A::Machines if get => Scope::ListMachines,
            A::Machines => Scope::CreateMachine,
            A::Machine(_) => match *method {
                Method::GET => Scope::GetMachine,
                Method::DELETE => Scope::DeleteMachine,
                _ => Scope::CreateInstance,
            },
            A::Versions(_) if get => Scope::ListMachineVersions,
            A::Versions(_) => Scope::CreateMachineVersion,
            A::Version(..) => Scope::FinalizeMachineVersion,
            A::Instances(_) => Scope::ListInstances,
            A::Instance(_) if get => Scope::GetInstanceState,
            A::Instance(_) => Scope::DeleteInstance,
            A::InstanceEvents(_) if get => Scope::ListTransitions,
            A::InstanceEvents(_) => Scope::SendEvent,
            A::InstanceAdmin(_) => Scope::GetInstanceAdmin,
            A::InstanceStatus(_) => Scope::SetInstanceStatus,
            A::InstanceVersion(_) => Scope::SetDesiredVersion,
            A::Keys if get => Scope::ListKeys,
            A::Keys => Scope::CreateKey,
            A::Key(_) => Scope::DeleteKey,
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
    match route {
        Route::Healthz => Ok(health(api)),
        Route::Metrics => Ok(metrics(api)),
        Route::RealTime => Ok(real_time(api, request).await),
        Route::Upload => Ok(upload::receive(api, request).await?.into_response()),
        Route::Api(route) => {
            let principal = authenticate(api, &request, route.scope(&method)).await?;
            let reply = serve(api, route, &method, principal, request).await?;
            Ok(reply.into_response())
        }
    }
}

/// Calls the handler of an authenticated route.
async fn serve(
    api: &ApiState,
    route: ApiRoute,
    method: &Method,
    principal: Principal,
    request: Request<Incoming>,
) -> Result<Reply, ApiError> {
    use ApiRoute as A;
    let get = *method == Method::GET;
    match route {
        A::Machines if get => machines::list(api, request).await,
        A::Machines => machines::create(api, request).await,
        A::Machine(name) => match *method {
            Method::GET => machines::get(api, &name).await,
            Method::DELETE => machines::delete(api, &name, request).await,
            _ => instances::create(api, principal, &name, request).await,
        },
        A::Versions(name) if get => versions::list(api, &name, request).await,
        A::Versions(name) => versions::provisional(api, &name, request).await,
        A::Version(name, signed) => versions::finalize(api, &name, &signed, request).await,
        A::Instances(name) => instances::list(api, &name, request).await,
        A::Instance(key) if get => instances::get(api, principal, key).await,
        A::Instance(key) => instance_admin::delete(api, key, request).await,
        A::InstanceEvents(key) if get => instance_admin::history(api, key, request).await,
        A::InstanceEvents(key) => instances::send_event(api, principal, key, request).await,
        A::InstanceAdmin(key) => instance_admin::admin_view(api, key).await,
        A::InstanceStatus(key) => instance_admin::set_status(api, key, request).await,
        A::InstanceVersion(key) => instance_admin::set_version(api, key, request).await,
        A::Keys if get => keys::list(api, request).await,
        A::Keys => keys::create(api, request).await,
        A::Key(id) => keys::delete(api, &id).await,
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
        use ApiRoute as A;
        let cases = [
            ("/machines", Route::Api(A::Machines)),
            ("/machines/toggle", Route::Api(A::Machine(m.clone()))),
            ("/machines/toggle/", Route::Api(A::Machine(m.clone()))),
            ("/machines/toggle/v", Route::Api(A::Versions(m.clone()))),
            (
                "/machines/toggle/v/abc.def",
                Route::Api(A::Version(m.clone(), "abc.def".into())),
            ),
            ("/machines/toggle/i", Route::Api(A::Instances(m.clone()))),
            (
                "/machines/toggle/i/a-1",
                Route::Api(A::Instance(key("toggle", "a-1"))),
            ),
            (
                "/machines/toggle/i/a/events",
                Route::Api(A::InstanceEvents(key("toggle", "a"))),
            ),
            (
                "/machines/toggle/i/a/admin",
                Route::Api(A::InstanceAdmin(key("toggle", "a"))),
            ),
            (
                "/machines/toggle/i/a/status",
                Route::Api(A::InstanceStatus(key("toggle", "a"))),
            ),
            (
                "/machines/toggle/i/a/v",
                Route::Api(A::InstanceVersion(key("toggle", "a"))),
            ),
            ("/keys", Route::Api(A::Keys)),
            ("/keys/sbk_x", Route::Api(A::Key("sbk_x".into()))),
            ("/healthz", Route::Healthz),
            ("/rt", Route::RealTime),
            ("/uploads", Route::Upload),
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
