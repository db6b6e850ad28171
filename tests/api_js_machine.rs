//! A JavaScript machine in the shape smply uploads (an ES module importing `npm:xstate`,
//! gzipped), run end to end over HTTP.

mod http_support;

use http::StatusCode;
use http_support::machines;
use http_support::{within, TestServer};
use serde_json::json;

/// A lamp: `dark` ⇄ `lit` on `FLIP`, counting flips in private context, a public label.
/// Only the caller named `keeper` may create it or flip it; anyone may read it.
const LAMP: &str = r#"
import { assign, createMachine } from "npm:xstate";

export default createMachine({
  id: "lamp",
  predictableActionArguments: true,
  initial: "dark",
  context: { flips: 0, public: { label: "lamp" } },
  states: {
    dark: {
      tags: ["off"],
      on: { FLIP: { target: "lit", actions: assign({ flips: (c) => c.flips + 1 }) } },
    },
    lit: {
      tags: ["on", "bright"],
      on: { FLIP: { target: "dark", actions: assign({ flips: (c) => c.flips + 1 }) } },
    },
  },
});

export function allowRead() {
  return true;
}

export function allowWrite({ authContext }) {
  return authContext.sub === "keeper";
}
"#;

#[tokio::test]
async fn a_gzipped_xstate_4_bundle_runs_over_http() {
    within(180, async {
        let s = TestServer::start().await;
        machines::machine_with_version(&s, "lamp", LAMP.as_bytes()).await;
        let keeper = s
            .token(&["instances.write", "state.read"], json!({"sub": "keeper"}))
            .await;
        let stranger = s
            .token(
                &["instances.write", "state.read"],
                json!({"sub": "stranger"}),
            )
            .await;
        let k = s.client.authed(&keeper);

        let created = k
            .post(
                "/machines/lamp",
                &json!({"slug": "hall", "context": {"flips": 10}}),
            )
            .await;
        assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
        let created = created.json();
        assert_eq!(created["state"], "dark");
        assert_eq!(created["tags"], json!(["off"]));
        assert_eq!(created["publicContext"], json!({"label": "lamp"}));

        let lit = k
            .post("/machines/lamp/i/hall/events", &json!({"event": "FLIP"}))
            .await;
        assert_eq!(lit.status, StatusCode::OK, "{:?}", lit.body);
        let lit = lit.json();
        assert_eq!(lit["state"], "lit");
        let mut tags: Vec<String> = serde_json::from_value(lit["tags"].clone()).unwrap();
        tags.sort();
        assert_eq!(tags, ["bright", "on"]);

        let r = s
            .client
            .authed(&stranger)
            .post("/machines/lamp/i/hall/events", &json!({"event": "FLIP"}))
            .await;
        assert_eq!(r.code(), "rejected-by-machine-authorizer");
        let r = s
            .client
            .authed(&stranger)
            .get("/machines/lamp/i/hall")
            .await;
        assert_eq!(r.status, StatusCode::OK);

        // The caller's context was merged over the machine's: 10 + one flip.
        let admin = s.admin().get("/machines/lamp/i/hall/admin").await.json();
        assert_eq!(admin["context"]["flips"], 11);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_bundle_without_a_default_machine_is_refused_at_finalize() {
    within(180, async {
        let s = TestServer::start().await;
        s.create_machine("broken").await;
        let step1 = machines::provisional(&s, "broken", true).await;
        let code = b"export function allowRead() { return true; }";
        let r = machines::upload(&s, &step1, code, true).await;
        assert!(r.status.is_success(), "{:?}", r.body);
        let r = machines::finalize(&s, "broken", &step1, &json!({"makeCurrent": true})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
        assert_eq!(r.code(), "invalid-bundle");
        assert!(!r.json()["error"].as_str().unwrap().is_empty());
        s.shutdown().await;
    })
    .await;
}
