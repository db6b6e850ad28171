//! The server on the ScyllaDB store, against the scripted CQL node of the store tests (no
//! real cluster can run here): `serve`'s store wiring and the HTTP routes over that backend.

mod http_support;
mod scylla_support;

use http::StatusCode;
use http_support::{within, TestServer};
use serde_json::json;
use statewire::config::StoreKind;
use statewire::server::Extensions;

use scylla_support::{config_for, parsed_schema, LwtShape, ScriptedNode, KEYSPACE};

#[tokio::test]
async fn machines_round_trip_through_the_scylla_store() {
    within(60, async {
        let node = ScriptedNode::start(parsed_schema(KEYSPACE), LwtShape::Scylla).await;
        let scylla = config_for(node.addr);
        let s = TestServer::start_with(
            move |c| {
                c.store.kind = StoreKind::Scylla;
                c.store.scylla = scylla;
            },
            Extensions::default(),
        )
        .await;
        let r = s
            .admin()
            .post("/machines", &json!({"slug": "wired", "indexes": ["owner"]}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let r = s.admin().get("/machines/wired").await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.json()["machine"]["indexes"], json!(["owner"]));
        let r = s.admin().post("/machines", &json!({"slug": "wired"})).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        s.shutdown().await;
        node.stop().await;
    })
    .await;
}
