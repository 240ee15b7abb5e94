//! A rollback that happens: the deploy workflow's smoke gate (the Action)
//! finds the new deployment broken and posts a `failure` status carrying
//! shipgate's mark; the server, on that status, deploys the environment's
//! last good commit again. Through the real `/webhook` path, the real
//! Action binary and the fake GitHub.

use serde_json::json;

use crate::action::{run_in, stdout, Step};
use crate::common::{self, Harness};

const REPO: &str = "acme/app";
const CONFIG_PATH: &str = ".github/shipgate.yml";
const CONFIG: &str = r#"
environments:
  production:
    deployers: write
    auto_rollback: true
    smoke:
      checks:
        - { name: health, path: /api/health, expect: { status: 200 } }
  staging:
    deployers: write
"#;

/// A site whose health endpoint is broken.
async fn broken_site() -> String {
    let router = axum::Router::new().route(
        "/api/health",
        axum::routing::get(|| async { axum::http::StatusCode::INTERNAL_SERVER_ERROR }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/")
}

/// The deploy workflow's smoke step: the Action, triggered by the
/// `deployment` event of `deployment`, against `site`; it posts the
/// deployment's status to the fake GitHub. Returns its exit code.
async fn smoke_step(
    gh: &common::FakeGitHub,
    deployment: u64,
    environment: &str,
    site: &str,
) -> i32 {
    let mut step = Step::new();
    step.config(CONFIG);
    step.set("GITHUB_API_URL", &gh.url())
        .set("INPUT_TOKEN", "ghs_test")
        .set("GITHUB_RUN_ID", "99")
        .set("INPUT_GATES", "smoke")
        .set("INPUT_URL", site);
    step.event(
        "deployment",
        json!({ "deployment": { "id": deployment, "environment": environment } }),
    );
    let (env, ws) = (step.env.clone(), step.ws());
    let out = tokio::task::spawn_blocking(move || run_in(&ws, &env))
        .await
        .unwrap();
    let code = out.status.code().unwrap();
    assert!(code == 0 || code == 1, "{}", stdout(&out));
    code
}

fn rollbacks(gh: &common::FakeGitHub) -> Vec<common::fake_github::Deployment> {
    gh.deployments(REPO)
        .into_iter()
        .filter(|d| d.payload["kind"] == "rollback")
        .collect()
}

/// `/deploy production` is handled by one server process; the process is
/// replaced while the deploy workflow runs; its smoke gate fails, and the
/// new process rolls production back to the last good commit, once, however
/// often the status is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_smoke_gate_in_the_deploy_workflow_rolls_back_across_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let first = Harness::start_with(&[("DATABASE_URL", &db)]).await;
    let gh = first.gh.clone();
    gh.add_repo(REPO, &[(CONFIG_PATH, CONFIG)]);
    let good = gh.commit(REPO, "main", &[("v", Some("1"))]);
    gh.add_deployment(REPO, &good, "production", &["in_progress", "success"]);
    gh.commit(REPO, "feature", &[("f", Some("2"))]);
    let pr = gh.open_pr(REPO, "feature", "alice");
    let head = gh.pr(REPO, pr).head_sha;
    gh.set_role(REPO, "alice", "write");
    first.comment(REPO, pr, "alice", "/deploy production").await;
    let reply = first.next_reply(REPO, pr).await;
    assert!(
        reply
            .body
            .starts_with("### 🚀 Deploy to `production` created"),
        "{}",
        reply.body
    );
    let deployed = gh.deployments(REPO).last().unwrap().id;
    first.finish().await;

    let second = Harness::start_with_github(gh.clone(), &[("DATABASE_URL", &db)]).await;
    let site = broken_site().await;
    assert_eq!(smoke_step(&gh, deployed, "production", &site).await, 1);
    let status = gh.status_event(REPO, deployed);
    assert_eq!(status["deployment_status"]["state"], "failure");
    second.send("deployment_status", &status).await;
    second.settle().await;

    let made = rollbacks(&gh);
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0].sha, good);
    assert_eq!(made[0].payload["auto"], json!(true));
    assert_eq!(made[0].payload["rolled_back_deployment"], json!(deployed));
    // The PR's previews comment shows the failed deployment, then the note.
    let previews = gh.next_bot_comment(REPO, pr);
    assert!(
        previews.body.contains("| `production` | ❌ [failed]"),
        "{}",
        previews.body
    );
    let note = gh.next_bot_comment(REPO, pr);
    assert!(
        note.body.starts_with(&format!(
            "↩️ Smoke checks failed after deploying `{}` to `production`: rolling back to `{}`",
            &head[..7],
            &good[..7]
        )),
        "{}",
        note.body
    );
    assert!(
        note.body.contains(
            "the smoke gate of the deploy workflow: 0 passed, 0 warned, 1 failed (https://github.com/acme/app/actions/runs/99)"
        ),
        "{}",
        note.body
    );

    // GitHub delivers the status again: no second rollback, no second note.
    second.send("deployment_status", &status).await;
    second.settle().await;
    assert_eq!(rollbacks(&gh).len(), 1);
    second.finish().await;
}

/// Only a marked smoke failure of the newest deployment of an environment
/// with `auto_rollback` rolls back: not a failed build (no mark), not an
/// environment without `auto_rollback`, not a rollback's own failure, and
/// not a deployment a newer one replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_marked_smoke_failure_of_the_newest_deployment_rolls_back() {
    let t = Harness::start().await;
    let gh = t.gh.clone();
    gh.add_repo(REPO, &[(CONFIG_PATH, CONFIG)]);
    let good = gh.commit(REPO, "main", &[("v", Some("1"))]);
    let bad = gh.commit(REPO, "main", &[("v", Some("2"))]);
    gh.add_deployment(REPO, &good, "production", &["success"]);
    gh.add_deployment(REPO, &good, "staging", &["success"]);
    let site = broken_site().await;

    // The build failed: the workflow posts a plain failure.
    let d = gh.create_deployment(REPO, &bad, "production", json!({ "kind": "deploy" }));
    let plain = gh.deployment_status(REPO, d, "failure", None, None);
    t.send("deployment_status", &plain).await;
    // Staging has no auto_rollback.
    let s = gh.create_deployment(REPO, &bad, "staging", json!({ "kind": "deploy" }));
    assert_eq!(smoke_step(&gh, s, "staging", &site).await, 1);
    t.send("deployment_status", &gh.status_event(REPO, s)).await;
    // A rollback's own smoke failure.
    let r = gh.create_deployment(REPO, &good, "production", json!({ "kind": "rollback" }));
    assert_eq!(smoke_step(&gh, r, "production", &site).await, 1);
    t.send("deployment_status", &gh.status_event(REPO, r)).await;
    t.settle().await;
    assert!(
        rollbacks(&gh).iter().all(|d| d.id == r),
        "{:?}",
        rollbacks(&gh)
    );

    // A marked failure of `d`, which the rollback `r` replaced since.
    assert_eq!(smoke_step(&gh, d, "production", &site).await, 1);
    t.send("deployment_status", &gh.status_event(REPO, d)).await;
    t.settle().await;
    assert!(
        rollbacks(&gh).iter().all(|d| d.id == r),
        "{:?}",
        rollbacks(&gh)
    );
    t.finish().await;
}
