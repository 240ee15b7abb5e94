//! shipgate as a custom deployment protection rule, through `/webhook`.

use crate::common;

use common::Harness;
use serde_json::{json, Value};
use shipgate::store::{Lock, LockKind};

const REPO: &str = "acme/app";
const CONFIG: &str = r#"
environments:
  production:
    required_checks: [ci]
    refs: [main, "v*"]
    pending_timeout: 1h
"#;

fn setup(t: &Harness, config: &str) -> (u64, String) {
    t.gh.add_repo(REPO, &[(".github/shipgate.yml", config)]);
    t.gh.commit(REPO, "feature", &[("f", Some("1"))]);
    let pr = t.gh.open_pr(REPO, "feature", "alice");
    let head = t.gh.pr(REPO, pr).head_sha;
    (pr, head)
}

async fn request(t: &Harness, run: &str, sha: &str, git_ref: &str, pr: Option<u64>) {
    let d = t.gh.create_deployment(REPO, sha, "production", json!({}));
    let payload =
        t.gh.protection_rule_payload(REPO, run, "production", d, sha, git_ref, pr);
    let (status, b) = t.send("deployment_protection_rule", &payload).await;
    assert!(status.is_success(), "{b}");
    t.settle().await;
}

/// The decisions among the callbacks — each callback body checked against
/// GitHub's OpenAPI description of the endpoint first.
fn decided(callbacks: &[Value]) -> Vec<&str> {
    let schema = common::openapi::request_schema("deployment_protection_rule");
    for body in callbacks {
        common::openapi::validate(&schema, body, "body").unwrap_or_else(|e| panic!("{e}: {body}"));
    }
    callbacks
        .iter()
        .filter_map(|c| c["state"].as_str())
        .collect()
}

#[test]
fn the_schema_check_refuses_bodies_github_would_refuse() {
    let schema = common::openapi::request_schema("deployment_protection_rule");
    let check = |v: Value| common::openapi::validate(&schema, &v, "body");
    assert!(check(
        json!({ "environment_name": "production", "state": "approved", "comment": "ok" })
    )
    .is_ok());
    assert!(check(json!({ "environment_name": "production", "comment": "waiting" })).is_ok());
    assert!(
        check(json!({ "environment_name": "production" })).is_err(),
        "neither state nor comment"
    );
    assert!(check(json!({ "environment_name": "production", "state": "maybe" })).is_err());
    assert!(check(json!({ "state": "approved" })).is_err());
}

async fn sticky_lock(t: &Harness, holder: &str, pr: i64) {
    let lock = Lock {
        repository: REPO.into(),
        environment: "production".into(),
        kind: LockKind::Sticky,
        holder: holder.into(),
        pr: Some(pr),
        owner_token: format!("test:{pr}"),
        deployment_id: None,
        reason: Some("migration".into()),
        expires_at: None,
        created_at: 0,
    };
    t.server
        .store
        .acquire_lock(&lock, shipgate::now_ms())
        .await
        .unwrap();
}

#[tokio::test]
async fn approved_when_every_gate_is_green_with_the_gates_listed() {
    let t = Harness::start().await;
    let (_, head) = setup(&t, CONFIG);
    t.gh.check_run(REPO, &head, "ci", "completed", Some("success"));
    request(&t, "101", &head, "main", None).await;
    let callbacks = t.gh.protection_callbacks(REPO, "101");
    assert_eq!(decided(&callbacks), ["approved"]);
    let comment = callbacks[0]["comment"].as_str().unwrap();
    assert!(
        comment.starts_with("shipgate: approved\n✅ Ref: branch `main` may deploy to `production`"),
        "{comment}"
    );
    for gate in ["✅ Checks:", "✅ Freeze:", "✅ Lock:"] {
        assert!(comment.contains(gate), "{gate} in {comment}");
    }
    assert_eq!(callbacks[0]["environment_name"], "production");
    t.finish().await;
}

#[tokio::test]
async fn rejected_during_a_freeze_that_outlasts_the_wait_and_for_a_ref_not_allowed() {
    let today = chrono::Utc::now().date_naive();
    let days: Vec<String> = (0..3)
        .map(|d| {
            (today + chrono::Days::new(d))
                .format("%Y-%m-%d")
                .to_string()
        })
        .collect();
    let config = format!(
        "environments:\n  production:\n    refs: [main, \"refs/tags/v*\"]\n    freeze:\n      - {{ dates: [\"{}\", \"{}\", \"{}\"], reason: Holidays }}\n",
        days[0], days[1], days[2]
    );
    let t = Harness::start().await;
    let (_, head) = setup(&t, &config);
    t.gh.tag(REPO, "v1.2.0", &head);
    t.gh.commit(REPO, "feature-x", &[("x", Some("x"))]);
    request(&t, "201", &head, "v1.2.0", None).await;
    let callbacks = t.gh.protection_callbacks(REPO, "201");
    assert_eq!(decided(&callbacks), ["rejected"]);
    let comment = callbacks[0]["comment"].as_str().unwrap();
    assert!(
        comment.contains("⏳ Freeze: Holidays ("),
        "the window is named: {comment}"
    );

    request(&t, "202", &head, "feature-x", None).await;
    let callbacks = t.gh.protection_callbacks(REPO, "202");
    assert_eq!(decided(&callbacks), ["rejected"]);
    assert!(callbacks[0]["comment"]
        .as_str()
        .unwrap()
        .contains("❌ Ref: branch `feature-x` may not deploy to `production` (allowed: `main`, `refs/tags/v*`)"));
    t.finish().await;
}

#[tokio::test]
async fn pending_during_a_lock_and_approved_after_unlock() {
    let t = Harness::start().await;
    let (pr, head) = setup(&t, CONFIG);
    t.gh.check_run(REPO, &head, "ci", "completed", Some("success"));
    t.gh.set_role(REPO, "bob", "write");
    sticky_lock(&t, "bob", 999).await;
    request(&t, "301", &head, "main", None).await;
    let callbacks = t.gh.protection_callbacks(REPO, "301");
    assert_eq!(callbacks.len(), 1);
    assert!(
        callbacks[0].get("state").is_none(),
        "a progress comment, no decision yet"
    );
    assert!(callbacks[0]["comment"]
        .as_str()
        .unwrap()
        .starts_with("shipgate: waiting"));

    t.comment(REPO, pr, "bob", "/unlock production").await;
    t.next_reply(REPO, pr).await;
    let callbacks = t.gh.protection_callbacks(REPO, "301");
    assert_eq!(decided(&callbacks), ["approved"]);
    t.finish().await;
}

#[tokio::test]
async fn pending_while_checks_run_and_approved_when_the_last_one_completes() {
    let t = Harness::start().await;
    let (_, head) = setup(&t, CONFIG);
    t.gh.check_run(REPO, &head, "ci", "in_progress", None);
    request(&t, "401", &head, "main", None).await;
    assert!(decided(&t.gh.protection_callbacks(REPO, "401")).is_empty());
    t.gh.check_run(REPO, &head, "ci", "completed", Some("success"));
    let done = json!({
        "action": "completed",
        "check_run": { "name": "ci", "head_sha": head, "status": "completed", "conclusion": "success", "app": { "slug": "github-actions" } },
        "repository": t.gh.repository_json(REPO),
        "installation": { "id": 42 },
    });
    t.send("check_run", &done).await;
    t.settle().await;
    assert_eq!(
        decided(&t.gh.protection_callbacks(REPO, "401")),
        ["approved"]
    );
    t.finish().await;
}

#[tokio::test]
async fn rejected_at_the_deadline() {
    let config = CONFIG.replace("pending_timeout: 1h", "pending_timeout: 1s");
    let t = Harness::start_with(&[("SHIPGATE_PROTECTION_SWEEP_MS", "50")]).await;
    let (_, head) = setup(&t, &config);
    t.gh.check_run(REPO, &head, "ci", "completed", Some("success"));
    sticky_lock(&t, "bob", 999).await;
    request(&t, "501", &head, "main", None).await;
    t.gh.wait_for("the rejection at the deadline", |w| {
        w.repo(REPO)
            .protection_callbacks
            .iter()
            .any(|(id, b)| id == "501" && b.get("state").is_some())
    })
    .await;
    let callbacks = t.gh.protection_callbacks(REPO, "501");
    assert_eq!(decided(&callbacks), ["rejected"]);
    assert!(callbacks.last().unwrap()["comment"]
        .as_str()
        .unwrap()
        .starts_with("shipgate: rejected — the deadline passed while waiting"));
    t.finish().await;
}

#[tokio::test]
async fn a_restart_keeps_the_pending_request_and_answers_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let first = Harness::start_with(&[("DATABASE_URL", &db)]).await;
    let gh = first.gh.clone();
    let (pr, head) = setup(&first, CONFIG);
    gh.check_run(REPO, &head, "ci", "completed", Some("success"));
    gh.set_role(REPO, "bob", "write");
    sticky_lock(&first, "bob", pr as i64).await;
    // Another PR's deployment waits for bob's lock.
    gh.commit(REPO, "other", &[("o", Some("1"))]);
    let other = gh.open_pr(REPO, "other", "carol");
    request(&first, "601", &head, "main", Some(other)).await;
    assert!(decided(&gh.protection_callbacks(REPO, "601")).is_empty());
    first.finish().await;

    let second = Harness::start_with_github(gh.clone(), &[("DATABASE_URL", &db)]).await;
    second.comment(REPO, pr, "bob", "/unlock production").await;
    second.next_reply(REPO, pr).await;
    assert_eq!(decided(&gh.protection_callbacks(REPO, "601")), ["approved"]);
    // Another event that re-checks: the answered request is not answered again.
    second.send("check_run", &json!({ "action": "completed", "check_run": { "name": "ci", "head_sha": head, "app": { "slug": "x" } }, "repository": gh.repository_json(REPO), "installation": { "id": 42 } })).await;
    second.settle().await;
    assert_eq!(decided(&gh.protection_callbacks(REPO, "601")), ["approved"]);
    second.finish().await;
}
