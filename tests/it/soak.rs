//! Promotion after soak (`promote_from`): `/deploy` through `/webhook`, the
//! deployment protection rule, the Action's `policy` gate through the
//! runner contract, and a server restart between staging and production.
//! Times are relative to now: the fake GitHub holds deployments and
//! statuses created hours ago, and "time passing" moves them further back.

use crate::common;

use chrono::{DateTime, Duration, Utc};
use common::{FakeGitHub, Harness};
use serde_json::{json, Value};

const REPO: &str = "acme/app";
const CONFIG_PATH: &str = ".github/shipgate.yml";
const CONFIG: &str = r#"
environments:
  staging:
    deployers: write
  production:
    deployers: write
    production: true
    promote_from: { environment: staging, soak: 24h }
"#;

fn ago(d: Duration) -> DateTime<Utc> {
    Utc::now() - d
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// As the soak gate writes a time.
fn shown(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A deployment of `sha` to `environment` that succeeded at `at`.
fn succeeded(gh: &FakeGitHub, sha: &str, environment: &str, at: DateTime<Utc>) -> u64 {
    let at = rfc3339(at);
    gh.add_deployment_at(
        REPO,
        sha,
        environment,
        json!({}),
        &at,
        &[("in_progress", &at), ("success", &at)],
    )
}

/// A repository with `config` and a PR by alice (write); its head.
fn repo_with_pr(gh: &FakeGitHub, config: &str, branch: &str) -> (u64, String) {
    if gh.with(|w| !w.repos.contains_key(REPO)) {
        gh.add_repo(REPO, &[(CONFIG_PATH, config)]);
    }
    gh.commit(REPO, branch, &[(&format!("{branch}.txt"), Some(branch))]);
    let pr = gh.open_pr(REPO, branch, "alice");
    gh.set_role(REPO, "alice", "write");
    (pr, gh.pr(REPO, pr).head_sha)
}

fn production_deployments(gh: &FakeGitHub) -> Vec<String> {
    gh.deployments(REPO)
        .into_iter()
        .filter(|d| d.environment == "production")
        .map(|d| d.sha)
        .collect()
}

#[tokio::test]
async fn deploy_production_is_refused_while_staging_soaks_and_created_once_it_has() {
    let t = Harness::start().await;
    let (pr, head) = repo_with_pr(&t.gh, CONFIG, "feature");
    let short = &head[..7];
    // A success in another environment does not count, however old.
    succeeded(&t.gh, &head, "qa", ago(Duration::hours(72)));
    let staged_at = ago(Duration::hours(23));
    let staging = succeeded(&t.gh, &head, "staging", staged_at);

    t.comment(REPO, pr, "alice", "/deploy production").await;
    let reply = t.next_reply(REPO, pr).await;
    assert!(
        reply
            .body
            .starts_with("### 😕 Deploy to `production` refused"),
        "{}",
        reply.body
    );
    let waiting = format!(
        " left (deployed `{short}` at {}, deployment {staging}; needs 24h) |",
        shown(staged_at)
    );
    assert!(
        reply.body.contains("| Soak | ⏳ | `staging` soak: ") && reply.body.contains(&waiting),
        "the time left and the staging deployment: {}",
        reply.body
    );
    assert!(production_deployments(&t.gh).is_empty());

    // Two more hours pass.
    t.gh.set_deployment_time(REPO, staging, &rfc3339(ago(Duration::hours(25))));
    t.comment(REPO, pr, "alice", "/deploy production").await;
    let reply = t.next_reply(REPO, pr).await;
    assert!(
        reply
            .body
            .starts_with("### 🚀 Deploy to `production` created"),
        "{}",
        reply.body
    );
    assert!(
        reply.body.contains(&format!(
            "| Soak | ✅ | `{short}` has run in `staging` for 25h"
        )),
        "{}",
        reply.body
    );
    assert_eq!(production_deployments(&t.gh), [head]);
    t.finish().await;
}

#[tokio::test]
async fn a_failure_or_a_rollback_in_staging_resets_the_soak() {
    let t = Harness::start().await;
    let (pr, head) = repo_with_pr(&t.gh, CONFIG, "feature");
    let staging = succeeded(&t.gh, &head, "staging", ago(Duration::hours(30)));
    // The deploy workflow reports a failure of the same deployment now.
    t.gh.deployment_status(REPO, staging, "failure", None, None);
    t.comment(REPO, pr, "alice", "/deploy production").await;
    let reply = t.next_reply(REPO, pr).await;
    assert!(
        reply.body.contains(&format!(
            "| Soak | ❌ | `staging` soak reset: deployment {staging} reported `failure` at "
        )),
        "{}",
        reply.body
    );

    // Another PR soaked 30 h, then `/rollback staging` takes staging away from it.
    let (other, other_head) = repo_with_pr(&t.gh, CONFIG, "other");
    succeeded(&t.gh, &other_head, "staging", ago(Duration::hours(29)));
    t.comment(REPO, other, "alice", "/rollback staging").await;
    let reply = t.next_reply(REPO, other).await;
    assert!(
        reply
            .body
            .starts_with("### 🚀 Rollback to `staging` created"),
        "{}",
        reply.body
    );
    let rollback = t.gh.deployments(REPO).pop().unwrap();
    assert_eq!(rollback.payload["previous_sha"], json!(other_head));
    t.comment(REPO, other, "alice", "/deploy production").await;
    let reply = t.next_reply(REPO, other).await;
    assert!(
        reply.body.contains(&format!(
            "| Soak | ❌ | `staging` soak reset: rollback deployment {} took it away from `{}` at ",
            rollback.id,
            &other_head[..7]
        )),
        "{}",
        reply.body
    );
    assert!(production_deployments(&t.gh).is_empty());
    t.finish().await;
}

#[tokio::test]
async fn force_by_a_maintainer_deploys_before_the_soak_ends_and_a_writers_force_does_not() {
    let t = Harness::start().await;
    let (pr, head) = repo_with_pr(&t.gh, CONFIG, "feature");
    t.gh.set_role(REPO, "maya", "maintain");
    succeeded(&t.gh, &head, "staging", ago(Duration::hours(2)));

    t.comment(REPO, pr, "alice", "/deploy production force")
        .await;
    let reply = t.next_reply(REPO, pr).await;
    assert!(
        reply.body.contains("(`force` needs maintain or admin) |"),
        "{}",
        reply.body
    );
    assert!(production_deployments(&t.gh).is_empty());

    t.comment(REPO, pr, "maya", "/deploy production force")
        .await;
    let reply = t.next_reply(REPO, pr).await;
    assert!(
        reply
            .body
            .starts_with("### 🚀 Deploy to `production` created"),
        "{}",
        reply.body
    );
    assert!(
        reply
            .body
            .contains("needs 24h) — overridden with `force` by @maya |"),
        "{}",
        reply.body
    );
    assert_eq!(production_deployments(&t.gh), [head]);
    t.finish().await;
}

#[tokio::test]
async fn a_rollback_of_production_is_not_held_by_the_soak() {
    let t = Harness::start().await;
    let (_, _) = repo_with_pr(&t.gh, CONFIG, "feature");
    let good = t.gh.commit(REPO, "main", &[("v1", Some("1"))]);
    let current = t.gh.commit(REPO, "main", &[("v2", Some("2"))]);
    // Neither ever ran in staging.
    t.gh.add_deployment(REPO, &good, "production", &["success", "inactive"]);
    t.gh.add_deployment(REPO, &current, "production", &["success"]);
    t.comment(REPO, 4242, "alice", "/rollback production").await;
    let reply = t.next_reply(REPO, 4242).await;
    assert!(
        reply
            .body
            .starts_with("### 🚀 Rollback to `production` created"),
        "{}",
        reply.body
    );
    assert!(!reply.body.contains("| Soak |"), "{}", reply.body);
    assert_eq!(production_deployments(&t.gh).last(), Some(&good));
    t.finish().await;
}

/// A `deployment_protection_rule` request for a deployment of `sha` to
/// production by a workflow; the decisions among its callbacks.
async fn protection_request(t: &Harness, run: &str, sha: &str) -> Vec<Value> {
    let d = t.gh.create_deployment(REPO, sha, "production", json!({}));
    let payload =
        t.gh.protection_rule_payload(REPO, run, "production", d, sha, "main", None);
    let (status, b) = t.send("deployment_protection_rule", &payload).await;
    assert!(status.is_success(), "{b}");
    t.settle().await;
    t.gh.protection_callbacks(REPO, run)
}

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

#[tokio::test]
async fn the_protection_rule_rejects_a_commit_still_soaking_or_never_staged_and_approves_a_soaked_one(
) {
    let t = Harness::start().await;
    t.gh.add_repo(REPO, &[(CONFIG_PATH, CONFIG)]);
    let soaking = t.gh.commit(REPO, "main", &[("a", Some("1"))]);
    succeeded(&t.gh, &soaking, "staging", ago(Duration::hours(22)));
    let callbacks = protection_request(&t, "701", &soaking).await;
    assert_eq!(decided(&callbacks), ["rejected"]);
    let comment = callbacks[0]["comment"].as_str().unwrap();
    assert!(
        comment.starts_with("shipgate: rejected — the soak outlasts the wait limit"),
        "{comment}"
    );
    assert!(comment.contains("⏳ Soak: `staging` soak: "), "{comment}");

    let never = t.gh.commit(REPO, "main", &[("b", Some("2"))]);
    let callbacks = protection_request(&t, "702", &never).await;
    assert_eq!(decided(&callbacks), ["rejected"]);
    assert!(callbacks[0]["comment"].as_str().unwrap().contains(&format!(
        "❌ Soak: `{}` was never deployed to `staging` successfully",
        &never[..7]
    )));

    let soaked = t.gh.commit(REPO, "main", &[("c", Some("3"))]);
    succeeded(&t.gh, &soaked, "staging", ago(Duration::hours(25)));
    let callbacks = protection_request(&t, "703", &soaked).await;
    assert_eq!(decided(&callbacks), ["approved"]);
    assert!(callbacks[0]["comment"].as_str().unwrap().contains(&format!(
        "✅ Soak: `{}` has run in `staging` for 25h",
        &soaked[..7]
    )));
    t.finish().await;
}

#[tokio::test]
async fn the_protection_rule_waits_for_a_soak_that_ends_before_its_deadline() {
    let t = Harness::start().await;
    t.gh.add_repo(REPO, &[(CONFIG_PATH, CONFIG)]);
    let sha = t.gh.commit(REPO, "main", &[("a", Some("1"))]);
    // Half an hour of the 24 left, inside the hour the request may wait.
    let staged_at = ago(Duration::hours(23) + Duration::minutes(30));
    let staging = succeeded(&t.gh, &sha, "staging", staged_at);
    let callbacks = protection_request(&t, "801", &sha).await;
    assert!(decided(&callbacks).is_empty(), "{callbacks:?}");
    assert!(
        callbacks[0]["comment"]
            .as_str()
            .unwrap()
            .starts_with("shipgate: waiting\n⏳ Soak: `staging` soak: "),
        "{callbacks:?}"
    );
    // It is looked at again when the soak ends, before the deadline.
    let pending = t
        .server
        .store
        .pending_protection_requests(REPO)
        .await
        .unwrap();
    let staged_at = chrono::DateTime::parse_from_rfc3339(&rfc3339(staged_at)).unwrap();
    let soak_end = (staged_at + Duration::hours(24)).timestamp_millis();
    assert_eq!(
        pending.iter().map(|r| r.next_check_at).collect::<Vec<_>>(),
        [soak_end]
    );
    assert!(pending[0].deadline > soak_end);

    // Half an hour later: the next look approves it.
    t.gh.set_deployment_time(REPO, staging, &rfc3339(ago(Duration::hours(24))));
    let recheck = json!({
        "action": "completed",
        "check_run": { "name": "ci", "head_sha": sha, "status": "completed", "conclusion": "success", "app": { "slug": "github-actions" } },
        "repository": t.gh.repository_json(REPO),
        "installation": { "id": 42 },
    });
    t.send("check_run", &recheck).await;
    t.settle().await;
    assert_eq!(
        decided(&t.gh.protection_callbacks(REPO, "801")),
        ["approved"]
    );
    t.finish().await;
}

#[tokio::test]
async fn the_soak_is_read_from_github_across_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let first = Harness::start_with(&[("DATABASE_URL", &db)]).await;
    let gh = first.gh.clone();
    let (pr, head) = repo_with_pr(&gh, CONFIG, "feature");
    first.comment(REPO, pr, "alice", "/deploy staging").await;
    let reply = first.next_reply(REPO, pr).await;
    assert!(
        reply.body.starts_with("### 🚀 Deploy to `staging` created"),
        "{}",
        reply.body
    );
    let staging = gh.deployments(REPO).pop().unwrap().id;
    let status = gh.deployment_status(REPO, staging, "success", None, None);
    first.send("deployment_status", &status).await;
    first.finish().await;

    // A new server on the same database, 23 hours later.
    let second = Harness::start_with_github(gh.clone(), &[("DATABASE_URL", &db)]).await;
    gh.set_deployment_time(REPO, staging, &rfc3339(ago(Duration::hours(23))));
    second
        .comment(REPO, pr, "alice", "/deploy production")
        .await;
    let reply = second.next_reply(REPO, pr).await;
    assert!(
        reply.body.contains("| Soak | ⏳ | `staging` soak: ")
            && reply
                .body
                .contains(&format!("deployment {staging}; needs 24h) |")),
        "{}",
        reply.body
    );
    assert!(production_deployments(&gh).is_empty());

    // And 25 hours later.
    gh.set_deployment_time(REPO, staging, &rfc3339(ago(Duration::hours(25))));
    second
        .comment(REPO, pr, "alice", "/deploy production")
        .await;
    let reply = second.next_reply(REPO, pr).await;
    assert!(
        reply
            .body
            .starts_with("### 🚀 Deploy to `production` created"),
        "{}",
        reply.body
    );
    assert_eq!(production_deployments(&gh), [head]);
    second.finish().await;
}

/// The Action's `policy` gate in a workflow step: the binary with the
/// runner's environment; exit code and job summary.
fn policy_step(
    gh: &FakeGitHub,
    event: Option<(&str, Value)>,
    extra: &[(&str, &str)],
) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("workspace");
    std::fs::create_dir_all(ws.join(".github")).unwrap();
    std::fs::write(ws.join(CONFIG_PATH), CONFIG).unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_shipgate"));
    cmd.arg("check")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(&ws)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", &ws)
        .env("GITHUB_OUTPUT", p("output"))
        .env("GITHUB_STEP_SUMMARY", p("summary"))
        .env("RUNNER_TEMP", p(""))
        .env("GITHUB_REPOSITORY", REPO)
        .env("GITHUB_API_URL", gh.url())
        .env("INPUT_TOKEN", "ghs_test")
        .env("INPUT_GATES", "policy");
    if let Some((name, payload)) = event {
        std::fs::write(p("event.json"), payload.to_string()).unwrap();
        cmd.env("GITHUB_EVENT_PATH", p("event.json"))
            .env("GITHUB_EVENT_NAME", name);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let summary = std::fs::read_to_string(p("summary")).unwrap_or_default();
    let outputs = std::fs::read_to_string(p("output")).unwrap_or_default();
    (out.status.code(), summary, outputs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_actions_policy_gate_fails_before_the_soak_and_passes_after() {
    let gh = FakeGitHub::start().await;
    gh.add_repo(REPO, &[(CONFIG_PATH, CONFIG)]);
    let sha = gh.commit(REPO, "main", &[("a", Some("1"))]);
    let short = sha[..7].to_string();
    let staged_at = ago(Duration::hours(23));
    let staging = succeeded(&gh, &sha, "staging", staged_at);
    // A workflow on `deployment` events, deploying to production.
    let production = gh.create_deployment(REPO, &sha, "production", json!({}));
    let event = json!({
        "action": "created",
        "deployment": { "id": production, "sha": sha, "ref": "main", "environment": "production" },
        "repository": gh.repository_json(REPO),
    });

    let g = gh.clone();
    let e = event.clone();
    let (code, summary, outputs) =
        tokio::task::spawn_blocking(move || policy_step(&g, Some(("deployment", e)), &[]))
            .await
            .unwrap();
    assert_eq!(code, Some(1), "{summary}");
    assert!(
        summary.contains("### ❌ policy — Soak: `staging` soak: ")
            && summary.contains(&format!(
                "left (deployed `{short}` at {}, deployment {staging}; needs 24h)",
                shown(staged_at)
            )),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("#### Promotion of `{short}` to `production`")),
        "{summary}"
    );
    assert!(outputs.contains("result=fail"), "{outputs}");

    gh.set_deployment_time(REPO, staging, &rfc3339(ago(Duration::hours(25))));
    let g = gh.clone();
    let (code, summary, _) =
        tokio::task::spawn_blocking(move || policy_step(&g, Some(("deployment", event)), &[]))
            .await
            .unwrap();
    assert_eq!(code, Some(0), "{summary}");
    assert!(
        summary.contains(&format!(
            "### ✅ policy — Soak: `{short}` has run in `staging` for 25h"
        )),
        "{summary}"
    );

    // A manual run names the environment; the commit is GITHUB_SHA.
    let never = gh.commit(REPO, "main", &[("b", Some("2"))]);
    let g = gh.clone();
    let n = never.clone();
    let (code, summary, _) = tokio::task::spawn_blocking(move || {
        policy_step(
            &g,
            None,
            &[("INPUT_ENVIRONMENT", "production"), ("GITHUB_SHA", &n)],
        )
    })
    .await
    .unwrap();
    assert_eq!(code, Some(1), "{summary}");
    assert!(
        summary.contains(&format!(
            "### ❌ policy — Soak: `{}` was never deployed to `staging` successfully",
            &never[..7]
        )),
        "{summary}"
    );
}
