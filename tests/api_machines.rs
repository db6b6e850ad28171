//! Machines and machine versions over HTTP: statuses and bodies as the State Backed client
//! expects them, the three-step upload, and the bundle size caps.

mod http_support;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::{Method, StatusCode};
use http_support::machines::{self, form, form_content_type, gzip};
use http_support::{within, TestServer};
use serde_json::json;

fn confirmation(key: &str, data: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn create_answers_201_with_no_body_and_get_lists_it() {
    within(30, async {
        let s = TestServer::start().await;
        let r = s
            .admin()
            .post(
                "/machines",
                &json!({"slug": "toggle", "indexes": ["owner"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert!(r.body.is_empty());

        let r = s.admin().get("/machines/toggle").await;
        assert_eq!(r.status, StatusCode::OK);
        let machine = &r.json()["machine"];
        assert_eq!(machine["indexes"], json!(["owner"]));
        assert!(machine["createdAt"].as_str().unwrap().ends_with('Z'));
        assert!(machine.get("currentVersion").is_none());

        let r = s.admin().get("/machines").await;
        assert_eq!(r.status, StatusCode::OK);
        let list = r.json();
        assert_eq!(list["machines"][0]["slug"], "toggle");
        assert!(list.get("cursor").is_none());
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_duplicate_machine_is_409_and_an_unknown_one_404() {
    within(30, async {
        let s = TestServer::start().await;
        s.create_machine("m").await;
        let r = s.admin().post("/machines", &json!({"slug": "m"})).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(r.code(), "invalid-state");
        let r = s.admin().get("/machines/nope").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn listing_machines_pages_with_a_cursor() {
    within(60, async {
        let s = TestServer::start().await;
        for i in 0..105 {
            let r = s
                .admin()
                .post("/machines", &json!({"slug": format!("m{i:03}")}))
                .await;
            assert_eq!(r.status, 201);
        }
        let first = s.admin().get("/machines").await.json();
        assert_eq!(first["machines"].as_array().unwrap().len(), 100);
        let cursor = first["cursor"].as_str().expect("a second page exists");
        let second = s
            .admin()
            .get(&format!("/machines?cursor={cursor}"))
            .await
            .json();
        assert_eq!(second["machines"].as_array().unwrap().len(), 5);
        assert!(second.get("cursor").is_none());
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn deleting_a_machine_needs_the_hmac_confirmation() {
    within(30, async {
        let s = TestServer::start().await;
        s.create_machine("gone").await;
        let r = s
            .admin()
            .delete(
                "/machines/gone",
                &json!({"dangerDataWillBeDeletedForever": true,
                        "hmacSha256OfMachineNameWithMachineNameKey": confirmation("x", "gone")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            r.json()["parameter"],
            "hmacSha256OfMachineNameWithMachineNameKey"
        );

        let r = s
            .admin()
            .delete(
                "/machines/gone",
                &json!({"dangerDataWillBeDeletedForever": false,
                        "hmacSha256OfMachineNameWithMachineNameKey": confirmation("gone", "gone")}),
            )
            .await;
        assert_eq!(r.json()["parameter"], "dangerDataWillBeDeletedForever");

        let r = s
            .admin()
            .delete(
                "/machines/gone",
                &json!({"dangerDataWillBeDeletedForever": true,
                        "hmacSha256OfMachineNameWithMachineNameKey": confirmation("gone", "gone")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(r.body.is_empty());
        assert_eq!(s.admin().get("/machines/gone").await.status, 404);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn the_provisional_step_answers_an_upload_url_on_this_server() {
    within(30, async {
        let s = TestServer::start().await;
        s.create_machine("m").await;
        let step1 = machines::provisional(&s, "m", true).await;
        let url = step1["codeUploadUrl"].as_str().unwrap();
        assert_eq!(url, s.client.url("/uploads"));
        let fields = step1["codeUploadFields"].as_object().unwrap();
        assert!(fields.contains_key("uploadId") && fields.contains_key("signature"));
        assert!(step1["machineVersionId"]
            .as_str()
            .unwrap()
            .starts_with("upl_"));

        let r = s.admin().post_empty("/machines/unknown/v").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_upload_with_forged_fields_is_refused() {
    within(30, async {
        let s = TestServer::start().await;
        s.create_machine("m").await;
        let step1 = machines::provisional(&s, "m", false).await;
        let id = step1["machineVersionId"].as_str().unwrap();
        let expires = step1["codeUploadFields"]["expires"].as_str().unwrap();
        let body = form(
            &[
                ("uploadId", id),
                ("expires", expires),
                ("signature", "AAAA"),
            ],
            b"export default 1",
        );
        let r = s
            .client
            .request(
                Method::POST,
                "/uploads",
                &[("content-type", &form_content_type())],
                body,
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn bundles_over_one_megabyte_gzipped_are_413() {
    within(60, async {
        let s = TestServer::start().await;
        s.create_machine("m").await;
        let step1 = machines::provisional(&s, "m", true).await;
        // Random bytes do not compress: the gzipped file stays above 1,000,000 bytes.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let noise: Vec<u8> = (0..1_100_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        assert!(gzip(&noise).len() > 1_000_000);
        let r = machines::upload(&s, &step1, &noise, true).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(r.json()["error"].as_str().unwrap().contains("gzipped"));
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn bundles_over_ten_megabytes_unzipped_are_413() {
    within(60, async {
        let s = TestServer::start().await;
        s.create_machine("m").await;
        // Zeros compress to a few kilobytes: small gzipped, too big once inflated.
        let huge = vec![b'a'; 10_000_001];
        let step1 = machines::provisional(&s, "m", true).await;
        let r = machines::upload(&s, &step1, &huge, true).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(r.json()["error"].as_str().unwrap().contains("unzipped"));

        let step1 = machines::provisional(&s, "m", false).await;
        let r = machines::upload(&s, &step1, &huge, false).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn finalizing_without_an_upload_or_with_a_foreign_id_fails() {
    within(30, async {
        let s = TestServer::start().await;
        s.create_machine("m").await;
        s.create_machine("other").await;
        let step1 = machines::provisional(&s, "m", true).await;
        let r = machines::finalize(&s, "m", &step1, &json!({})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = machines::finalize(&s, "other", &step1, &json!({})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = s
            .admin()
            .put("/machines/m/v/upl_forged.sig", &json!({}))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_invalid_bundle_is_400_invalid_bundle() {
    within(60, async {
        let s = TestServer::start().await;
        s.create_machine("m").await;
        let step1 = machines::provisional(&s, "m", true).await;
        let r = machines::upload(&s, &step1, b"\0asm not really wasm", true).await;
        assert!(r.status.is_success(), "{:?}", r.body);
        let r = machines::finalize(&s, "m", &step1, &json!({"makeCurrent": true})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
        assert_eq!(r.code(), "invalid-bundle");
        s.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_version_made_current_shows_on_the_machine_and_in_the_list() {
    within(120, async {
        let s = TestServer::start().await;
        let code = machines::toggle().await;
        let ver = machines::machine_with_version(&s, "toggle", &code).await;
        assert!(ver.starts_with("ver_"), "{ver}");

        let machine = s.admin().get("/machines/toggle").await.json();
        assert_eq!(machine["machine"]["currentVersion"]["id"], ver);
        assert_eq!(machine["machine"]["currentVersion"]["clientInfo"], "test");

        let versions = s.admin().get("/machines/toggle/v").await.json();
        assert_eq!(versions["versions"][0]["id"], ver);
        s.shutdown().await;
    })
    .await;
}
