//! The Action through GitHub's runner contract: the built binary with a
//! runner-like environment (workspace, event file, output and summary files,
//! `INPUT_*` variables including hyphenated ones), checking files and exit codes.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use axum::routing::get;
use axum::Router;
use serde_json::json;

pub(crate) struct Step {
    dir: tempfile::TempDir,
    pub(crate) env: Vec<(String, String)>,
}

impl Step {
    pub(crate) fn new() -> Step {
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
    pub(crate) fn ws(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }
    pub(crate) fn config(&self, yaml: &str) -> &Self {
        std::fs::write(self.ws().join(".github/shipgate.yml"), yaml).unwrap();
        self
    }
    pub(crate) fn set(&mut self, k: &str, v: &str) -> &mut Self {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.into(), v.into()));
        self
    }
    pub(crate) fn event(&mut self, name: &str, payload: serde_json::Value) -> &mut Self {
        let path = self.dir.path().join("event.json");
        std::fs::write(&path, payload.to_string()).unwrap();
        let path = path.display().to_string();
        self.set("GITHUB_EVENT_PATH", &path)
            .set("GITHUB_EVENT_NAME", name)
    }
    pub(crate) fn run(&self) -> Output {
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
    pub(crate) fn outputs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("output")).unwrap_or_default()
    }
    pub(crate) fn summary(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("summary")).unwrap_or_default()
    }
}

pub(crate) fn stdout(o: &Output) -> String {
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

/// A site whose old address answers `301` to its new one.
async fn moved_site() -> String {
    let router = Router::new().route(
        "/old",
        get(|| async {
            (
                axum::http::StatusCode::MOVED_PERMANENTLY,
                [("location", "/new")],
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smoke_check_asserts_on_a_redirect_without_following_it() {
    let site = moved_site().await;
    for (location, code) in [("/new", 0), ("/elsewhere", 1)] {
        let mut step = Step::new();
        step.config(&format!(
            "smoke:\n  checks:\n    - {{ name: moved, path: /old, follow_redirects: false, expect: {{ status: 301, headers: {{ location: {{ equals: \"{location}\" }} }} }} }}\n"
        ));
        step.set("INPUT_GATES", "smoke").set("INPUT_URL", &site);
        let env = step.env.clone();
        let ws = step.ws();
        let out = tokio::task::spawn_blocking(move || run_in(&ws, &env))
            .await
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{location}: {}",
            stdout(&out)
        );
    }
}

/// A login limited to 10 POSTs: the Action's `rate_limit` check posts the
/// check's body and passes on the 429s; without the limit it fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_check_posts_to_a_login() {
    async fn login(limit: u32) -> String {
        let (addr, _) =
            crate::common::limited_post_endpoint("/login", "user=smoke", None, limit).await;
        format!("http://{addr}/")
    }
    let config = "smoke:\n  checks:\n    - { rule: rate_limit, name: login, path: /login, method: POST, body: user=smoke, burst: 15 }\n";
    for (limit, code) in [(10, 0), (1000, 1)] {
        let site = login(limit).await;
        let mut step = Step::new();
        step.config(config);
        step.set("INPUT_GATES", "smoke").set("INPUT_URL", &site);
        let env = step.env.clone();
        let ws = step.ws();
        let out = tokio::task::spawn_blocking(move || run_in(&ws, &env))
            .await
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "limit {limit}: {}",
            stdout(&out)
        );
    }
}

/// Plan 004's site: HSTS, `nosniff`, `SAMEORIGIN`, and a CSP that allows
/// inline scripts, on plain HTTP (a loopback stand-in).
async fn plan_004_site() -> String {
    let router = Router::new().route(
        "/",
        get(|| async {
            (
                [
                    ("strict-transport-security", "max-age=31536000; includeSubDomains"),
                    ("x-content-type-options", "nosniff"),
                    ("x-frame-options", "SAMEORIGIN"),
                    ("content-security-policy", "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.vercel-insights.com; style-src 'self' 'unsafe-inline'"),
                ],
                "ok",
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/")
}

/// The team of plan 004 decides on its headers: the defaults fail its CSP;
/// allowing `'unsafe-inline'` and ignoring what it does without passes; the
/// same relaxation does not let `'unsafe-eval'` through; a header name the
/// rule does not know is a one-line configuration error. (The stand-in is
/// plain HTTP, where no HSTS can pass, so every config here ignores it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_are_checked_as_the_team_decides() {
    let site = plan_004_site().await;
    let run = |config: String| {
        let site = site.clone();
        async move {
            let mut step = Step::new();
            step.config(&config);
            step.set("INPUT_GATES", "smoke").set("INPUT_URL", &site);
            let (env, ws) = (step.env.clone(), step.ws());
            let out = tokio::task::spawn_blocking(move || run_in(&ws, &env))
                .await
                .unwrap();
            (out, step)
        }
    };
    let check = |keys: &str| {
        format!("smoke:\n  checks:\n    - {{ rule: security_headers, name: headers, {keys} }}\n")
    };

    let (out, _) = run(check("ignore: [strict-transport-security]")).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(
            "Content-Security-Policy: script-src allows 'unsafe-inline' without a nonce or hash"
        ),
        "{}",
        stdout(&out)
    );

    let decided = "csp: { allow_unsafe_inline: true }, ignore: [strict-transport-security, permissions-policy, Referrer-Policy]";
    let (out, step) = run(check(decided)).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        step.outputs().contains("result=pass\n"),
        "{}",
        step.outputs()
    );
    assert!(
        step.summary().contains("all 3 headers good; not checked: Strict-Transport-Security, Referrer-Policy, Permissions-Policy"),
        "{}",
        step.summary()
    );

    // The same decision does not cover eval.
    let eval = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let eval_addr = eval.local_addr().unwrap();
    let router = Router::new().route(
        "/",
        get(|| async {
            (
                [
                    ("x-content-type-options", "nosniff"),
                    ("x-frame-options", "SAMEORIGIN"),
                    (
                        "content-security-policy",
                        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
                    ),
                ],
                "ok",
            )
        }),
    );
    tokio::spawn(async move { axum::serve(eval, router).await.unwrap() });
    let mut step = Step::new();
    step.config(&check(decided));
    step.set("INPUT_GATES", "smoke")
        .set("INPUT_URL", &format!("http://{eval_addr}/"));
    let (env, ws) = (step.env.clone(), step.ws());
    let out = tokio::task::spawn_blocking(move || run_in(&ws, &env))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("script-src allows 'unsafe-eval'"),
        "{}",
        stdout(&out)
    );

    let (out, _) = run(check("ignore: [x-powered-by]")).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("smoke.checks[0].ignore: \"x-powered-by\" is not a header the rule checks"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    let (out, _) =
        run("smoke:\n  checks:\n    - { rule: tls, csp: { allow_unsafe_inline: true } }\n".into())
            .await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("smoke.checks[0].csp: only `rule: security_headers` takes `csp`"),
        "{err}"
    );
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

pub(crate) fn run_in(ws: &Path, env: &[(String, String)]) -> Output {
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
fn freeze_fails_during_a_window() {
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
        summary.contains("### ❌ policy — Approvals: 1 of 2 approvals (by @\u{2060}bob)"),
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
async fn the_protection_gate_reports_rulesets_that_differ_or_are_missing() {
    let gh = common::FakeGitHub::start().await;
    let policy = "protection:\n  rulesets:\n    releases:\n      include: ['release/*']\n      bypass: [{ role: maintain }]\n      rules: { non_fast_forward: true, deletion: true }\n    tags:\n      target: tag\n      include: ['v*']\n      rules: { deletion: true }\n";
    gh.add_repo("acme/app", &[(".github/shipgate.yml", policy)]);
    // `releases` lets everyone force-push; `tags` was never created; a
    // hand-made ruleset is not the gate's business.
    gh.add_ruleset(
        "acme/app",
        json!({ "name": "releases", "target": "branch", "enforcement": "active",
            "conditions": { "ref_name": { "include": ["refs/heads/release/*"], "exclude": [] } },
            "bypass_actors": [{ "actor_id": 2, "actor_type": "RepositoryRole", "bypass_mode": "always" }],
            "rules": [{ "type": "deletion" }] }),
    );
    let theirs = gh.add_ruleset(
        "acme/app",
        json!({ "name": "experiments", "enforcement": "disabled", "rules": [] }),
    );
    let mut step = Step::new();
    step.config(policy);
    step.set("GITHUB_API_URL", &gh.url())
        .set("INPUT_TOKEN", "ghs_test")
        .set("INPUT_GATES", "protection");
    let env = step.env.clone();
    let ws = step.ws();
    let out = tokio::task::spawn_blocking(move || run_in(&ws, &env))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let summary = step.summary();
    assert!(
        summary.contains("❌ ruleset `releases` differs from the policy"),
        "{summary}"
    );
    assert!(
        summary.contains("| `rule non_fast_forward` | off | on |"),
        "{summary}"
    );
    assert!(
        summary.contains("❌ ruleset `tags` does not exist"),
        "{summary}"
    );
    assert!(
        gh.requests_to("GET", &format!("/repos/acme/app/rulesets/{theirs}"))
            .is_empty(),
        "a ruleset of another name is not read"
    );
    assert!(
        gh.with(|w| w.requests.iter().all(|r| r.method == "GET")),
        "the gate only reads"
    );
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

pub(crate) fn git(ws: &Path, args: &[&str]) {
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

// ------------------------------------------------------------ the gates cannot be fooled

/// A fake secret assembled at runtime (this file holds no realistic tokens).
pub(crate) fn fake_token(prefix: &str, seed: u64, n: usize) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let body: String = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            A[(x % A.len() as u64) as usize] as char
        })
        .collect();
    format!("{prefix}{body}")
}

fn git_out(ws: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(ws)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The value the latest run gave an output (the file collects every run's).
fn last_output(step: &Step, name: &str) -> String {
    let prefix = format!("{name}=");
    step.outputs()
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .next_back()
        .unwrap_or_default()
        .to_string()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Lines of stdout and stderr that the runner would take as workflow
/// commands (`::cmd::` at the start of a line after spaces, or `##[cmd]`
/// anywhere), apart from the ones listed as shipgate's own.
fn commands_not_ours(o: &Output, ours: &[&str]) -> Vec<String> {
    let mut stray = Vec::new();
    for text in [stdout(o), stderr(o)] {
        let mut stopped: Option<String> = None;
        for line in text.lines() {
            let l = line.trim_start();
            if let Some(token) = &stopped {
                if l == format!("::{token}::") {
                    stopped = None;
                }
                continue;
            }
            if let Some(token) = l.strip_prefix("::stop-commands::") {
                stopped = Some(token.to_string());
                continue;
            }
            // A line that is one of our commands is parsed as that
            // command, so `##[` inside its message is only text.
            let ours = ours.iter().any(|p| l.starts_with(p));
            if !ours && (l.starts_with("::") || l.contains("##[")) {
                stray.push(line.to_string());
            }
        }
    }
    stray
}

#[test]
fn a_history_scan_keeps_every_secret_a_line_ever_held() {
    let mut step = Step::new();
    let ws = step.ws();
    let first = fake_token("ghp_", 1, 36);
    let second = fake_token("ghp_", 2, 36);
    git(&ws, &["init", "-q", "-b", "main"]);
    std::fs::write(ws.join("app.py"), format!("KEY = \"{first}\"\n")).unwrap();
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-q", "-m", "one"]);
    // The second secret replaces the first on the same line.
    std::fs::write(ws.join("app.py"), format!("KEY = \"{second}\"\n")).unwrap();
    git(&ws, &["commit", "-q", "-am", "two"]);
    step.set("INPUT_GATES", "secrets")
        .set("INPUT_SCAN", "history");
    let out = step.run();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for secret in [&first, &second] {
        assert!(
            text.contains(&format!("::add-mask::{secret}")),
            "both secrets are found and masked: {text}"
        );
    }
    assert!(step.outputs().contains("errors=2\n"), "{}", step.outputs());
}

/// Paths git would quote (non-ASCII, spaces, quotes) and added lines that
/// look like diff headers (`++ …` becomes `+++ …`) do not hide anything
/// from the diff and history scans.
#[test]
fn diff_and_history_scans_read_any_path_and_any_line() {
    let mut step = Step::new();
    let ws = step.ws();
    let a = fake_token("glpat-", 3, 20);
    let b = fake_token("npm_", 4, 36);
    let c = fake_token("ghp_", 5, 36);
    let d = fake_token("ghp_", 6, 36);
    git(&ws, &["init", "-q", "-b", "main"]);
    std::fs::write(ws.join("README.md"), "hello\n").unwrap();
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-q", "-m", "base"]);
    std::fs::create_dir_all(ws.join("café")).unwrap();
    std::fs::write(ws.join("café/config.js"), format!("const k = \"{a}\";\n")).unwrap();
    std::fs::write(ws.join("my notes.txt"), format!("npm {b}\n")).unwrap();
    std::fs::write(ws.join("say \"hi\".txt"), format!("T={d}\n")).unwrap();
    std::fs::write(ws.join("hider.txt"), format!("++ /dev/null\nT={c}\n")).unwrap();
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-q", "-m", "leaks"]);
    for scan in ["history", "diff"] {
        step.set("INPUT_GATES", "secrets")
            .set("INPUT_SCAN", scan)
            .set("INPUT_BASE", "HEAD~1")
            .set("INPUT_HEAD", "HEAD");
        let out = step.run();
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{scan}: {text}");
        for want in [
            "::error file=café/config.js,line=1,",
            "::error file=my notes.txt,line=1,",
            "::error file=hider.txt,line=2,",
            "::error file=say \"hi\".txt,line=1,",
        ] {
            assert!(text.contains(want), "{scan}: want {want:?} in {text}");
        }
    }
}

/// A file too large to scan is named and warned about, never skipped in silence.
#[test]
fn a_file_too_large_to_scan_is_named_and_warned_about() {
    let mut step = Step::new();
    let ws = step.ws();
    step.config("");
    let big = std::fs::File::create(ws.join("huge.min.js")).unwrap();
    big.set_len(40 * 1024 * 1024).unwrap();
    drop(big);
    // Sparse zeros would be binary: make the start text.
    use std::io::{Seek, Write};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(ws.join("huge.min.js"))
        .unwrap();
    f.seek(std::io::SeekFrom::Start(0)).unwrap();
    f.write_all(&b"a".repeat(16 * 1024)).unwrap();
    drop(f);
    step.set("INPUT_GATES", "secrets");
    let out = step.run();
    let text = stdout(&out);
    assert!(
        text.contains("::warning file=huge.min.js,"),
        "a warning names the file: {text}"
    );
    assert!(
        step.outputs().contains("result=warn\n"),
        "{}",
        step.outputs()
    );
    assert!(
        step.summary().contains("`huge.min.js`"),
        "{}",
        step.summary()
    );
}

/// Builds a workspace that is a git checkout of a pull request: the base
/// commit holds `base_files`, the head commit changes them to `pr_files`.
/// Returns (base sha, head sha).
pub(crate) fn pr_checkout(
    ws: &Path,
    base_files: &[(&str, &str)],
    pr_files: &[(&str, &str)],
) -> (String, String) {
    git(ws, &["init", "-q", "-b", "main"]);
    for (p, t) in base_files {
        std::fs::create_dir_all(ws.join(p).parent().unwrap()).unwrap();
        std::fs::write(ws.join(p), t).unwrap();
    }
    git(ws, &["add", "-A"]);
    git(ws, &["commit", "-q", "--allow-empty", "-m", "base"]);
    let base = git_out(ws, &["rev-parse", "HEAD"]);
    git(ws, &["checkout", "-q", "-b", "feature"]);
    for (p, t) in pr_files {
        std::fs::create_dir_all(ws.join(p).parent().unwrap()).unwrap();
        std::fs::write(ws.join(p), t).unwrap();
    }
    git(ws, &["add", "-A"]);
    git(ws, &["commit", "-q", "-m", "pr"]);
    let head = git_out(ws, &["rev-parse", "HEAD"]);
    (base, head)
}

const BASE_POLICY: &str = "protection:\n  branches:\n    main:\n      required_approvals: 1\n";

/// What the pull request adds to weaken its own gates.
fn weakening_pr(leak: &str, hidden: &str) -> Vec<(&'static str, String)> {
    let hidden_fp =
        shipgate::secrets::scan_text("hidden.txt", &format!("T={hidden}\n"), &Default::default())
            [0]
        .fingerprint
        .clone();
    vec![
        (
            ".github/shipgate.yml",
            "secrets:\n  exclude: [leak.txt]\nfreeze:\n  windows:\n    - { days: [mon, tue, wed, thu, fri, sat, sun], reason: Added by the PR }\n".to_string(),
        ),
        (".shipgateignore", format!("{hidden_fp}\n")),
        ("leak.txt", format!("T={leak}\n")),
        ("hidden.txt", format!("T={hidden}\n")),
    ]
}

fn assert_pr_was_judged_by_the_base(step: &Step, out: &Output) {
    let text = stdout(out);
    let summary = step.summary();
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(out));
    assert!(
        summary.contains("### ❌ policy — Approvals: 0 of 1 approvals"),
        "the base's policy applies: {summary}"
    );
    assert!(
        text.contains("::error file=leak.txt,line=1,"),
        "the PR's exclude does not apply: {text}"
    );
    assert!(
        text.contains("::error file=hidden.txt,line=1,"),
        "the PR's .shipgateignore does not apply: {text}"
    );
    assert!(
        summary.contains("### ❌ freeze — Added by the PR ("),
        "a freeze window the PR adds applies: {summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_cannot_loosen_the_gates_that_judge_it() {
    let gh = common::FakeGitHub::start().await;
    gh.add_repo("acme/app", &[(".github/shipgate.yml", BASE_POLICY)]);
    gh.commit("acme/app", "feature", &[("a", Some("a"))]);
    let pr = gh.open_pr("acme/app", "feature", "alice");

    let mut step = Step::new();
    let ws = step.ws();
    let leak = fake_token("ghp_", 7, 36);
    let hidden = fake_token("ghp_", 8, 36);
    let pr_files = weakening_pr(&leak, &hidden);
    let pr_files: Vec<(&str, &str)> = pr_files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let (base, head) = pr_checkout(&ws, &[(".github/shipgate.yml", BASE_POLICY)], &pr_files);
    let mut event = gh.pull_request_payload("acme/app", pr, "opened");
    event["pull_request"]["base"]["sha"] = json!(base);
    event["pull_request"]["head"]["sha"] = json!(head);
    step.event("pull_request", event);
    step.set("GITHUB_API_URL", &gh.url())
        .set("INPUT_TOKEN", "ghs_test")
        .set("INPUT_GATES", "policy secrets freeze");
    let env = step.env.clone();
    let out = tokio::task::spawn_blocking(move || run_in(&ws, &env))
        .await
        .unwrap();
    assert_pr_was_judged_by_the_base(&step, &out);
    assert!(
        gh.requests_to("GET", "/repos/acme/app/contents/.github/shipgate.yml")
            .is_empty(),
        "the base commit is in the checkout: read through git"
    );
    gh.assert_no_unexpected();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_base_commit_the_base_config_comes_from_the_api() {
    let gh = common::FakeGitHub::start().await;
    gh.add_repo("acme/app", &[(".github/shipgate.yml", BASE_POLICY)]);
    gh.commit("acme/app", "feature", &[("a", Some("a"))]);
    let pr = gh.open_pr("acme/app", "feature", "alice");

    // A shallow checkout of the PR alone: no base commit, no git at all.
    let mut step = Step::new();
    let ws = step.ws();
    let leak = fake_token("ghp_", 9, 36);
    let hidden = fake_token("ghp_", 10, 36);
    for (p, t) in weakening_pr(&leak, &hidden) {
        std::fs::create_dir_all(ws.join(p).parent().unwrap()).unwrap();
        std::fs::write(ws.join(p), t).unwrap();
    }
    step.event(
        "pull_request",
        gh.pull_request_payload("acme/app", pr, "opened"),
    );
    step.set("GITHUB_API_URL", &gh.url())
        .set("INPUT_TOKEN", "ghs_test")
        .set("INPUT_GATES", "policy secrets freeze");
    let env = step.env.clone();
    let out = tokio::task::spawn_blocking(move || run_in(&ws, &env))
        .await
        .unwrap();
    assert_pr_was_judged_by_the_base(&step, &out);
    let base_sha = gh.pr("acme/app", pr).base_sha;
    let reads = gh.requests_to("GET", "/repos/acme/app/contents/.github/shipgate.yml");
    assert!(
        reads.iter().any(|r| r.query == format!("ref={base_sha}")),
        "read at the base commit: {reads:?}"
    );
    gh.assert_no_unexpected();

    // Without a token there is no way to read the base's config: exit 2, one line.
    step.env.retain(|(k, _)| k != "INPUT_TOKEN");
    let out = step.run();
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("base commit"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

const ALWAYS_FROZEN: &str = "environments:\n  production:\n    freeze:\n      - { days: [mon, tue, wed, thu, fri, sat, sun], reason: Holidays }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_freeze_override_label_counts_only_when_a_maintainer_added_it() {
    let gh = common::FakeGitHub::start().await;
    gh.add_repo("acme/app", &[]);
    gh.commit("acme/app", "feature", &[("a", Some("a"))]);
    let pr = gh.open_pr("acme/app", "feature", "alice");
    gh.set_role("acme/app", "mallory", "write");
    gh.set_role("acme/app", "maya", "maintain");

    let mut step = Step::new();
    let ws = step.ws();
    let (base, head) = pr_checkout(
        &ws,
        &[(".github/shipgate.yml", ALWAYS_FROZEN)],
        &[("b", "b")],
    );
    let mut event = gh.pull_request_payload("acme/app", pr, "labeled");
    event["pull_request"]["base"]["sha"] = json!(base);
    event["pull_request"]["head"]["sha"] = json!(head);
    event["pull_request"]["labels"] = json!([{ "name": "freeze-override" }]);
    step.event("pull_request", event);
    step.set("GITHUB_API_URL", &gh.url())
        .set("INPUT_TOKEN", "ghs_test")
        .set("INPUT_GATES", "freeze")
        .set("INPUT_ENVIRONMENT", "production");
    let run = |step: &Step| {
        let env = step.env.clone();
        let ws = step.ws();
        async move {
            tokio::task::spawn_blocking(move || run_in(&ws, &env))
                .await
                .unwrap()
        }
    };

    // Anyone who can label (triage and up) is not enough.
    gh.label_event("acme/app", pr, "freeze-override", "mallory", true);
    let out = run(&step).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        step.summary()
            .contains("added by mallory, whose role (write) is below maintain"),
        "{}",
        step.summary()
    );

    // A maintainer adding it (the latest `labeled` event) turns the failure into a warning.
    gh.label_event("acme/app", pr, "freeze-override", "maya", true);
    let out = run(&step).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(last_output(&step, "result"), "warn");
    step.set("INPUT_FAIL-ON", "warning");
    assert_eq!(run(&step).await.status.code(), Some(1), "fail-on: warning");
    step.set("INPUT_FAIL-ON", "error");
    gh.assert_no_unexpected();

    // Without a token nobody can be checked: the label does not count, and the gate says so.
    step.env.retain(|(k, _)| k != "INPUT_TOKEN");
    let out = run(&step).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        step.summary().contains("no token to check who added it"),
        "{}",
        step.summary()
    );
}

#[test]
fn a_tag_named_like_the_default_branch_does_not_put_a_commit_on_it() {
    let mut step = Step::new();
    let ws = step.ws();
    step.config("");
    std::fs::write(ws.join("CHANGELOG.md"), "## 1.0.0\n").unwrap();
    git(&ws, &["init", "-q", "-b", "main"]);
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-q", "-m", "main"]);
    git(&ws, &["checkout", "-q", "-b", "side"]);
    std::fs::write(ws.join("side.txt"), "unreviewed\n").unwrap();
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-q", "-m", "off the default branch"]);
    git(&ws, &["tag", "-a", "v1.0.0", "-m", "v1.0.0"]);
    // Tags shadow branches of the same short name.
    git(&ws, &["tag", "main"]);
    git(&ws, &["tag", "origin/main"]);
    git(&ws, &["checkout", "-q", "--detach", "v1.0.0"]);
    step.set("INPUT_GATES", "release")
        .set("GITHUB_REF", "refs/tags/v1.0.0");
    let out = step.run();
    let summary = step.summary();
    assert_eq!(out.status.code(), Some(1), "{summary}");
    assert!(
        summary.contains("- ❌ the tagged commit is not on `main`"),
        "{summary}"
    );
}

#[test]
fn the_release_rules_come_from_the_default_branch_and_patterns_are_anchored() {
    let mut step = Step::new();
    let ws = step.ws();
    git(&ws, &["init", "-q", "-b", "main"]);
    // The commit to be tagged allows any tag name …
    step.config("release:\n  tag_pattern: '.*'\n");
    std::fs::write(ws.join("CHANGELOG.md"), "## 1.0.0\n").unwrap();
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-q", "-m", "old rules"]);
    git(&ws, &["tag", "-a", "xv1y", "-m", "xv1y"]);
    git(&ws, &["tag", "-a", "v1", "-m", "v1"]);
    // … but the default branch has since said `v1`, which must match all of the tag.
    step.config("release:\n  tag_pattern: 'v1'\n");
    git(&ws, &["commit", "-q", "-am", "new rules"]);
    git(&ws, &["checkout", "-q", "--detach", "xv1y"]);
    step.set("INPUT_GATES", "release")
        .set("GITHUB_REF", "refs/tags/xv1y");
    let out = step.run();
    let summary = step.summary();
    assert_eq!(out.status.code(), Some(1), "{summary}");
    assert!(summary.contains("`xv1y` does not match `v1`"), "{summary}");

    step.set("GITHUB_REF", "refs/tags/v1");
    git(&ws, &["checkout", "-q", "--detach", "v1"]);
    let _ = step.run();
    assert!(
        step.summary().contains("- ✅ `v1` matches `v1`"),
        "{}",
        step.summary()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_default_branch_checked_out_its_release_rules_come_from_the_api() {
    let gh = common::FakeGitHub::start().await;
    let main = gh.add_repo(
        "acme/app",
        &[(".github/shipgate.yml", "release:\n  tag_pattern: 'v1'\n")],
    );
    let mut step = Step::new();
    let ws = step.ws();
    git(&ws, &["init", "-q", "-b", "main"]);
    step.config("release:\n  tag_pattern: '.*'\n");
    std::fs::write(ws.join("CHANGELOG.md"), "## xv1y\n").unwrap();
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-q", "-m", "the tag's own rules"]);
    git(&ws, &["tag", "-a", "xv1y", "-m", "xv1y"]);
    // A checkout of the tag alone, as `actions/checkout` makes one.
    git(&ws, &["checkout", "-q", "--detach", "xv1y"]);
    git(&ws, &["branch", "-q", "-D", "main"]);
    step.set("GITHUB_API_URL", &gh.url())
        .set("INPUT_TOKEN", "ghs_test")
        .set("INPUT_GATES", "release")
        .set("GITHUB_REF", "refs/tags/xv1y");
    let env = step.env.clone();
    let out = tokio::task::spawn_blocking(move || run_in(&ws, &env))
        .await
        .unwrap();
    let summary = step.summary();
    assert_eq!(out.status.code(), Some(1), "{summary}{}", stderr(&out));
    assert!(summary.contains("`xv1y` does not match `v1`"), "{summary}");
    assert_eq!(
        // The ref is one path parameter, its slash encoded.
        gh.requests_to("GET", "/repos/acme/app/git/ref/heads%2Fmain")
            .len(),
        1
    );
    let reads = gh.requests_to("GET", "/repos/acme/app/contents/.github/shipgate.yml");
    assert!(
        reads.iter().any(|r| r.query == format!("ref={main}")),
        "{reads:?}"
    );
    gh.assert_no_unexpected();

    step.env.retain(|(k, _)| k != "INPUT_TOKEN");
    let out = step.run();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("default branch `main`, which is not in the checkout"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sticky_comment_is_only_ever_one_shipgate_wrote() {
    let gh = common::FakeGitHub::start().await;
    gh.add_repo("acme/app", &[]);
    gh.commit("acme/app", "feature", &[("a", Some("a"))]);
    let pr = gh.open_pr("acme/app", "feature", "alice");
    // Another bot echoes user text, marker included.
    let planted = gh.add_comment(
        "acme/app",
        pr,
        "echo-bot[bot]",
        "You said: <!-- shipgate:check -->",
    );
    // Enough chatter that shipgate's own comment lands on the second page.
    for i in 0..120 {
        gh.add_comment("acme/app", pr, "alice", &format!("comment {i}"));
    }
    let mut step = Step::new();
    step.config("");
    step.event(
        "pull_request",
        gh.pull_request_payload("acme/app", pr, "opened"),
    );
    step.set("GITHUB_API_URL", &gh.url())
        .set("INPUT_TOKEN", "ghs_test")
        .set("INPUT_GATES", "freeze")
        .set("INPUT_COMMENT", "true");
    for _ in 0..2 {
        let env = step.env.clone();
        let ws = step.ws();
        let out = tokio::task::spawn_blocking(move || run_in(&ws, &env))
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    }
    assert_eq!(
        gh.comment_body("acme/app", planted),
        "You said: <!-- shipgate:check -->",
        "another bot's comment is not taken over"
    );
    let ours = gh.bot_comments("acme/app", pr);
    assert_eq!(ours.len(), 1, "one sticky comment, found again on page 2");
    assert_eq!(ours[0].edits, 1);

    // A workflow's GITHUB_TOKEN cannot read /user; it posts as github-actions[bot].
    let pr2 = gh.open_pr("acme/app", "feature", "bob");
    let actions = gh.add_comment(
        "acme/app",
        pr2,
        "github-actions[bot]",
        "### shipgate check: pass\n\n<!-- shipgate:check -->",
    );
    gh.fail_next("GET", "/user", 1, 403);
    step.event(
        "pull_request",
        gh.pull_request_payload("acme/app", pr2, "opened"),
    );
    let env = step.env.clone();
    let ws = step.ws();
    let out = tokio::task::spawn_blocking(move || run_in(&ws, &env))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(gh.bot_comments("acme/app", pr2).is_empty());
    assert_ne!(
        gh.comment_body("acme/app", actions),
        "### shipgate check: pass\n\n<!-- shipgate:check -->",
        "github-actions[bot]'s comment was updated"
    );
    gh.assert_no_unexpected();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_text_cannot_ping_people_break_tables_or_plant_markers() {
    let gh = common::FakeGitHub::start().await;
    gh.add_repo("acme/app", &[]);
    gh.commit("acme/app", "feature", &[("a", Some("a"))]);
    let pr = gh.open_pr("acme/app", "feature", "alice");
    let config = "freeze:\n  windows:\n    - days: [mon, tue, wed, thu, fri, sat, sun]\n      reason: \"Ping @octocat | x <!-- shipgate:check -->\\n| a | b |\"\n";
    gh.commit(
        "acme/app",
        "main",
        &[(".github/shipgate.yml", Some(config))],
    );
    let mut step = Step::new();
    step.config(config);
    let mut event = gh.pull_request_payload("acme/app", pr, "opened");
    event["pull_request"]["base"]["sha"] =
        json!(gh.with(|w| w.repo("acme/app").branches["main"].clone()));
    step.event("pull_request", event);
    step.set("GITHUB_API_URL", &gh.url())
        .set("INPUT_TOKEN", "ghs_test")
        .set("INPUT_GATES", "freeze")
        .set("INPUT_COMMENT", "true");
    let env = step.env.clone();
    let ws = step.ws();
    let out = tokio::task::spawn_blocking(move || run_in(&ws, &env))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let comment = gh.next_bot_comment("acme/app", pr).body;
    for (what, body) in [("summary", step.summary()), ("comment", comment)] {
        assert!(!body.contains("@octocat"), "{what} pings: {body}");
        assert!(body.contains("@\u{2060}octocat"), "{what}: {body}");
        assert_eq!(
            body.matches("<!--").count(),
            if what == "comment" { 1 } else { 0 },
            "{what} holds an HTML comment it did not write: {body}"
        );
        assert!(!body.contains("\n| a | b |"), "{what}: {body}");
        assert!(
            body.contains("Ping @\u{2060}octocat ¦ x &lt;!--"),
            "{what}: {body}"
        );
    }
    gh.assert_no_unexpected();
}

#[test]
fn an_error_message_cannot_forge_workflow_commands() {
    let mut step = Step::new();
    step.config("\"x\\n::error title=pwn::owned\\n::add-mask::x\\n##[warning]y\": 1\n");
    step.set("INPUT_GATES", "freeze");
    let out = step.run();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        commands_not_ours(&out, &["::error title=shipgate::"]),
        Vec::<String>::new(),
        "stdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stderr(&out).contains("unknown field"), "{}", stderr(&out));
}

/// The checkout can make any file a symlink to anywhere on the runner:
/// shipgate does not read its config through one (a parse error would quote
/// the target, `/proc/self/environ` say).
#[cfg(unix)]
#[test]
fn a_config_symlinked_out_of_the_workspace_is_not_read() {
    let mut step = Step::new();
    let ws = step.ws();
    let outside = step.dir.path().join("outside.txt");
    let secret = fake_token("ghp_", 11, 36);
    std::fs::write(&outside, format!("{secret}\n")).unwrap();
    std::os::unix::fs::symlink(&outside, ws.join(".github/shipgate.yml")).unwrap();
    step.set("INPUT_GATES", "freeze");
    let out = step.run();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    for text in [stdout(&out), stderr(&out)] {
        assert!(!text.contains(&secret[4..]), "the target leaked: {text}");
    }
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
}

/// … nor write its SARIF through one (onto `$GITHUB_ENV`, say).
#[cfg(unix)]
#[test]
fn sarif_is_not_written_through_a_symlink_out_of_the_workspace() {
    let mut step = Step::new();
    let ws = step.ws();
    step.config("");
    let victim = step.dir.path().join("victim.txt");
    std::fs::write(&victim, "untouched").unwrap();
    std::os::unix::fs::symlink(&victim, ws.join("shipgate.sarif")).unwrap();
    step.set("INPUT_GATES", "secrets")
        .set("INPUT_SARIF", "true");
    let out = step.run();
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "untouched",
        "written through the symlink"
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
}

/// A merge commit can carry lines of its own (an "evil merge"); `git log -p`
/// shows merges without a diff unless asked.
#[test]
fn a_history_scan_sees_what_a_merge_commit_itself_adds() {
    let mut step = Step::new();
    let ws = step.ws();
    let token = fake_token("ghp_", 12, 36);
    git(&ws, &["init", "-q", "-b", "main"]);
    std::fs::write(ws.join("README.md"), "hello\n").unwrap();
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-q", "-m", "base"]);
    git(&ws, &["checkout", "-q", "-b", "side"]);
    std::fs::write(ws.join("side.txt"), "side\n").unwrap();
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-q", "-m", "side"]);
    git(&ws, &["checkout", "-q", "main"]);
    git(&ws, &["merge", "-q", "--no-ff", "--no-commit", "side"]);
    std::fs::write(ws.join("merged.txt"), format!("T={token}\n")).unwrap();
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-q", "-m", "merge side"]);
    step.set("INPUT_GATES", "secrets")
        .set("INPUT_SCAN", "history");
    let out = step.run();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("::error file=merged.txt,line=1,"), "{text}");
}

/// `.gitattributes` is the commits' own: `-diff` or `binary` there must not
/// turn added lines into "Binary files differ".
#[test]
fn gitattributes_cannot_hide_added_lines_from_diff_and_history_scans() {
    let mut step = Step::new();
    let ws = step.ws();
    let token = fake_token("ghp_", 13, 36);
    git(&ws, &["init", "-q", "-b", "main"]);
    std::fs::write(ws.join("README.md"), "hello\n").unwrap();
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-q", "-m", "base"]);
    std::fs::write(ws.join(".gitattributes"), "*.js -diff\n*.txt binary\n").unwrap();
    std::fs::write(ws.join("app.js"), format!("const t = \"{token}\";\n")).unwrap();
    std::fs::write(ws.join("notes.txt"), format!("T={token}\n")).unwrap();
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-q", "-m", "attributes"]);
    for scan in ["diff", "history"] {
        step.set("INPUT_GATES", "secrets")
            .set("INPUT_SCAN", scan)
            .set("INPUT_BASE", "HEAD~1")
            .set("INPUT_HEAD", "HEAD");
        let out = step.run();
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{scan}: {text}");
        for want in [
            "::error file=app.js,line=1,",
            "::error file=notes.txt,line=1,",
        ] {
            assert!(text.contains(want), "{scan}: want {want:?} in {text}");
        }
    }
}

/// Every output of a step except the `::add-mask::` commands that carry
/// the values to the runner: stdout, stderr, outputs, summary and the JSON
/// report.
fn everything_but_masks(step: &Step, out: &Output) -> String {
    let report = step
        .outputs()
        .lines()
        .find_map(|l| l.strip_prefix("report="))
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let console: String = stdout(out)
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .map(|l| format!("{l}\n"))
        .collect();
    format!(
        "{console}\n{}\n{}\n{}\n{report}",
        stderr(out),
        step.outputs(),
        step.summary()
    )
}

/// The plans' smoke flows through the runner contract: the password comes
/// from the step's `env:` (fed from `secrets`), the token is saved from the
/// login's answer; both are masked first and appear in no output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smoke_flow_logs_in_with_a_secret_from_the_steps_env_and_shows_no_secret() {
    use crate::common::sites::{login_site, FLOWS, SESSION_TOKEN, SMOKE_PASSWORD};
    let (addr, seen) = login_site().await;
    for (password, code) in [(SMOKE_PASSWORD, 0), ("wrong-password-123", 1)] {
        let mut step = Step::new();
        step.config(&format!("smoke:\n  checks:{FLOWS}"));
        step.set("INPUT_GATES", "smoke")
            .set("INPUT_URL", &format!("http://{addr}/"))
            .set("SMOKE_PASSWORD", password);
        let (env, ws) = (step.env.clone(), step.ws());
        let out = tokio::task::spawn_blocking(move || run_in(&ws, &env))
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{}", stdout(&out));
        let console = stdout(&out);
        let first_output = console.lines().next().unwrap_or("");
        assert!(
            first_output.starts_with("::add-mask::"),
            "masks go out first: {console}"
        );
        assert!(
            console.contains(&format!("::add-mask::{password}\n")),
            "{console}"
        );
        let shown = everything_but_masks(&step, &out);
        for secret in [password, SESSION_TOKEN] {
            assert!(!shown.contains(secret), "`{secret}` shown:\n{shown}");
        }
        if code == 0 {
            assert!(
                console.contains(&format!("::add-mask::{SESSION_TOKEN}\n")),
                "{console}"
            );
            assert!(
                step.summary().contains("log in 200, dashboard 200"),
                "{}",
                step.summary()
            );
        } else {
            assert!(
                shown.contains("step 1 `log in`: status 401 (expected 200)"),
                "{shown}"
            );
        }
    }
    assert_eq!(
        seen.dashboards(),
        1,
        "only the good login reached the dashboard"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smoke_flow_whose_env_value_is_unset_is_a_config_error_naming_it() {
    use crate::common::sites::{login_site, FLOWS};
    let (addr, seen) = login_site().await;
    // Unset, and set but empty (what an undefined secret gives).
    for value in [None, Some("")] {
        let mut step = Step::new();
        step.config(&format!("smoke:\n  checks:{FLOWS}"));
        step.set("INPUT_GATES", "smoke")
            .set("INPUT_URL", &format!("http://{addr}/"));
        if let Some(v) = value {
            step.set("SMOKE_PASSWORD", v);
        }
        let (env, ws) = (step.env.clone(), step.ws());
        let out = tokio::task::spawn_blocking(move || run_in(&ws, &env))
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
        let said = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            said.contains("smoke.checks[0].flow[0].body uses `${env.SMOKE_PASSWORD}`, which is not set in the step's environment"),
            "{said}"
        );
    }
    assert_eq!(seen.logins() + seen.bookings(), 0, "nothing was sent");
}

/// On a pull request with `comment: true`, the sticky comment of a smoke
/// flow that logged in holds neither the password nor the saved token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smoke_flows_values_stay_out_of_the_pull_requests_comment() {
    use crate::common::sites::{login_site, FLOWS, SESSION_TOKEN, SMOKE_PASSWORD};
    let (addr, _) = login_site().await;
    let gh = common::FakeGitHub::start().await;
    // The config the gate trusts is the base commit's.
    let config = format!("smoke:\n  checks:{FLOWS}");
    gh.add_repo("acme/app", &[(".github/shipgate.yml", &config)]);
    gh.commit("acme/app", "feature", &[("a", Some("a"))]);
    let pr = gh.open_pr("acme/app", "feature", "alice");
    let mut step = Step::new();
    step.config(&config);
    step.event(
        "pull_request",
        gh.pull_request_payload("acme/app", pr, "opened"),
    );
    step.set("GITHUB_API_URL", &gh.url())
        .set("INPUT_TOKEN", "ghs_test")
        .set("INPUT_GATES", "smoke")
        .set("INPUT_URL", &format!("http://{addr}/"))
        .set("INPUT_COMMENT", "true")
        .set("SMOKE_PASSWORD", SMOKE_PASSWORD);
    let (env, ws) = (step.env.clone(), step.ws());
    let out = tokio::task::spawn_blocking(move || run_in(&ws, &env))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let ours = gh.bot_comments("acme/app", pr);
    assert_eq!(ours.len(), 1);
    assert!(
        ours[0].body.contains("2 passed, 0 warned, 0 failed"),
        "{}",
        ours[0].body
    );
    assert!(
        step.summary().contains("log in 200, dashboard 200"),
        "{}",
        step.summary()
    );
    for secret in [SMOKE_PASSWORD, SESSION_TOKEN] {
        assert!(!ours[0].body.contains(secret), "{}", ours[0].body);
    }
    let shown = everything_but_masks(&step, &out);
    assert!(
        !shown.contains(SMOKE_PASSWORD) && !shown.contains(SESSION_TOKEN),
        "{shown}"
    );
    gh.next_bot_comment("acme/app", pr);
}

/// A `save:` path that matches nothing fails its step, names the path, and
/// the step after it is never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smoke_flows_save_path_that_matches_nothing_fails_naming_it() {
    use crate::common::sites::{login_site, SMOKE_PASSWORD};
    let (addr, seen) = login_site().await;
    let mut step = Step::new();
    step.config(
        r#"
smoke:
  checks:
    - name: login
      flow:
        - { name: log in, method: POST, path: /api/login, headers: { content-type: application/json }, body: '{"email": "smoke@example.com", "password": "${env.SMOKE_PASSWORD}"}', save: { token: $.data.token } }
        - { name: dashboard, path: /api/dashboard, headers: { authorization: 'Bearer ${token}' } }
"#,
    );
    step.set("INPUT_GATES", "smoke")
        .set("INPUT_URL", &format!("http://{addr}/"))
        .set("SMOKE_PASSWORD", SMOKE_PASSWORD);
    let (env, ws) = (step.env.clone(), step.ws());
    let out = tokio::task::spawn_blocking(move || run_in(&ws, &env))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        step.summary().contains(
            "step 1 `log in`: save `token`: `$.data.token` matched nothing in the answer"
        ),
        "{}",
        step.summary()
    );
    assert_eq!(seen.dashboards(), 0);
}
