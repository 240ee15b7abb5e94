//! `shipgate check`: the gates, run from a terminal or as the GitHub Action.
//!
//! Each gate returns data (outcome, Markdown, annotations, counts); the
//! caller reports it through the runner contract (`action`) or as text.
//! The gates reuse the server's pieces: the smoke engine, the freeze
//! windows, the policy evaluator, the secret scanner.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;
use serde_json::Value;

use crate::action::{Annotation, Level, Runner};
use crate::github::repos::ProtectionRead;
use crate::github::{GitHub, RetryPolicy};
use crate::repo_config::{RepoConfig, CONFIG_PATH};
use crate::smoke::{self, Outcome};

pub const GATES: &[&str] = &[
    "smoke",
    "secrets",
    "freeze",
    "release",
    "policy",
    "protection",
];

/// A problem with how the check was asked for: exit status 2.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{path}: {message}")]
    Config { path: String, message: String },
    #[error("unknown gate `{0}`{1}; gates: smoke, secrets, freeze, release, policy, protection")]
    UnknownGate(String, String),
    #[error("{0}")]
    Input(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    Error,
    Warning,
    Never,
}

/// What to check, from arguments or `INPUT_*`.
#[derive(Debug, Clone)]
pub struct CheckRequest {
    pub gates: Vec<String>,
    pub config: PathBuf,
    pub environment: Option<String>,
    pub url: Option<String>,
    pub fail_on: FailOn,
    /// `tree` (default), `diff` or `history`.
    pub scan: String,
    pub base: Option<String>,
    pub head: Option<String>,
    pub sarif: Option<PathBuf>,
    pub token: Option<String>,
}

/// One gate's result.
#[derive(Debug, Clone, Serialize)]
pub struct GateResult {
    pub gate: String,
    pub outcome: Outcome,
    pub headline: String,
    #[serde(skip)]
    pub markdown: String,
    pub annotations: Vec<Annotation>,
    pub errors: usize,
    pub warnings: usize,
    /// Values to mask before anything is printed (found secrets).
    #[serde(skip)]
    pub masks: Vec<String>,
    pub data: Value,
}

impl GateResult {
    pub fn new(
        gate: &str,
        outcome: Outcome,
        headline: impl Into<String>,
        markdown: impl Into<String>,
    ) -> Self {
        let (errors, warnings) = match outcome {
            Outcome::Fail => (1, 0),
            Outcome::Warn => (0, 1),
            _ => (0, 0),
        };
        GateResult {
            gate: gate.into(),
            outcome,
            headline: headline.into(),
            markdown: markdown.into(),
            annotations: Vec::new(),
            errors,
            warnings,
            masks: Vec::new(),
            data: Value::Null,
        }
    }
}

/// Loads the config at `path` (a missing file means defaults).
pub fn load_config(path: &Path) -> Result<RepoConfig, CheckError> {
    match std::fs::read_to_string(path) {
        Ok(text) => RepoConfig::parse(&text).map_err(|e| CheckError::Config {
            path: path.display().to_string(),
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RepoConfig::default()),
        Err(e) => Err(CheckError::Config {
            path: path.display().to_string(),
            message: format!("cannot read: {e}"),
        }),
    }
}

/// Reads the request: command-line values win over `INPUT_*`.
#[allow(clippy::too_many_arguments)]
pub fn request(
    runner: &Runner,
    gates: Vec<String>,
    config: Option<PathBuf>,
    environment: Option<String>,
    url: Option<String>,
    fail_on: Option<String>,
    scan: Option<String>,
) -> Result<CheckRequest, CheckError> {
    let gates: Vec<String> = if gates.is_empty() {
        runner
            .input("gates")
            .map(|g| {
                g.split(|c: char| c.is_whitespace() || c == ',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    } else {
        gates
    };
    for g in &gates {
        if !GATES.contains(&g.as_str()) {
            let hint = crate::commands::did_you_mean(g, GATES.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            return Err(CheckError::UnknownGate(g.clone(), hint));
        }
    }
    let workspace = runner.workspace();
    let config = config
        .or_else(|| runner.input("config").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(CONFIG_PATH));
    let config = if config.is_relative() && runner.in_actions() {
        workspace.join(config)
    } else {
        config
    };
    // A config file named on purpose must exist; only the default may be absent.
    if !config.ends_with(CONFIG_PATH) && !config.exists() {
        return Err(CheckError::Config {
            path: config.display().to_string(),
            message: "no such file".into(),
        });
    }
    let fail_on = match fail_on.or_else(|| runner.input("fail-on")).as_deref() {
        None | Some("error") => FailOn::Error,
        Some("warning") => FailOn::Warning,
        Some("never") => FailOn::Never,
        Some(other) => {
            return Err(CheckError::Input(format!(
                "fail-on: expected error, warning or never, got `{other}`"
            )))
        }
    };
    let scan = scan
        .or_else(|| runner.input("scan"))
        .unwrap_or_else(|| "tree".into());
    if !matches!(scan.as_str(), "tree" | "diff" | "history") {
        return Err(CheckError::Input(format!(
            "scan: expected tree, diff or history, got `{scan}`"
        )));
    }
    if let Err(e) = runner.bool_input("comment") {
        return Err(CheckError::Input(e.0));
    }
    Ok(CheckRequest {
        gates,
        config,
        environment: environment.or_else(|| runner.input("environment")),
        url: url.or_else(|| runner.input("url")),
        fail_on,
        scan,
        base: runner.input("base"),
        head: runner.input("head"),
        sarif: runner.input("sarif").map(|s| {
            if s == "true" {
                workspace.join("shipgate.sarif")
            } else {
                workspace.join(s)
            }
        }),
        token: runner
            .input("token")
            .or_else(|| runner.var("GITHUB_TOKEN").map(str::to_string)),
    })
}

/// Runs the requested gates, in order.
pub async fn run(runner: &Runner, req: &CheckRequest) -> Result<Vec<GateResult>, CheckError> {
    let config = load_config(&req.config)?;
    let mut out = Vec::new();
    for gate in &req.gates {
        let r = match gate.as_str() {
            "smoke" => smoke_gate(runner, req, &config).await?,
            "freeze" => freeze_gate(runner, req, &config)?,
            "policy" => policy_gate(runner, req, &config).await?,
            "protection" => protection_gate(runner, req, &config).await?,
            "release" => release_gate(runner, &config)?,
            "secrets" => secrets_gate(runner, req, &config)?,
            _ => unreachable!("gates are checked in `request`"),
        };
        out.push(r);
    }
    Ok(out)
}

fn environment_name(req: &CheckRequest, config: &RepoConfig) -> Option<String> {
    req.environment
        .clone()
        .or_else(|| config.default_environment().map(str::to_string))
}

fn github(
    runner: &Runner,
    req: &CheckRequest,
    gate: &str,
) -> Result<(crate::github::Api, String), CheckError> {
    let token = req.token.clone().ok_or_else(|| CheckError::Input(format!("the `{gate}` gate needs a token: pass `token: ${{{{ github.token }}}}` or set GITHUB_TOKEN")))?;
    let repo = runner
        .var("GITHUB_REPOSITORY")
        .ok_or_else(|| {
            CheckError::Input(format!(
                "the `{gate}` gate needs GITHUB_REPOSITORY (owner/name)"
            ))
        })?
        .to_string();
    let api_url = runner
        .var("GITHUB_API_URL")
        .unwrap_or(crate::settings::DEFAULT_GITHUB_API_URL);
    let api_url =
        url::Url::parse(api_url).map_err(|e| CheckError::Input(format!("GITHUB_API_URL: {e}")))?;
    let gh = GitHub::new(
        &crate::settings::GitHubAuth::Token(secrecy::SecretString::from(token)),
        &api_url,
        RetryPolicy::default(),
        crate::metrics::Metrics::new(),
    )
    .map_err(|e| CheckError::Input(format!("GitHub client: {e}")))?;
    let api = gh.api(None).map_err(|e| CheckError::Input(e.to_string()))?;
    Ok((api, repo))
}

fn api_failure(gate: &str, e: crate::github::GitHubError) -> GateResult {
    GateResult::new(
        gate,
        Outcome::Fail,
        format!("GitHub API: {e}"),
        format!("❌ GitHub answered: {e}\n"),
    )
}

async fn smoke_gate(
    runner: &Runner,
    req: &CheckRequest,
    config: &RepoConfig,
) -> Result<GateResult, CheckError> {
    let env = environment_name(req, config);
    let url = req.url.clone().or_else(|| env.as_ref().and_then(|e| config.environments.get(e)).and_then(|e| e.url.clone())).ok_or_else(|| {
        CheckError::Input("the `smoke` gate needs a URL: the `url` input, or `url:` of the environment in the config".into())
    })?;
    let target = url::Url::parse(&url)
        .map_err(|e| CheckError::Input(format!("url: `{url}` is not a URL: {e}")))?;
    let suite = config.smoke_suite(env.as_deref().unwrap_or(""));
    // The user's own runner: no server caps, no SSRF guard.
    let report = smoke::run(
        &target,
        suite,
        &smoke::SmokeOptions::default(),
        &smoke::Limits::none(),
    )
    .await;
    let outcome = report.outcome();
    let mut r = GateResult::new(
        "smoke",
        outcome,
        report.summary(),
        crate::render::smoke_markdown(&report),
    );
    r.errors = report.count(Outcome::Fail);
    r.warnings = report.count(Outcome::Warn);
    for c in report
        .results
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Fail | Outcome::Warn))
    {
        r.annotations.push(Annotation {
            level: if c.outcome == Outcome::Fail {
                Level::Error
            } else {
                Level::Warning
            },
            file: None,
            line: None,
            column: None,
            title: format!("smoke: {}", c.name),
            message: c.reason.clone(),
        });
    }
    // Triggered by a deployment: report it as that deployment's status.
    if runner.event_name() == Some("deployment") {
        if let Some(id) = runner.event().and_then(|e| e["deployment"]["id"].as_i64()) {
            let (api, repo) = github(runner, req, "smoke")?;
            let log_url = format!(
                "{}/{}/actions/runs/{}",
                runner
                    .var("GITHUB_SERVER_URL")
                    .unwrap_or("https://github.com"),
                repo,
                runner.var("GITHUB_RUN_ID").unwrap_or("0")
            );
            let state = if outcome == Outcome::Fail {
                "failure"
            } else {
                "success"
            };
            let body = serde_json::json!({ "state": state, "log_url": log_url, "environment_url": url, "description": format!("shipgate smoke: {}", report.summary()).chars().take(140).collect::<String>() });
            if let Err(e) = api
                .post::<_, Value>(&format!("/repos/{repo}/deployments/{id}/statuses"), &body)
                .await
            {
                r.annotations.push(Annotation {
                    level: Level::Warning,
                    file: None,
                    line: None,
                    column: None,
                    title: "smoke".into(),
                    message: format!("could not post the deployment status: {e}"),
                });
            }
        }
    }
    r.data = serde_json::to_value(&report).unwrap_or(Value::Null);
    Ok(r)
}

fn freeze_gate(
    runner: &Runner,
    req: &CheckRequest,
    config: &RepoConfig,
) -> Result<GateResult, CheckError> {
    let env_name = environment_name(req, config);
    let env = env_name.as_ref().and_then(|e| config.environments.get(e));
    let windows: Vec<_> = match env {
        Some(e) => config.freeze_windows(e).cloned().collect(),
        None => config.freeze.windows.clone(),
    };
    let now = chrono::Utc::now();
    let label = config
        .freeze
        .override_label
        .clone()
        .unwrap_or_else(|| "freeze-override".into());
    let labelled = runner
        .event()
        .and_then(|e| e["pull_request"]["labels"].as_array().cloned())
        .is_some_and(|labels| {
            labels
                .iter()
                .any(|l| l["name"].as_str() == Some(label.as_str()))
        });
    let what = env_name
        .as_deref()
        .map(|e| format!("`{e}`"))
        .unwrap_or_else(|| "all environments".into());
    let r = match crate::freeze::active_freeze(&windows, now) {
        Some(f) if labelled => GateResult::new(
            "freeze",
            Outcome::Warn,
            format!("{} — overridden by the `{label}` label", f.description),
            format!(
                "⚠️ Deploy freeze on {what}: {} until {}, overridden by the `{label}` label.\n",
                f.description,
                f.ends_at.format("%Y-%m-%d %H:%M UTC")
            ),
        ),
        Some(f) => GateResult::new(
            "freeze",
            Outcome::Fail,
            format!(
                "{} until {}",
                f.description,
                f.ends_at.format("%Y-%m-%d %H:%M UTC")
            ),
            format!(
                "❌ Deploy freeze on {what}: {} until {}. Add the `{label}` label to override.\n",
                f.description,
                f.ends_at.format("%Y-%m-%d %H:%M UTC")
            ),
        ),
        None => {
            // The next window, looking two weeks ahead in 15-minute steps.
            let next = (1..=14 * 96)
                .map(|i| now + chrono::Duration::minutes(15 * i))
                .find_map(|t| crate::freeze::active_freeze(&windows, t).map(|f| (t, f)));
            let text = match next {
                Some((t, f)) => format!(
                    "no freeze now; next: {} from about {}",
                    f.description,
                    t.format("%Y-%m-%d %H:%M UTC")
                ),
                None => "no freeze now or in the next 14 days".to_string(),
            };
            GateResult::new(
                "freeze",
                Outcome::Pass,
                text.clone(),
                format!("✅ {what}: {text}\n"),
            )
        }
    };
    Ok(r)
}

async fn policy_gate(
    runner: &Runner,
    req: &CheckRequest,
    config: &RepoConfig,
) -> Result<GateResult, CheckError> {
    let Some(event) = runner.event().filter(|e| e["pull_request"].is_object()) else {
        return Ok(GateResult::new(
            "policy",
            Outcome::Skipped,
            "not a pull request event",
            "⏭️ policy: not a pull request event.\n",
        ));
    };
    let pr = &event["pull_request"];
    let base = pr["base"]["ref"].as_str().unwrap_or_default().to_string();
    let Some(rules) = config.protection.branches.get(&base) else {
        return Ok(GateResult::new(
            "policy",
            Outcome::Pass,
            format!("no policy for `{base}`"),
            format!("✅ policy: `{base}` has no protection policy.\n"),
        ));
    };
    let (api, repo) = github(runner, req, "policy")?;
    let number = pr["number"].as_i64().unwrap_or_default();
    let head = pr["head"]["sha"].as_str().unwrap_or_default().to_string();
    let author = pr["user"]["login"].as_str().unwrap_or_default().to_string();
    let facts = crate::policy::PullFacts {
        number,
        head: &head,
        base: &base,
        author: &author,
    };
    let gates = match crate::policy::evaluate_pull_request_live(&api, &repo, rules, &facts).await {
        Ok(g) => g,
        Err(e) => return Ok(api_failure("policy", e)),
    };
    let unmet = crate::policy::unmet(&gates);
    let md = crate::policy::conditions_table(&gates);
    let (outcome, headline) = if unmet.is_empty() {
        (
            Outcome::Pass,
            format!("#{number} meets the `{base}` policy"),
        )
    } else {
        (Outcome::Fail, unmet.join("; "))
    };
    let mut r = GateResult::new("policy", outcome, headline, md);
    r.errors = unmet.len();
    Ok(r)
}

async fn protection_gate(
    runner: &Runner,
    req: &CheckRequest,
    config: &RepoConfig,
) -> Result<GateResult, CheckError> {
    if config.protection.branches.is_empty() {
        return Ok(GateResult::new(
            "protection",
            Outcome::Pass,
            "no protection policy",
            "✅ protection: no `protection:` policy in the config.\n",
        ));
    }
    let (api, repo) = github(runner, req, "protection")?;
    let mut md = String::new();
    let mut drifted = 0;
    for (branch, desired) in &config.protection.branches {
        let live = match api.protection(&repo, branch).await {
            Ok(ProtectionRead::Protected(l)) => Some(*l),
            Ok(ProtectionRead::Unprotected) => None,
            Ok(ProtectionRead::BranchMissing) => {
                md.push_str(&format!("⏭️ `{branch}` does not exist.\n\n"));
                continue;
            }
            Err(crate::github::GitHubError::Forbidden(m)) => {
                return Err(CheckError::Input(format!("the `protection` gate needs a token that can read branch protection (admin): {m}")))
            }
            Err(e) => return Ok(api_failure("protection", e)),
        };
        let diffs = crate::policy::diff(desired, live.as_ref());
        if diffs.is_empty() {
            md.push_str(&format!("✅ `{branch}` matches the policy.\n\n"));
        } else {
            drifted += 1;
            md.push_str(&format!("❌ `{branch}` differs from the policy:\n\n| Setting | Found | Policy |\n|---|---|---|\n"));
            for d in &diffs {
                md.push_str(&format!("| `{}` | {} | {} |\n", d.field, d.live, d.desired));
            }
            md.push('\n');
        }
    }
    let mut r = if drifted == 0 {
        GateResult::new(
            "protection",
            Outcome::Pass,
            "every branch matches the policy",
            md,
        )
    } else {
        GateResult::new(
            "protection",
            Outcome::Fail,
            format!("{drifted} branch(es) differ from the policy"),
            md,
        )
    };
    r.errors = drifted;
    Ok(r)
}

fn git(workspace: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .arg("-c")
        .arg("safe.directory=*")
        .args(args)
        .current_dir(workspace)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

const SEMVER_TAG: &str =
    r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$";

fn release_gate(runner: &Runner, config: &RepoConfig) -> Result<GateResult, CheckError> {
    let Some(tag) = runner
        .var("GITHUB_REF")
        .and_then(|r| r.strip_prefix("refs/tags/"))
        .map(str::to_string)
    else {
        return Ok(GateResult::new(
            "release",
            Outcome::Skipped,
            "not a tag push",
            "⏭️ release: not a tag push.\n",
        ));
    };
    let ws = runner.workspace();
    let pattern = config
        .release
        .tag_pattern
        .clone()
        .unwrap_or_else(|| SEMVER_TAG.into());
    let re = regex::Regex::new(&pattern)
        .map_err(|e| CheckError::Input(format!("release.tag_pattern: {e}")))?;
    let mut problems = Vec::new();
    let mut passed = Vec::new();
    if re.is_match(&tag) {
        passed.push(format!("`{tag}` matches `{pattern}`"));
    } else {
        problems.push(format!("`{tag}` does not match `{pattern}`"));
    }
    match git(&ws, &["cat-file", "-t", &format!("refs/tags/{tag}")]) {
        Ok(kind) if kind == "tag" => passed.push("the tag is annotated".into()),
        Ok(_) => problems.push("the tag is lightweight; create it with `git tag -a`".into()),
        Err(e) => problems.push(format!("cannot read the tag: {e}")),
    }
    if config.release.require_signed {
        match git(&ws, &["verify-tag", &tag]) {
            Ok(_) => passed.push("the signature verifies".into()),
            Err(e) => problems.push(format!(
                "the signature does not verify: {}",
                e.lines().next().unwrap_or("no signature")
            )),
        }
    }
    let default_branch = runner
        .event()
        .and_then(|e| {
            e["repository"]["default_branch"]
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "main".into());
    let on_default = [format!("origin/{default_branch}"), default_branch.clone()]
        .iter()
        .any(|b| {
            git(
                &ws,
                &[
                    "merge-base",
                    "--is-ancestor",
                    &format!("refs/tags/{tag}^{{commit}}"),
                    b,
                ],
            )
            .is_ok()
        });
    if on_default {
        passed.push(format!("the tagged commit is on `{default_branch}`"));
    } else {
        problems.push(format!(
            "the tagged commit is not on `{default_branch}` (fetch it with `fetch-depth: 0`)"
        ));
    }
    let changelog = config
        .release
        .changelog
        .clone()
        .unwrap_or_else(|| "CHANGELOG.md".into());
    let version = tag.trim_start_matches('v');
    match std::fs::read_to_string(ws.join(&changelog)) {
        Ok(text) => {
            let heading = regex::Regex::new(&format!(
                r"(?m)^#+\s*\[?v?{}\]?(\s|$)",
                regex::escape(version)
            ))
            .expect("escaped");
            if heading.is_match(&text) {
                passed.push(format!("`{changelog}` has a section for {version}"));
            } else {
                problems.push(format!("`{changelog}` has no section for {version}"));
            }
        }
        Err(_) => problems.push(format!("`{changelog}` is missing")),
    }
    let mut md = String::new();
    for p in &passed {
        md.push_str(&format!("- ✅ {p}\n"));
    }
    for p in &problems {
        md.push_str(&format!("- ❌ {p}\n"));
    }
    let mut r = if problems.is_empty() {
        GateResult::new(
            "release",
            Outcome::Pass,
            format!("`{tag}` is a valid release"),
            md,
        )
    } else {
        GateResult::new("release", Outcome::Fail, problems.join("; "), md)
    };
    r.errors = problems.len();
    Ok(r)
}

fn secrets_gate(
    runner: &Runner,
    req: &CheckRequest,
    config: &RepoConfig,
) -> Result<GateResult, CheckError> {
    crate::secrets_gate::run(runner, req, config)
}

/// The overall result and exit status for `fail_on`.
pub fn verdict(results: &[GateResult], fail_on: FailOn) -> (&'static str, u8) {
    let worst = results
        .iter()
        .map(|r| r.outcome)
        .filter(|o| *o != Outcome::Skipped)
        .max()
        .unwrap_or(Outcome::Pass);
    let label = match worst {
        Outcome::Fail => "fail",
        Outcome::Warn => "warn",
        _ => "pass",
    };
    let fails = match fail_on {
        FailOn::Error => worst == Outcome::Fail,
        FailOn::Warning => matches!(worst, Outcome::Fail | Outcome::Warn),
        FailOn::Never => false,
    };
    (label, if fails { 1 } else { 0 })
}

/// Reports results through the runner contract (in Actions) or as text, and
/// returns the exit status. Masks go out before anything else.
pub fn report(runner: &Runner, req: &CheckRequest, results: &[GateResult]) -> u8 {
    use crate::action;
    let (label, code) = verdict(results, req.fail_on);
    let actions = runner.in_actions();
    if actions {
        for r in results {
            for m in &r.masks {
                println!("{}", action::mask(m));
            }
        }
    }
    for r in results {
        let line = format!(
            "{:<7} {} — {}",
            r.outcome.as_str().to_ascii_uppercase(),
            r.gate,
            r.headline
        );
        // Headlines can quote responses from outside: never let them run as commands.
        if actions {
            println!("{}", action::untrusted(&line));
        } else {
            println!("{line}");
        }
        if actions {
            for a in &r.annotations {
                println!("{}", a.command());
            }
        }
    }
    let errors: usize = results.iter().map(|r| r.errors).sum();
    let warnings: usize = results.iter().map(|r| r.warnings).sum();
    println!(
        "{}: {errors} error(s), {warnings} warning(s)",
        label.to_ascii_uppercase()
    );

    let report_path = runner
        .var("RUNNER_TEMP")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| runner.workspace())
        .join("shipgate-report.json");
    let json = serde_json::json!({ "result": label, "errors": errors, "warnings": warnings, "gates": results });
    let wrote_report = std::fs::write(
        &report_path,
        serde_json::to_vec_pretty(&json).expect("report serializes"),
    )
    .is_ok();
    if actions {
        let mut summary = format!("## shipgate: {label}\n\n");
        for r in results {
            summary.push_str(&format!(
                "### {} {} — {}\n\n{}\n",
                r.outcome.icon(),
                r.gate,
                r.headline,
                r.markdown
            ));
            let hidden = r.errors + r.warnings;
            if r.annotations.len() < hidden && r.gate == "secrets" {
                summary.push_str(&format!("_{} finding(s) are listed here but not annotated (at most 10 annotations per severity)._\n\n", hidden - r.annotations.len()));
            }
        }
        let _ = runner.append_summary(&summary);
        let _ = runner.set_output("result", label);
        let _ = runner.set_output("errors", &errors.to_string());
        let _ = runner.set_output("warnings", &warnings.to_string());
        if wrote_report {
            let _ = runner.set_output("report", &report_path.display().to_string());
        }
        if let Some(s) = req.sarif.as_ref().filter(|s| s.exists()) {
            let _ = runner.set_output("sarif", &s.display().to_string());
        }
    }
    code
}

pub const COMMENT_MARKER: &str = "<!-- shipgate:check -->";

/// `comment: true`: one sticky PR comment with the results, found again by
/// its marker and a bot author (a user pasting the marker cannot take it over).
pub async fn post_comment(
    runner: &Runner,
    req: &CheckRequest,
    results: &[GateResult],
) -> Result<(), CheckError> {
    let Some(number) = runner
        .event()
        .and_then(|e| e["pull_request"]["number"].as_i64())
    else {
        return Ok(()); // not a pull request: nothing to comment on
    };
    let (api, repo) = github(runner, req, "comment")?;
    let (label, _) = verdict(results, req.fail_on);
    let mut body = format!("### shipgate check: {label}\n\n| Gate | | |\n|---|---|---|\n");
    for r in results {
        body.push_str(&format!(
            "| {} | {} | {} |\n",
            r.gate,
            r.outcome.icon(),
            r.headline.replace('|', "\\|")
        ));
    }
    body.push('\n');
    body.push_str(COMMENT_MARKER);
    #[derive(serde::Deserialize)]
    struct C {
        id: i64,
        #[serde(default)]
        body: Option<String>,
        user: U,
    }
    #[derive(serde::Deserialize)]
    struct U {
        #[serde(rename = "type", default)]
        kind: Option<String>,
    }
    let existing: Vec<C> = api
        .get(&format!(
            "/repos/{repo}/issues/{number}/comments?per_page=100"
        ))
        .await
        .map_err(|e| CheckError::Input(format!("comment: {e}")))?;
    let mine = existing.iter().find(|c| {
        c.body
            .as_deref()
            .is_some_and(|b| b.contains(COMMENT_MARKER))
            && c.user.kind.as_deref() == Some("Bot")
    });
    let done = match mine {
        Some(c) => api.update_comment(&repo, c.id, &body).await,
        None => api.create_comment(&repo, number, &body).await.map(|_| ()),
    };
    done.map_err(|e| CheckError::Input(format!("comment: {e}")))
}
