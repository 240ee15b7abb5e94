//! What `shipgate check` is asked to do (arguments and `INPUT_*`), the
//! errors that stop it before any gate runs (exit status 2), and one gate's
//! result as the Action reports it.

use std::path::PathBuf;

use serde_json::Value;

use crate::action::{Annotation, Runner};
use crate::config::repo::{RepoConfig, CONFIG_PATH};
use crate::deploy::gates::{Gate, Verdict};
use crate::github::{Api, GitHub, RetryPolicy};

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
    /// A webhook URL (a secret) to send the verdict to, and when.
    pub notify: Option<secrecy::SecretString>,
    pub notify_on: NotifyOn,
}

/// When the Action notifies: `failure` (default), `warning` (a warning
/// or a failure) or `always`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyOn {
    Failure,
    Warning,
    Always,
}

impl NotifyOn {
    /// Whether the overall result `label` (pass, warn, fail) is notified.
    pub fn wants(self, label: &str) -> bool {
        match self {
            NotifyOn::Always => true,
            NotifyOn::Warning => label != "pass",
            NotifyOn::Failure => label == "fail",
        }
    }
}

/// One gate's result as the Action reports it: the gate's outcome, and
/// its details (Markdown for the job summary), annotations, counts, the
/// values to mask and the gate's data for the JSON report.
#[derive(Debug, Clone)]
pub struct GateResult {
    pub gate: Gate,
    pub markdown: String,
    pub annotations: Vec<Annotation>,
    pub errors: usize,
    pub warnings: usize,
    /// Values to mask before anything is printed (found secrets).
    pub masks: Vec<String>,
    pub data: Value,
}

impl GateResult {
    /// A result of gate `name` (`smoke`, `secrets`, …): one error when it
    /// fails, one warning when it warns, until the gate counts its own.
    pub fn new(
        name: &str,
        verdict: Verdict,
        headline: impl Into<String>,
        markdown: impl Into<String>,
    ) -> Self {
        let (errors, warnings) = match verdict {
            Verdict::Fail => (1, 0),
            Verdict::Warn => (0, 1),
            _ => (0, 0),
        };
        let headline = headline.into();
        let gate = match verdict {
            Verdict::Pass => Gate::pass(name, headline),
            Verdict::Skipped => Gate::skipped(name, headline),
            Verdict::Warn => Gate::warn(name, headline),
            Verdict::Wait => Gate::wait(name, headline),
            Verdict::Fail => Gate::fail(name, headline),
        };
        GateResult {
            gate,
            markdown: markdown.into(),
            annotations: Vec::new(),
            errors,
            warnings,
            masks: Vec::new(),
            data: Value::Null,
        }
    }
}

/// `shipgate check`'s arguments; each one left out is read from its
/// `INPUT_*` (the Action's inputs).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CheckArgs {
    /// Gates to run: smoke, secrets, freeze, release, policy, protection
    /// (default: the `gates` input).
    pub gates: Vec<String>,
    /// Repository config file (default .github/shipgate.yml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Environment for smoke and freeze (default: the deployment's, when a
    /// `deployment` event started the step; else default_environment).
    #[arg(long)]
    pub environment: Option<String>,
    /// URL for the smoke gate.
    #[arg(long)]
    pub url: Option<String>,
    /// error (default), warning or never.
    #[arg(long)]
    pub fail_on: Option<String>,
    /// secrets: tree (default), diff or history.
    #[arg(long)]
    pub scan: Option<String>,
    /// Send the verdict to this webhook URL (Slack, or `json:` for a JSON
    /// webhook); a secret, never printed.
    #[arg(long, value_name = "URL")]
    pub notify: Option<String>,
    /// When to notify: failure (default), warning or always.
    #[arg(long)]
    pub notify_on: Option<String>,
}

/// Reads the request: command-line values win over `INPUT_*`.
pub fn request(runner: &Runner, args: CheckArgs) -> Result<CheckRequest, CheckError> {
    let CheckArgs {
        gates,
        config,
        environment,
        url,
        fail_on,
        scan,
        notify,
        notify_on,
    } = args;
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
            let hint = crate::deploy::commands::did_you_mean(g, GATES.iter().copied())
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
    let notify_on = match notify_on.or_else(|| runner.input("notify-on")).as_deref() {
        None | Some("failure") => NotifyOn::Failure,
        Some("warning") => NotifyOn::Warning,
        Some("always") => NotifyOn::Always,
        Some(other) => {
            return Err(CheckError::Input(format!(
                "notify-on: expected failure, warning or always, got `{other}`"
            )))
        }
    };
    if let Err(e) = runner.bool_input("comment") {
        return Err(CheckError::Input(e.0));
    }
    Ok(CheckRequest {
        gates,
        config,
        // Started by a `deployment` event, the step checks that
        // deployment's environment unless told otherwise.
        environment: environment
            .or_else(|| runner.input("environment"))
            .or_else(|| {
                (runner.event_name() == Some("deployment"))
                    .then(|| runner.event()?.deployment.as_ref()?.environment.clone())
                    .flatten()
            }),
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
        notify: notify
            .filter(|u| !u.trim().is_empty())
            .or_else(|| runner.input("notify"))
            .map(secrecy::SecretString::from),
        notify_on,
    })
}

pub fn environment_name(req: &CheckRequest, config: &RepoConfig) -> Option<String> {
    req.environment
        .clone()
        .or_else(|| config.default_environment().map(str::to_string))
}

/// The GitHub client for `gate`, its API handle and the repository.
pub fn client(
    runner: &Runner,
    req: &CheckRequest,
    gate: &str,
) -> Result<(GitHub, Api, String), CheckError> {
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
        .unwrap_or(crate::config::settings::DEFAULT_GITHUB_API_URL);
    let api_url =
        url::Url::parse(api_url).map_err(|e| CheckError::Input(format!("GITHUB_API_URL: {e}")))?;
    let gh = GitHub::new(
        &crate::config::settings::GitHubAuth::Token(secrecy::SecretString::from(token)),
        &api_url,
        RetryPolicy::default(),
        crate::metrics::Metrics::new(),
    )
    .map_err(|e| CheckError::Input(format!("GitHub client: {e}")))?;
    let api = gh.api(None).map_err(|e| CheckError::Input(e.to_string()))?;
    Ok((gh, api, repo))
}

pub fn api_failure(gate: &str, e: crate::github::GitHubError) -> GateResult {
    GateResult::new(
        gate,
        Verdict::Fail,
        format!("GitHub API: {e}"),
        crate::render::policy::github_failure(&e.to_string()),
    )
}
