//! Sites the smoke stories probe: an app with a login, as the reference
//! plans describe theirs (log in, then read the dashboard and the
//! settlements; create a business, then book).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

/// The smoke account's password: the workflow's secret.
pub const SMOKE_PASSWORD: &str = "correct-horse-battery-staple";
/// The session token the login hands out: a secret the flow saves.
pub const SESSION_TOKEN: &str = "tok-7f3a9c1e5b2d";
/// The smoke account's second factor: a TOTP secret as authenticator apps
/// show it (base32, 80 bits).
pub const TOTP_SECRET: &str = "JBSWY3DPEHPK3PXP";

/// Whether `code` is the account's current TOTP code (one step of skew, so
/// a code made at the end of a 30 s step still counts).
fn totp_ok(code: &str) -> bool {
    let bytes = totp_rs::Secret::Encoded(TOTP_SECRET.into())
        .to_bytes()
        .unwrap();
    totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes)
        .check_current(code)
        .unwrap_or(false)
}

/// What the site saw.
#[derive(Clone, Default)]
pub struct Seen {
    pub logins: Arc<AtomicU32>,
    pub dashboards: Arc<AtomicU32>,
    pub bookings: Arc<AtomicU32>,
}

impl Seen {
    pub fn logins(&self) -> u32 {
        self.logins.load(Ordering::SeqCst)
    }
    pub fn dashboards(&self) -> u32 {
        self.dashboards.load(Ordering::SeqCst)
    }
    pub fn bookings(&self) -> u32 {
        self.bookings.load(Ordering::SeqCst)
    }
}

/// `POST /api/login` (`{"email", "password"}` → `{"access_token"}`, 401
/// echoing the email otherwise), `GET /api/dashboard` (the bearer token →
/// settlements, echoing the session), `POST /api/businesses` (→ `{"id"}`)
/// and `POST /api/bookings` (`{"business": id}` → `{"status": "pending"}`).
pub async fn login_site() -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let s = seen.clone();
    let app = Router::new()
        .route(
            "/api/login",
            post({
                let s = s.clone();
                move |Json(body): Json<serde_json::Value>| {
                    let s = s.clone();
                    async move {
                        s.logins.fetch_add(1, Ordering::SeqCst);
                        if body["email"] == "smoke@example.com" && body["password"] == SMOKE_PASSWORD {
                            Json(json!({ "access_token": SESSION_TOKEN, "user": { "id": 7 } }))
                                .into_response()
                        } else {
                            // Echoes what it was sent, as careless apps do.
                            (StatusCode::UNAUTHORIZED, Json(json!({ "error": "bad credentials", "sent": body })))
                                .into_response()
                        }
                    }
                }
            }),
        )
        .route(
            "/api/2fa",
            post(|headers: HeaderMap, Json(body): Json<serde_json::Value>| async move {
                let bearer = format!("Bearer {SESSION_TOKEN}");
                let session = headers.get("authorization").is_some_and(|v| v == bearer.as_str());
                match body["code"].as_str() {
                    Some(code) if session && totp_ok(code) => {
                        Json(json!({ "verified": true })).into_response()
                    }
                    _ => StatusCode::UNAUTHORIZED.into_response(),
                }
            }),
        )
        .route(
            "/api/dashboard",
            get({
                let s = s.clone();
                move |headers: HeaderMap| {
                    let s = s.clone();
                    async move {
                        s.dashboards.fetch_add(1, Ordering::SeqCst);
                        let bearer = format!("Bearer {SESSION_TOKEN}");
                        if headers.get("authorization").is_some_and(|v| v == bearer.as_str()) {
                            Json(json!({ "session": SESSION_TOKEN, "settlements": [{ "id": 1, "total": 1250 }] }))
                                .into_response()
                        } else {
                            StatusCode::UNAUTHORIZED.into_response()
                        }
                    }
                }
            }),
        )
        .route(
            "/api/businesses",
            post(|| async { (StatusCode::CREATED, Json(json!({ "id": "biz-4821" }))) }),
        )
        .route(
            "/api/bookings",
            post(move |Json(body): Json<serde_json::Value>| {
                let s = s.clone();
                async move {
                    s.bookings.fetch_add(1, Ordering::SeqCst);
                    if body["business"] == "biz-4821" {
                        // Echoes the business, as booking APIs do.
                        let answer = json!({ "status": "pending", "business": body["business"] });
                        (StatusCode::CREATED, Json(answer)).into_response()
                    } else {
                        StatusCode::NOT_FOUND.into_response()
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

/// The plans' two flows: an authenticated one that needs the workflow's
/// secret, and an anonymous one (create a business, then book).
pub const FLOWS: &str = r#"
    - name: log in, then read the settlements
      flow:
        - name: log in
          method: POST
          path: /api/login
          headers: { content-type: application/json }
          body: '{"email": "smoke@example.com", "password": "${env.SMOKE_PASSWORD}"}'
          expect: { status: 200 }
          save: { token: $.access_token }
        - name: dashboard
          path: /api/dashboard
          headers: { authorization: 'Bearer ${token}' }
          expect: { status: 200, json: ['$.settlements[0].id exists'] }
    - name: create a business, then book
      flow:
        - name: create a business
          method: POST
          path: /api/businesses
          expect: { status: 201 }
          save: { business: $.id }
        - name: book
          method: POST
          path: /api/bookings
          headers: { content-type: application/json }
          body: '{"business": "${business}"}'
          expect: { status: 201, json: ['$.status == "pending"'] }
"#;
