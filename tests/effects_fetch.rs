//! `fetch` from machines against real HTTP servers on 127.0.0.1:0: results, the address
//! policy, redirects and limits.

mod fetch_support;

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fetch_support::{allow_loopback, error_of, full, ops, serve, within};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::Response;
use serde_json::json;
use tokio::net::TcpListener;

#[tokio::test]
async fn get_returns_json_text_with_status_headers_and_url() {
    within(async {
        let server = serve(|_| async {
            full(
                200,
                &[("content-type", "application/json")],
                r#"{"name":"Ada"}"#,
            )
        })
        .await;
        let url = server.url("/people/1?x=1");
        let result = allow_loopback()
            .fetch(
                "m",
                &json!({"method": "GET", "url": url, "headers": {}, "body": null}),
            )
            .await;
        assert_eq!(result["ok"], true, "{result}");
        assert_eq!(result["status"], 200);
        assert_eq!(result["statusText"], "OK");
        assert_eq!(result["headers"]["content-type"], "application/json");
        assert_eq!(result["body"], r#"{"name":"Ada"}"#);
        assert_eq!(result["url"], url.as_str());
        assert_eq!(result["redirected"], false);
        assert!(result.get("bodyBase64").is_none());
    })
    .await;
}

#[tokio::test]
async fn post_sends_its_method_headers_and_body() {
    within(async {
        let mut server = serve(|_| async { full(201, &[], "made") }).await;
        let result = allow_loopback()
            .fetch(
                "m",
                &json!({
                    "method": "post", "url": server.url("/items"),
                    "headers": {"content-type": "application/json", "x-token": "abc",
                                "host": "elsewhere.example"},
                    "body": "{\"n\":1}"
                }),
            )
            .await;
        assert_eq!(result["status"], 201, "{result}");
        assert_eq!(result["statusText"], "Created");
        let seen = server.seen_rx.recv().await.unwrap();
        assert_eq!(seen.method, "POST");
        assert_eq!(seen.path, "/items");
        assert_eq!(seen.headers["content-type"], "application/json");
        assert_eq!(seen.headers["x-token"], "abc");
        assert_eq!(seen.headers["host"], format!("127.0.0.1:{}", server.port()));
        assert!(seen.headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("statewire/"));
        assert_eq!(&seen.body[..], b"{\"n\":1}");
    })
    .await;
}

#[tokio::test]
async fn a_binary_request_body_is_sent_as_its_bytes() {
    within(async {
        let mut server = serve(|_| async { full(204, &[], "") }).await;
        let result = allow_loopback()
            .fetch(
                "m",
                &json!({"method": "PUT", "url": server.url("/blob"),
                        "body": null, "bodyBase64": "AP8Qgw=="}),
            )
            .await;
        assert_eq!(result["status"], 204, "{result}");
        assert_eq!(result["body"], "");
        let seen = server.seen_rx.recv().await.unwrap();
        assert_eq!(&seen.body[..], &[0x00, 0xff, 0x10, 0x83]);
    })
    .await;
}

#[tokio::test]
async fn a_server_error_is_an_ok_result_with_its_status() {
    within(async {
        let server = serve(|_| async { full(500, &[], "boom") }).await;
        let result = allow_loopback()
            .fetch("m", &json!({"url": server.url("/")}))
            .await;
        assert_eq!(result["ok"], true, "{result}");
        assert_eq!(result["status"], 500);
        assert_eq!(result["statusText"], "Internal Server Error");
        assert_eq!(result["body"], "boom");
    })
    .await;
}

#[tokio::test]
async fn a_binary_response_comes_back_as_base64() {
    within(async {
        let server = serve(|_| async {
            full(
                200,
                &[("content-type", "image/png")],
                vec![0x89u8, 0x50, 0xff, 0x00, 0xfe],
            )
        })
        .await;
        let result = allow_loopback()
            .fetch("m", &json!({"url": server.url("/img")}))
            .await;
        assert_eq!(result["ok"], true, "{result}");
        assert_eq!(result["bodyBase64"], "iVD/AP4=");
        assert!(result.get("body").is_none());
    })
    .await;
}

#[tokio::test]
async fn repeated_response_headers_are_joined() {
    within(async {
        let server = serve(|_| async { full(200, &[("x-v", "a"), ("x-v", "b")], "") }).await;
        let result = allow_loopback()
            .fetch("m", &json!({"url": server.url("/")}))
            .await;
        assert_eq!(result["headers"]["x-v"], "a, b", "{result}");
    })
    .await;
}

#[tokio::test]
async fn loopback_is_refused_without_an_allowlist_and_never_dialled() {
    within(async {
        let server = serve(|_| async { full(200, &[], "secret") }).await;
        let ops = ops(&[], |_| {});
        let result = ops.fetch("m", &json!({"url": server.url("/")})).await;
        assert_eq!(
            error_of(&result),
            "fetch to 127.0.0.1 refused: 127.0.0.1 is a loopback address (see effects.fetch.allow)"
        );
        let v6 = format!("http://[::ffff:127.0.0.1]:{}/", server.port());
        let result = ops.fetch("m", &json!({"url": v6})).await;
        assert!(
            error_of(&result).contains("is a loopback address"),
            "{result}"
        );
        let result = ops
            .fetch(
                "m",
                &json!({"url": format!("http://localhost:{}/", server.port())}),
            )
            .await;
        assert!(
            error_of(&result).starts_with("fetch to localhost refused: "),
            "{result}"
        );
        assert_eq!(server.connection_count(), 0);
    })
    .await;
}

#[tokio::test]
async fn loopback_is_reached_when_allowed_by_address_cidr_or_name() {
    within(async {
        let server = serve(|_| async { full(200, &[], "hi") }).await;
        let by_name = format!("localhost:{}", server.port());
        for (entry, url) in [
            ("127.0.0.1".to_owned(), server.url("/")),
            ("127.0.0.0/8".to_owned(), server.url("/")),
            (format!("127.0.0.1:{}", server.port()), server.url("/")),
            (by_name.clone(), format!("http://{by_name}/")),
        ] {
            let result = ops(std::slice::from_ref(&entry), |_| {})
                .fetch("m", &json!({"url": url}))
                .await;
            assert_eq!(result["body"], "hi", "{entry}: {result}");
        }
        let wrong_port = format!("127.0.0.1:{}", server.port().wrapping_add(1));
        let result = ops(&[wrong_port], |_| {})
            .fetch("m", &json!({"url": server.url("/")}))
            .await;
        assert!(error_of(&result).contains("refused"), "{result}");
    })
    .await;
}

#[tokio::test]
async fn redirects_are_followed_and_reported() {
    within(async {
        let mut server = serve(|path| async move {
            match path.as_str() {
                "/start" => full(302, &[("location", "/middle?a=1")], ""),
                "/middle?a=1" => full(303, &[("location", "end")], ""),
                _ => full(200, &[], "arrived"),
            }
        })
        .await;
        let result = allow_loopback()
            .fetch(
                "m",
                &json!({"method": "POST", "url": server.url("/start"), "body": "x",
                        "headers": {"content-type": "text/plain"}}),
            )
            .await;
        assert_eq!(result["body"], "arrived", "{result}");
        assert_eq!(result["redirected"], true);
        assert_eq!(result["url"], server.url("/end"));
        let methods: Vec<(String, String)> = [(); 3]
            .iter()
            .map(|_| {
                let s = server.seen_rx.try_recv().unwrap();
                (s.method, s.path)
            })
            .collect();
        assert_eq!(
            methods,
            [
                ("POST".to_owned(), "/start".to_owned()),
                ("GET".to_owned(), "/middle?a=1".to_owned()),
                ("GET".to_owned(), "/end".to_owned()),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn a_redirect_to_a_denied_address_is_refused() {
    within(async {
        let inner = serve(|_| async { full(200, &[], "internal") }).await;
        let target = inner.url("/admin");
        let outer = serve(move |_| {
            let target = target.clone();
            async move { full(307, &[("location", target.as_str())], "") }
        })
        .await;
        let ops = ops(&[format!("127.0.0.1:{}", outer.port())], |_| {});
        let result = ops.fetch("m", &json!({"url": outer.url("/go")})).await;
        assert_eq!(
            error_of(&result),
            "fetch to 127.0.0.1 refused: 127.0.0.1 is a loopback address (see effects.fetch.allow)"
        );
        assert_eq!(outer.connection_count(), 1);
        assert_eq!(inner.connection_count(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_redirect_loop_stops_at_the_limit() {
    within(async {
        let server = serve(|_| async { full(301, &[("location", "/again")], "") }).await;
        let result = ops(&["127.0.0.1".to_owned()], |c| c.max_redirects = 2)
            .fetch("m", &json!({"url": server.url("/")}))
            .await;
        assert_eq!(
            error_of(&result),
            "more than 2 redirects (effects.fetch.max_redirects)"
        );
        assert_eq!(server.connection_count(), 3);
    })
    .await;
}

#[tokio::test]
async fn a_slow_server_times_out_at_the_deadline() {
    within(async {
        let server = serve(|_| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            full(200, &[], "late")
        })
        .await;
        let ops = ops(&["127.0.0.1".to_owned()], |c| c.timeout_ms = 300);
        let started = Instant::now();
        let result = ops.fetch("m", &json!({"url": server.url("/")})).await;
        let elapsed = started.elapsed();
        assert_eq!(
            error_of(&result),
            "fetch to 127.0.0.1 timed out after 300 ms (effects.fetch.timeout_ms)"
        );
        assert!(elapsed >= Duration::from_millis(300), "early: {elapsed:?}");
        assert!(
            elapsed < Duration::from_millis(300 + 1500),
            "late: {elapsed:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn an_oversized_response_fails_whether_declared_or_streamed() {
    within(async {
        let server = serve(|path| async move {
            if path == "/declared" {
                return full(200, &[], vec![b'a'; 5000]);
            }
            let chunks =
                (0..10).map(|_| Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'b'; 500]))));
            Response::new(StreamBody::new(futures_util::stream::iter(chunks)).boxed())
        })
        .await;
        let ops = ops(&["127.0.0.1".to_owned()], |c| c.max_response_bytes = 1000);
        for path in ["/declared", "/streamed"] {
            let result = ops.fetch("m", &json!({"url": server.url(path)})).await;
            assert_eq!(
                error_of(&result),
                "response larger than 1000 bytes (effects.fetch.max_response_bytes)",
                "{path}"
            );
        }
        let result = ops
            .fetch(
                "m",
                &json!({"method": "POST", "url": server.url("/declared"),
                        "body": "x".repeat(2 * 1024 * 1024)}),
            )
            .await;
        assert!(error_of(&result).contains("max_request_bytes"), "{result}");
    })
    .await;
}

#[tokio::test]
async fn malformed_requests_are_failures_that_say_why() {
    within(async {
        let ops = allow_loopback();
        let cases = [
            (json!({"method": "GET"}), "the fetch request has no url"),
            (json!({"url": ""}), "the fetch request has no url"),
            (json!(null), "the fetch request is not an object"),
            (
                json!({"url": "ftp://127.0.0.1/file"}),
                "only http and https URLs can be fetched, not ftp:",
            ),
            (json!({"url": "file:///etc/passwd"}), "only http and https"),
            (json!({"url": "/relative"}), "is not an absolute URL"),
            (
                json!({"url": "http://127.0.0.1/", "method": "CONNECT"}),
                "cannot be fetched",
            ),
        ];
        for (request, expected) in cases {
            let result = ops.fetch("m", &request).await;
            let error = error_of(&result);
            assert!(error.contains(expected), "{request}: {error}");
        }
    })
    .await;
}

#[tokio::test]
async fn https_to_a_server_without_tls_fails_in_the_handshake() {
    within(async {
        let server = serve(|_| async { full(200, &[], "plain") }).await;
        let url = format!("https://127.0.0.1:{}/", server.port());
        let result = allow_loopback().fetch("m", &json!({"url": url})).await;
        assert!(
            error_of(&result).starts_with("tls handshake with 127.0.0.1 failed"),
            "{result}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_closed_port_is_a_connection_failure() {
    within(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let result = allow_loopback()
            .fetch("m", &json!({"url": format!("http://127.0.0.1:{port}/")}))
            .await;
        assert!(
            error_of(&result).starts_with("cannot connect to 127.0.0.1: connection refused"),
            "{result}"
        );
    })
    .await;
}

#[tokio::test]
async fn sleep_waits_and_is_bounded_by_its_maximum() {
    within(async {
        let ops = allow_loopback();
        let started = Instant::now();
        ops.sleep(80).await;
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(80), "early: {elapsed:?}");
        assert!(
            elapsed < Duration::from_millis(80 + 1000),
            "late: {elapsed:?}"
        );
        let short = ops.with_max_sleep(Duration::from_millis(50));
        let started = Instant::now();
        short.sleep(60_000).await;
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(50), "early: {elapsed:?}");
        assert!(
            elapsed < Duration::from_millis(50 + 1000),
            "late: {elapsed:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn outcomes_are_counted_in_the_metrics() {
    within(async {
        let exporter = statewire::metrics::install().unwrap();
        let count = |text: &str, outcome: &str| -> f64 {
            let prefix = format!("statewire_fetch_requests_total{{outcome=\"{outcome}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()))
                .map_or(0.0, |v| v.trim().parse().unwrap())
        };
        let before = exporter.render();
        let server = serve(|_| async { full(404, &[], "") }).await;
        let denied = ops(&[], |_| {})
            .fetch("m", &json!({"url": server.url("/")}))
            .await;
        assert_eq!(denied["ok"], false);
        let missing = allow_loopback()
            .fetch("m", &json!({"url": server.url("/")}))
            .await;
        assert_eq!(missing["status"], 404);
        let after = exporter.render();
        assert!(count(&after, "refused") >= count(&before, "refused") + 1.0);
        assert!(count(&after, "http_error") >= count(&before, "http_error") + 1.0);
        assert!(after.contains("statewire_fetch_duration_seconds_bucket"));
    })
    .await;
}
