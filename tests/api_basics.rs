//! The HTTP layer's behaviour that does not depend on machines: health, routing, methods,
//! CORS, authentication, malformed bodies and size caps.

mod http_support;

use http::{Method, StatusCode};
use http_support::{within, TestServer};
use serde_json::json;

#[tokio::test]
async fn healthz_answers_ok_once_listening() {
    within(30, async {
        let s = TestServer::start().await;
        let r = s.client.request(Method::GET, "/healthz", &[], "").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["status"], "ok");
        assert_eq!(r.header("content-type"), Some("application/json"));
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn unknown_routes_are_404_json_and_wrong_methods_405_with_allow() {
    within(30, async {
        let s = TestServer::start().await;
        let r = s.client.request(Method::GET, "/nowhere", &[], "").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.code(), "not-found");

        let r = s.client.request(Method::PATCH, "/machines", &[], "").await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.code(), "method-not-allowed");
        assert_eq!(r.header("allow"), Some("GET, POST, OPTIONS"));
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn cors_preflight_allows_the_state_backed_headers_from_any_origin() {
    within(30, async {
        let s = TestServer::start().await;
        let r = s
            .client
            .request(
                Method::OPTIONS,
                "/machines/m/i/x/events",
                &[
                    ("origin", "https://app.example"),
                    ("access-control-request-method", "POST"),
                    (
                        "access-control-request-headers",
                        "authorization, content-type, x-statebacked-act",
                    ),
                ],
                "",
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(r.body.is_empty());
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        let headers = r.header("access-control-allow-headers").unwrap();
        for h in [
            "authorization",
            "content-type",
            "x-statebacked-org-id",
            "x-statebacked-act",
        ] {
            assert!(headers.contains(h), "{h} missing from {headers}");
        }
        assert!(r
            .header("access-control-allow-methods")
            .unwrap()
            .contains("POST"));
        assert_eq!(r.header("access-control-allow-credentials"), None);

        // Ordinary responses, errors included, carry the origin header too.
        let r = s
            .client
            .request(
                Method::GET,
                "/machines",
                &[("origin", "https://app.example")],
                "",
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn configured_origins_are_echoed_and_others_refused() {
    within(30, async {
        let s = TestServer::start_with(
            |c| c.cors.allowed_origins = vec!["https://ok.example".into()],
            Default::default(),
        )
        .await;
        let preflight = |origin: &'static str| async move {
            let headers = [("origin", origin), ("access-control-request-method", "GET")];
            s.client
                .request(Method::OPTIONS, "/machines", &headers, "")
                .await
        };
        let ok = preflight("https://ok.example").await;
        assert_eq!(
            ok.header("access-control-allow-origin"),
            Some("https://ok.example")
        );
        let other = preflight("https://evil.example").await;
        assert_eq!(other.header("access-control-allow-origin"), None);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401_and_missing_scopes_403() {
    within(30, async {
        let s = TestServer::start().await;
        let r = s.client.request(Method::GET, "/machines", &[], "").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);

        let r = s.client.authed("not-a-jwt").get("/machines").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);

        let token = s.token(&["state.read"], json!({"sub": "u"})).await;
        let r = s.client.authed(&token).get("/machines").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.code(), "missing-scope");
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn malformed_json_is_400_invalid_parameter() {
    within(30, async {
        let s = TestServer::start().await;
        let auth = format!("Bearer {}", s.admin_token);
        let r = s
            .client
            .request(
                Method::POST,
                "/machines",
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                "{\"slug\": ",
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.code(), "invalid-parameter");

        let r = s.admin().post("/machines", &json!({"slug": 7})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.code(), "invalid-parameter");
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn invalid_names_are_400_naming_the_parameter() {
    within(30, async {
        let s = TestServer::start().await;
        let r = s
            .admin()
            .post("/machines", &json!({"slug": "has space"}))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.json()["parameter"], "slug");

        let long = "a".repeat(129);
        let r = s.admin().get(&format!("/machines/{long}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.json()["parameter"], "machineName");

        let r = s.admin().get("/machines/ok/i/bad.name").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.json()["parameter"], "machineInstanceName");
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn oversized_json_bodies_are_413_with_the_limit() {
    within(30, async {
        let s = TestServer::start().await;
        let big = json!({"slug": "m", "indexes": ["x".repeat(600 * 1024)]});
        let r = s.admin().post("/machines", &big).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(r.code(), "payload-too-large");
        let message = r.json()["error"].as_str().unwrap().to_owned();
        assert!(message.contains("524288"), "{message}");
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_oversized_chunked_body_is_cut_off_while_reading() {
    within(30, async {
        let s = TestServer::start().await;
        // No content-length: the cap must hold while the chunks arrive.
        let mut raw = format!(
            "POST /machines HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
            s.admin_token
        )
        .into_bytes();
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..12 {
            raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            raw.extend_from_slice(&chunk);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        let response = s.client.raw(&raw).await;
        assert!(response.starts_with("HTTP/1.1 413"), "{response}");
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn keys_are_created_listed_and_deleted_over_http() {
    within(30, async {
        let s = TestServer::start().await;
        let r = s
            .admin()
            .post("/keys", &json!({"name": "ci key", "use": "ci"}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let created = r.json();
        let id = created["id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("sbk_"));
        assert!(created["key"].as_str().unwrap().starts_with("sbsec_"));

        let listed = s.admin().get("/keys").await.json();
        let row = listed["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id.as_str())
            .expect("the new key is listed")
            .clone();
        assert_eq!(row["name"], "ci key");
        assert!(row.get("key").is_none(), "secrets are never listed");

        let r = s.admin().delete(&format!("/keys/{id}"), &json!(null)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(r.body.is_empty());
        let r = s.admin().delete(&format!("/keys/{id}"), &json!(null)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        s.shutdown().await;
    })
    .await;
}
