//! Test harness: a fake GitHub plus a real shipgate server, in process or as
//! a child process. Tests read like stories and end with `finish()`, which
//! fails on API calls the fake does not implement.

#![allow(dead_code)]

pub mod conformance;
pub mod fake_github;
pub mod openapi;
pub mod postgres;
pub mod shapes;
pub mod sites;

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use shipgate::config::settings::ServerSettings;
use shipgate::github::RetryPolicy;
use shipgate::serve::{Running, StartOptions};
use tokio::io::{AsyncBufReadExt, BufReader};

pub use fake_github::FakeGitHub;

pub const SECRET: &str = "test-webhook-secret";

/// Creates an empty schema on the tests' PostgreSQL (see `postgres`) and
/// returns a URL whose connections use it; `None` when the PostgreSQL tests
/// are skipped (`postgres::base_url` has said so, once).
pub async fn fresh_postgres_url() -> Option<String> {
    use sqlx::Connection;
    let base = postgres::base_url()?;
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the tests' PostgreSQL at {base}: {e}"));
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
}

/// The start of every test that needs PostgreSQL: a fresh schema's URL, or
/// return from the test when the PostgreSQL tests are skipped.
#[macro_export]
macro_rules! postgres_or_skip {
    () => {
        match common::fresh_postgres_url().await {
            Some(url) => url,
            None => return,
        }
    };
}

/// Settings for a test server: loopback, random port, the fake's URL.
pub fn settings(fake: &FakeGitHub, database_url: &str, extra: &[(&str, &str)]) -> ServerSettings {
    let mut vars: Vec<(String, String)> = vec![
        ("SHIPGATE_WEBHOOK_SECRET".into(), SECRET.into()),
        ("GITHUB_TOKEN".into(), "ghp_test_token".into()),
        ("GITHUB_API_URL".into(), fake.url()),
        ("DATABASE_URL".into(), database_url.into()),
        ("SHIPGATE_LISTEN".into(), "127.0.0.1:0".into()),
        ("SHIPGATE_RETRY_BASE_MS".into(), "20".into()),
        // Policy jobs run at once unless a test asks for the delay.
        ("SHIPGATE_POLICY_DELAY_MS".into(), "0".into()),
    ];
    for (k, v) in extra {
        vars.retain(|(key, _)| key != k);
        vars.push((k.to_string(), v.to_string()));
    }
    ServerSettings::from_vars(vars).expect("test settings are valid")
}

/// Settings for GitHub App authentication with the test key, plus `extra`.
pub fn app_auth(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut vars = vec![
        ("GITHUB_TOKEN", ""),
        ("GITHUB_APP_ID", "12345"),
        (
            "GITHUB_APP_PRIVATE_KEY_PATH",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/test-app-key.pem"
            ),
        ),
    ];
    vars.extend_from_slice(extra);
    vars
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_rate_limit_wait: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
    }
}

/// Waits until `cond` returns true, checking every 10 ms, for at most 20 s.
/// For state outside this process (a child's database rows) that sends no
/// signal when it changes.
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub struct Harness {
    pub gh: FakeGitHub,
    pub server: Running,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// A server on a fresh SQLite file.
    pub async fn start() -> Harness {
        Self::start_with(&[]).await
    }

    pub async fn start_with(extra: &[(&str, &str)]) -> Harness {
        Self::start_with_github(FakeGitHub::start().await, extra).await
    }

    /// A server against an existing fake GitHub (e.g. a second run of the server).
    pub async fn start_with_github(gh: FakeGitHub, extra: &[(&str, &str)]) -> Harness {
        Self::start_with_retry(gh, extra, fast_retry()).await
    }

    /// A server whose GitHub client retries by `retry` (e.g. a short timeout).
    pub async fn start_with_retry(
        gh: FakeGitHub,
        extra: &[(&str, &str)],
        retry: RetryPolicy,
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("shipgate.db").display());
        let server = shipgate::serve::start(
            settings(&gh, &db, extra),
            StartOptions {
                retry: Some(retry),
                ..Default::default()
            },
        )
        .await
        .expect("server starts");
        // The bot learns its login at start; wait for it so request counts
        // taken by tests do not race with that call.
        server
            .github
            .bot_login()
            .await
            .expect("the fake answers the login lookup");
        Harness {
            gh,
            server,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.addr)
    }

    /// The whole `/metrics` text.
    pub async fn metrics_text(&self) -> String {
        metrics_text(&self.http, self.url("/metrics")).await
    }

    /// The value of one metric line of `/metrics` (0 when absent), e.g.
    /// `shipgate_redeliveries_total{outcome="requested"}`.
    pub async fn metric(&self, name: &str) -> f64 {
        metric_value(&self.metrics_text().await, name)
    }

    /// Sends a signed delivery with a fresh delivery id.
    pub async fn send(&self, event: &str, payload: &Value) -> (StatusCode, Value) {
        self.send_with_id(event, &uuid::Uuid::new_v4().to_string(), payload)
            .await
    }

    pub async fn send_with_id(
        &self,
        event: &str,
        delivery: &str,
        payload: &Value,
    ) -> (StatusCode, Value) {
        let body = serde_json::to_vec(payload).unwrap();
        post_signed(&self.http, &self.url("/webhook"), event, delivery, body).await
    }

    /// Waits until every stored delivery (of every replica on this store) is
    /// done or failed: 20 s, or 60 s in
    /// the conformance run, where one node process (prism) validates every
    /// request of the run in turn.
    pub async fn settle(&self) {
        let mut finished = self.server.finished.clone();
        let limit = if self.gh.conformance() { 60 } else { 20 };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(limit);
        loop {
            finished.borrow_and_update();
            if self.server.store.queue_depth().await.unwrap() == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "deliveries did not settle within {limit} s"
            );
            // This process's worker says when it finishes an attempt; another
            // replica on the same database does not, so look again after a
            // while too.
            let _ = tokio::time::timeout(Duration::from_millis(200), finished.changed()).await;
        }
    }

    pub async fn state_of(&self, delivery: &str) -> Option<shipgate::store::DeliveryStatus> {
        self.server.store.delivery_status(delivery).await.unwrap()
    }

    /// A user comments on an issue or PR; the webhook is sent. Returns the comment id.
    pub async fn comment(&self, repo: &str, issue: u64, user: &str, body: &str) -> u64 {
        let id = self.gh.add_comment(repo, issue, user, body);
        let (status, b) = self
            .send(
                "issue_comment",
                &self.gh.issue_comment_payload(repo, id, "created", None),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{b}");
        id
    }

    /// The next bot comment on `issue` after the deliveries settle.
    pub async fn next_reply(&self, repo: &str, issue: u64) -> fake_github::Comment {
        self.settle().await;
        self.gh.next_bot_comment(repo, issue)
    }

    /// Ends the story: no unexpected API calls or unread bot comments, and
    /// the server stops cleanly.
    pub async fn finish(self) {
        self.settle().await;
        self.gh.assert_no_unexpected();
        self.gh.assert_no_unread_bot_comments();
        self.server.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.server.task)
            .await
            .expect("server drains and stops within 10 s")
            .unwrap();
    }
}

pub async fn post_signed(
    http: &reqwest::Client,
    url: &str,
    event: &str,
    delivery: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let sig = shipgate::github::signature::sign(SECRET.as_bytes(), &body);
    let resp = http
        .post(url)
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", sig)
        .body(body)
        .send()
        .await
        .expect("server answers");
    let status = resp.status();
    let json = resp.json().await.unwrap_or(Value::Null);
    (status, json)
}

/// A `shipgate serve` child process.
pub struct Child {
    pub process: tokio::process::Child,
    pub addr: String,
}

impl Child {
    /// Starts the real binary and waits for its "listening" log line.
    pub async fn serve(fake: &FakeGitHub, database_url: &str, extra: &[(&str, &str)]) -> Child {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipgate"));
        cmd.arg("serve")
            .env_clear()
            .env("SHIPGATE_WEBHOOK_SECRET", SECRET)
            .env("GITHUB_TOKEN", "ghp_test_token")
            .env("GITHUB_API_URL", fake.url())
            .env("DATABASE_URL", database_url)
            .env("SHIPGATE_LISTEN", "127.0.0.1:0")
            .env("SHIPGATE_LOG_FORMAT", "json")
            .env("SHIPGATE_RETRY_BASE_MS", "20")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut process = cmd.spawn().expect("shipgate binary starts");
        let stderr = process.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["message"] == "shipgate listening" {
                        return v["addr"].as_str().unwrap().to_string();
                    }
                }
            }
            panic!("shipgate exited before listening");
        })
        .await
        .expect("shipgate listens within 30 s");
        // Keep draining stderr so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Child { process, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGKILL: no chance to drain or clean up.
    pub async fn kill_hard(mut self) {
        self.process.start_kill().unwrap();
        self.process.wait().await.unwrap();
    }

    /// Sends SIGTERM without waiting.
    pub fn signal_term(&self) {
        let pid = nix::unistd::Pid::from_raw(self.process.id().unwrap() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    }

    /// SIGTERM, then wait for a clean exit.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        self.signal_term();
        tokio::time::timeout(Duration::from_secs(20), self.process.wait())
            .await
            .expect("exits after SIGTERM")
            .unwrap()
    }
}

/// The `/metrics` text at `url` (of a harness or of a child process).
pub async fn metrics_text(http: &reqwest::Client, url: String) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}

/// The value of the first metric line starting with `name` (0 when absent).
pub fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A POST endpoint at `path` on a loopback port, limited like a login or a
/// lead form: requests whose body is `body` (and, when given, whose
/// `content-type` is `content_type`) get 2xx until `limit`, then `429` with
/// `Retry-After`; any other request gets `400`. Returns the address and the
/// count of well-formed POSTs.
pub async fn limited_post_endpoint(
    path: &'static str,
    body: &'static str,
    content_type: Option<&'static str>,
    limit: u32,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicU32>,
) {
    use axum::response::IntoResponse;
    use std::sync::atomic::Ordering;
    let posts = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = posts.clone();
    let router = axum::Router::new().route(
        path,
        axum::routing::post(move |headers: axum::http::HeaderMap, sent: String| {
            let counted = counted.clone();
            async move {
                let typed = content_type
                    .is_none_or(|t| headers.get("content-type").is_some_and(|v| v == t));
                if !typed || sent != body {
                    return axum::http::StatusCode::BAD_REQUEST.into_response();
                }
                if counted.fetch_add(1, Ordering::SeqCst) >= limit {
                    (
                        axum::http::StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "3600")],
                    )
                        .into_response()
                } else {
                    axum::http::StatusCode::CREATED.into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (addr, posts)
}
