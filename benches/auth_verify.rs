//! Cost of verifying one bearer token on the hot path (key already cached): header check,
//! HMAC-SHA256 over the signed part, claims parse and authContext derivation.

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::DecodingKey;
use serde_json::json;

use statewire::auth::keys::{mint_secret, CreateKeyRequest};
use statewire::auth::sign::{sign_token, SignOptions};
use statewire::auth::{jwt, Authenticator};
use statewire::ids::KeyId;
use statewire::store::memory::MemoryStore;

fn verify_token(c: &mut Criterion) {
    let id = KeyId::generate();
    let secret = mint_secret();
    let options = SignOptions {
        expires_in: Duration::from_secs(3600),
        issuer: None,
    };
    let act = json!({"sub": "user-123", "roles": ["reader", "writer"]});
    let token = sign_token(&id, &secret, &act, &options).unwrap().token;
    let hmac = DecodingKey::from_secret(secret.as_bytes()).unwrap();

    c.bench_function("auth/verify_cached_key", |b| {
        b.iter(|| {
            let kid = jwt::signing_key_id(std::hint::black_box(&token)).unwrap();
            jwt::verify(&token, &kid, &hmac).unwrap()
        })
    });
    c.bench_function("auth/sign", |b| {
        b.iter(|| sign_token(&id, &secret, std::hint::black_box(&act), &options).unwrap())
    });
}

/// The whole `authenticate` call as a route makes it, key in the cache.
fn authenticate(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let auth = Authenticator::new(Arc::new(MemoryStore::new()));
    let key = runtime
        .block_on(auth.create_key(CreateKeyRequest {
            name: "bench".into(),
            scopes: None,
            use_preset: Some("production".into()),
        }))
        .unwrap();
    let options = SignOptions {
        expires_in: Duration::from_secs(3600),
        issuer: None,
    };
    let token = sign_token(&key.id, &key.key, &json!({"sub": "u"}), &options)
        .unwrap()
        .token;
    c.bench_function("auth/authenticate_cached_key", |b| {
        b.iter(|| {
            runtime
                .block_on(auth.authenticate(Some(&token), None))
                .unwrap()
        })
    });
}

criterion_group!(benches, verify_token, authenticate);
criterion_main!(benches);
