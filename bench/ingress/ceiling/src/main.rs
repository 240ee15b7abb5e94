//! A webhook receiver that stores nothing, doing as much of shipgate's
//! ingress work as `STAGE` says, to show what the machine and the generator
//! allow at all:
//!
//! - 0: read the body, answer 202
//! - 1: and verify `X-Hub-Signature-256` (ring's HMAC, as shipgate)
//! - 2: and read `action`, `installation.id`, `repository.full_name` with
//!   serde_json (as shipgate's envelope)
//! - 3: and lz4-compress the body (as shipgate before it stores it)
//!
//! `LISTEN=127.0.0.1:PORT STAGE=3 ingress-ceiling`; the secret is the
//! benchmark's. Wrong signatures and bodies get 400, like shipgate's.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde::Deserialize;

const SECRET: &[u8] = b"bench-webhook-secret";

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    installation: Option<Installation>,
    #[serde(default)]
    repository: Option<Box<serde_json::value::RawValue>>,
}

#[derive(Deserialize)]
struct Installation {
    id: i64,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

struct Ceiling {
    stage: u8,
    key: ring::hmac::Key,
}

async fn webhook(
    State(ceiling): State<Arc<Ceiling>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    match accept(&ceiling, &headers, &body) {
        Some(()) => (StatusCode::ACCEPTED, "{\"queued\":true}"),
        None => (StatusCode::BAD_REQUEST, "{\"error\":\"refused\"}"),
    }
}

fn accept(ceiling: &Ceiling, headers: &HeaderMap, body: &[u8]) -> Option<()> {
    if ceiling.stage >= 1 {
        let signature = headers.get("x-hub-signature-256")?.to_str().ok()?;
        let expected = hex::decode(signature.strip_prefix("sha256=")?).ok()?;
        ring::hmac::verify(&ceiling.key, body, &expected).ok()?;
    }
    if ceiling.stage >= 2 {
        let envelope: Envelope = serde_json::from_slice(body).ok()?;
        let repository: Repository = serde_json::from_str(envelope.repository?.get()).ok()?;
        std::hint::black_box((
            envelope.action,
            envelope.installation.map(|i| i.id),
            repository.full_name,
        ));
    }
    if ceiling.stage >= 3 {
        std::hint::black_box(lz4_flex::block::compress_prepend_size(body));
    }
    Some(())
}

#[tokio::main]
async fn main() {
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let stage: u8 = std::env::var("STAGE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s| *s <= 3)
        .expect("STAGE must be 0, 1, 2 or 3");
    let ceiling = Arc::new(Ceiling {
        stage,
        key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET),
    });
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {listen}: {e}"));
    let app = Router::new()
        .route("/webhook", post(webhook))
        .with_state(ceiling);
    axum::serve(listener, app).await.expect("server failed");
}
