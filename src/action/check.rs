//! `shipgate check`: the gates, run from a terminal or as the GitHub Action.
//!
//! Each gate returns data (outcome, Markdown, annotations, counts); the
//! caller reports it through the runner contract (`action`) or as text.
//! The gates reuse the server's pieces: the smoke engine, the freeze
//! windows, the policy evaluator, the secret scanner.
//!
//! A gate does not obey what it judges. In a pull request the configuration
//! comes from the base commit (through git when the checkout has it, else
//! through the contents API), and the pull request's own config only adds
//! what makes gates stricter ([`judged_config`]). A release is judged by the
//! default branch's `release:` rules, not the tagged commit's. Text from a
//! config or a response reaches Markdown only through
//! [`crate::render::inline_text`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::action::{Annotation, Level, Runner};
use crate::config::repo::{ReleaseConfig, RepoConfig, CONFIG_PATH};
use crate::freeze::FreezeWindow;
use crate::github::content::FileRead;
use crate::github::repos::{ProtectionRead, MARKER_SEARCH_PAGES};
use crate::github::{Api, GitHub, RetryPolicy};
use crate::render::inline_text;
use crate::secrets::git;
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

/// Whether `path` stays inside the workspace once symlinks are followed.
/// A pull request's checkout can make any file in it a symlink to anywhere
/// on the runner (`/proc/self/environ`, `$GITHUB_ENV`). A path that does
/// not exist (yet) is judged by its nearest ancestor that does.
fn resolves_inside(ws: &Path, path: &Path) -> bool {
    let Ok(ws) = ws.canonicalize() else {
        return true;
    };
    let mut at = path;
    let resolved = loop {
        let here = if at.as_os_str().is_empty() {
            Path::new(".")
        } else {
            at
        };
        if std::fs::symlink_metadata(here).is_ok() {
            // A dangling symlink does not resolve: it leads nowhere safe.
            break here.canonicalize();
        }
        match at.parent() {
            Some(parent) => at = parent,
            None => return true,
        }
    };
    resolved.is_ok_and(|r| r.starts_with(&ws))
}

/// Whether `path`, as written, names something inside the workspace.
fn named_inside(ws: &Path, path: &Path) -> bool {
    match (std::path::absolute(ws), std::path::absolute(path)) {
        (Ok(ws), Ok(path)) => path.starts_with(ws),
        _ => false,
    }
}

/// Refuses to write `path` when it is named inside the workspace but
/// leads out of it through a symlink the checkout holds.
pub(crate) fn check_output_path(ws: &Path, path: &Path, what: &str) -> Result<(), CheckError> {
    if named_inside(ws, path) && !resolves_inside(ws, path) {
        return Err(CheckError::Input(format!(
            "{what}: {} leads out of the workspace through a symbolic link; not writing through it",
            path.display()
        )));
    }
    Ok(())
}

/// Loads the config at `path` (a missing file means defaults). A config
/// named inside the workspace must stay there: a symlink out of it is an
/// error that does not quote what it points at.
pub fn load_config(ws: &Path, path: &Path) -> Result<RepoConfig, CheckError> {
    if named_inside(ws, path) && !resolves_inside(ws, path) {
        return Err(CheckError::Config {
            path: path.display().to_string(),
            message: "a symbolic link out of the workspace; not read".into(),
        });
    }
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

/// The configuration the gates obey.
#[derive(Debug, Clone, Default)]
pub struct GateConfig {
    /// The checked-out config; in a pull request, its base's with what the
    /// pull request adds that only makes gates stricter ([`judged_config`]).
    pub config: RepoConfig,
    /// Freeze windows a pull request adds to environments its base does not
    /// name: they apply when the `freeze` gate runs for that environment.
    pub added_freezes: BTreeMap<String, Vec<FreezeWindow>>,
    /// The fingerprints in `.shipgateignore` (in a pull request, its base's).
    pub ignored: Vec<String>,
    /// In a pull request, the base commit the config was read at.
    pub base: Option<String>,
}

/// What a pull request is judged by: its base's configuration, made
/// stricter by the pull request's own. Freeze windows it adds apply as
/// well, and debug leftovers are reported when either asks for them.
/// Everything else (protection policies, `secrets.exclude`, the override
/// label, environments and their URLs and smoke checks) is the base's, so
/// a pull request cannot loosen the gates that judge it.
pub fn judged_config(
    base: RepoConfig,
    pr: &RepoConfig,
) -> (RepoConfig, BTreeMap<String, Vec<FreezeWindow>>) {
    let mut judged = base;
    let add = |to: &mut Vec<FreezeWindow>, from: &[FreezeWindow]| {
        for w in from {
            if !to.contains(w) {
                to.push(w.clone());
            }
        }
    };
    add(&mut judged.freeze.windows, &pr.freeze.windows);
    let mut added = BTreeMap::new();
    for (name, env) in &pr.environments {
        match judged.environments.get_mut(name) {
            Some(base_env) => add(&mut base_env.freeze, &env.freeze),
            None if !env.freeze.is_empty() => {
                added.insert(name.clone(), env.freeze.clone());
            }
            None => {}
        }
    }
    let on = |v: Option<bool>| v.unwrap_or(true);
    judged.secrets.debug_leftovers =
        Some(on(judged.secrets.debug_leftovers) || on(pr.secrets.debug_leftovers));
    (judged, added)
}

/// The base commit of the pull request the step runs for, if it does.
fn pull_request_base(runner: &Runner) -> Result<Option<String>, CheckError> {
    let Some(event) = runner.event() else {
        return Ok(None);
    };
    let pr = &event["pull_request"];
    if !pr.is_object() {
        return Ok(None);
    }
    match pr["base"]["sha"].as_str() {
        Some(sha) if git::is_commit_id(sha) => Ok(Some(sha.to_string())),
        _ => Err(CheckError::Input(
            "the pull_request event has no base.sha: cannot read the configuration the pull request is judged by".into(),
        )),
    }
}

/// `file`'s path from the root of the repository checked out at `ws`
/// (forward slashes), to read it at another commit.
fn repo_path(ws: &Path, file: &Path) -> Result<String, CheckError> {
    let outside = || {
        CheckError::Input(format!(
            "{} is outside the repository: it cannot be read at another commit",
            file.display()
        ))
    };
    let rel = if file.is_absolute() {
        let ws = if ws.is_absolute() {
            ws.to_path_buf()
        } else {
            std::env::current_dir().map_err(|_| outside())?.join(ws)
        };
        file.strip_prefix(&ws).map_err(|_| outside())?.to_path_buf()
    } else {
        file.to_path_buf()
    };
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            std::path::Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            std::path::Component::CurDir => {}
            _ => return Err(outside()),
        }
    }
    // The workspace may be a directory inside the repository.
    let prefix = git::text(ws, &["rev-parse", "--show-prefix"]).unwrap_or_default();
    Ok(format!("{prefix}{}", parts.join("/")))
}

/// Where files are read at a commit that is not the one checked out.
enum CommitReader {
    Git {
        ws: PathBuf,
        commit: String,
    },
    Api {
        api: Api,
        repo: String,
        commit: String,
    },
}

impl CommitReader {
    /// Through git when the checkout has `commit`, else through the
    /// contents API when there is a token; `what` says which commit it is.
    fn new(
        runner: &Runner,
        req: &CheckRequest,
        commit: &str,
        what: &str,
    ) -> Result<CommitReader, CheckError> {
        let ws = runner.workspace();
        if git::succeeds(&ws, &["cat-file", "-e", &format!("{commit}^{{commit}}")]).unwrap_or(false)
        {
            return Ok(CommitReader::Git {
                ws,
                commit: commit.to_string(),
            });
        }
        if req.token.is_none() {
            return Err(CheckError::Input(format!(
                "{what} {} is not in the checkout and there is no token to read it through the API: fetch it (`fetch-depth: 0`) or pass `token`",
                crate::render::short(commit)
            )));
        }
        let (_, api, repo) = client(runner, req, "config")?;
        Ok(CommitReader::Api {
            api,
            repo,
            commit: commit.to_string(),
        })
    }

    /// The text of `path` (from the repository's root), `None` if the
    /// commit has no such file.
    async fn read(&self, path: &str) -> Result<Option<String>, CheckError> {
        match self {
            CommitReader::Git { ws, commit } => {
                let spec = format!("{commit}:{path}");
                let failed = |e: git::GitError| CheckError::Input(format!("{path}: {e}"));
                if !git::succeeds(ws, &["cat-file", "-e", &spec]).map_err(failed)? {
                    return Ok(None);
                }
                let bytes = git::output(ws, &["cat-file", "blob", &spec]).map_err(failed)?;
                String::from_utf8(bytes).map(Some).map_err(|_| {
                    CheckError::Input(format!(
                        "{path} at {} is not UTF-8",
                        crate::render::short(commit)
                    ))
                })
            }
            CommitReader::Api { api, repo, commit } => {
                match api.get_file(repo, path, commit, None).await {
                    Ok(FileRead::Found(f)) => Ok(Some(f.text)),
                    Ok(FileRead::Missing) => Ok(None),
                    Ok(FileRead::NotModified) => Err(CheckError::Input(format!(
                        "{path}: GitHub answered 304 to a request without an etag"
                    ))),
                    Err(e) => Err(CheckError::Input(format!(
                        "cannot read {path} at {}: {e}",
                        crate::render::short(commit)
                    ))),
                }
            }
        }
    }
}

/// The configuration the gates obey (see [`GateConfig`]).
pub async fn gate_config(
    runner: &Runner,
    req: &CheckRequest,
    checked_out: RepoConfig,
) -> Result<GateConfig, CheckError> {
    let ws = runner.workspace();
    let wants_ignore = req.gates.iter().any(|g| g == "secrets");
    let Some(base) = pull_request_base(runner)? else {
        return Ok(GateConfig {
            config: checked_out,
            ignored: if wants_ignore {
                crate::secrets::load_ignore_file(&ws)
            } else {
                Vec::new()
            },
            ..GateConfig::default()
        });
    };
    let reader = CommitReader::new(runner, req, &base, "the pull request's base commit")?;
    let config_path = repo_path(&ws, &req.config)?;
    let base_config = match reader.read(&config_path).await? {
        Some(text) => RepoConfig::parse(&text).map_err(|e| CheckError::Config {
            path: format!(
                "{config_path} at the base commit {}",
                crate::render::short(&base)
            ),
            message: e.to_string(),
        })?,
        None => RepoConfig::default(),
    };
    let ignored = if wants_ignore {
        let path = repo_path(&ws, Path::new(".shipgateignore"))?;
        reader
            .read(&path)
            .await?
            .map(|text| crate::secrets::parse_ignore_file(&text))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let (config, added_freezes) = judged_config(base_config, &checked_out);
    Ok(GateConfig {
        config,
        added_freezes,
        ignored,
        base: Some(base),
    })
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

/// Runs the requested gates, in order, with the configuration they obey.
pub async fn run(
    runner: &Runner,
    req: &CheckRequest,
) -> Result<(GateConfig, Vec<GateResult>), CheckError> {
    let checked_out = load_config(&runner.workspace(), &req.config)?;
    let gc = gate_config(runner, req, checked_out).await?;
    let config = &gc.config;
    let mut out = Vec::new();
    for gate in &req.gates {
        let r = match gate.as_str() {
            "smoke" => smoke_gate(runner, req, config).await?,
            "freeze" => freeze_gate(runner, req, &gc).await?,
            "policy" => policy_gate(runner, req, config).await?,
            "protection" => protection_gate(runner, req, config).await?,
            "release" => release_gate(runner, req).await?,
            "secrets" => crate::action::secrets_gate::run(runner, req, &gc)?,
            _ => unreachable!("gates are checked in `request`"),
        };
        out.push(r);
    }
    Ok((gc, out))
}

fn environment_name(req: &CheckRequest, config: &RepoConfig) -> Option<String> {
    req.environment
        .clone()
        .or_else(|| config.default_environment().map(str::to_string))
}

/// The GitHub client for `gate`, its API handle and the repository.
fn client(
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

fn api_failure(gate: &str, e: crate::github::GitHubError) -> GateResult {
    GateResult::new(
        gate,
        Outcome::Fail,
        format!("GitHub API: {e}"),
        format!("❌ GitHub answered: {}\n", inline_text(&e.to_string())),
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
    // Check names come from the config, reasons quote responses.
    let mut shown = report.clone();
    shown.url = inline_text(&shown.url);
    for c in &mut shown.results {
        c.name = inline_text(&c.name);
        c.reason = inline_text(&c.reason);
    }
    let mut r = GateResult::new(
        "smoke",
        outcome,
        report.summary(),
        crate::render::smoke_markdown(&shown),
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
            let (_, api, repo) = client(runner, req, "smoke")?;
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

/// The pull request's issue events are read this many pages of 100 deep
/// to find who added the override label.
const LABEL_EVENT_PAGES: u32 = 50;

/// Who added the override label, if it counts: the latest `labeled` event
/// for it names the actor, whose role must be maintain or admin. `Err`
/// says why it does not count.
async fn override_added_by(
    runner: &Runner,
    req: &CheckRequest,
    number: i64,
    label: &str,
) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct IssueEvent {
        event: String,
        #[serde(default)]
        actor: Option<crate::github::repos::UserRef>,
        #[serde(default)]
        label: Option<Label>,
    }
    #[derive(serde::Deserialize)]
    struct Label {
        name: String,
    }
    if req.token.is_none() {
        return Err("there is no token to check who added it".into());
    }
    let (_, api, repo) = client(runner, req, "freeze").map_err(|e| e.to_string())?;
    let events: Vec<IssueEvent> = api
        .all_pages(
            &format!("/repos/{repo}/issues/{number}/events"),
            LABEL_EVENT_PAGES,
        )
        .await
        .map_err(|e| format!("GitHub did not say who added it ({e})"))?;
    if events.len() >= 100 * LABEL_EVENT_PAGES as usize {
        return Err("the pull request has too many events to find who added it".into());
    }
    let actor = events
        .iter()
        .rfind(|e| e.event == "labeled" && e.label.as_ref().is_some_and(|l| l.name == label))
        .and_then(|e| e.actor.as_ref().map(|a| a.login.clone()));
    let actor = actor.ok_or("GitHub lists no `labeled` event for it")?;
    let permission = api
        .permission(&repo, &actor)
        .await
        .map_err(|e| format!("the role of {actor}, who added it, is unknown ({e})"))?;
    let role = permission
        .role_name
        .unwrap_or_else(|| permission.permission.clone());
    if matches!(role.as_str(), "maintain" | "admin") {
        Ok(actor)
    } else {
        Err(format!(
            "added by {actor}, whose role ({role}) is below maintain"
        ))
    }
}

async fn freeze_gate(
    runner: &Runner,
    req: &CheckRequest,
    gc: &GateConfig,
) -> Result<GateResult, CheckError> {
    let config = &gc.config;
    let env_name = environment_name(req, config);
    let env = env_name.as_ref().and_then(|e| config.environments.get(e));
    let mut windows: Vec<_> = match env {
        Some(e) => config.freeze_windows(e).cloned().collect(),
        None => config.freeze.windows.clone(),
    };
    if let Some(added) = env_name.as_ref().and_then(|e| gc.added_freezes.get(e)) {
        windows.extend(added.iter().cloned());
    }
    let now = chrono::Utc::now();
    let label = config
        .freeze
        .override_label
        .clone()
        .unwrap_or_else(|| "freeze-override".into());
    let pull_request = runner
        .event()
        .map(|e| e["pull_request"].clone())
        .filter(|pr| pr.is_object());
    let labelled = pull_request.as_ref().is_some_and(|pr| {
        pr["labels"].as_array().is_some_and(|labels| {
            labels
                .iter()
                .any(|l| l["name"].as_str() == Some(label.as_str()))
        })
    });
    let what = env_name
        .as_deref()
        .map(|e| format!("`{}`", inline_text(e)))
        .unwrap_or_else(|| "all environments".into());
    let shown_label = inline_text(&label);
    let r = match crate::freeze::active_freeze(&windows, now) {
        Some(f) => {
            let until = f.ends_at.format("%Y-%m-%d %H:%M UTC");
            let description = inline_text(&f.description);
            let overridden = if labelled {
                let number = pull_request
                    .as_ref()
                    .and_then(|pr| pr["number"].as_i64())
                    .unwrap_or_default();
                Some(override_added_by(runner, req, number, &label).await)
            } else {
                None
            };
            match overridden {
                Some(Ok(by)) => GateResult::new(
                    "freeze",
                    Outcome::Warn,
                    format!(
                        "{} — overridden by the `{label}` label (added by {by})",
                        f.description
                    ),
                    format!(
                        "⚠️ Deploy freeze on {what}: {description} until {until}, overridden by the `{shown_label}` label (added by {}).\n",
                        inline_text(&by)
                    ),
                ),
                Some(Err(why)) => GateResult::new(
                    "freeze",
                    Outcome::Fail,
                    format!(
                        "{} until {until}; the `{label}` label does not count: {why}",
                        f.description
                    ),
                    format!(
                        "❌ Deploy freeze on {what}: {description} until {until}. The `{shown_label}` label does not count: {}. Only a maintainer or an admin can override a freeze.\n",
                        inline_text(&why)
                    ),
                ),
                None => GateResult::new(
                    "freeze",
                    Outcome::Fail,
                    format!("{} until {until}", f.description),
                    format!(
                        "❌ Deploy freeze on {what}: {description} until {until}. A maintainer or an admin can add the `{shown_label}` label to override.\n"
                    ),
                ),
            }
        }
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
                format!("✅ {what}: {}\n", inline_text(&text)),
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
            format!(
                "✅ policy: `{}` has no protection policy.\n",
                inline_text(&base)
            ),
        ));
    };
    let (_, api, repo) = client(runner, req, "policy")?;
    let number = pr["number"].as_i64().unwrap_or_default();
    let head = pr["head"]["sha"].as_str().unwrap_or_default().to_string();
    let author = pr["user"]["login"].as_str().unwrap_or_default().to_string();
    let facts = crate::deploy::policy::PullFacts {
        number,
        head: &head,
        base: &base,
        author: &author,
    };
    let gates =
        match crate::deploy::policy::evaluate_pull_request_live(&api, &repo, rules, &facts).await {
            Ok(g) => g,
            Err(e) => return Ok(api_failure("policy", e)),
        };
    let unmet = crate::deploy::policy::unmet(&gates);
    // Details name people (`by @bob`) and checks from the config.
    let shown: Vec<crate::deploy::gates::Gate> = gates
        .iter()
        .map(|g| crate::deploy::gates::Gate {
            name: inline_text(&g.name),
            detail: inline_text(&g.detail),
            ..g.clone()
        })
        .collect();
    let md = crate::deploy::policy::conditions_table(&shown);
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
    let (_, api, repo) = client(runner, req, "protection")?;
    let mut md = String::new();
    let mut drifted = 0;
    for (branch, desired) in &config.protection.branches {
        let shown = inline_text(branch);
        let live = match api.protection(&repo, branch).await {
            Ok(ProtectionRead::Protected(l)) => Some(*l),
            Ok(ProtectionRead::Unprotected) => None,
            Ok(ProtectionRead::BranchMissing) => {
                md.push_str(&format!("⏭️ `{shown}` does not exist.\n\n"));
                continue;
            }
            Err(crate::github::GitHubError::Forbidden(m)) => {
                return Err(CheckError::Input(format!("the `protection` gate needs a token that can read branch protection (admin): {m}")))
            }
            Err(e) => return Ok(api_failure("protection", e)),
        };
        let diffs = crate::deploy::policy::diff(desired, live.as_ref());
        if diffs.is_empty() {
            md.push_str(&format!("✅ `{shown}` matches the policy.\n\n"));
        } else {
            drifted += 1;
            md.push_str(&format!("❌ `{shown}` differs from the policy:\n\n| Setting | Found | Policy |\n|---|---|---|\n"));
            for d in &diffs {
                md.push_str(&format!(
                    "| `{}` | {} | {} |\n",
                    inline_text(&d.field),
                    inline_text(&d.live),
                    inline_text(&d.desired)
                ));
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

const SEMVER_TAG: &str =
    r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$";

/// A branch name as GitHub reports it, safe to put after `refs/heads/`
/// and before `:path` in a git revision.
fn plain_branch_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && !name.contains("..")
        && !name.chars().any(|c| {
            c.is_control()
                || c.is_whitespace()
                || matches!(c, ':' | '^' | '~' | '?' | '*' | '[' | '\\')
        })
}

/// The default branch's `release:` rules, which judge a tag wherever it
/// points: the tagged commit's own config is what the tag's author wrote.
/// Read at `refs/remotes/origin/<branch>` or `refs/heads/<branch>` when the
/// checkout has one, else through the API (the branch's commit, then the
/// file at it). Also returns the refs found, for the ancestry check.
async fn default_branch_release(
    runner: &Runner,
    req: &CheckRequest,
    branch: &str,
) -> Result<(ReleaseConfig, Vec<String>), CheckError> {
    let ws = runner.workspace();
    let refs: Vec<String> = [
        format!("refs/remotes/origin/{branch}"),
        format!("refs/heads/{branch}"),
    ]
    .into_iter()
    .filter(|r| {
        git::succeeds(
            &ws,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{r}^{{commit}}"),
            ],
        )
        .unwrap_or(false)
    })
    .collect();
    let commit = match refs.first() {
        Some(r) => git::text(&ws, &["rev-parse", &format!("{r}^{{commit}}")])
            .map_err(|e| CheckError::Input(e.to_string()))?,
        None if req.token.is_some() => {
            // By its full ref name: `commits/main` would take a tag named `main`.
            let (_, api, repo) = client(runner, req, "release")?;
            let missing = || {
                CheckError::Input(format!(
                    "release: cannot find the default branch `{branch}` of {repo}"
                ))
            };
            api.git_ref(&repo, &format!("heads/{branch}"))
                .await
                .map_err(|e| {
                    CheckError::Input(format!(
                        "release: cannot find the default branch `{branch}`: {e}"
                    ))
                })?
                .ok_or_else(missing)?
        }
        None => {
            return Err(CheckError::Input(format!(
                "release: the release rules are read from the default branch `{branch}`, which is not in the checkout (`fetch-depth: 0`), and there is no token to read it through the API"
            )))
        }
    };
    if !git::is_commit_id(&commit) {
        return Err(CheckError::Input(format!(
            "release: `{branch}` resolved to `{commit}`, not a commit id"
        )));
    }
    let reader = CommitReader::new(runner, req, &commit, "the default branch's commit")?;
    let path = repo_path(&ws, &req.config)?;
    let release = match reader.read(&path).await? {
        Some(text) => {
            RepoConfig::parse(&text)
                .map_err(|e| CheckError::Config {
                    path: format!("{path} on `{branch}`"),
                    message: e.to_string(),
                })?
                .release
        }
        None => ReleaseConfig::default(),
    };
    Ok((release, refs))
}

async fn release_gate(runner: &Runner, req: &CheckRequest) -> Result<GateResult, CheckError> {
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
    let default_branch = runner
        .event()
        .and_then(|e| {
            e["repository"]["default_branch"]
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "main".into());
    if !plain_branch_name(&default_branch) {
        return Err(CheckError::Input(format!(
            "release: the event's default branch `{}` is not a branch name shipgate can use",
            default_branch.escape_debug()
        )));
    }
    let (release, default_refs) = default_branch_release(runner, req, &default_branch).await?;
    let pattern = release
        .tag_pattern
        .clone()
        .unwrap_or_else(|| SEMVER_TAG.into());
    // The whole tag must match: `v1` is not a pattern for `xv1y`.
    let re = regex::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| CheckError::Input(format!("release.tag_pattern: {e}")))?;
    let tag_ref = format!("refs/tags/{tag}");
    let tag_commit = format!("{tag_ref}^{{commit}}");
    let mut problems = Vec::new();
    let mut passed = Vec::new();
    if re.is_match(&tag) {
        passed.push(format!("`{tag}` matches `{pattern}`"));
    } else {
        problems.push(format!("`{tag}` does not match `{pattern}`"));
    }
    match git::text(&ws, &["cat-file", "-t", &tag_ref]) {
        Ok(kind) if kind == "tag" => passed.push("the tag is annotated".into()),
        Ok(_) => problems.push("the tag is lightweight; create it with `git tag -a`".into()),
        Err(e) => problems.push(format!("cannot read the tag: {e}")),
    }
    if release.require_signed {
        match git::output(&ws, &["verify-tag", &tag_ref]) {
            Ok(_) => passed.push("the signature verifies".into()),
            Err(e) => problems.push(format!("the signature does not verify: {e}")),
        }
    }
    // Fully qualified refs: a tag named `main` or `origin/main` would
    // shadow the branch of that short name.
    let on_default = default_refs.iter().any(|b| {
        git::succeeds(&ws, &["merge-base", "--is-ancestor", &tag_commit, b]).unwrap_or(false)
    });
    if on_default {
        passed.push(format!("the tagged commit is on `{default_branch}`"));
    } else {
        problems.push(format!(
            "the tagged commit is not on `{default_branch}` (fetch it with `fetch-depth: 0`)"
        ));
    }
    let changelog = release
        .changelog
        .clone()
        .unwrap_or_else(|| "CHANGELOG.md".into());
    let version = tag.trim_start_matches('v');
    // The tagged commit's changelog, read through git: the path stays inside the repository.
    match git::output(
        &ws,
        &["cat-file", "blob", &format!("{tag_commit}:./{changelog}")],
    ) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
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
        md.push_str(&format!("- ✅ {}\n", inline_text(p)));
    }
    for p in &problems {
        md.push_str(&format!("- ❌ {}\n", inline_text(p)));
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
pub fn report(runner: &Runner, req: &CheckRequest, gc: &GateConfig, results: &[GateResult]) -> u8 {
    use crate::action;
    let (label, code) = verdict(results, req.fail_on);
    let actions = runner.in_actions();
    if actions {
        for r in results {
            for m in &r.masks {
                crate::outln!("{}", action::mask(m));
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
        // Headlines can quote configs and responses: one line, never a command.
        if actions {
            crate::outln!("{}", action::untrusted(&action::escape_log(&line)));
        } else {
            crate::outln!("{line}");
        }
        if actions {
            for a in &r.annotations {
                crate::outln!("{}", a.command());
            }
        }
    }
    let errors: usize = results.iter().map(|r| r.errors).sum();
    let warnings: usize = results.iter().map(|r| r.warnings).sum();
    crate::outln!(
        "{}: {errors} error(s), {warnings} warning(s)",
        label.to_ascii_uppercase()
    );

    let report_path = runner
        .var("RUNNER_TEMP")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| runner.workspace())
        .join("shipgate-report.json");
    let json = serde_json::json!({ "result": label, "errors": errors, "warnings": warnings, "gates": results });
    let wrote_report = check_output_path(&runner.workspace(), &report_path, "report").is_ok()
        && std::fs::write(
            &report_path,
            serde_json::to_vec_pretty(&json).expect("report serializes"),
        )
        .is_ok();
    if actions {
        let mut summary = format!("## shipgate: {label}\n\n");
        if let Some(base) = &gc.base {
            summary.push_str(&format!(
                "_Configuration as of the base commit `{}`; this pull request's changes to it count only where they make a gate stricter._\n\n",
                crate::render::short(base)
            ));
        }
        for r in results {
            summary.push_str(&format!(
                "### {} {} — {}\n\n{}\n",
                r.outcome.icon(),
                r.gate,
                inline_text(&r.headline),
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

/// Who a workflow's `GITHUB_TOKEN` posts as; it cannot read `GET /user`.
const ACTIONS_BOT: &str = "github-actions[bot]";

/// `comment: true`: one sticky PR comment with the results, found again by
/// its marker among the comments the token's own login wrote (another bot
/// that echoes user text could plant the marker), on every page.
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
    let (gh, api, repo) = client(runner, req, "comment")?;
    let (label, _) = verdict(results, req.fail_on);
    let mut body = format!("### shipgate check: {label}\n\n| Gate | | |\n|---|---|---|\n");
    for r in results {
        body.push_str(&format!(
            "| {} | {} | {} |\n",
            r.gate,
            r.outcome.icon(),
            inline_text(&r.headline)
        ));
    }
    body.push('\n');
    body.push_str(COMMENT_MARKER);
    let login = gh
        .bot_login()
        .await
        .unwrap_or_else(|_| ACTIONS_BOT.to_string());
    let existing = api
        .list_comments(&repo, number, MARKER_SEARCH_PAGES)
        .await
        .map_err(|e| CheckError::Input(format!("comment: {e}")))?;
    let mine = existing.iter().find(|c| {
        c.user
            .as_ref()
            .is_some_and(|u| u.login.eq_ignore_ascii_case(&login))
            && c.body
                .as_deref()
                .is_some_and(|b| b.contains(COMMENT_MARKER))
    });
    let done = match mine {
        Some(c) => api.update_comment(&repo, c.id, &body).await,
        None => api.create_comment(&repo, number, &body).await.map(|_| ()),
    };
    done.map_err(|e| CheckError::Input(format!("comment: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> RepoConfig {
        RepoConfig::parse(yaml).unwrap()
    }

    #[test]
    fn a_pull_request_only_makes_its_gates_stricter() {
        let base = config(
            "environments:\n  production:\n    freeze:\n      - { days: [fri] }\nprotection:\n  branches:\n    main: { required_approvals: 2 }\nsecrets:\n  exclude: [vendor/]\n  debug_leftovers: false\nfreeze:\n  override_label: ok-to-ship\n",
        );
        let pr = config(
            "environments:\n  production:\n    freeze:\n      - { days: [fri] }\n      - { days: [mon] }\n  preview:\n    freeze:\n      - { days: [tue] }\nsecrets:\n  exclude: [leak.txt]\n  debug_leftovers: true\nfreeze:\n  override_label: anything\n  windows:\n    - { days: [sun] }\n",
        );
        let (judged, added) = judged_config(base.clone(), &pr);
        assert_eq!(judged.protection, base.protection, "the PR deleted it");
        assert_eq!(judged.secrets.exclude, ["vendor/"]);
        assert_eq!(judged.secrets.debug_leftovers, Some(true));
        assert_eq!(judged.freeze.override_label.as_deref(), Some("ok-to-ship"));
        assert_eq!(judged.freeze.windows, pr.freeze.windows);
        assert_eq!(
            judged.environments["production"].freeze.len(),
            2,
            "fri once, mon added"
        );
        assert!(!judged.environments.contains_key("preview"));
        assert_eq!(added["preview"], pr.environments["preview"].freeze);
        assert_eq!(judged.default_environment(), base.default_environment());
    }

    #[test]
    fn repo_paths_stay_inside_the_repository() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        assert_eq!(
            repo_path(ws, &ws.join(".github/shipgate.yml")).unwrap(),
            ".github/shipgate.yml"
        );
        assert_eq!(
            repo_path(ws, Path::new("./deploy/shipgate.yml")).unwrap(),
            "deploy/shipgate.yml"
        );
        for outside in [Path::new("../x.yml"), Path::new("/etc/passwd")] {
            assert!(repo_path(ws, outside).is_err(), "{}", outside.display());
        }
    }

    #[cfg(unix)]
    #[test]
    fn paths_that_lead_out_of_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(ws.join("sub")).unwrap();
        std::fs::write(dir.path().join("outside"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside"), ws.join("link")).unwrap();
        std::os::unix::fs::symlink(dir.path(), ws.join("dirlink")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone"), ws.join("dangling")).unwrap();
        for inside in ["sub", "sub/new.sarif", "not/there/yet.yml", "x.sarif"] {
            assert!(resolves_inside(&ws, &ws.join(inside)), "{inside}");
        }
        for out in ["link", "dirlink/new.sarif", "dangling"] {
            assert!(!resolves_inside(&ws, &ws.join(out)), "{out}");
            assert!(check_output_path(&ws, &ws.join(out), "sarif").is_err());
        }
        // Named outside on purpose (a terminal's `--config /etc/x.yml`): not ours to refuse.
        assert!(check_output_path(&ws, &dir.path().join("outside"), "x").is_ok());
    }

    #[test]
    fn branch_names_for_revisions() {
        for ok in ["main", "release/1.x", "trunk-2"] {
            assert!(plain_branch_name(ok), "{ok}");
        }
        for bad in ["", "-x", "a:b", "a..b", "a b", "a\nb", "x^{commit}"] {
            assert!(!plain_branch_name(bad), "{bad:?}");
        }
    }
}
