//! The Action through GitHub's runner contract: the built binary with a
//! runner-like environment (workspace, event file, output and summary files,
//! `INPUT_*` variables including hyphenated ones), checking files and exit codes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use axum::routing::get;
use axum::Router;
use serde_json::json;

struct Step {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Step {
    fn new() -> Step {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("workspace/.github")).unwrap();
        let p = |name: &str| dir.path().join(name).display().to_string();
        let env = vec![
            ("GITHUB_ACTIONS".into(), "true".into()),
            ("GITHUB_WORKSPACE".into(), p("workspace")),
            ("GITHUB_OUTPUT".into(), p("output")),
            ("GITHUB_STEP_SUMMARY".into(), p("summary")),
            ("RUNNER_TEMP".into(), p("")),
            ("GITHUB_REPOSITORY".into(), "acme/app".into()),
        ];
        Step { dir, env }
    }
    fn ws(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }
    fn config(&self, yaml: &str) -> &Self {
        std::fs::write(self.ws().join(".github/shipgate.yml"), yaml).unwrap();
        self
    }
    fn set(&mut self, k: &str, v: &str) -> &mut Self {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.into(), v.into()));
        self
    }
    fn event(&mut self, name: &str, payload: serde_json::Value) -> &mut Self {
        let path = self.dir.path().join("event.json");
        std::fs::write(&path, payload.to_string()).unwrap();
        let path = path.display().to_string();
        self.set("GITHUB_EVENT_PATH", &path)
            .set("GITHUB_EVENT_NAME", name)
    }
    fn run(&self) -> Output {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_shipgate"));
        cmd.arg("check")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .current_dir(self.ws());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }
    fn outputs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("output")).unwrap_or_default()
    }
    fn summary(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("summary")).unwrap_or_default()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

async fn health_server(status: &'static str) -> String {
    let router = Router::new().route(
        "/api/health",
        get(move || async move { axum::Json(json!({ "status": status })) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/")
}

const SMOKE: &str = "smoke:\n  checks:\n    - { name: health, path: /api/health, expect: { json: ['$.status == \"healthy\"'] } }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_passes_and_fails_with_outputs_summary_and_exit_codes() {
    let healthy = health_server("healthy").await;
    let mut step = Step::new();
    step.config(SMOKE);
    step.set("INPUT_GATES", "smoke").set("INPUT_URL", &healthy);
    let out = tokio::task::spawn_blocking({
        let cmd = step.env.clone();
        let ws = step.ws();
        move || run_in(&ws, &cmd)
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let outputs = step.outputs();
    assert!(
        outputs.contains("result=pass\n") && outputs.contains("errors=0\n"),
        "{outputs}"
    );
    let report = outputs
        .lines()
        .find_map(|l| l.strip_prefix("report="))
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    assert_eq!(json["gates"][0]["gate"], "smoke");
    assert!(
        step.summary()
            .contains("### ✅ smoke — 1 passed, 0 warned, 0 failed"),
        "{}",
        step.summary()
    );

    let degraded = health_server("degraded").await;
    let mut step = Step::new();
    step.config(SMOKE);
    step.set("INPUT_GATES", "smoke").set("INPUT_URL", &degraded);
    let env = step.env.clone();
    let ws = step.ws();
    let out = tokio::task::spawn_blocking(move || run_in(&ws, &env))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    // Properties escape `:`; messages do not.
    assert!(
        text.contains("::error title=smoke%3A health::`$.status == \"healthy\"`: got \"degraded\""),
        "{text}"
    );
    assert!(step.outputs().contains("result=fail\n"));
    // fail-on: never turns the same failure into exit 0 (hyphenated input name).
    step.set("INPUT_FAIL-ON", "never");
    let env = step.env.clone();
    let ws = step.ws();
    let out = tokio::task::spawn_blocking(move || run_in(&ws, &env))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

fn run_in(ws: &Path, env: &[(String, String)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_shipgate"));
    cmd.arg("check")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(ws);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn freeze_fails_and_the_override_label_warns() {
    let mut step = Step::new();
    step.config("environments:\n  production:\n    freeze:\n      - { days: [mon, tue, wed, thu, fri, sat, sun], reason: Holidays }\n");
    step.set("INPUT_GATES", "freeze")
        .set("INPUT_ENVIRONMENT", "production");
    let out = step.run();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        step.summary()
            .contains("❌ Deploy freeze on `production`: Holidays ("),
        "{}",
        step.summary()
    );
    step.event(
        "pull_request",
        json!({ "pull_request": { "number": 1, "labels": [{ "name": "freeze-override" }] } }),
    );
    let out = step.run();
    assert_eq!(
        out.status.code(),
        Some(0),
        "a warning passes with fail-on error"
    );
    assert!(step.outputs().contains("result=warn\n"));
    step.set("INPUT_FAIL-ON", "warning");
    assert_eq!(step.run().status.code(), Some(1));
}

#[test]
fn bad_inputs_get_one_line_and_exit_2() {
    // (inputs, config file, expected message)
    type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, &'a str);
    let cases: &[Case] = &[
        (
            &[("INPUT_GATES", "smokey")],
            None,
            "unknown gate `smokey` (did you mean `smoke`?)",
        ),
        (
            &[
                ("INPUT_GATES", "freeze"),
                ("INPUT_CONFIG", "deploy/shipgate.yml"),
            ],
            None,
            "deploy/shipgate.yml: no such file",
        ),
        (
            &[("INPUT_GATES", "freeze")],
            Some("environments: [oops"),
            "shipgate.yml: line",
        ),
        (
            &[("INPUT_GATES", "smoke")],
            Some(""),
            "the `smoke` gate needs a URL",
        ),
        (
            &[("INPUT_GATES", "smoke"), ("INPUT_URL", "not a url")],
            Some(""),
            "url: `not a url` is not a URL",
        ),
        (
            &[("INPUT_GATES", "protection")],
            Some("protection:\n  branches:\n    main: { required_approvals: 1 }\n"),
            "the `protection` gate needs a token",
        ),
        (
            &[("INPUT_GATES", "freeze"), ("INPUT_FAIL-ON", "sometimes")],
            Some(""),
            "fail-on: expected error, warning or never",
        ),
        (
            &[("INPUT_GATES", "freeze"), ("INPUT_COMMENT", "yes")],
            Some(""),
            "input `comment`: expected true or false",
        ),
    ];
    for (inputs, config, want) in cases {
        let mut step = Step::new();
        if let Some(c) = config {
            step.config(c);
        }
        for (k, v) in *inputs {
            step.set(k, v);
        }
        let out = step.run();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{inputs:?}: {err}");
        assert!(err.contains(want), "{inputs:?}: want {want:?} in {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(
            stdout(&out).contains("::error title=shipgate::"),
            "an annotation too"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_and_protection_gates_read_github() {
    let gh = common::FakeGitHub::start().await;
    let policy = "protection:\n  branches:\n    main:\n      required_approvals: 2\n      enforce_admins: true\n";
    gh.add_repo("acme/app", &[(".github/shipgate.yml", policy)]);
    gh.commit("acme/app", "feature", &[("a", Some("a"))]);
    let pr = gh.open_pr("acme/app", "feature", "alice");
    gh.set_role("acme/app", "bob", "write");
    gh.review("acme/app", pr, "bob", "APPROVED");

    let mut step = Step::new();
    step.config(policy);
    step.set("GITHUB_API_URL", &gh.url())
        .set("INPUT_TOKEN", "ghs_test");
    step.event(
        "pull_request",
        gh.pull_request_payload("acme/app", pr, "opened"),
    );
    step.set("INPUT_GATES", "policy protection");
    let env = step.env.clone();
    let ws = step.ws();
    let out = tokio::task::spawn_blocking(move || run_in(&ws, &env))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let summary = step.summary();
    assert!(
        summary.contains("### ❌ policy — Approvals: 1 of 2 approvals (by @bob)"),
        "{summary}"
    );
    assert!(
        summary.contains("❌ `main` differs from the policy"),
        "{summary}"
    );
    assert!(
        summary.contains("| `required_approvals` | off | 2 |"),
        "{summary}"
    );

    // comment: true — one sticky comment, updated on the next run.
    step.set("INPUT_COMMENT", "true");
    for _ in 0..2 {
        let env = step.env.clone();
        let ws = step.ws();
        tokio::task::spawn_blocking(move || run_in(&ws, &env))
            .await
            .unwrap();
    }
    let comments = gh.bot_comments("acme/app", pr);
    assert_eq!(comments.len(), 1, "one sticky comment");
    assert!(
        comments[0].body.starts_with("### shipgate check: fail"),
        "{}",
        comments[0].body
    );
    assert_eq!(comments[0].edits, 1);
    gh.next_bot_comment("acme/app", pr);
    gh.assert_no_unexpected();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_after_a_deployment_reports_the_deployment_status() {
    let gh = common::FakeGitHub::start().await;
    let head = gh.add_repo("acme/app", &[]);
    let deployment =
        gh.create_deployment("acme/app", &head, "staging", json!({ "kind": "deploy" }));
    let url = health_server("degraded").await;
    let mut step = Step::new();
    step.config(SMOKE);
    step.set("GITHUB_API_URL", &gh.url())
        .set("INPUT_TOKEN", "ghs_test")
        .set("GITHUB_RUN_ID", "77");
    step.event(
        "deployment",
        json!({ "deployment": { "id": deployment, "environment": "staging" } }),
    );
    step.set("INPUT_GATES", "smoke").set("INPUT_URL", &url);
    let env = step.env.clone();
    let ws = step.ws();
    let out = tokio::task::spawn_blocking(move || run_in(&ws, &env))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let d = gh
        .deployments("acme/app")
        .into_iter()
        .find(|d| d.id == deployment)
        .unwrap();
    assert_eq!(d.statuses.len(), 1);
    assert_eq!(d.statuses[0].state, "failure");
    assert_eq!(
        d.statuses[0].log_url.as_deref(),
        Some("https://github.com/acme/app/actions/runs/77")
    );
    gh.assert_no_unexpected();
}

fn git(ws: &Path, args: &[&str]) {
    let ok = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "tag.gpgSign=false",
            "-c",
            "commit.gpgSign=false",
        ])
        .args(args)
        .current_dir(ws)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn release_checks_the_tag_the_branch_and_the_changelog() {
    let mut step = Step::new();
    let ws = step.ws();
    step.config("");
    std::fs::write(
        ws.join("CHANGELOG.md"),
        "# Changelog\n\n## [1.2.0] - 2026-11-22\n- things\n",
    )
    .unwrap();
    git(&ws, &["init", "-q", "-b", "main"]);
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-q", "-m", "release"]);
    git(&ws, &["tag", "-a", "v1.2.0", "-m", "v1.2.0"]);
    git(&ws, &["tag", "v1.3.0"]);
    step.set("INPUT_GATES", "release")
        .set("GITHUB_REF", "refs/tags/v1.2.0");
    let out = step.run();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        step.summary()
    );
    assert!(
        step.summary().contains("- ✅ the tag is annotated"),
        "{}",
        step.summary()
    );

    step.set("GITHUB_REF", "refs/tags/v1.3.0");
    let out = step.run();
    assert_eq!(out.status.code(), Some(1));
    let summary = step.summary();
    assert!(summary.contains("- ❌ the tag is lightweight"), "{summary}");
    assert!(
        summary.contains("- ❌ `CHANGELOG.md` has no section for 1.3.0"),
        "{summary}"
    );

    step.set("GITHUB_REF", "refs/tags/release-7");
    let _ = step.run();
    assert!(
        step.summary().contains("`release-7` does not match"),
        "{}",
        step.summary()
    );
}

#[test]
fn secrets_are_masked_first_redacted_everywhere_and_reported_as_sarif() {
    let mut step = Step::new();
    let ws = step.ws();
    step.config("");
    let token = format!("ghp_{}", "a1B2c3D4".repeat(4) + "e5F6");
    std::fs::create_dir_all(ws.join("src")).unwrap();
    std::fs::write(
        ws.join("src/config.js"),
        format!("// settings\nconst token = \"{token}\";\nconsole.log(token);\n"),
    )
    .unwrap();
    std::fs::write(ws.join(".env"), "DB_PASSWORD=hunter2hunter2\n").unwrap();
    std::fs::write(ws.join(".env.example"), "DB_PASSWORD=\n").unwrap();
    step.set("INPUT_GATES", "secrets")
        .set("INPUT_SARIF", "true");
    let out = step.run();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    // The mask comes before any other output line.
    assert_eq!(text.lines().next().unwrap(), format!("::add-mask::{token}"));
    assert_eq!(text.matches(&token).count(), 1, "only in the mask: {text}");
    assert!(
        text.contains("::error file=src/config.js,line=2,"),
        "{text}"
    );
    assert!(text.contains("::error file=.env,"), "{text}");
    assert!(
        text.contains("::warning file=src/config.js,line=3,"),
        "console.log is a warning: {text}"
    );
    let outputs = step.outputs();
    let sarif_path = outputs
        .lines()
        .find_map(|l| l.strip_prefix("sarif="))
        .expect("sarif output");
    let sarif = std::fs::read_to_string(sarif_path).unwrap();
    let report = std::fs::read_to_string(
        outputs
            .lines()
            .find_map(|l| l.strip_prefix("report="))
            .unwrap(),
    )
    .unwrap();
    for (what, body) in [
        ("summary", step.summary()),
        ("SARIF", sarif.clone()),
        ("report", report),
    ] {
        assert!(!body.contains(&token), "the secret leaked into the {what}");
    }
    let sarif: serde_json::Value = serde_json::from_str(&sarif).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert!(
        step.summary().contains("### ❌ secrets —"),
        "{}",
        step.summary()
    );
    assert!(
        !step.summary().contains(".env.example"),
        "{}",
        step.summary()
    );

    // Debug leftovers can be switched off.
    step.config("secrets:\n  debug_leftovers: false\n");
    let text = stdout(&step.run());
    assert!(!text.contains("::warning file=src/config.js"), "{text}");
    assert!(
        text.contains("::error file=src/config.js,line=2,"),
        "{text}"
    );
}

#[test]
fn history_scans_need_the_whole_history() {
    let origin = tempfile::tempdir().unwrap();
    git(origin.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(origin.path().join("a.txt"), "one\n").unwrap();
    git(origin.path(), &["add", "."]);
    git(origin.path(), &["commit", "-q", "-m", "one"]);
    std::fs::write(origin.path().join("a.txt"), "two\n").unwrap();
    git(origin.path(), &["commit", "-q", "-am", "two"]);
    let mut step = Step::new();
    std::fs::remove_dir_all(step.ws()).unwrap();
    let url = format!("file://{}", origin.path().display());
    git(
        step.dir.path(),
        &["clone", "-q", "--depth", "1", &url, "workspace"],
    );
    step.set("INPUT_GATES", "secrets")
        .set("INPUT_SCAN", "history");
    let out = step.run();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("this clone is shallow: set `fetch-depth: 0`"));
}

#[test]
fn a_diff_scan_sees_only_added_lines_at_their_line_numbers() {
    let mut step = Step::new();
    let ws = step.ws();
    let old = format!("npm_{}", "Zx9Yw8Vu7T".repeat(3) + "s6R5q4");
    let new = format!("glpat-{}", "Ab3Cd4Ef5Gh6Ij7Kl8Mn");
    std::fs::write(ws.join("app.py"), format!("KEY = \"{old}\"\n")).unwrap();
    git(&ws, &["init", "-q", "-b", "main"]);
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-q", "-m", "old secret (not this PR's)"]);
    std::fs::write(
        ws.join("app.py"),
        format!("KEY = \"{old}\"\n\n# added\nGITLAB = \"{new}\"\n"),
    )
    .unwrap();
    git(&ws, &["commit", "-q", "-am", "new secret"]);
    step.set("INPUT_GATES", "secrets")
        .set("INPUT_SCAN", "diff")
        .set("INPUT_BASE", "HEAD~1")
        .set("INPUT_HEAD", "HEAD");
    let out = step.run();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("::error file=app.py,line=4,"), "{text}");
    assert!(
        !text.contains("line=1,"),
        "the old line is not part of the diff: {text}"
    );
    assert!(step.outputs().contains("errors=1\n"), "{}", step.outputs());
}
