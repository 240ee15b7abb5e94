//! Preview comments, smoke check runs and automatic rollback, through the
//! real `/webhook` path against the fake GitHub and a preview app on loopback.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::routing::{get, post};
use axum::Router;
use common::Harness;
use serde_json::{json, Value};

const REPO: &str = "acme/app";
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
struct App {
    addr: SocketAddr,
    healthy: Arc<AtomicBool>,
    hits: Arc<AtomicU32>,
}

async fn app() -> App {
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
fn provider_status(t: &Harness, provider: &str, deployment: u64, sha: &str, url: &str) -> Value {
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

fn setup(t: &Harness, config: &str) -> (u64, String) {
    t.gh.add_repo(REPO, &[(CONFIG_PATH, config)]);
    t.gh.commit(REPO, "feature", &[("f.txt", Some("1"))]);
    let pr = t.gh.open_pr(REPO, "feature", "alice");
    let head = t.gh.pr(REPO, pr).head_sha;
    (pr, head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vercel_preview_gets_one_comment_with_smoke_results_and_a_check_run() {
    let t = Harness::start().await;
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
    let t = Harness::start().await;
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
    let t = Harness::start().await;
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
    let t = Harness::start().await;
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
    let t = Harness::start_with(&[("SHIPGATE_SLACK_WEBHOOK_URL", &format!("http://{hook}/hook"))])
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
