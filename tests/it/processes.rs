//! The real binary as a child process: crash recovery, replicas sharing
//! PostgreSQL, graceful shutdown and the command line.

use crate::common;

use std::time::Duration;

use common::{Child, FakeGitHub};
use reqwest::StatusCode;
use serde_json::json;
use shipgate::config::settings::DatabaseUrl;
use shipgate::store::DeliveryState;

const CONFIG: &str = ".github/shipgate.yml";
const VALID_CONFIG: &str = "environments:\n  staging: {}\n";

/// Opens `n` pull requests in `repo` and returns their payloads with head shas.
fn open_prs(gh: &FakeGitHub, repo: &str, n: usize) -> Vec<(serde_json::Value, String)> {
    (0..n)
        .map(|i| {
            let branch = format!("feature-{i}");
            gh.commit(repo, &branch, &[("f.txt", Some(&format!("{i}")))]);
            let pr = gh.open_pr(repo, &branch, "alice");
            (
                gh.pull_request_payload(repo, pr, "opened"),
                gh.pr(repo, pr).head_sha,
            )
        })
        .collect()
}

async fn send(
    http: &reqwest::Client,
    child: &Child,
    delivery: &str,
    payload: &serde_json::Value,
) -> StatusCode {
    common::post_signed(
        http,
        &child.url("/webhook"),
        "pull_request",
        delivery,
        serde_json::to_vec(payload).unwrap(),
    )
    .await
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_acknowledged_before_a_hard_kill_are_processed_after_restart_once_in_effect() {
    let gh = FakeGitHub::start().await;
    gh.add_repo("acme/app", &[(CONFIG, VALID_CONFIG)]);
    let prs = open_prs(&gh, "acme/app", 4);
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("shipgate.db").display());
    let http = reqwest::Client::new();

    // Run 1: the first delivery takes effect (its status is written) but the
    // answer never comes back, so the worker is stuck mid-delivery; the
    // others are acknowledged behind it (same repository, so in order).
    let (first_payload, first_sha) = &prs[0];
    gh.hold_after_effect("POST", &format!("/repos/acme/app/statuses/{first_sha}"));
    let child = Child::serve(&gh, &db, &[]).await;
    assert_eq!(
        send(&http, &child, "d0", first_payload).await,
        StatusCode::ACCEPTED
    );
    gh.wait_for("the first status write to be held", |w| w.held == 1)
        .await;
    for (i, (payload, _)) in prs.iter().enumerate().skip(1) {
        assert_eq!(
            send(&http, &child, &format!("d{i}"), payload).await,
            StatusCode::ACCEPTED
        );
    }
    child.kill_hard().await;

    let store = shipgate::store::connect(&DatabaseUrl::new(db.clone()))
        .await
        .unwrap();
    assert_eq!(
        store.delivery_status("d0").await.unwrap().unwrap().state,
        DeliveryState::Processing
    );
    for i in 1..prs.len() {
        assert_eq!(
            store
                .delivery_status(&format!("d{i}"))
                .await
                .unwrap()
                .unwrap()
                .state,
            DeliveryState::Received
        );
    }
    for (_, sha) in &prs[1..] {
        assert!(
            gh.statuses("acme/app", sha).is_empty(),
            "nothing processed before the kill"
        );
    }

    // Run 2: everything is resumed.
    let child = Child::serve(&gh, &db, &[]).await;
    gh.wait_for("a status on every PR", |w| {
        prs.iter()
            .all(|(_, sha)| w.repo("acme/app").statuses.iter().any(|s| &s.sha == sha))
    })
    .await;
    for i in 0..prs.len() {
        let id = format!("d{i}");
        common::eventually(&format!("{id} done"), || async {
            store.delivery_status(&id).await.unwrap().unwrap().state == DeliveryState::Done
        })
        .await;
    }
    for (_, sha) in &prs {
        assert_eq!(
            gh.statuses("acme/app", sha).len(),
            1,
            "exactly one status for {sha}: no effect twice"
        );
    }
    assert_eq!(
        gh.requests_to("POST", &format!("/repos/acme/app/statuses/{first_sha}"))
            .len(),
        1
    );
    let status = child.terminate().await;
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");
    gh.assert_no_unexpected();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_sharing_postgres_process_each_delivery_exactly_once() {
    let gh = FakeGitHub::start().await;
    let repos = ["acme/one", "acme/two", "acme/three", "acme/four"];
    let mut prs = Vec::new();
    for repo in repos {
        gh.add_repo(repo, &[(CONFIG, VALID_CONFIG)]);
        prs.extend(
            open_prs(&gh, repo, 10)
                .into_iter()
                .map(|(p, sha)| (repo, p, sha)),
        );
    }
    let db = postgres_or_skip!();
    let a = Child::serve(&gh, &db, &[]).await;
    let b = Child::serve(&gh, &db, &[]).await;
    let http = reqwest::Client::new();
    for (i, (_, payload, _)) in prs.iter().enumerate() {
        let replica = if i % 2 == 0 { &a } else { &b };
        assert_eq!(
            send(&http, replica, &format!("pr-{i}"), payload).await,
            StatusCode::ACCEPTED
        );
    }
    gh.wait_for("a status on all 40 PRs", |w| {
        prs.iter()
            .all(|(repo, _, sha)| w.repo(repo).statuses.iter().any(|s| &s.sha == sha))
    })
    .await;

    let store = shipgate::store::connect(&DatabaseUrl::new(db))
        .await
        .unwrap();
    common::eventually("the queue drains", || async {
        store.queue_depth().await.unwrap() == 0
    })
    .await;
    for i in 0..prs.len() {
        let st = store
            .delivery_status(&format!("pr-{i}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (st.state, st.attempts),
            (DeliveryState::Done, 1),
            "pr-{i} claimed once"
        );
    }
    for (repo, _, sha) in &prs {
        // Each delivery reads the commit's statuses once before writing: a
        // second processing would show up as a second read.
        assert_eq!(
            gh.requests_to("GET", &format!("/repos/{repo}/commits/{sha}/status"))
                .len(),
            1
        );
        assert_eq!(gh.statuses(repo, sha).len(), 1);
        // No branch policy: the policy job does not look for pull requests.
        assert!(gh
            .requests_to("GET", &format!("/repos/{repo}/commits/{sha}/pulls"))
            .is_empty());
    }
    // Both replicas did work.
    let mut done_per_replica = Vec::new();
    for child in [&a, &b] {
        let metrics = common::metrics_text(&http, child.url("/metrics")).await;
        let done = common::metric_value(
            &metrics,
            r#"shipgate_deliveries_processed_total{outcome="done"}"#,
        ) as u64;
        done_per_replica.push(done);
    }
    // The 40 pull_request deliveries, and the one policy job each PR head's
    // event stored (a config without a branch policy ends it at once).
    assert_eq!(
        done_per_replica.iter().sum::<u64>(),
        80,
        "{done_per_replica:?}"
    );
    a.terminate().await;
    b.terminate().await;
    gh.assert_no_unexpected();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_delivery_in_flight_before_exiting() {
    let gh = FakeGitHub::start().await;
    gh.add_repo("acme/app", &[(CONFIG, VALID_CONFIG)]);
    let prs = open_prs(&gh, "acme/app", 1);
    let (payload, sha) = &prs[0];
    gh.hold_after_effect("POST", &format!("/repos/acme/app/statuses/{sha}"));
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("shipgate.db").display());
    let mut child = Child::serve(&gh, &db, &[]).await;
    let http = reqwest::Client::new();
    assert_eq!(
        send(&http, &child, "drain-1", payload).await,
        StatusCode::ACCEPTED
    );
    gh.wait_for("the status write to be in flight", |w| w.held == 1)
        .await;

    // A process that exited on the signal without draining would leave the
    // delivery in `processing`; the state after exit tells.
    child.signal_term();
    gh.release_held();
    let status = tokio::time::timeout(Duration::from_secs(20), child.process.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    let store = shipgate::store::connect(&DatabaseUrl::new(db))
        .await
        .unwrap();
    let st = store.delivery_status("drain-1").await.unwrap().unwrap();
    assert_eq!(
        st.state,
        DeliveryState::Done,
        "in-flight delivery finished before exit"
    );
    assert_eq!(gh.statuses("acme/app", sha).len(), 1);
}

// ------------------------------------------------------------------- CLI

fn shipgate(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_shipgate"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn serve_with_a_bad_setting_exits_2_with_one_line_naming_the_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("GITHUB_TOKEN", "t")],
            "shipgate: SHIPGATE_WEBHOOK_SECRET: required but not set",
        ),
        (
            &[
                ("SHIPGATE_WEBHOOK_SECRET", "s"),
                ("GITHUB_TOKEN", "t"),
                ("SHIPGATE_LISTEN", "nope"),
            ],
            "shipgate: SHIPGATE_LISTEN: expected HOST:PORT",
        ),
        (
            &[
                ("SHIPGATE_WEBHOOK_SECRET", "s"),
                ("GITHUB_TOKEN", "t"),
                ("DATABASE_URL", "sqlite:///nonexistent-dir/x/y.db"),
                ("SHIPGATE_LISTEN", "127.0.0.1:0"),
            ],
            "shipgate: DATABASE_URL: cannot open sqlite:///nonexistent-dir/x/y.db",
        ),
    ];
    for (env, want) in cases {
        let out = shipgate(&["serve"], env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {stderr}");
        let last = stderr.lines().last().unwrap_or("");
        assert!(last.starts_with(want), "{env:?}: got {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn config_validate_reports_line_and_column_and_schema_is_json() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    std::fs::write(&good, "environments:\n  staging: {}\n").unwrap();
    let out = shipgate(&["config", "validate", good.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid (1 environment(s))"));

    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "environments:\n  staging:\n    colour: blue\n").unwrap();
    let out = shipgate(&["config", "validate", bad.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yml: line 3 column 5: environments.staging: unknown field `colour`"),
        "{stderr}"
    );

    let out = shipgate(
        &[
            "config",
            "validate",
            dir.path().join("missing.yml").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));

    let out = shipgate(&["config", "schema"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(schema["properties"]["environments"].is_object());
}

#[test]
fn check_without_gates_says_so_and_rejects_unknown_gates() {
    let dir = tempfile::tempdir().unwrap();
    let valid = dir.path().join("valid.yml");
    std::fs::write(&valid, "environments:\n  staging: {}\n").unwrap();
    let out = shipgate(&["check", "--config", valid.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "no gates selected: nothing to check"
    );
    // A config file named on purpose must exist.
    let out = shipgate(
        &[
            "check",
            "--config",
            dir.path().join("none.yml").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("none.yml: no such file"));
    let out = shipgate(&["check", "smokey"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown gate `smokey`"));
}

#[test]
fn migrate_creates_the_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let out = shipgate(
        &["migrate"],
        &[("DATABASE_URL", &format!("sqlite://{}", db.display()))],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(db.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_send_signs_like_github() {
    let gh = FakeGitHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("shipgate.db").display());
    let child = Child::serve(&gh, &db, &[]).await;
    let file = dir.path().join("ping.json");
    std::fs::write(
        &file,
        serde_json::to_vec(&json!({"zen": "Approachable is better than simple.", "hook_id": 1}))
            .unwrap(),
    )
    .unwrap();
    let url = child.url("/webhook");
    let run = |secret: &str| {
        let (url, file, secret) = (url.clone(), file.clone(), secret.to_string());
        tokio::task::spawn_blocking(move || {
            shipgate(
                &[
                    "webhook",
                    "send",
                    "--url",
                    &url,
                    "--secret",
                    &secret,
                    "--event",
                    "ping",
                    file.to_str().unwrap(),
                ],
                &[],
            )
        })
    };
    let ok = run(common::SECRET).await.unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("202 "));
    let refused = run("wrong").await.unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stdout).starts_with("401 "));
    child.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_interrupted_after_creating_its_deployment_is_not_created_twice() {
    let gh = FakeGitHub::start().await;
    let config = "environments:\n  staging:\n    deployers: write\n";
    gh.add_repo("acme/app", &[(CONFIG, config)]);
    gh.commit("acme/app", "feature", &[("f.txt", Some("x"))]);
    let pr = gh.open_pr("acme/app", "feature", "alice");
    gh.set_role("acme/app", "alice", "write");
    let comment = gh.add_comment("acme/app", pr, "alice", "/deploy staging");
    let payload = gh.issue_comment_payload("acme/app", comment, "created", None);
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("shipgate.db").display());
    let http = reqwest::Client::new();

    // The deployment is created, but the process dies before it hears back.
    gh.hold_after_effect("POST", "/repos/acme/app/deployments");
    let child = Child::serve(&gh, &db, &[]).await;
    let body = serde_json::to_vec(&payload).unwrap();
    let (status, _) =
        common::post_signed(&http, &child.url("/webhook"), "issue_comment", "c1", body).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    gh.wait_for("the deployment to be created", |w| w.held == 1)
        .await;
    child.kill_hard().await;
    assert_eq!(gh.deployments("acme/app").len(), 1);

    let child = Child::serve(&gh, &db, &[]).await;
    gh.wait_for("the reply", |w| {
        w.repo("acme/app")
            .comments
            .iter()
            .any(|c| c.user == common::fake_github::BOT_LOGIN)
    })
    .await;
    let store = shipgate::store::connect(&DatabaseUrl::new(db))
        .await
        .unwrap();
    common::eventually("the delivery is done", || async {
        store.delivery_status("c1").await.unwrap().unwrap().state == DeliveryState::Done
    })
    .await;
    assert_eq!(
        gh.deployments("acme/app").len(),
        1,
        "found, not created again"
    );
    let replies = gh.bot_comments("acme/app", pr);
    assert_eq!(replies.len(), 1);
    assert!(
        replies[0]
            .body
            .starts_with("### 🚀 Deploy to `staging` created"),
        "{}",
        replies[0].body
    );
    assert_eq!(gh.reactions("acme/app", comment), ["eyes", "rocket"]);
    child.terminate().await;
    gh.assert_no_unexpected();
}
