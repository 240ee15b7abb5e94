//! Notifications routed to the operator's destinations: the server through
//! `/webhook` with loopback receivers (retries, routes, the JSON body, the
//! events, logs without URLs), and the Action through the runner contract.

use crate::common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use common::Harness;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

const REPO: &str = "acme/app";
const CONFIG_PATH: &str = ".github/shipgate.yml";
/// Retries 20 ms apart, so a story does not wait out the default second.
const FAST: (&str, &str) = ("SHIPGATE_NOTIFY_RETRY_BASE_MS", "20");
const PRIVATE_OK: (&str, &str) = ("SHIPGATE_ALLOW_PRIVATE_PROBES", "true");

/// A loopback webhook that answers its first `failures` POSTs with 503 and
/// the others with 200; with `hold`, it answers nothing until released.
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Value>>>,
    release: Arc<tokio::sync::Notify>,
    answered: Arc<AtomicU32>,
}

impl Receiver {
    async fn start(failures: u32, hold: bool) -> Receiver {
        let got = Arc::new(Mutex::new(Vec::new()));
        let release = Arc::new(tokio::sync::Notify::new());
        let answered = Arc::new(AtomicU32::new(0));
        let (g, r, a) = (got.clone(), release.clone(), answered.clone());
        let router = Router::new().fallback(post(move |axum::Json(v): axum::Json<Value>| {
            let (g, r, a) = (g.clone(), r.clone(), a.clone());
            async move {
                let n = {
                    let mut got = g.lock().unwrap();
                    got.push(v);
                    got.len() as u32
                };
                if hold {
                    r.notified().await;
                }
                a.fetch_add(1, Ordering::SeqCst);
                if n <= failures {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Receiver {
            addr,
            got,
            release,
            answered,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn bodies(&self) -> Vec<Value> {
        self.got.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Value> {
        common::eventually(&format!("{n} notification(s) at {}", self.addr), || async {
            self.got.lock().unwrap().len() >= n
        })
        .await;
        self.bodies()
    }
}

fn events(bodies: &[Value]) -> Vec<String> {
    bodies
        .iter()
        .map(|b| b["event"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A deployment of a new commit to `env`, and the status `state` GitHub sends for it.
async fn status(t: &Harness, repo: &str, env: &str, state: &str, url: Option<&str>) -> String {
    let sha = t.gh.commit(
        repo,
        "main",
        &[("v", Some(&uuid::Uuid::new_v4().to_string()))],
    );
    let d = t.gh.create_deployment(repo, &sha, env, json!({}));
    let payload =
        t.gh.deployment_status(repo, d, state, url, Some("https://ci.example/run/1"));
    let (s, b) = t.send("deployment_status", &payload).await;
    assert!(s.is_success(), "{b}");
    t.settle().await;
    sha
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_fails_twice_then_succeeds_receives_three_posts_of_the_documented_json()
{
    let ops = Receiver::start(2, false).await;
    let t = Harness::start_with(&[
        ("SHIPGATE_NOTIFY", &format!("ops={}", ops.url("/hook"))),
        FAST,
    ])
    .await;
    t.gh.add_repo(
        REPO,
        &[(
            CONFIG_PATH,
            "notify:\n  - { to: ops, events: [deploy_failed] }\n",
        )],
    );
    let sha = status(&t, REPO, "production", "failure", None).await;
    let bodies = ops.wait_for(3).await;
    assert_eq!(bodies.len(), 3, "two 503s, then 200: {bodies:#?}");
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "the same body each time"
    );
    common::eventually("the metric counts one notification sent", || async {
        t.metric("shipgate_notifications_total{destination=\"ops\",outcome=\"sent\"}")
            .await
            == 1.0
    })
    .await;
    assert_eq!(
        bodies[0],
        json!({
            "version": 1,
            "event": "deploy_failed",
            "repository": REPO,
            "environment": "production",
            "sha": sha,
            "url": "https://ci.example/run/1",
            "text": format!("❌ {REPO}: deployment of `{}` to `production` failure — https://ci.example/run/1", &sha[..7]),
        })
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_never_answers_does_not_hold_the_delivery() {
    let slow = Receiver::start(0, true).await;
    // A handler held by the notification (10 s per attempt) would run out of
    // its 3 s and be retried.
    let t = Harness::start_with(&[
        ("SHIPGATE_NOTIFY", &format!("slow={}", slow.url("/hook"))),
        ("SHIPGATE_HANDLER_TIMEOUT_SECS", "3"),
        FAST,
    ])
    .await;
    t.gh.add_repo(REPO, &[(CONFIG_PATH, "notify:\n  - { to: slow }\n")]);
    let sha = t.gh.commit(REPO, "main", &[("v", Some("1"))]);
    let d = t.gh.create_deployment(REPO, &sha, "staging", json!({}));
    let payload =
        t.gh.deployment_status(REPO, d, "success", Some("https://staging.example"), None);
    t.send_with_id("deployment_status", "d-slow", &payload)
        .await;
    t.settle().await;
    slow.wait_for(1).await;
    let st = t.state_of("d-slow").await.unwrap();
    assert_eq!(
        (st.state, st.attempts),
        (shipgate::store::DeliveryState::Done, 1),
        "done at the first attempt"
    );
    assert_eq!(
        slow.answered.load(Ordering::SeqCst),
        0,
        "the delivery finished while its notification was still unanswered"
    );
    slow.release.notify_waiters();
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repositorys_notify_routes_each_event_to_the_named_destination_only() {
    let (ops, team, legacy) = (
        Receiver::start(0, false).await,
        Receiver::start(0, false).await,
        Receiver::start(0, false).await,
    );
    let t = Harness::start_with(&[
        (
            "SHIPGATE_NOTIFY",
            &format!("ops={}, team=slack:{}", ops.url("/ops"), team.url("/team")),
        ),
        ("SHIPGATE_SLACK_WEBHOOK_URL", &legacy.url("/legacy")),
        FAST,
    ])
    .await;
    t.gh.add_repo(
        REPO,
        &[(
            CONFIG_PATH,
            "notify:\n  - { to: team, events: [deploy_started, deploy_succeeded] }\n  - { to: ops, events: [deploy_failed] }\n",
        )],
    );
    // A repository that says nothing: today's behaviour, on `slack`.
    t.gh.add_repo("acme/other", &[("README.md", "hi")]);
    status(&t, REPO, "production", "in_progress", None).await;
    status(
        &t,
        REPO,
        "production",
        "success",
        Some("https://app.example"),
    )
    .await;
    let failed = status(&t, REPO, "production", "error", None).await;
    status(&t, "acme/other", "production", "in_progress", None).await;
    let other = status(
        &t,
        "acme/other",
        "production",
        "success",
        Some("https://other.example"),
    )
    .await;

    let team_got = team.wait_for(2).await;
    let ops_got = ops.wait_for(1).await;
    let legacy_got = legacy.wait_for(1).await;
    // Slack's body is only the text.
    let texts: Vec<&str> = team_got
        .iter()
        .map(|b| b["text"].as_str().unwrap())
        .collect();
    assert!(
        team_got.iter().all(|b| b.as_object().unwrap().len() == 1),
        "{team_got:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("🚀 acme/app: deploying")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.starts_with("✅ acme/app: deployed")),
        "{texts:?}"
    );
    assert_eq!(events(&ops_got), ["deploy_failed"]);
    assert_eq!(ops_got[0]["sha"], json!(failed));
    assert_eq!(
        legacy_got.len(),
        1,
        "in_progress is not one of the default events: {legacy_got:?}"
    );
    assert_eq!(
        legacy_got[0]["text"],
        json!(format!(
            "✅ acme/other: deployed `{}` to `production` — https://other.example",
            &other[..7]
        ))
    );
    // Nothing of acme/app reached the default destination.
    assert!(legacy
        .bodies()
        .iter()
        .all(|b| !b["text"].as_str().unwrap().contains("acme/app")));
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_or_reserved_destination_turns_the_config_status_red_and_gets_nothing() {
    let (ops, pager) = (
        Receiver::start(0, false).await,
        Receiver::start(0, false).await,
    );
    let t = Harness::start_with(&[
        (
            "SHIPGATE_NOTIFY",
            &format!("ops@acme={},pager={}", ops.url("/ops"), pager.url("/pager")),
        ),
        FAST,
    ])
    .await;
    let repo = "mallory/app";
    let config =
        "notify:\n  - { to: ops }\n  - { to: nope }\n  - { to: pager, events: [deploy_failed] }\n";
    t.gh.add_repo(repo, &[(CONFIG_PATH, config)]);
    t.gh.commit(repo, "feature", &[("f", Some("1"))]);
    let pr = t.gh.open_pr(repo, "feature", "mallory");
    t.send(
        "pull_request",
        &t.gh.pull_request_payload(repo, pr, "opened"),
    )
    .await;
    t.settle().await;
    let head = t.gh.pr(repo, pr).head_sha;
    let statuses = t.gh.statuses(repo, &head);
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0].context, "shipgate/config");
    assert_eq!(statuses[0].state, "failure");
    assert_eq!(
        statuses[0].description,
        ".github/shipgate.yml: notify names `ops`, `nope`, which this server does not offer this repository; nothing is sent there"
    );

    status(&t, repo, "production", "failure", None).await;
    assert_eq!(events(&pager.wait_for(1).await), ["deploy_failed"]);
    // Routing is decided before the delivery ends: nothing is on its way to `ops`.
    assert!(ops.bodies().is_empty(), "{:?}", ops.bodies());
    // A name a repository made up never becomes a metric label.
    let metrics = t.metrics_text().await;
    assert!(!metrics.contains("nope"), "{metrics}");
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_failed_then_recovered_is_sent_once_each() {
    let healthy = Arc::new(AtomicBool::new(false));
    let h = healthy.clone();
    let router = Router::new().route(
        "/api/health",
        get(move || {
            let h = h.clone();
            async move {
                let status = if h.load(Ordering::SeqCst) {
                    "healthy"
                } else {
                    "degraded"
                };
                axum::Json(json!({ "status": status }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let ops = Receiver::start(0, false).await;
    let t = Harness::start_with(&[
        ("SHIPGATE_NOTIFY", &format!("ops={}", ops.url("/ops"))),
        FAST,
        PRIVATE_OK,
    ])
    .await;
    let config = r#"
preview:
  allowed_hosts: ["127.0.0.1"]
  allow_private: true
environments:
  production:
    smoke:
      checks:
        - { name: health, path: /api/health, expect: { json: ['$.status == "healthy"'] } }
notify:
  - { to: ops, events: [smoke_failed, smoke_recovered] }
"#;
    t.gh.add_repo(REPO, &[(CONFIG_PATH, config)]);
    let url = format!("http://{app}/");
    status(&t, REPO, "production", "success", Some(&url)).await;
    assert_eq!(events(&ops.wait_for(1).await), ["smoke_failed"]);
    healthy.store(true, Ordering::SeqCst);
    let sha = status(&t, REPO, "production", "success", Some(&url)).await;
    let got = ops.wait_for(2).await;
    assert_eq!(events(&got), ["smoke_failed", "smoke_recovered"]);
    assert_eq!(got[1]["sha"], json!(sha));
    assert!(
        got[1]["text"]
            .as_str()
            .unwrap()
            .starts_with("💚 acme/app: smoke checks pass again on `production`"),
        "{}",
        got[1]
    );
    // Passing again is no news.
    status(&t, REPO, "production", "success", Some(&url)).await;
    t.finish().await;
    assert_eq!(events(&ops.bodies()), ["smoke_failed", "smoke_recovered"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeze_override_and_a_protection_rule_rejection_are_notified() {
    let ops = Receiver::start(0, false).await;
    let t = Harness::start_with(&[
        ("SHIPGATE_NOTIFY", &format!("ops={}", ops.url("/ops"))),
        FAST,
    ])
    .await;
    let config = r#"
environments:
  staging:
    freeze:
      - { days: [mon, tue, wed, thu, fri, sat, sun], reason: "Code freeze" }
  production:
    refs: [main]
notify:
  - { to: ops, events: [freeze_override, protection_rejected] }
"#;
    t.gh.add_repo(REPO, &[(CONFIG_PATH, config)]);
    t.gh.commit(REPO, "feature", &[("f", Some("1"))]);
    let pr = t.gh.open_pr(REPO, "feature", "alice");
    t.gh.set_role(REPO, "root", "admin");
    t.comment(REPO, pr, "root", "/deploy staging force").await;
    let reply = t.next_reply(REPO, pr).await;
    assert!(
        reply.body.contains("⚠️ Freeze overridden"),
        "{}",
        reply.body
    );
    let got = ops.wait_for(1).await;
    assert_eq!(events(&got), ["freeze_override"]);
    assert!(
        got[0]["text"]
            .as_str()
            .unwrap()
            .contains("through a freeze — Code freeze"),
        "{}",
        got[0]
    );

    let head = t.gh.pr(REPO, pr).head_sha;
    let d = t.gh.create_deployment(REPO, &head, "production", json!({}));
    let payload =
        t.gh.protection_rule_payload(REPO, "301", "production", d, &head, "feature", Some(pr));
    t.send("deployment_protection_rule", &payload).await;
    t.settle().await;
    let got = ops.wait_for(2).await;
    assert_eq!(events(&got), ["freeze_override", "protection_rejected"]);
    assert_eq!(got[1]["environment"], "production");
    assert!(
        got[1]["text"].as_str().unwrap().contains("rejected — Ref:"),
        "{}",
        got[1]
    );
    t.finish().await;
}

// ------------------------------------------------ no URL in any log

/// `shipgate serve` as a child process whose log lines (JSON) are kept.
async fn serve_logged(
    fake: &common::FakeGitHub,
    dir: &std::path::Path,
    extra: &[(&str, &str)],
) -> (tokio::process::Child, String, Arc<Mutex<Vec<String>>>) {
    let db = format!("sqlite://{}", dir.join("shipgate.db").display());
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipgate"));
    cmd.arg("serve")
        .env_clear()
        .env("SHIPGATE_WEBHOOK_SECRET", common::SECRET)
        .env("GITHUB_TOKEN", "ghp_test_token")
        .env("GITHUB_API_URL", fake.url())
        .env("DATABASE_URL", &db)
        .env("SHIPGATE_LISTEN", "127.0.0.1:0")
        .env("SHIPGATE_LOG_FORMAT", "json")
        .env("SHIPGATE_RETRY_BASE_MS", "20")
        .env("RUST_LOG", "info,shipgate=debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("shipgate binary starts");
    let logs = Arc::new(Mutex::new(Vec::new()));
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let kept = logs.clone();
    tokio::spawn(async move {
        while let Ok(Some(l)) = out.next_line().await {
            kept.lock().unwrap().push(l);
        }
    });
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            logs.lock().unwrap().push(line.clone());
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["message"] == "shipgate listening" {
                    return v["addr"].as_str().unwrap().to_string();
                }
            }
        }
        panic!(
            "shipgate exited before listening: {:?}",
            logs.lock().unwrap()
        );
    })
    .await
    .expect("shipgate listens within 30 s");
    let kept = logs.clone();
    tokio::spawn(async move {
        while let Ok(Some(l)) = lines.next_line().await {
            kept.lock().unwrap().push(l);
        }
    });
    (child, addr, logs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_destination_never_logs_its_url() {
    let fake = common::FakeGitHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let broken = Receiver::start(u32::MAX, false).await;
    // A port nothing listens on: connection refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let broken_url = broken.url("/SECRET-broken-path");
    let down_url = format!("http://{closed}/SECRET-down-path");
    let notify = format!("broken={broken_url},down=slack:{down_url}");
    let (mut child, addr, logs) = serve_logged(
        &fake,
        dir.path(),
        &[("SHIPGATE_NOTIFY", notify.as_str()), FAST],
    )
    .await;
    fake.add_repo(
        REPO,
        &[(
            CONFIG_PATH,
            "notify:\n  - { to: broken }\n  - { to: down }\n",
        )],
    );
    let sha = fake.commit(REPO, "main", &[("v", Some("1"))]);
    let d = fake.create_deployment(REPO, &sha, "production", json!({}));
    let payload = fake.deployment_status(REPO, d, "failure", None, None);
    let http = reqwest::Client::new();
    let (s, b) = common::post_signed(
        &http,
        &format!("http://{addr}/webhook"),
        "deployment_status",
        "d-1",
        serde_json::to_vec(&payload).unwrap(),
    )
    .await;
    assert!(s.is_success(), "{b}");
    common::eventually("both failures are logged", || async {
        let logs = logs.lock().unwrap();
        ["broken", "down"].iter().all(|name| {
            logs.iter().any(|l| {
                l.contains("notification not delivered")
                    && l.contains(&format!("\"destination\":\"{name}\""))
            })
        })
    })
    .await;
    assert_eq!(broken.bodies().len(), 4, "bounded retries: 4 attempts");
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let logs = logs.lock().unwrap().join("\n");
    assert!(logs.contains("\"reason\":\"answered 503\""), "{logs}");
    assert!(logs.contains("\"reason\":\"could not connect\""), "{logs}");
    for secret in ["SECRET", &broken.addr.to_string(), &closed.to_string()] {
        assert!(
            !logs.contains(secret),
            "`{secret}` reached the logs:\n{logs}"
        );
    }
}

#[tokio::test]
async fn a_malformed_destination_stops_the_server_naming_the_entry_not_the_url() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_shipgate"))
        .arg("serve")
        .env_clear()
        .env("SHIPGATE_WEBHOOK_SECRET", common::SECRET)
        .env("GITHUB_TOKEN", "ghp_test_token")
        .env("SHIPGATE_LISTEN", "127.0.0.1:0")
        .env(
            "SHIPGATE_NOTIFY",
            "ops=https://hooks.slack.com/services/T0/B0/SECRETTOKEN,pager=htps//SECRETTOKEN.example",
        )
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SHIPGATE_NOTIFY: entry 2 (`pager`): expected an http(s) URL"),
        "{stderr}"
    );
    assert!(!stderr.contains("SECRETTOKEN"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("SECRETTOKEN"));
}

// ------------------------------------------------ the Action

/// The Action's step: a workspace, the runner's files, `INPUT_*`.
struct Step {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Step {
    fn new(config: &str) -> Step {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("workspace/.github")).unwrap();
        std::fs::write(dir.path().join("workspace").join(CONFIG_PATH), config).unwrap();
        let p = |name: &str| dir.path().join(name).display().to_string();
        let env = vec![
            ("GITHUB_ACTIONS".into(), "true".into()),
            ("GITHUB_WORKSPACE".into(), p("workspace")),
            ("GITHUB_OUTPUT".into(), p("output")),
            ("GITHUB_STEP_SUMMARY".into(), p("summary")),
            ("RUNNER_TEMP".into(), p("")),
            ("GITHUB_REPOSITORY".into(), REPO.into()),
            (
                "GITHUB_SHA".into(),
                "0123456789abcdef0123456789abcdef01234567".into(),
            ),
            ("GITHUB_SERVER_URL".into(), "https://github.com".into()),
            ("GITHUB_RUN_ID".into(), "77".into()),
            ("SHIPGATE_NOTIFY_RETRY_BASE_MS".into(), "20".into()),
        ];
        Step { dir, env }
    }

    fn set(&mut self, k: &str, v: &str) -> &mut Self {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.into(), v.into()));
        self
    }

    /// Runs the step; its exit code and every output it wrote, together.
    async fn run(&self) -> (Option<i32>, String, String) {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_shipgate"));
        cmd.arg("check")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .current_dir(self.dir.path().join("workspace"));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let rest = [
            String::from_utf8_lossy(&out.stderr).into_owned(),
            read("output"),
            read("summary"),
            read("shipgate-report.json"),
        ]
        .join("\n");
        (out.status.code(), stdout, rest)
    }
}

async fn health(status: &'static str) -> String {
    let router = Router::new().route(
        "/api/health",
        get(move || async move { axum::Json(json!({ "status": status })) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/")
}

const SMOKE: &str = "default_environment: production\nenvironments:\n  production: {}\nsmoke:\n  checks:\n    - { name: health, path: /api/health, expect: { json: ['$.status == \"healthy\"'] } }\n";

/// The URL appears only in the `::add-mask::` line, before anything else.
fn assert_masked(url: &str, stdout: &str, rest: &str) {
    let first = stdout.lines().next().unwrap_or_default();
    assert_eq!(first, format!("::add-mask::{url}"), "{stdout}");
    assert_eq!(stdout.matches(url).count(), 1, "{stdout}");
    assert!(!rest.contains(url), "{rest}");
    let path = url.rsplit('/').next().unwrap();
    assert_eq!(stdout.matches(path).count(), 1, "{stdout}");
    assert!(!rest.contains(path), "{rest}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_action_notifies_its_verdict_to_a_masked_url_and_a_failed_delivery_only_warns() {
    // A failed gate: the verdict is sent (JSON: the host is not Slack's).
    let hook = Receiver::start(0, false).await;
    let url = hook.url("/SECRET-hook-path");
    let mut step = Step::new(SMOKE);
    step.set("INPUT_GATES", "smoke")
        .set("INPUT_URL", &health("degraded").await)
        .set("INPUT_NOTIFY", &url);
    let (code, stdout, rest) = step.run().await;
    assert_eq!(code, Some(1), "the gate's failure decides: {stdout}");
    let got = hook.wait_for(1).await;
    assert_eq!(
        got[0],
        json!({
            "version": 1,
            "event": "check_failed",
            "repository": REPO,
            "environment": "production",
            "sha": "0123456789abcdef0123456789abcdef01234567",
            "url": "https://github.com/acme/app/actions/runs/77",
            "text": "❌ acme/app: shipgate check failed (smoke) on `production` — https://github.com/acme/app/actions/runs/77",
        })
    );
    assert_masked(&url, &stdout, &rest);

    // A passing gate with the default `notify-on: failure`: nothing is sent.
    let quiet = Receiver::start(0, false).await;
    let mut step = Step::new(SMOKE);
    step.set("INPUT_GATES", "smoke")
        .set("INPUT_URL", &health("healthy").await)
        .set("INPUT_NOTIFY", &quiet.url("/SECRET-quiet"));
    let (code, stdout, _) = step.run().await;
    assert_eq!(code, Some(0), "{stdout}");
    assert!(quiet.bodies().is_empty());

    // `always`, to a webhook that keeps failing: three attempts, a warning,
    // and the step still passes.
    let broken = Receiver::start(u32::MAX, false).await;
    let url = format!("slack:{}", broken.url("/SECRET-broken-path"));
    let mut step = Step::new(SMOKE);
    step.set("INPUT_GATES", "smoke")
        .set("INPUT_URL", &health("healthy").await)
        .set("INPUT_NOTIFY", &url)
        .set("INPUT_NOTIFY-ON", "always");
    let (code, stdout, rest) = step.run().await;
    assert_eq!(
        code,
        Some(0),
        "a failed notification never fails the step: {stdout}"
    );
    assert_eq!(broken.bodies().len(), 3);
    assert_eq!(
        broken.bodies()[0],
        json!({ "text": "✅ acme/app: shipgate check passed (smoke) on `production` — https://github.com/acme/app/actions/runs/77" })
    );
    assert!(
        stdout.contains("::warning title=shipgate::notify: the notification was not delivered: answered 503 (after 3 attempt(s))"),
        "{stdout}"
    );
    assert!(
        stdout.starts_with(&format!(
            "::add-mask::{url}\n::add-mask::{}\n",
            broken.url("/SECRET-broken-path")
        )),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("SECRET").count(),
        2,
        "only in the masks: {stdout}"
    );
    assert!(!rest.contains("SECRET"), "{rest}");

    // Not a URL: a warning that does not quote it, and the step passes.
    let mut step = Step::new(SMOKE);
    step.set("INPUT_GATES", "smoke")
        .set("INPUT_URL", &health("healthy").await)
        .set("INPUT_NOTIFY", "SECRET-not-a-url")
        .set("INPUT_NOTIFY-ON", "always");
    let (code, stdout, rest) = step.run().await;
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("::warning title=shipgate::notify: expected an http(s) URL"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("SECRET").count(),
        1,
        "only in the mask: {stdout}"
    );
    assert!(!rest.contains("SECRET"), "{rest}");
}
