//! The worked examples under `examples/`: every `.github/shipgate.yml`
//! loads with the loader `shipgate config validate` uses, and each
//! example's smoke suites (the Action's engine, with made-up `${env.…}`
//! values) pass against a loopback app that answers the way its plan says
//! the app should, and fail when one answer breaks the plan.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};
use shipgate::config::repo::RepoConfig;
use shipgate::smoke::template::Vars;
use shipgate::smoke::{self, Limits, Outcome, SmokeConfig, SmokeOptions, SmokeReport};
use url::Url;

/// The made-up values the workflows would feed from secrets.
const PASSWORD: &str = "example-smoke-password-4410";
const ADMIN_EMAIL: &str = "admin.qa@affiliates.example";
const TOTP_SECRET: &str = "KRUGS4ZANFZSAYJAONSWG4TFOQ";
const TOKEN: &str = "example-session-token-93c1";
const JWT: &str = "example-jwt-b7d2";
const CHALLENGE: &str = "challenge-5521";

/// Which plan's app the loopback server plays.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Plan {
    /// 000: the wine shop on Vercel + Supabase.
    Shop,
    /// 001: the cafés SaaS on a compose host.
    Cafes,
    /// 002: the Git-flow affiliate platform.
    Affiliates,
    /// 003: the barbershop bookings on Railway.
    Barbers,
    /// 004: the personal brand on Vercel + Railway.
    Brand,
}

/// One answer that breaks the plan, to show the suite notices.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Broken {
    Nothing,
    /// The health endpoint says the database is unreachable.
    DatabaseDown,
    /// The second factor is refused.
    SecondFactor,
    /// A public sign-up is approved at once instead of waiting for review.
    NotPending,
    /// Nothing is rate limited.
    NoRateLimit,
    /// `/blog/…` answers a temporary redirect.
    TemporaryRedirect,
}

/// The examples, each with the plan it follows, the answer that breaks
/// it, and (part of) the name of the check that must then fail.
const EXAMPLES: &[(&str, Plan, Broken, &str)] = &[
    (
        "compose-cafe-saas",
        Plan::Cafes,
        Broken::SecondFactor,
        "log in with 2FA",
    ),
    (
        "git-flow-affiliates",
        Plan::Affiliates,
        Broken::NotPending,
        "influencer sign-up",
    ),
    (
        "railway-barber-bookings",
        Plan::Barbers,
        Broken::NoRateLimit,
        "payments limited",
    ),
    (
        "vercel-railway-brand",
        Plan::Brand,
        Broken::TemporaryRedirect,
        "old blog addresses",
    ),
    (
        "vercel-supabase-shop",
        Plan::Shop,
        Broken::DatabaseDown,
        "health with the database",
    ),
];

struct Site {
    plan: Plan,
    broken: Broken,
    /// Requests seen per key (rate limits, the warm-up).
    counts: Mutex<HashMap<String, u32>>,
}

impl Site {
    fn count(&self, key: &str) -> u32 {
        let mut counts = self.counts.lock().unwrap();
        let n = counts.entry(key.to_string()).or_default();
        *n += 1;
        *n
    }

    /// Counts a request against a limit of `max`: over it, a 429.
    fn limited(&self, key: &str, max: u32) -> Option<Response> {
        (self.count(key) > max && self.broken != Broken::NoRateLimit).then(|| {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "900")],
                "too many requests",
            )
                .into_response()
        })
    }

    fn health(&self) -> Response {
        // Degraded, not down: a 503 would be retried until the readiness
        // deadline; this answer fails at once on the database assertion.
        let db = if self.broken == Broken::DatabaseDown {
            "unreachable"
        } else {
            "connected"
        };
        let body = match self.plan {
            Plan::Barbers => {
                json!({ "status": "healthy", "checks": { "database": db, "redis": "connected" } })
            }
            _ => json!({ "status": "healthy", "database": db }),
        };
        Json(body).into_response()
    }

    fn second_factor_ok(&self, code: &Value) -> bool {
        let bytes = totp_rs::Secret::Encoded(TOTP_SECRET.into())
            .to_bytes()
            .unwrap();
        self.broken != Broken::SecondFactor
            && code.as_str().is_some_and(|c| {
                totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes)
                    .check_current(c)
                    .unwrap_or(false)
            })
    }

    fn answer(&self, method: &Method, path: &str, headers: &HeaderMap, body: &Bytes) -> Response {
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let bearer = |t: &str| {
            headers
                .get("authorization")
                .is_some_and(|v| v.as_bytes() == format!("Bearer {t}").as_bytes())
        };
        let get = method == Method::GET;
        let post = method == Method::POST;
        let unauthorized = || StatusCode::UNAUTHORIZED.into_response();
        match (self.plan, path) {
            (Plan::Shop, "/api/health") if get => self.health(),
            (Plan::Shop, "/" | "/productos" | "/checkout") if get => {
                "<html>shop</html>".into_response()
            }
            (Plan::Shop, "/api/products") if get => {
                Json(json!({ "products": [{ "id": 1 }] })).into_response()
            }
            (Plan::Shop, "/api/contact") if post => self
                .limited("contact", 10)
                .unwrap_or_else(|| Json(json!({ "sent": true })).into_response()),

            (Plan::Cafes, "/api/v1/health") if get => self.health(),
            (Plan::Cafes, "/api/v1/auth/login") if post => {
                if body["email"] == "smoke@cafes.example" && body["password"] == PASSWORD {
                    Json(json!({ "access_token": TOKEN })).into_response()
                } else {
                    // Limited per account.
                    let key = format!("login {}", body["email"]);
                    self.limited(&key, 10).unwrap_or_else(unauthorized)
                }
            }
            (Plan::Cafes, "/api/v1/auth/2fa") if post => {
                if bearer(TOKEN) && self.second_factor_ok(&body["code"]) {
                    Json(json!({ "verified": true })).into_response()
                } else {
                    unauthorized()
                }
            }
            (Plan::Cafes, "/api/v1/dashboard") if get && bearer(TOKEN) => {
                Json(json!({ "orders_today": 12 })).into_response()
            }
            (Plan::Cafes, "/api/v1/settlements") if get && bearer(TOKEN) => {
                Json(json!({ "items": [{ "id": 1, "total": 1250 }] })).into_response()
            }
            (Plan::Cafes, "/api/v1/businesses") if post && bearer(TOKEN) => {
                (StatusCode::CREATED, Json(json!({ "id": "biz-1" }))).into_response()
            }
            (Plan::Cafes, "/api/v1/webhooks/mercadopago") if post => {
                (StatusCode::UNAUTHORIZED, "missing x-signature").into_response()
            }

            (Plan::Affiliates, "/api/v1/health") if get => self.health(),
            (Plan::Affiliates, "/api/v1/auth/login") if post => {
                if body["email"] == ADMIN_EMAIL && body["password"] == PASSWORD {
                    Json(json!({ "challengeId": CHALLENGE })).into_response()
                } else {
                    unauthorized()
                }
            }
            (Plan::Affiliates, "/api/v1/auth/2fa") if post => {
                if body["challengeId"] == CHALLENGE && self.second_factor_ok(&body["code"]) {
                    Json(json!({ "accessToken": JWT })).into_response()
                } else {
                    unauthorized()
                }
            }
            (Plan::Affiliates, "/api/v1/dashboard/admin") if get && bearer(JWT) => {
                Json(json!({ "topInfluencers": [{ "id": "inf-1", "sales": 40 }] })).into_response()
            }
            (Plan::Affiliates, "/api/v1/commissions/settlements/run") if post && bearer(JWT) => {
                Json(json!({ "settled": 0, "dryRun": true })).into_response()
            }
            (Plan::Affiliates, "/api/v1/payments/withdrawals") if get && bearer(JWT) => {
                Json(json!({ "items": [] })).into_response()
            }
            (Plan::Affiliates, "/api/v1/public/influencers") if post => {
                let status = if self.broken == Broken::NotPending {
                    "approved"
                } else {
                    "pending"
                };
                (
                    StatusCode::CREATED,
                    Json(json!({ "id": "inf-2", "status": status })),
                )
                    .into_response()
            }

            (Plan::Barbers, "/api/health") if get => self.health(),
            (Plan::Barbers, "/api/services") if get => {
                Json(json!({ "services": ["corte"] })).into_response()
            }
            (Plan::Barbers, "/api/auth/login") if post => {
                let key = format!("login {}", body["email"]);
                self.limited(&key, 10).unwrap_or_else(unauthorized)
            }
            (Plan::Barbers, "/api/payments") if post => {
                self.limited("payments", 20).unwrap_or_else(unauthorized)
            }

            // Railway's restart: the first two health requests find it starting.
            (Plan::Brand, "/health") if get && self.count("warm-up") <= 2 => {
                StatusCode::SERVICE_UNAVAILABLE.into_response()
            }
            (Plan::Brand, "/health") if get => self.health(),
            (Plan::Brand, "/") if get => "<html>brand</html>".into_response(),
            (Plan::Brand, p) if get && p.starts_with("/blog/") => {
                let to = format!("/articles/{}", &p["/blog/".len()..]);
                let status = if self.broken == Broken::TemporaryRedirect {
                    StatusCode::FOUND
                } else {
                    StatusCode::MOVED_PERMANENTLY
                };
                (status, [("location", to)]).into_response()
            }
            (Plan::Brand, "/api/leads") if post => {
                let valid = body["email"].as_str().is_some_and(|e| e.contains('@'))
                    && body["gdprConsent"] == true;
                if valid {
                    Json(json!({ "received": true })).into_response()
                } else {
                    // Only failed submissions count against the limit.
                    self.limited("leads", 10)
                        .unwrap_or_else(|| StatusCode::BAD_REQUEST.into_response())
                }
            }
            _ => StatusCode::NOT_FOUND.into_response(),
        }
    }

    /// The header set the plan's app sends on every answer.
    fn headers(&self) -> &'static [(&'static str, &'static str)] {
        match self.plan {
            // vercel.json: no CSP; HSTS from Vercel.
            Plan::Shop => &[
                ("strict-transport-security", "max-age=63072000; includeSubDomains; preload"),
                ("x-content-type-options", "nosniff"),
                ("x-frame-options", "SAMEORIGIN"),
                ("x-xss-protection", "1; mode=block"),
                ("referrer-policy", "strict-origin-when-cross-origin"),
                ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
            ],
            // A CSP with inline scripts, a one-year HSTS, nothing else.
            Plan::Brand => &[
                ("strict-transport-security", "max-age=31536000; includeSubDomains"),
                ("x-content-type-options", "nosniff"),
                ("x-frame-options", "SAMEORIGIN"),
                (
                    "content-security-policy",
                    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.vercel-insights.com; style-src 'self' 'unsafe-inline'; img-src 'self' https:; font-src 'self' https:;",
                ),
            ],
            // nginx's or the middleware's full set.
            Plan::Cafes | Plan::Affiliates | Plan::Barbers => &[
                ("strict-transport-security", "max-age=31536000; includeSubDomains"),
                ("x-content-type-options", "nosniff"),
                ("x-frame-options", "DENY"),
                ("referrer-policy", "strict-origin-when-cross-origin"),
                ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
                ("content-security-policy", "default-src 'self'; frame-ancestors 'none'"),
            ],
        }
    }
}

async fn answer(
    State(site): State<Arc<Site>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut r = site.answer(&method, uri.path(), &headers, &body);
    for (k, v) in site.headers() {
        r.headers_mut().insert(*k, HeaderValue::from_static(v));
    }
    r
}

/// A loopback HTTPS listener for axum: the certificate names `localhost`,
/// issued by a CA made for the test, so the `tls` rule and HSTS (which
/// counts only over HTTPS) are checked as in production.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// The test CA's certificate and a `localhost` server config it issued.
fn pki() -> (
    rustls::pki_types::CertificateDer<'static>,
    Arc<rustls::ServerConfig>,
) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "shipgate examples CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_der = ca.self_signed(&ca_key).unwrap().der().clone();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key_der)
    .unwrap();
    (ca_der, Arc::new(config))
}

/// The plan's app on loopback over HTTPS; returns its address and the CA to trust.
async fn serve(
    plan: Plan,
    broken: Broken,
) -> (SocketAddr, rustls::pki_types::CertificateDer<'static>) {
    let site = Arc::new(Site {
        plan,
        broken,
        counts: Mutex::default(),
    });
    let app = Router::new().fallback(answer).with_state(site);
    let (ca, config) = pki();
    let listener = TlsListener {
        tcp: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        acceptor: tokio_rustls::TlsAcceptor::from(config),
    };
    let addr = listener.tcp.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, ca)
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// Every example's config, read and parsed as `shipgate config validate` does.
fn load(name: &str) -> RepoConfig {
    let path = examples_dir().join(name).join(".github/shipgate.yml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    RepoConfig::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The distinct smoke suites the example's environments run.
fn suites(config: &RepoConfig) -> Vec<(String, SmokeConfig)> {
    let mut out: Vec<(String, SmokeConfig)> = Vec::new();
    for name in config.environments.keys() {
        let suite = config.smoke_suite(name);
        if !out.iter().any(|(_, s)| s == suite) {
            out.push((name.clone(), suite.clone()));
        }
    }
    out
}

fn options(addr: SocketAddr, ca: rustls::pki_types::CertificateDer<'static>) -> SmokeOptions {
    SmokeOptions {
        extra_roots: vec![ca],
        resolve: vec![("localhost".into(), vec![addr])],
        retry_base: Duration::from_millis(5),
        request_timeout: Duration::from_secs(5),
        env: Some(Vars::with_env(BTreeMap::from([
            ("SMOKE_PASSWORD".to_string(), PASSWORD.to_string()),
            ("SMOKE_TOTP_SECRET".to_string(), TOTP_SECRET.to_string()),
            ("SMOKE_ADMIN_EMAIL".to_string(), ADMIN_EMAIL.to_string()),
        ]))),
        ..SmokeOptions::default()
    }
}

async fn run(plan: Plan, broken: Broken, suite: &SmokeConfig) -> SmokeReport {
    let (addr, ca) = serve(plan, broken).await;
    let base = Url::parse(&format!("https://localhost:{}/", addr.port())).unwrap();
    smoke::run(&base, suite, &options(addr, ca), &Limits::none()).await
}

fn table(r: &SmokeReport) -> String {
    r.results
        .iter()
        .map(|c| {
            format!(
                "{:?} {}: {} ({} ms)",
                c.outcome, c.name, c.reason, c.duration_ms
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_example_is_listed_here_and_its_config_validates() {
    let mut found: Vec<String> = std::fs::read_dir(examples_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let listed: Vec<&str> = EXAMPLES.iter().map(|(name, ..)| *name).collect();
    assert_eq!(found, listed, "each example needs a row in EXAMPLES");
    for name in listed {
        let config = load(name);
        assert!(!config.environments.is_empty(), "{name}: no environments");
        let dir = examples_dir().join(name);
        assert!(dir.join("README.md").is_file(), "{name}: no README.md");
        let workflows = std::fs::read_dir(dir.join(".github/workflows"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert!(workflows > 0, "{name}: no workflows");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_examples_smoke_suites_pass_against_the_app_its_plan_describes() {
    for (name, plan, ..) in EXAMPLES {
        for (env, suite) in suites(&load(name)) {
            let r = run(*plan, Broken::Nothing, &suite).await;
            assert_eq!(r.outcome(), Outcome::Pass, "{name} ({env}):\n{}", table(&r));
            // The made-up secrets and the sessions stay out of the report.
            let shown = format!("{}\n{}", serde_json::to_string(&r).unwrap(), table(&r));
            for secret in [PASSWORD, TOTP_SECRET, TOKEN, JWT, CHALLENGE, ADMIN_EMAIL] {
                assert!(
                    !shown.contains(secret),
                    "{name}: `{secret}` shown:\n{shown}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_example_fails_when_its_app_breaks_the_plan() {
    for (name, plan, broken, failing) in EXAMPLES {
        let mut seen = false;
        for (env, suite) in suites(&load(name)) {
            let r = run(*plan, *broken, &suite).await;
            let failed: Vec<&str> = r
                .results
                .iter()
                .filter(|c| c.outcome == Outcome::Fail)
                .map(|c| c.name.as_str())
                .collect();
            if failed.iter().any(|n| n.contains(failing)) {
                assert_eq!(r.outcome(), Outcome::Fail);
                seen = true;
            } else {
                assert!(
                    failed.is_empty(),
                    "{name} ({env}) with {broken:?}:\n{}",
                    table(&r)
                );
            }
        }
        assert!(seen, "{name}: no suite failed `{failing}` with {broken:?}");
    }
}
