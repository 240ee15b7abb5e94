//! Preview comments, smoke check runs and automatic rollback, through the
//! real `/webhook` path against the fake GitHub and a preview app on loopback.

use crate::common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::routing::{get, post};
use axum::Router;
use common::Harness;
use serde_json::{json, Value};

pub(crate) const REPO: &str = "acme/app";
const CONFIG_PATH: &str = ".github/shipgate.yml";
const CONFIG: &str = r#"
preview:
  allowed_hosts: ["127.0.0.1"]
  allow_private: true
smoke:
  checks:
    - name: health
      path: /api/health
      expect: { status: 200, json: ['$.status == "healthy"'] }
"#;

/// A deployed app: `/api/health` is healthy until told otherwise; counts requests.
pub(crate) struct App {
    pub(crate) addr: SocketAddr,
    healthy: Arc<AtomicBool>,
    pub(crate) hits: Arc<AtomicU32>,
}

pub(crate) async fn app() -> App {
    let healthy = Arc::new(AtomicBool::new(true));
    let hits = Arc::new(AtomicU32::new(0));
    let (h, n) = (healthy.clone(), hits.clone());
    let router = Router::new().route(
        "/api/health",
        get(move || {
            let (h, n) = (h.clone(), n.clone());
            async move {
                n.fetch_add(1, Ordering::SeqCst);
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
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    App {
        addr,
        healthy,
        hits,
    }
}

/// A provider's `deployment_status` payload for `deployment` of `sha`, its
/// preview URL pointed at `url`.
pub(crate) fn provider_status(
    t: &Harness,
    provider: &str,
    deployment: u64,
    sha: &str,
    url: &str,
) -> Value {
    let path = format!(
        "{}/fixtures/providers/{provider}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut p: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    p["repository"] = t.gh.repository_json(REPO);
    p["deployment"]["id"] = json!(deployment);
    p["deployment"]["sha"] = json!(sha);
    let field = if provider == "vercel" {
        "target_url"
    } else {
        "environment_url"
    };
    p["deployment_status"][field] = json!(url);
    p
}

pub(crate) fn setup(t: &Harness, config: &str) -> (u64, String) {
    t.gh.add_repo(REPO, &[(CONFIG_PATH, config)]);
    t.gh.commit(REPO, "feature", &[("f.txt", Some("1"))]);
    let pr = t.gh.open_pr(REPO, "feature", "alice");
    let head = t.gh.pr(REPO, pr).head_sha;
    (pr, head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vercel_preview_gets_one_comment_with_smoke_results_and_a_check_run() {
    let t = Harness::start_with(&[PRIVATE_OK]).await;
    let app = app().await;
    let (pr, head) = setup(&t, CONFIG);
    let url = format!("http://{}/", app.addr);
    let d =
        t.gh.create_deployment(REPO, &head, "Preview – web", json!({}));
    t.send(
        "deployment_status",
        &provider_status(&t, "vercel", d, &head, &url),
    )
    .await;
    let comment = t.next_reply(REPO, pr).await;
    assert!(
        comment.body.starts_with("### 🔍 Previews"),
        "{}",
        comment.body
    );
    assert!(comment.body.contains(&format!("| `Preview – web` | ✅ ready | [{url}]({url}) | `{}` | ✅ 1 passed, 0 warned, 0 failed |", &head[..7])), "{}", comment.body);
    assert!(comment.body.ends_with("<!-- shipgate:preview -->"));
    let runs = t.gh.created_check_runs(REPO);
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (
            runs[0]["name"].as_str(),
            runs[0]["head_sha"].as_str(),
            runs[0]["conclusion"].as_str()
        ),
        (Some("shipgate/smoke"), Some(head.as_str()), Some("success"))
    );
    assert!(runs[0]["output"]["summary"]
        .as_str()
        .unwrap()
        .contains("| health | ✅ |"));

    // A push: the PR's new head is deployed; the same comment shows it.
    let next = t.gh.commit(REPO, "feature", &[("f.txt", Some("2"))]);
    t.gh.sync_pr(REPO, pr);
    let d2 =
        t.gh.create_deployment(REPO, &next, "Preview – web", json!({}));
    t.send(
        "deployment_status",
        &provider_status(&t, "vercel", d2, &next, &url),
    )
    .await;
    t.settle().await;
    assert_eq!(t.gh.bot_comments(REPO, pr).len(), 1, "one comment per PR");
    let body = t.gh.comment_body(REPO, comment.id);
    assert!(
        body.contains(&format!("`{}`", &next[..7])) && !body.contains(&format!("`{}`", &head[..7])),
        "older commit's row replaced: {body}"
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_providers_reporting_at_once_still_make_one_comment() {
    let t = Harness::start_with(&[PRIVATE_OK]).await;
    let app = app().await;
    let (pr, head) = setup(&t, CONFIG);
    let url = format!("http://{}/", app.addr);
    let a = provider_status(
        &t,
        "vercel",
        t.gh.create_deployment(REPO, &head, "Preview – web", json!({})),
        &head,
        &url,
    );
    let b = provider_status(
        &t,
        "netlify",
        t.gh.create_deployment(REPO, &head, "deploy-preview", json!({})),
        &head,
        &url,
    );
    let (ra, rb) = tokio::join!(
        t.send("deployment_status", &a),
        t.send("deployment_status", &b)
    );
    assert!(ra.0.is_success() && rb.0.is_success());
    let comment = t.next_reply(REPO, pr).await;
    assert!(
        comment.body.contains("`Preview – web`") && comment.body.contains("`deploy-preview`"),
        "{}",
        comment.body
    );
    assert_eq!(
        comment.body.matches("✅ 1 passed").count(),
        2,
        "{}",
        comment.body
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marker_pasted_by_a_user_is_not_adopted() {
    let t = Harness::start_with(&[PRIVATE_OK]).await;
    let app = app().await;
    let (pr, head) = setup(&t, CONFIG);
    let pasted =
        t.gh.add_comment(REPO, pr, "mallory", "look <!-- shipgate:preview -->");
    let url = format!("http://{}/", app.addr);
    let d =
        t.gh.create_deployment(REPO, &head, "Preview – web", json!({}));
    t.send(
        "deployment_status",
        &provider_status(&t, "vercel", d, &head, &url),
    )
    .await;
    let comment = t.next_reply(REPO, pr).await;
    assert_ne!(comment.id, pasted);
    assert_eq!(
        t.gh.comment_body(REPO, pasted),
        "look <!-- shipgate:preview -->"
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disallowed_hosts_and_private_addresses_are_not_probed() {
    for (config, reason) in [
        ("preview:\n  allowed_hosts: [\"127.0.0.1\"]\n", "not probed: `127.0.0.1` resolves to 127.0.0.1 (loopback, private, link-local or metadata)"),
        ("preview:\n  allowed_hosts: [\"*.vercel.app\"]\n  allow_private: true\n", "not probed: host `127.0.0.1` is not in preview.allowed_hosts"),
    ] {
        let t = Harness::start().await;
        let app = app().await;
        let (pr, head) = setup(&t, config);
        let d = t.gh.create_deployment(REPO, &head, "Preview – web", json!({}));
        t.send("deployment_status", &provider_status(&t, "vercel", d, &head, &format!("http://{}/", app.addr))).await;
        let comment = t.next_reply(REPO, pr).await;
        assert!(comment.body.contains(reason), "{}", comment.body);
        assert_eq!(app.hits.load(Ordering::SeqCst), 0, "nothing was requested");
        assert_eq!(t.gh.created_check_runs(REPO)[0]["conclusion"], "neutral");
        t.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_shape_yields_a_preview_row() {
    let t = Harness::start_with(&[PRIVATE_OK]).await;
    let app = app().await;
    let (pr, head) = setup(&t, CONFIG);
    let url = format!("http://{}/", app.addr);
    for (provider, env) in [
        ("vercel", "Preview – web"),
        ("netlify", "deploy-preview"),
        ("railway", "web / pr-12"),
        ("render", "web-pr-12"),
        ("actions", "staging"),
    ] {
        let d = t.gh.create_deployment(REPO, &head, env, json!({}));
        t.send(
            "deployment_status",
            &provider_status(&t, provider, d, &head, &url),
        )
        .await;
        t.settle().await;
    }
    let comment = t.gh.next_bot_comment(REPO, pr);
    for env in [
        "Preview – web",
        "deploy-preview",
        "web / pr-12",
        "web-pr-12",
        "staging",
    ] {
        assert!(
            comment
                .body
                .contains(&format!("| `{env}` | ✅ ready | [{url}]({url}) |")),
            "{env}: {}",
            comment.body
        );
    }
    assert_eq!(t.gh.bot_comments(REPO, pr).len(), 1);
    t.finish().await;
}

async fn slack() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let router = Router::new().route(
        "/hook",
        post(move |axum::Json(v): axum::Json<Value>| {
            let g = g.clone();
            async move {
                g.lock()
                    .unwrap()
                    .push(v["text"].as_str().unwrap_or("").to_string());
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (addr, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_production_smoke_rolls_back_exactly_once() {
    let (hook, messages) = slack().await;
    let t = Harness::start_with(&[
        ("SHIPGATE_SLACK_WEBHOOK_URL", &format!("http://{hook}/hook")),
        PRIVATE_OK,
    ])
    .await;
    let app = app().await;
    app.healthy.store(false, Ordering::SeqCst);
    let config = r#"
preview:
  allowed_hosts: ["127.0.0.1"]
  allow_private: true
environments:
  production:
    auto_rollback: true
    smoke:
      checks:
        - { name: health, path: /api/health, expect: { json: ['$.status == "healthy"'] } }
"#;
    let (pr, _) = setup(&t, config);
    t.gh.set_pr(REPO, pr, |p| p.state = "closed".into()); // merged: no preview comment
    let good = t.gh.commit(REPO, "main", &[("v", Some("1"))]);
    let bad = t.gh.commit(REPO, "main", &[("v", Some("2"))]);
    t.gh.add_deployment(REPO, &good, "production", &["success"]);
    let deployed = t.gh.create_deployment(
        REPO,
        &bad,
        "production",
        json!({ "kind": "deploy", "pr": pr }),
    );
    let url = format!("http://{}/", app.addr);
    let status =
        t.gh.deployment_status(REPO, deployed, "success", Some(&url), None);
    t.send("deployment_status", &status).await;
    t.settle().await;

    let rollbacks: Vec<_> =
        t.gh.deployments(REPO)
            .into_iter()
            .filter(|d| d.payload["kind"] == "rollback")
            .collect();
    assert_eq!(rollbacks.len(), 1);
    assert_eq!(rollbacks[0].sha, good);
    assert_eq!(rollbacks[0].payload["auto"], json!(true));
    assert_eq!(
        rollbacks[0].payload["rolled_back_deployment"],
        json!(deployed)
    );
    let note = t.gh.next_bot_comment(REPO, pr);
    assert!(
        note.body.starts_with(&format!(
            "↩️ Smoke checks failed after deploying `{}` to `production`: rolling back to `{}`",
            &bad[..7],
            &good[..7]
        )),
        "{}",
        note.body
    );
    assert!(
        note.body
            .contains("health: `$.status == \"healthy\"`: got \"degraded\""),
        "{}",
        note.body
    );

    // The rollback deploys, and its smoke fails too: no second rollback.
    let rollback_status =
        t.gh.deployment_status(REPO, rollbacks[0].id, "success", Some(&url), None);
    t.send("deployment_status", &rollback_status).await;
    // The first status again under a new delivery id: the smoke job is not run twice.
    t.send("deployment_status", &status).await;
    t.settle().await;
    assert_eq!(
        t.gh.deployments(REPO)
            .iter()
            .filter(|d| d.payload["kind"] == "rollback")
            .count(),
        1
    );
    common::eventually("Slack heard of the rollback", || async {
        messages
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.contains("rolling back to"))
    })
    .await;
    assert!(messages
        .lock()
        .unwrap()
        .iter()
        .any(|m| m.contains("smoke checks failed on `production`")));
    t.finish().await;
}

// ------------------------------------------------ the smoke engine as a weapon

/// Lets loopback probes through: the operator's half of `allow_private`.
pub(crate) const PRIVATE_OK: (&str, &str) = ("SHIPGATE_ALLOW_PRIVATE_PROBES", "true");

/// A loopback server that counts its requests and the most it handled at once.
struct Target {
    addr: SocketAddr,
    hits: Arc<AtomicU32>,
    peak: Arc<AtomicU32>,
    paths: Arc<Mutex<Vec<String>>>,
}

async fn target(
    answer: impl Fn(&str) -> axum::response::Response + Clone + Send + Sync + 'static,
) -> Target {
    let hits = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let in_flight = Arc::new(AtomicU32::new(0));
    let paths = Arc::new(Mutex::new(Vec::new()));
    let (h, p, f, seen) = (hits.clone(), peak.clone(), in_flight, paths.clone());
    let router = Router::new().fallback(move |uri: axum::http::Uri| {
        let (h, p, f, seen, answer) = (
            h.clone(),
            p.clone(),
            f.clone(),
            seen.clone(),
            answer.clone(),
        );
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            let now = f.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            seen.lock().unwrap().push(uri.path().to_string());
            // A little service time, so requests sent together overlap here.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            f.fetch_sub(1, Ordering::SeqCst);
            answer(uri.path())
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Target {
        addr,
        hits,
        peak,
        paths,
    }
}

fn ok(_: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    "internal-secret-body".into_response()
}

/// The one check run's summary.
fn check_run_summary(t: &Harness) -> String {
    let runs = t.gh.created_check_runs(REPO);
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0]["output"]["summary"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_suite_cannot_turn_the_server_into_a_traffic_cannon() {
    let t = Harness::start_with(&[PRIVATE_OK]).await;
    let app = target(ok).await;
    // 25 checks of 400 samples and a burst of 500 at the preview host: 10,500
    // requests, as many as 64 at once, on the unlimited engine.
    let mut config = String::from(
        "preview:\n  allowed_hosts: [\"127.0.0.1\"]\n  allow_private: true\nsmoke:\n  checks:\n    - { rule: rate_limit, path: /burst, burst: 500 }\n",
    );
    for i in 0..25 {
        config.push_str(&format!(
            "    - {{ name: c{i}, path: /c{i}, samples: 400 }}\n"
        ));
    }
    let (pr, head) = setup(&t, &config);
    let d =
        t.gh.create_deployment(REPO, &head, "Preview – web", json!({}));
    let url = format!("http://{}/", app.addr);
    t.send(
        "deployment_status",
        &provider_status(&t, "vercel", d, &head, &url),
    )
    .await;
    t.settle().await;
    let hits = app.hits.load(Ordering::SeqCst);
    assert!(hits <= 300, "the run sent {hits} requests");
    assert!(
        app.peak.load(Ordering::SeqCst) <= 4,
        "{} requests at once",
        app.peak.load(Ordering::SeqCst)
    );
    assert!(
        !app.paths.lock().unwrap().iter().any(|p| p == "/burst"),
        "a burst went to a preview host"
    );
    let summary = check_run_summary(&t);
    for reason in [
        "| rate limit | ⚠️ | not run: rate_limit bursts go only to the hosts of environments.*.url, and `127.0.0.1` is not one |",
        "samples cut from 400 to 50 (the server's limit)",
        "| ⚠️ | not run: the server's limit of 300 requests per smoke run was reached |",
        "| 6 more checks | ⚠️ | not run: the server's limit of 20 checks per suite was reached |",
    ] {
        assert!(summary.contains(reason), "{reason}\n{summary}");
    }
    let _ = t.gh.next_bot_comment(REPO, pr);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installations_hourly_budget_is_shared_by_its_runs() {
    let t = Harness::start_with(&[PRIVATE_OK, ("SHIPGATE_SMOKE_HOURLY_BUDGET", "5")]).await;
    let app = target(ok).await;
    let config = "preview:\n  allowed_hosts: [\"127.0.0.1\"]\n  allow_private: true\nsmoke:\n  checks:\n    - { name: a, path: /a }\n    - { name: b, path: /b }\n    - { name: c, path: /c }\n";
    let (pr, head) = setup(&t, config);
    let url = format!("http://{}/", app.addr);
    for _ in 0..3 {
        let d =
            t.gh.create_deployment(REPO, &head, "Preview – web", json!({}));
        t.send(
            "deployment_status",
            &provider_status(&t, "vercel", d, &head, &url),
        )
        .await;
        t.settle().await;
    }
    assert_eq!(app.hits.load(Ordering::SeqCst), 5, "the budget holds");
    let runs = t.gh.created_check_runs(REPO);
    assert_eq!(runs.len(), 3);
    let summary = |i: usize| runs[i]["output"]["summary"].as_str().unwrap().to_string();
    assert!(summary(0).contains("3 passed"), "{}", summary(0));
    assert!(
        summary(1).contains("| c | ⚠️ | not run: the installation's budget of 5 smoke requests per hour was reached |"),
        "{}",
        summary(1)
    );
    assert_eq!(runs[2]["conclusion"], "neutral");
    assert!(
        summary(2).contains(
            "was not probed: the installation's budget of 5 smoke requests per hour is spent"
        ),
        "{}",
        summary(2)
    );
    let _ = t.gh.next_bot_comment(REPO, pr);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_bursts_go_only_to_configured_environment_hosts() {
    let t = Harness::start_with(&[PRIVATE_OK]).await;
    let production = target(ok).await;
    let preview = target(ok).await;
    let config = format!(
        "preview:\n  allowed_hosts: [\"127.0.0.1\", \"localhost\"]\n  allow_private: true\nenvironments:\n  production:\n    url: http://127.0.0.1:{}/\nsmoke:\n  checks:\n    - {{ rule: rate_limit, burst: 20 }}\n",
        production.addr.port()
    );
    let (pr, head) = setup(&t, &config);
    // The configured environment's host gets its burst.
    let d = t.gh.create_deployment(REPO, &head, "production", json!({}));
    let url = format!("http://{}/", production.addr);
    let status = t.gh.deployment_status(REPO, d, "success", Some(&url), None);
    t.send("deployment_status", &status).await;
    t.settle().await;
    assert_eq!(production.hits.load(Ordering::SeqCst), 20);
    // A preview on another host does not.
    let d =
        t.gh.create_deployment(REPO, &head, "Preview – web", json!({}));
    let url = format!("http://localhost:{}/", preview.addr.port());
    t.send(
        "deployment_status",
        &provider_status(&t, "vercel", d, &head, &url),
    )
    .await;
    t.settle().await;
    assert_eq!(
        preview.hits.load(Ordering::SeqCst),
        0,
        "no burst at a preview"
    );
    let comment = t.gh.next_bot_comment(REPO, pr);
    assert!(
        comment.body.contains("| `Preview – web` |"),
        "{}",
        comment.body
    );
    t.finish().await;
}

/// A lead form limited on its POST: the server's burst at the production
/// host posts the check's body with its headers, and the limit is seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_on_a_post_endpoint_is_checked_with_the_checks_body() {
    let t = Harness::start_with(&[PRIVATE_OK]).await;
    let (addr, posts) = common::limited_post_endpoint(
        "/api/leads",
        r#"{"email":"smoke@example.com"}"#,
        Some("application/json"),
        10,
    )
    .await;
    let config = format!(
        "preview:\n  allowed_hosts: [\"127.0.0.1\"]\n  allow_private: true\nenvironments:\n  production:\n    url: http://127.0.0.1:{}/\nsmoke:\n  checks:\n    - {{ rule: rate_limit, name: leads, path: /api/leads, method: POST, headers: {{ content-type: application/json }}, body: '{{\"email\":\"smoke@example.com\"}}', burst: 15 }}\n",
        addr.port()
    );
    let (pr, head) = setup(&t, &config);
    let d = t.gh.create_deployment(REPO, &head, "production", json!({}));
    let url = format!("http://{addr}/");
    let status = t.gh.deployment_status(REPO, d, "success", Some(&url), None);
    t.send("deployment_status", &status).await;
    t.settle().await;
    assert_eq!(
        posts.load(Ordering::SeqCst),
        15,
        "the burst posted the check's body"
    );
    let summary = check_run_summary(&t);
    assert!(
        summary.contains("| leads | ✅ |")
            && summary.contains("of 15 requests got 429 with Retry-After"),
        "{summary}"
    );
    let _ = t.gh.next_bot_comment(REPO, pr);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checks_path_or_url_cannot_reach_a_private_address() {
    let t = Harness::start().await;
    let internal = target(ok).await;
    let port = internal.addr.port();
    // The deployment URL is a public address (never connected to: every check
    // goes elsewhere); 127.0.0.1 is an allowed host, but private.
    let config = format!(
        "preview:\n  allowed_hosts: [\"76.76.21.21\", \"127.0.0.1\"]\nsmoke:\n  wait: {{ timeout: 1s }}\n  checks:\n    - {{ name: by path, path: \"//127.0.0.1:{port}/by-path\" }}\n    - {{ name: by url, url: \"http://127.0.0.1:{port}/by-url\" }}\n"
    );
    let (pr, head) = setup(&t, &config);
    let d =
        t.gh.create_deployment(REPO, &head, "Preview – web", json!({}));
    t.send(
        "deployment_status",
        &provider_status(&t, "vercel", d, &head, "http://76.76.21.21/"),
    )
    .await;
    t.settle().await;
    assert_eq!(
        internal.paths.lock().unwrap().clone(),
        Vec::<String>::new(),
        "requests reached the private address"
    );
    let summary = check_run_summary(&t);
    for name in ["by path", "by url"] {
        assert!(
            summary.contains(&format!("| {name} | ❌ | refused: `127.0.0.1` resolves to 127.0.0.1 (loopback, private, link-local or metadata); probing it needs preview.allow_private and the server operator's SHIPGATE_ALLOW_PRIVATE_PROBES")),
            "{summary}"
        );
    }
    assert!(!summary.contains("internal-secret-body"), "{summary}");
    let _ = t.gh.next_bot_comment(REPO, pr);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_from_an_allowed_host_is_checked_like_the_first_hop() {
    let t = Harness::start_with(&[PRIVATE_OK]).await;
    let internal = target(ok).await;
    let location = format!(
        "http://localhost:{}/latest/meta-data/",
        internal.addr.port()
    );
    let preview = target(move |_| {
        use axum::response::IntoResponse;
        (
            axum::http::StatusCode::FOUND,
            [("location", location.clone())],
        )
            .into_response()
    })
    .await;
    let config = "preview:\n  allowed_hosts: [\"127.0.0.1\"]\n  allow_private: true\nsmoke:\n  checks:\n    - { name: home, path: / }\n";
    let (pr, head) = setup(&t, config);
    let d =
        t.gh.create_deployment(REPO, &head, "Preview – web", json!({}));
    let url = format!("http://{}/", preview.addr);
    t.send(
        "deployment_status",
        &provider_status(&t, "vercel", d, &head, &url),
    )
    .await;
    t.settle().await;
    assert_eq!(
        preview.hits.load(Ordering::SeqCst),
        1,
        "the first hop is probed"
    );
    assert_eq!(
        internal.hits.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
    let summary = check_run_summary(&t);
    assert!(
        summary.contains(&format!("| home | ❌ | refused: redirect to http://localhost:{}/latest/meta-data/: host `localhost` is not in preview.allowed_hosts |", internal.addr.port())),
        "{summary}"
    );
    assert!(!summary.contains("internal-secret-body"), "{summary}");
    let _ = t.gh.next_bot_comment(REPO, pr);
    t.finish().await;
}

/// A redirect the team expects is asserted on, not followed: the preview's
/// check run passes on the `301` and its `location`, and the target the
/// redirect names is never requested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_check_asserts_on_a_redirect_without_following_it() {
    let t = Harness::start_with(&[PRIVATE_OK]).await;
    let new_home = target(ok).await;
    let location = format!("http://127.0.0.1:{}/", new_home.addr.port());
    let moved = location.clone();
    let preview = target(move |_| {
        use axum::response::IntoResponse;
        (
            axum::http::StatusCode::MOVED_PERMANENTLY,
            [("location", moved.clone())],
        )
            .into_response()
    })
    .await;
    let config = format!(
        "preview:\n  allowed_hosts: [\"127.0.0.1\"]\n  allow_private: true\nsmoke:\n  checks:\n    - {{ name: moved, path: /tienda, follow_redirects: false, expect: {{ status: 301, headers: {{ location: {{ equals: \"{location}\" }} }} }} }}\n"
    );
    let (pr, head) = setup(&t, &config);
    let d =
        t.gh.create_deployment(REPO, &head, "Preview – web", json!({}));
    let url = format!("http://{}/", preview.addr);
    t.send(
        "deployment_status",
        &provider_status(&t, "vercel", d, &head, &url),
    )
    .await;
    t.settle().await;
    let summary = check_run_summary(&t);
    assert!(summary.contains("| moved | ✅ |"), "{summary}");
    assert_eq!(preview.hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        new_home.hits.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
    let _ = t.gh.next_bot_comment(REPO, pr);
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_private_in_the_repository_alone_does_not_open_private_addresses() {
    // The operator has not set SHIPGATE_ALLOW_PRIVATE_PROBES.
    let t = Harness::start().await;
    let app = target(ok).await;
    let (pr, head) = setup(&t, CONFIG);
    let d =
        t.gh.create_deployment(REPO, &head, "Preview – web", json!({}));
    let url = format!("http://{}/", app.addr);
    t.send(
        "deployment_status",
        &provider_status(&t, "vercel", d, &head, &url),
    )
    .await;
    let comment = t.next_reply(REPO, pr).await;
    assert_eq!(
        app.hits.load(Ordering::SeqCst),
        0,
        "the private address was probed"
    );
    assert!(
        comment.body.contains("not probed: `127.0.0.1` resolves to 127.0.0.1 (loopback, private, link-local or metadata); preview.allow_private is set, but the server's operator does not allow private probes (SHIPGATE_ALLOW_PRIVATE_PROBES)"),
        "{}",
        comment.body
    );
    t.finish().await;
}

/// The server holds no repository secrets: a flow that needs `${env.…}` is
/// shown as not run, with the reason, and is never sent (the server's own
/// environment is never read for it); a flow that needs none runs, and its
/// saved values stay out of the check run and the comment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_runs_only_the_smoke_flows_that_need_no_secrets() {
    use crate::common::sites::{login_site, FLOWS};
    let t = Harness::start_with(&[PRIVATE_OK]).await;
    let (site, seen) = login_site().await;
    // A third flow's assertion quotes its answer, which holds the saved id.
    let echo = r#"
    - name: booking echo
      flow:
        - { name: create, method: POST, path: /api/businesses, save: { business: $.id } }
        - { name: book, method: POST, path: /api/bookings, headers: { content-type: application/json }, body: '{"business": "${business}"}', expect: { json: ['$.business == "someone else"'] } }
"#;
    let config = format!(
        "preview:\n  allowed_hosts: [\"127.0.0.1\"]\n  allow_private: true\nsmoke:\n  checks:{FLOWS}{echo}"
    );
    let (pr, head) = setup(&t, &config);
    let d =
        t.gh.create_deployment(REPO, &head, "Preview – web", json!({}));
    let url = format!("http://{site}/");
    t.send(
        "deployment_status",
        &provider_status(&t, "vercel", d, &head, &url),
    )
    .await;
    t.settle().await;
    let summary = check_run_summary(&t);
    assert!(
        summary.contains("| log in, then read the settlements | ⏭️ | not run: it needs `SMOKE_PASSWORD` from the workflow's secrets"),
        "{summary}"
    );
    assert!(
        summary.contains("| create a business, then book | ✅ |"),
        "{summary}"
    );
    assert_eq!(seen.logins(), 0, "a flow needing a secret was sent");
    assert_eq!(seen.bookings(), 2);
    assert!(
        summary.contains(
            "| booking echo | ❌ | step 2 `book`: `$.business == \"someone else\"`: got \"***\""
        ),
        "{summary}"
    );
    let comment = t.gh.next_bot_comment(REPO, pr);
    for shown in [&summary, &comment.body] {
        assert!(!shown.contains("biz-4821"), "a saved value shown:\n{shown}");
    }
    t.finish().await;
}

/// A preview of plan 004's site, whose CSP allows inline scripts: with the
/// defaults its check run fails on the CSP; with the team's decision in the
/// repository file it passes, and says which headers were not checked. (The
/// stand-in serves plain HTTP, where no HSTS can pass, so both ignore it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previews_security_headers_are_checked_as_the_team_decides() {
    let site = || {
        target(|_| {
            use axum::response::IntoResponse;
            (
                [
                    ("x-content-type-options", "nosniff"),
                    ("x-frame-options", "SAMEORIGIN"),
                    ("content-security-policy", "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.vercel-insights.com"),
                ],
                "ok",
            )
                .into_response()
        })
    };
    for (keys, conclusion, reason) in [
        (
            "ignore: [strict-transport-security]",
            "failure",
            "| headers | ❌ | 2 of 5 good; Referrer-Policy: missing (browsers default to strict-origin-when-cross-origin); Permissions-Policy: missing; Content-Security-Policy: script-src allows 'unsafe-inline' without a nonce or hash; not checked: Strict-Transport-Security |",
        ),
        (
            "csp: { allow_unsafe_inline: true }, ignore: [strict-transport-security, permissions-policy, referrer-policy]",
            "success",
            "| headers | ✅ | all 3 headers good; not checked: Strict-Transport-Security, Referrer-Policy, Permissions-Policy |",
        ),
    ] {
        let t = Harness::start_with(&[PRIVATE_OK]).await;
        let app = site().await;
        let config = format!(
            "preview:\n  allowed_hosts: [\"127.0.0.1\"]\n  allow_private: true\n  smoke:\n    checks:\n      - {{ rule: security_headers, name: headers, {keys} }}\n"
        );
        let (pr, head) = setup(&t, &config);
        let d =
            t.gh.create_deployment(REPO, &head, "Preview – web", json!({}));
        let url = format!("http://{}/", app.addr);
        t.send(
            "deployment_status",
            &provider_status(&t, "vercel", d, &head, &url),
        )
        .await;
        t.settle().await;
        let runs = t.gh.created_check_runs(REPO);
        assert_eq!(runs[0]["conclusion"], conclusion, "{keys}");
        let summary = check_run_summary(&t);
        assert!(summary.contains(reason), "{keys}\n{summary}");
        let _ = t.gh.next_bot_comment(REPO, pr);
        t.finish().await;
    }
}
