//! The smoke engine against real servers on loopback: assertions, rules,
//! TLS with generated certificates, readiness waits.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use shipgate::smoke::guard::Guard;
use shipgate::smoke::{self, CheckSpec, Limits, Outcome, SmokeConfig, SmokeOptions};
use url::Url;

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn suite(yaml: &str) -> SmokeConfig {
    let c: SmokeConfig = serde_yaml_ng::from_str(yaml).unwrap();
    c.validate("smoke").unwrap();
    c
}

fn fast() -> SmokeOptions {
    SmokeOptions {
        retry_base: Duration::from_millis(5),
        request_timeout: Duration::from_secs(2),
        ..SmokeOptions::default()
    }
}

const GOOD_HEADERS: &[(&str, &str)] = &[
    ("strict-transport-security", "max-age=31536000"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    ("permissions-policy", "geolocation=()"),
    ("content-security-policy", "default-src 'self'"),
];

fn app(warm_after: u32, limit_after: u32) -> Router {
    let warm = Arc::new(AtomicU32::new(0));
    let hits = Arc::new(AtomicU32::new(0));
    Router::new()
        .route("/api/health", get(|| async { axum::Json(serde_json::json!({"status": "healthy", "db": {"latency_ms": 3}, "tags": ["v2"]})) }))
        .route("/api/degraded", get(|| async { axum::Json(serde_json::json!({"status": "degraded"})) }))
        .route("/slow", get(|| async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            "ok"
        }))
        .route("/warm", get(move || {
            let warm = warm.clone();
            async move {
                if warm.fetch_add(1, Ordering::SeqCst) < warm_after {
                    (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "0")], "warming up").into_response()
                } else {
                    "ready".into_response()
                }
            }
        }))
        .route("/limited", get(move || {
            let hits = hits.clone();
            async move {
                if hits.fetch_add(1, Ordering::SeqCst) >= limit_after {
                    (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "30")], "slow down").into_response()
                } else {
                    "ok".into_response()
                }
            }
        }))
        .route("/unlimited", get(|| async { "ok" }))
        .route("/headers", get(|| async {
            let mut h = HeaderMap::new();
            for (k, v) in GOOD_HEADERS {
                h.insert(*k, v.parse().unwrap());
            }
            (h, "hardened")
        }))
        .route("/cors", get(|headers: HeaderMap| async move {
            let origin = headers.get("origin").cloned().unwrap();
            ([("access-control-allow-origin", origin.to_str().unwrap().to_string()), ("access-control-allow-credentials", "true".to_string())], "creds")
        }))
        .route("/big", get(|| async { "x".repeat(3 * 1024 * 1024) }))
}

#[tokio::test]
async fn request_checks_with_json_header_body_and_status_assertions() {
    let addr = serve(app(0, 1000)).await;
    let base = Url::parse(&format!("http://{addr}/")).unwrap();
    let s = suite(
        r#"
checks:
  - name: health
    path: /api/health
    expect:
      status: 200
      json: ['$.status == "healthy"', '$.db.latency_ms < 50', '$.tags contains "v2"', '$.error !exists']
      headers: { content-type: { matches: "json" } }
      body_contains: healthy
      max_ms: 2000
  - name: degraded
    path: /api/degraded
    expect: { json: ['$.status == "healthy"'] }
  - name: wrong status
    path: /nope
    expect: { status: "2xx" }
  - name: body regex
    path: /unlimited
    expect: { body_matches: "^ok$", headers: { x-missing: { present: true } } }
"#,
    );
    let r = smoke::run(&base, &s, &fast(), &Limits::none()).await;
    let by_name = |n: &str| r.results.iter().find(|c| c.name == n).unwrap().clone();
    assert_eq!(
        by_name("health").outcome,
        Outcome::Pass,
        "{:?}",
        by_name("health")
    );
    assert!(
        by_name("health").reason.starts_with("200 in "),
        "{}",
        by_name("health").reason
    );
    assert_eq!(
        by_name("degraded").reason,
        "`$.status == \"healthy\"`: got \"degraded\""
    );
    assert_eq!(by_name("wrong status").reason, "status 404 (expected 2xx)");
    assert_eq!(by_name("body regex").reason, "header `x-missing` missing");
    assert_eq!(r.outcome(), Outcome::Fail);
    assert_eq!(r.summary(), "1 passed, 0 warned, 3 failed");
}

#[tokio::test]
async fn latency_percentiles_over_samples() {
    let addr = serve(app(0, 1000)).await;
    let base = Url::parse(&format!("http://{addr}/")).unwrap();
    let s = suite("checks:\n  - { path: /slow, samples: 5, expect: { p95_ms: 100 } }\n  - { path: /unlimited, samples: 20, expect: { p95_ms: 1000, p99_ms: 1000 } }\n");
    let r = smoke::run(&base, &s, &fast(), &Limits::none()).await;
    let slow = &r.results[0];
    assert_eq!(slow.outcome, Outcome::Fail);
    assert!(slow.reason.starts_with("p95 2"), "{}", slow.reason);
    assert!(
        slow.reason.ends_with("ms > 100 ms over 5 samples"),
        "{}",
        slow.reason
    );
    assert_eq!(slow.latency.as_ref().unwrap().samples, 5);
    assert_eq!(r.results[1].outcome, Outcome::Pass, "{:?}", r.results[1]);
    assert_eq!(r.results[1].latency.as_ref().unwrap().samples, 20);
}

#[tokio::test]
async fn a_warming_deploy_is_retried_until_ready_and_attempts_are_counted() {
    let addr = serve(app(3, 1000)).await;
    let base = Url::parse(&format!("http://{addr}/")).unwrap();
    let r = smoke::run(
        &base,
        &suite("checks:\n  - { name: warm, path: /warm }\n"),
        &fast(),
        &Limits::none(),
    )
    .await;
    assert_eq!(r.results[0].outcome, Outcome::Pass, "{:?}", r.results[0]);
    assert_eq!(r.results[0].attempts, 4);
    assert!(
        r.results[0].reason.ends_with("after 4 attempts"),
        "{}",
        r.results[0].reason
    );

    // A deadline shorter than the warm-up: fails, with the attempts reported.
    let addr = serve(app(1000, 1000)).await;
    let base = Url::parse(&format!("http://{addr}/")).unwrap();
    let r = smoke::run(
        &base,
        &suite("wait: { timeout: 1s }\nchecks:\n  - { name: warm, path: /warm }\n"),
        &fast(),
        &Limits::none(),
    )
    .await;
    assert_eq!(r.results[0].outcome, Outcome::Fail);
    assert!(
        r.results[0]
            .reason
            .starts_with("status 503 (expected 2xx or 3xx)"),
        "{}",
        r.results[0].reason
    );
    assert!(r.results[0].attempts > 3, "{}", r.results[0].attempts);

    // Nothing listening: connection errors are retried, then reported.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let base = Url::parse(&format!("http://{closed}/")).unwrap();
    let r = smoke::run(
        &base,
        &suite("wait: { timeout: 1s }\nchecks:\n  - { name: down }\n"),
        &fast(),
        &Limits::none(),
    )
    .await;
    assert_eq!(r.results[0].outcome, Outcome::Fail);
    assert!(
        r.results[0].reason.starts_with("connection failed"),
        "{}",
        r.results[0].reason
    );
}

#[tokio::test]
async fn rules_security_headers_cors_rate_limit_and_redirects() {
    let addr = serve(app(0, 5)).await;
    let base = Url::parse(&format!("http://{addr}/")).unwrap();
    let s = suite(
        r#"
checks:
  - { rule: security_headers, path: /headers }
  - { rule: cors, path: /cors }
  - { rule: cors, path: /unlimited, name: cors ok }
  - { rule: rate_limit, path: /limited, burst: 20 }
  - { rule: rate_limit, path: /unlimited, burst: 20, name: no limit }
  - { rule: tls }
"#,
    );
    let r = smoke::run(&base, &s, &fast(), &Limits::none()).await;
    let headers = &r.results[0];
    // Served over plain HTTP, so HSTS cannot pass; the other five do.
    assert_eq!(headers.outcome, Outcome::Fail);
    assert_eq!(
        headers.reason,
        "5 of 6 good; Strict-Transport-Security: not served over HTTPS"
    );
    assert_eq!(
        r.results[1].reason,
        "reflects Origin https://evil.example with Access-Control-Allow-Credentials: true"
    );
    assert_eq!(r.results[2].outcome, Outcome::Pass);
    assert_eq!(r.results[3].outcome, Outcome::Pass, "{:?}", r.results[3]);
    assert!(
        r.results[3]
            .reason
            .ends_with("of 20 requests got 429 with Retry-After"),
        "{}",
        r.results[3].reason
    );
    assert_eq!(
        r.results[4].reason,
        "no 429 in a burst of 20 requests (0 failed)"
    );
    assert_eq!(r.results[5].outcome, Outcome::Skipped);

    // HTTP → HTTPS: a redirecting plain-HTTP port, probed through the rule's `url`.
    let redirect = serve(Router::new().fallback(|| async {
        (
            StatusCode::MOVED_PERMANENTLY,
            [("location", "https://localhost/")],
        )
    }))
    .await;
    let temporary = serve(
        Router::new()
            .fallback(|| async { (StatusCode::FOUND, [("location", "https://localhost/")]) }),
    )
    .await;
    let plain = serve(Router::new().fallback(|| async { "no redirect" })).await;
    let https_base = Url::parse("https://localhost/").unwrap();
    for (port, want, reason) in [
        (redirect.port(), Outcome::Pass, "301 → https://localhost/"),
        (
            temporary.port(),
            Outcome::Warn,
            "302 is a temporary redirect to https://localhost/; use 301 or 308",
        ),
        (
            plain.port(),
            Outcome::Fail,
            "answers 200 over plain HTTP instead of redirecting",
        ),
    ] {
        let s = suite(&format!(
            "checks:\n  - {{ rule: https_redirect, url: \"http://localhost:{port}/\" }}\n"
        ));
        let r = smoke::run(&https_base, &s, &fast(), &Limits::none()).await;
        assert_eq!(r.results[0].outcome, want, "{:?}", r.results[0]);
        assert!(
            r.results[0].reason.ends_with(reason),
            "{}",
            r.results[0].reason
        );
    }
}

#[tokio::test]
async fn bodies_are_capped() {
    let addr = serve(app(0, 1000)).await;
    let base = Url::parse(&format!("http://{addr}/")).unwrap();
    let opts = SmokeOptions {
        body_cap: 1024,
        ..fast()
    };
    let r = smoke::run(
        &base,
        &suite("checks:\n  - { path: /big, expect: { json: ['$.a exists'] } }\n"),
        &opts,
        &Limits::none(),
    )
    .await;
    assert!(
        r.results[0]
            .reason
            .starts_with("body is not JSON (body cut at the size cap)"),
        "{}",
        r.results[0].reason
    );
}

#[tokio::test]
async fn the_zero_config_suite_runs_when_nothing_is_configured() {
    let addr = serve(app(0, 1000)).await;
    let base = Url::parse(&format!("http://{addr}/unlimited")).unwrap();
    let r = smoke::run(&base, &SmokeConfig::default(), &fast(), &Limits::none()).await;
    let names: Vec<_> = r
        .results
        .iter()
        .map(|c| (c.name.as_str(), c.outcome))
        .collect();
    assert_eq!(
        names,
        [
            ("GET /", Outcome::Fail),
            ("security headers", Outcome::Warn),
            ("TLS", Outcome::Skipped)
        ]
    );
    // `GET /` on this server is a 404: the default suite wants 2xx or 3xx.
    assert_eq!(r.results[0].reason, "status 404 (expected 2xx or 3xx)");
    let _ = CheckSpec::default();
}

// ---------------------------------------------------------------- TLS

struct Pki {
    ca: rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_der: rustls::pki_types::CertificateDer<'static>,
}

fn pki() -> Pki {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "shipgate test CA");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let ca_der = cert.der().clone();
    Pki {
        ca: rcgen::Issuer::new(params, key),
        ca_der,
    }
}

/// An HTTPS server on loopback with a certificate for `host` valid from
/// `from_days` to `to_days` relative to now.
async fn tls_server(pki: &Pki, host: &str, from_days: i64, to_days: i64) -> SocketAddr {
    tls_server_answering(pki, host, from_days, to_days, &[]).await
}

/// Like [`tls_server`], answering `200 ok` with `headers` too.
async fn tls_server_answering(
    pki: &Pki,
    host: &str,
    from_days: i64,
    to_days: i64,
    headers: &[(&str, &str)],
) -> SocketAddr {
    let mut head = String::from("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let response: Arc<[u8]> = format!("{head}\r\nok").into_bytes().into();
    let mut params = rcgen::CertificateParams::new(vec![host.to_string()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::days(from_days);
    params.not_after = now + time::Duration::days(to_days);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &pki.ca).unwrap();
    let chain = vec![cert.der().clone()];
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key_der)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, response) = (acceptor.clone(), response.clone());
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut buf = [0u8; 1024];
                    let _ = tls.read(&mut buf).await;
                    let _ = tls.write_all(&response).await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    addr
}

async fn tls_result(pki: &Pki, addr: SocketAddr, yaml: &str) -> smoke::CheckResult {
    let base = Url::parse(&format!("https://localhost:{}/", addr.port())).unwrap();
    let opts = SmokeOptions {
        extra_roots: vec![pki.ca_der.clone()],
        resolve: vec![("localhost".into(), vec![addr])],
        ..fast()
    };
    smoke::run(&base, &suite(yaml), &opts, &Limits::none())
        .await
        .results
        .remove(0)
}

#[tokio::test]
async fn tls_expiry_host_and_version() {
    let pki = pki();
    let good = tls_server(&pki, "localhost", -1, 90).await;
    let r = tls_result(&pki, good, "checks:\n  - { rule: tls }\n").await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:?}");
    assert!(
        r.reason
            .starts_with("valid for localhost, expires in 89 days")
            || r.reason
                .starts_with("valid for localhost, expires in 90 days"),
        "{}",
        r.reason
    );
    assert!(r.reason.ends_with("TLS 1.3"), "{}", r.reason);

    let soon = tls_server(&pki, "localhost", -60, 10).await;
    let r = tls_result(&pki, soon, "checks:\n  - { rule: tls }\n").await;
    assert_eq!(r.outcome, Outcome::Warn, "{r:?}");
    assert!(
        r.reason.starts_with("certificate expires in 9 days")
            || r.reason.starts_with("certificate expires in 10 days"),
        "{}",
        r.reason
    );

    let very_soon = tls_server(&pki, "localhost", -60, 3).await;
    let r = tls_result(&pki, very_soon, "checks:\n  - { rule: tls }\n").await;
    assert_eq!(r.outcome, Outcome::Fail, "{r:?}");

    let custom = tls_result(
        &pki,
        very_soon,
        "checks:\n  - { rule: tls, warn_days: 5, fail_days: 1 }\n",
    )
    .await;
    assert_eq!(custom.outcome, Outcome::Warn, "{custom:?}");

    let expired = tls_server(&pki, "localhost", -60, -1).await;
    let r = tls_result(&pki, expired, "checks:\n  - { rule: tls }\n").await;
    assert_eq!(r.outcome, Outcome::Fail);
    assert!(
        r.reason
            .starts_with("certificate not accepted for localhost"),
        "{}",
        r.reason
    );
    assert!(
        r.reason.to_ascii_lowercase().contains("expired"),
        "{}",
        r.reason
    );

    let wrong_host = tls_server(&pki, "other.example", -1, 90).await;
    let r = tls_result(&pki, wrong_host, "checks:\n  - { rule: tls }\n").await;
    assert_eq!(r.outcome, Outcome::Fail);
    assert!(
        r.reason.contains("not valid for") || r.reason.to_ascii_lowercase().contains("name"),
        "{}",
        r.reason
    );

    // A request check over the same TLS trusts the extra root too.
    let r = tls_result(&pki, good, "checks:\n  - { name: https get }\n").await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:?}");
}

#[tokio::test]
async fn retry_after_is_honoured_even_when_it_outlasts_the_deadline() {
    // Retry-After: 30 with a 1 s deadline: waiting is pointless, so there is
    // exactly one attempt (a plain backoff would have retried many times).
    let router = Router::new().route(
        "/",
        get(|| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [("retry-after", "30")],
                "later",
            )
        }),
    );
    let addr = serve(router).await;
    let base = Url::parse(&format!("http://{addr}/")).unwrap();
    let r = smoke::run(
        &base,
        &suite("wait: { timeout: 1s }\nchecks:\n  - { name: busy }\n"),
        &fast(),
        &Limits::none(),
    )
    .await;
    assert_eq!(
        (r.results[0].outcome, r.results[0].attempts),
        (Outcome::Fail, 1),
        "{:?}",
        r.results[0]
    );
    assert_eq!(r.results[0].reason, "status 503 (expected 2xx or 3xx)");
}

#[tokio::test]
async fn only_configured_statuses_are_retried() {
    let addr = serve(app(3, 1000)).await;
    let base = Url::parse(&format!("http://{addr}/")).unwrap();
    // 503 is not in this retry set: the warming endpoint fails at once.
    let r = smoke::run(
        &base,
        &suite("wait: { retry_on: [connect, 502] }\nchecks:\n  - { name: warm, path: /warm }\n"),
        &fast(),
        &Limits::none(),
    )
    .await;
    assert_eq!(
        (r.results[0].outcome, r.results[0].attempts),
        (Outcome::Fail, 1),
        "{:?}",
        r.results[0]
    );
}

// ------------------------------------------------------- the SSRF guard per hop

/// A loopback server answering `answer` on every path; counts requests.
async fn counting(
    bind: &str,
    answer: impl Fn() -> axum::response::Response + Clone + Send + Sync + 'static,
) -> (SocketAddr, Arc<AtomicU32>) {
    let hits = Arc::new(AtomicU32::new(0));
    let h = hits.clone();
    let router = Router::new().fallback(move || {
        let (h, answer) = (h.clone(), answer.clone());
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            answer()
        }
    });
    let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (addr, hits)
}

#[tokio::test]
async fn a_redirect_from_the_checked_host_to_a_private_address_is_refused() {
    let (internal, internal_hits) =
        counting("127.0.0.1:0", || "metadata-secret".into_response()).await;
    let location = format!(
        "http://admin:hunter2@127.0.0.1:{}/latest/meta-data/?token=s3cret",
        internal.port()
    );
    let (preview, preview_hits) = counting("127.0.0.1:0", move || {
        (StatusCode::FOUND, [("location", location.clone())]).into_response()
    })
    .await;
    // What the server does for a deployment URL: its host passed the guard,
    // and the checked addresses are pinned.
    let base = Url::parse(&format!("http://preview.test:{}/", preview.port())).unwrap();
    let opts = SmokeOptions {
        resolve: vec![("preview.test".into(), vec![preview])],
        ..fast()
    };
    // 127.0.0.1 is an allowed host; its address is private.
    let limits = Limits {
        guard: Some(Guard::new(&["preview.test".into(), "127.0.0.1".into()], false).unwrap()),
        ..Limits::none()
    };
    let r = smoke::run(
        &base,
        &suite("wait: { timeout: 1s }\nchecks:\n  - { name: home }\n"),
        &opts,
        &limits,
    )
    .await;
    assert_eq!(preview_hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        internal_hits.load(Ordering::SeqCst),
        0,
        "the redirect reached 127.0.0.1: {:?}",
        r.results[0]
    );
    assert_eq!(r.results[0].outcome, Outcome::Fail);
    assert!(!r.results[0].reason.contains("hunter2") && !r.results[0].reason.contains("s3cret"));
    assert_eq!(
        r.results[0].reason,
        format!("refused: redirect to http://127.0.0.1:{}/latest/meta-data/: `127.0.0.1` resolves to 127.0.0.1 (loopback, private, link-local or metadata); set preview.allow_private to probe it", internal.port())
    );
}

#[tokio::test]
async fn a_trailing_dot_host_uses_the_pinned_addresses() {
    // The pin is for `preview.test`; the URL names `preview.test.`. An
    // unpinned lookup would ask DNS, whose second answer may differ from the
    // one the guard checked.
    let (pinned, hits) = counting("127.0.0.2:0", || "pinned".into_response()).await;
    let base = Url::parse(&format!("http://preview.test.:{}/", pinned.port())).unwrap();
    let opts = SmokeOptions {
        resolve: vec![("preview.test".into(), vec![pinned])],
        ..fast()
    };
    let r = smoke::run(
        &base,
        &suite("wait: { timeout: 1s }\nchecks:\n  - { name: home }\n"),
        &opts,
        &Limits::none(),
    )
    .await;
    assert_eq!(hits.load(Ordering::SeqCst), 1, "{:?}", r.results[0]);
    assert_eq!(r.results[0].outcome, Outcome::Pass, "{:?}", r.results[0]);
    // Under the server's guard too: the pin holds what the guard checked.
    let limits = Limits {
        guard: Some(Guard::new(&["preview.test".into()], false).unwrap()),
        ..Limits::none()
    };
    let r = smoke::run(
        &base,
        &suite("wait: { timeout: 1s }\nchecks:\n  - { name: home }\n"),
        &opts,
        &limits,
    )
    .await;
    assert_eq!(hits.load(Ordering::SeqCst), 2, "{:?}", r.results[0]);
    assert_eq!(r.results[0].outcome, Outcome::Pass, "{:?}", r.results[0]);
}

#[tokio::test]
async fn the_action_follows_redirects_anywhere_without_carrying_credentials() {
    // The Action probes from the user's own runner: no guard, loopback is fine.
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let (elsewhere, elsewhere_hits) = counting("127.0.0.1:0", || "elsewhere".into_response()).await;
    let other = Router::new().fallback(move |headers: HeaderMap| {
        let s2 = s2.clone();
        async move {
            s2.lock()
                .unwrap()
                .push(headers.get("authorization").is_some());
            "final"
        }
    });
    let other = serve(other).await;
    // The redirect goes to another origin (localhost, not 127.0.0.1).
    let hops = format!("http://localhost:{}/final", other.port());
    let (first, first_hits) = counting("127.0.0.1:0", move || {
        (StatusCode::FOUND, [("location", hops.clone())]).into_response()
    })
    .await;
    let base = Url::parse(&format!("http://{first}/")).unwrap();
    let r = smoke::run(
        &base,
        &suite(&format!(
            "checks:\n  - {{ name: hop, headers: {{ authorization: Bearer s3cret }} }}\n  - {{ name: direct, url: \"http://{elsewhere}/\" }}\n"
        )),
        &fast(),
        &Limits::none(),
    )
    .await;
    assert_eq!(r.outcome(), Outcome::Pass, "{:?}", r.results);
    assert_eq!(first_hits.load(Ordering::SeqCst), 1);
    assert_eq!(elsewhere_hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        *seen.lock().unwrap(),
        [false],
        "the credential crossed origins"
    );
    assert_eq!(r.requests, 3);
}

/// A limit on a POST endpoint (a login, a lead form): the burst sends the
/// check's method, headers and body, and only those requests are counted.
#[tokio::test]
async fn a_rate_limit_burst_posts_the_checks_body() {
    let (addr, posts) = crate::common::limited_post_endpoint(
        "/api/leads",
        r#"{"email":"smoke@example.com"}"#,
        Some("application/json"),
        10,
    )
    .await;
    let base = Url::parse(&format!("http://{addr}/")).unwrap();
    let s = suite(
        r#"
checks:
  - rule: rate_limit
    path: /api/leads
    method: POST
    headers: { content-type: application/json }
    body: '{"email":"smoke@example.com"}'
    burst: 15
"#,
    );
    let r = smoke::run(&base, &s, &fast(), &Limits::none()).await;
    assert_eq!(r.results[0].outcome, Outcome::Pass, "{:?}", r.results[0]);
    assert!(
        r.results[0]
            .reason
            .ends_with("of 15 requests got 429 with Retry-After"),
        "{}",
        r.results[0].reason
    );
    assert_eq!(
        posts.load(Ordering::SeqCst),
        15,
        "every request of the burst was a well-formed POST"
    );
}

/// A redirect can be the answer a check asserts on: `follow_redirects:
/// false` stops at it, so the status and `location` are the redirect's own.
#[tokio::test]
async fn a_redirect_is_asserted_on_when_following_is_off() {
    let (target, target_hits) = counting("127.0.0.1:0", || "new home".into_response()).await;
    let to = format!("http://{target}/new");
    let (old, _) = counting("127.0.0.1:0", move || {
        (StatusCode::MOVED_PERMANENTLY, [("location", to.clone())]).into_response()
    })
    .await;
    let base = Url::parse(&format!("http://{old}/")).unwrap();
    let yaml = |location: &str| {
        format!(
            "checks:\n  - {{ name: moved, path: /old, follow_redirects: false, expect: {{ status: 301, headers: {{ location: {{ equals: \"{location}\" }} }} }} }}\n"
        )
    };
    let r = smoke::run(
        &base,
        &suite(&yaml(&format!("http://{target}/new"))),
        &fast(),
        &Limits::none(),
    )
    .await;
    assert_eq!(r.outcome(), Outcome::Pass, "{:?}", r.results);
    assert_eq!(
        target_hits.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );

    let r = smoke::run(
        &base,
        &suite(&yaml("https://elsewhere.example/")),
        &fast(),
        &Limits::none(),
    )
    .await;
    assert_eq!(r.outcome(), Outcome::Fail, "{:?}", r.results);
    assert!(
        r.results[0].reason.contains("location"),
        "{:?}",
        r.results[0]
    );

    // Following (the default), the same check sees the target's 200 instead.
    let followed = suite("checks:\n  - { name: moved, path: /old, expect: { status: 301 } }\n");
    let r = smoke::run(&base, &followed, &fast(), &Limits::none()).await;
    assert_eq!(r.outcome(), Outcome::Fail, "{:?}", r.results);
    assert_eq!(target_hits.load(Ordering::SeqCst), 1);
}

#[test]
fn samples_and_bursts_out_of_range_are_config_errors() {
    for (yaml, want) in [
        (
            "checks:\n  - { samples: 1001 }\n",
            "smoke.checks[0].samples: expected 1 to 1000, got 1001",
        ),
        (
            "checks:\n  - { samples: 0 }\n",
            "smoke.checks[0].samples: expected 1 to 1000, got 0",
        ),
        (
            "checks:\n  - { rule: rate_limit, burst: 501 }\n",
            "smoke.checks[0].burst: expected 1 to 500, got 501",
        ),
    ] {
        let c: SmokeConfig = serde_yaml_ng::from_str(yaml).unwrap();
        assert_eq!(c.validate("smoke").unwrap_err(), want);
    }
}

// ---------------------------------------------------- security headers as the team decides

/// Plan 004's headers over HTTPS: its `vercel.json` sets HSTS, `nosniff` and
/// `SAMEORIGIN` on every path, and its CSP allows `'unsafe-inline'` scripts.
const PLAN_004_HEADERS: &[(&str, &str)] = &[
    ("strict-transport-security", "max-age=31536000; includeSubDomains"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "SAMEORIGIN"),
    ("content-security-policy", "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.vercel-insights.com; style-src 'self' 'unsafe-inline'; img-src 'self' https:; font-src 'self' https:;"),
];

/// A site without a CSP: plan 004's `vercel.json` as its deployment section
/// writes it (the CSP comes in a later section). Plan 003 lists "security
/// headers" and "a CSP policy" without giving any values, so this set stands
/// for a team that has not written its CSP yet.
const NO_CSP_HEADERS: &[(&str, &str)] = &[
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "SAMEORIGIN"),
];

#[tokio::test]
async fn the_reference_plans_header_sets_fail_by_default_and_pass_as_the_team_decides() {
    let pki = pki();
    let plan_004 = tls_server_answering(&pki, "localhost", -1, 90, PLAN_004_HEADERS).await;
    let no_csp = tls_server_answering(&pki, "localhost", -1, 90, NO_CSP_HEADERS).await;
    let check = |yaml: &str| format!("checks:\n  - {yaml}\n");

    // The defaults: both fail on their CSP.
    let r = tls_result(&pki, plan_004, &check("{ rule: security_headers }")).await;
    assert_eq!(r.outcome, Outcome::Fail);
    assert_eq!(r.reason, "3 of 6 good; Referrer-Policy: missing (browsers default to strict-origin-when-cross-origin); Permissions-Policy: missing; Content-Security-Policy: script-src allows 'unsafe-inline' without a nonce or hash");
    let r = tls_result(&pki, no_csp, &check("{ rule: security_headers }")).await;
    assert_eq!(r.outcome, Outcome::Fail);
    assert!(
        r.reason.ends_with("Content-Security-Policy: missing"),
        "{}",
        r.reason
    );

    // As the teams decide: plan 004 allows inline scripts and does without a
    // Permissions-Policy; the API without a CSP ignores it.
    let r = tls_result(
        &pki,
        plan_004,
        &check("{ rule: security_headers, csp: { allow_unsafe_inline: true }, ignore: [permissions-policy], require: [referrer-policy] }"),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Fail, "{r:?}");
    assert_eq!(r.reason, "4 of 5 good; Referrer-Policy: missing, and this check requires it; not checked: Permissions-Policy");
    let r = tls_result(
        &pki,
        plan_004,
        &check("{ rule: security_headers, csp: { allow_unsafe_inline: true }, ignore: [permissions-policy, referrer-policy] }"),
    )
    .await;
    assert_eq!(
        (r.outcome, r.reason.as_str()),
        (
            Outcome::Pass,
            "all 4 headers good; not checked: Referrer-Policy, Permissions-Policy"
        )
    );
    let r = tls_result(
        &pki,
        no_csp,
        &check("{ rule: security_headers, ignore: [Content-Security-Policy, permissions-policy, referrer-policy] }"),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Pass, "{r:?}");

    // A relaxation hides no other failure: `'unsafe-eval'` next to the
    // allowed `'unsafe-inline'` fails, a missing CSP is still missing, and
    // ignoring one header leaves a weak other one failing.
    let eval = tls_server_answering(
        &pki,
        "localhost",
        -1,
        90,
        &[
            PLAN_004_HEADERS[0],
            PLAN_004_HEADERS[1],
            PLAN_004_HEADERS[2],
            (
                "content-security-policy",
                "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
            ),
        ],
    )
    .await;
    let relaxed = check("{ rule: security_headers, csp: { allow_unsafe_inline: true }, ignore: [permissions-policy, referrer-policy] }");
    let r = tls_result(&pki, eval, &relaxed).await;
    assert_eq!(r.outcome, Outcome::Fail);
    assert!(
        r.reason
            .contains("Content-Security-Policy: script-src allows 'unsafe-eval'"),
        "{}",
        r.reason
    );
    let r = tls_result(&pki, no_csp, &relaxed).await;
    assert!(
        r.outcome == Outcome::Fail && r.reason.contains("Content-Security-Policy: missing"),
        "{r:?}"
    );
    let weak_hsts = tls_server_answering(
        &pki,
        "localhost",
        -1,
        90,
        &[
            ("strict-transport-security", "max-age=86400"),
            PLAN_004_HEADERS[1],
            PLAN_004_HEADERS[2],
        ],
    )
    .await;
    let r = tls_result(
        &pki,
        weak_hsts,
        &check("{ rule: security_headers, ignore: [content-security-policy, permissions-policy, referrer-policy] }"),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Fail);
    assert!(
        r.reason
            .starts_with("2 of 3 good; Strict-Transport-Security: max-age=86400 is under 15552000"),
        "{}",
        r.reason
    );
}
