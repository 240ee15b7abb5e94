//! Branch protection policy: enforce `protection:` of `.github/shipgate.yml`
//! (restore drift, or only report it in `audit` mode), plan the effect of a
//! PR that edits the policy, and publish `shipgate/policy` on every PR.
//!
//! Reports go to one tracking issue, "shipgate policy", one comment per
//! event. Problems that need a human (missing admin rights, plan limits) are
//! reported once.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{Context, Handler, HandlerError};
use crate::config::repo::{ConfigSource, ProtectionMode, RepoConfig, CONFIG_PATH};
use crate::deploy::policy;
use crate::github::events::{PushEvent, RepositoryRef};
use crate::github::repos::{CheckRunOutput, NewCheckRun, ProtectionRead};
use crate::github::{Api, GitHubError};
use crate::store::{ClaimedDelivery, PolicyLogEntry};

pub const TRACKING_TITLE: &str = "shipgate policy";
pub const POLICY_CHECK: &str = "shipgate/policy";
pub const PLAN_CHECK: &str = "shipgate/policy-plan";
pub const PLAN_MARKER: &str = "<!-- shipgate:policy-plan -->";
/// Internal event: enforce the policy of one repository of an installation
/// (an installation's repositories are fanned out one delivery each, so a
/// large organisation is not one delivery against one time limit).
pub const ENFORCE_EVENT: &str = "shipgate_enforce";
/// Internal event: evaluate `shipgate/policy` for the open pull requests
/// whose head is a commit. Events about the commit (checks completing,
/// reviews, pushes) store one such job per epoch, so a burst of them costs
/// one evaluation, and the jobs run in their own order (`repo#policy`), never
/// ahead of or behind the repository's commands.
pub const POLICY_EVENT: &str = "shipgate_policy";

pub struct Protection;

#[async_trait]
impl Handler for Protection {
    fn name(&self) -> &'static str {
        "protection"
    }

    fn wants(&self, event: &str, action: Option<&str>) -> bool {
        match event {
            "installation" => action == Some("created"),
            "installation_repositories" => action == Some("added"),
            "push" => true,
            "branch_protection_rule" => matches!(action, Some("created" | "edited" | "deleted")),
            "repository" => action == Some("created"),
            "pull_request" => matches!(
                action,
                Some("opened" | "synchronize" | "reopened" | "ready_for_review" | "edited")
            ),
            "pull_request_review" => matches!(action, Some("submitted" | "dismissed")),
            "check_run" | "check_suite" => action == Some("completed"),
            ENFORCE_EVENT | POLICY_EVENT => true,
            _ => false,
        }
    }

    fn decode(&self, event: &str, payload: &str) -> Result<(), HandlerError> {
        decode(event, payload).map(drop)
    }

    async fn handle(&self, cx: &Context, d: &ClaimedDelivery) -> Result<(), HandlerError> {
        let Input {
            p,
            installation,
            sender,
            repo,
            default_branch,
            push,
        } = decode(&d.event, &d.payload)?;
        match d.event.as_str() {
            "installation" | "installation_repositories" => {
                let trigger = format!("{} {}", d.event, d.action.as_deref().unwrap_or(""));
                let now = crate::now_ms();
                let mut stored = false;
                let listed = if d.event == "installation" {
                    &p.repositories
                } else {
                    &p.repositories_added
                };
                for r in listed.iter().flatten() {
                    let name = r.full_name.as_str();
                    let job = json!({
                        "repository": { "full_name": name },
                        "installation": { "id": installation },
                        "sender": { "login": sender },
                        "trigger": trigger.trim(),
                    });
                    let new = crate::store::NewDelivery {
                        // Stable per delivery and repository: a retry stores nothing twice.
                        delivery_id: format!("enforce:{}:{name}", d.delivery_id),
                        event: ENFORCE_EVENT.into(),
                        action: None,
                        installation_id: installation,
                        repository: Some(name.to_string()),
                        payload: job.to_string().into(),
                    };
                    stored |= cx.store.insert_delivery(&new, now).await?
                        == crate::store::InsertOutcome::Inserted;
                }
                if stored {
                    cx.wake.notify_one();
                }
                Ok(())
            }
            ENFORCE_EVENT => {
                let api = cx.github.api(installation)?;
                let trigger = p.trigger.as_deref().unwrap_or("installation").to_string();
                enforce(
                    cx,
                    &api,
                    &repo.unwrap_or_default(),
                    None,
                    &trigger,
                    sender.as_deref(),
                )
                .await
            }
            "repository" => {
                let api = cx.github.api(installation)?;
                enforce(
                    cx,
                    &api,
                    &repo.unwrap_or_default(),
                    default_branch,
                    "repository created",
                    sender.as_deref(),
                )
                .await
            }
            "push" => {
                let Some(push) = push else {
                    return Ok(());
                };
                if push.deleted
                    || push.branch().is_none()
                    || push.branch() != push.repository.default_branch.as_deref()
                    || !push.touches(CONFIG_PATH)
                {
                    return Ok(());
                }
                let api = cx.github.api(installation)?;
                enforce(
                    cx,
                    &api,
                    &push.repository.full_name,
                    push.repository.default_branch.clone(),
                    "policy changed on the default branch",
                    sender.as_deref(),
                )
                .await
            }
            "branch_protection_rule" => {
                // shipgate's own writes come back as events: never react to them.
                let me = cx.github.bot_login().await?;
                if sender.as_deref() == Some(me.as_str()) {
                    return Ok(());
                }
                let api = cx.github.api(installation)?;
                let trigger = format!(
                    "branch protection rule {} ",
                    d.action.as_deref().unwrap_or("changed")
                );
                enforce(
                    cx,
                    &api,
                    &repo.unwrap_or_default(),
                    default_branch,
                    trigger.trim(),
                    sender.as_deref(),
                )
                .await
            }
            "pull_request" | "pull_request_review" => {
                let pr = p.pull_request.as_ref();
                if d.event == "pull_request"
                    && d.action.as_deref() == Some("edited")
                    && p.changes.as_ref().is_none_or(|c| c.base.is_none())
                {
                    return Ok(()); // only a base change matters
                }
                let (Some(number), Some(head), Some(repo)) = (
                    pr.and_then(|pr| pr.number),
                    pr.and_then(|pr| pr.head.as_ref()?.sha.as_deref()),
                    repo.as_deref(),
                ) else {
                    return Ok(());
                };
                let default_branch = default_branch.unwrap_or_else(|| "main".into());
                if d.event == "pull_request"
                    && matches!(
                        d.action.as_deref(),
                        Some("opened" | "synchronize" | "reopened")
                    )
                {
                    let api = cx.github.api(installation)?;
                    plan(cx, &api, repo, number, head, &default_branch).await?;
                }
                request_policy_check(cx, repo, head, installation, &default_branch).await
            }
            "check_run" | "check_suite" => {
                let check = if d.event == "check_run" {
                    p.check_run.as_ref()
                } else {
                    p.check_suite.as_ref()
                };
                // Our own check runs completing must not re-trigger us.
                if check
                    .and_then(|c| c.name.as_deref())
                    .is_some_and(|n| n.starts_with("shipgate/"))
                {
                    return Ok(());
                }
                let me = cx.github.bot_login().await?;
                if check
                    .and_then(|c| c.app.as_ref()?.slug.as_deref())
                    .is_some_and(|s| format!("{s}[bot]") == me)
                {
                    return Ok(());
                }
                let (Some(sha), Some(repo)) =
                    (check.and_then(|c| c.head_sha.as_deref()), repo.as_deref())
                else {
                    return Ok(());
                };
                let default_branch = default_branch.unwrap_or_else(|| "main".into());
                request_policy_check(cx, repo, sha, installation, &default_branch).await
            }
            POLICY_EVENT => {
                let (Some(sha), Some(repo)) = (p.sha.as_deref(), repo.as_deref()) else {
                    return Ok(());
                };
                // Events from now on store the next job: this one reads
                // GitHub after them, so it covers what came before.
                cx.store.bump_policy_epoch(repo, sha).await?;
                let api = cx.github.api(installation)?;
                let default_branch = default_branch.unwrap_or_else(|| "main".into());
                let policy = policy_config(cx, &api, repo, &default_branch).await?;
                report_broken(cx, &api, repo, &default_branch, &policy).await?;
                // Without a branch policy there is no check to write: the
                // pull requests are not even looked up.
                let no_policy = policy
                    .config
                    .as_ref()
                    .is_none_or(|c| c.protection.branches.is_empty());
                if no_policy && policy.broken.is_none() {
                    return Ok(());
                }
                for pr in api.pulls_for_commit(repo, sha).await? {
                    if pr.state != "open" || pr.head.sha != sha {
                        continue;
                    }
                    let base = pr
                        .base
                        .as_ref()
                        .map(|b| b.git_ref.clone())
                        .unwrap_or_else(|| default_branch.clone());
                    let author = pr
                        .user
                        .as_ref()
                        .map(|u| u.login.clone())
                        .unwrap_or_default();
                    policy_check(
                        cx,
                        &api,
                        &policy,
                        repo,
                        pr.number,
                        sha,
                        &base,
                        &author,
                        &default_branch,
                    )
                    .await?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The fields of a payload the policy handler reads, whichever the event:
/// only these are decoded (reading a whole 28 KB pull request payload into a
/// `Value` was a tenth of the worker's CPU time in a backlog drain).
#[derive(Deserialize, Default)]
struct Fields {
    #[serde(default)]
    installation: Option<NullableId>,
    #[serde(default)]
    sender: Option<NullableLogin>,
    #[serde(default)]
    repository: Option<RepositoryRef>,
    #[serde(default)]
    pull_request: Option<PullRequestFields>,
    #[serde(default)]
    changes: Option<ChangesFields>,
    #[serde(default)]
    check_run: Option<CheckFields>,
    #[serde(default)]
    check_suite: Option<CheckFields>,
    /// Internal jobs: the commit of a policy job, the trigger of an enforcement.
    #[serde(default)]
    sha: Option<String>,
    #[serde(default)]
    trigger: Option<String>,
    #[serde(default)]
    repositories: Option<Vec<RepositoryRef>>,
    #[serde(default)]
    repositories_added: Option<Vec<RepositoryRef>>,
}

/// `events::IdOnly`, but the jobs this handler stores for itself write
/// `"id": null` in token mode.
#[derive(Deserialize)]
struct NullableId {
    id: Option<i64>,
}

/// `events::User`, but an enforcement job writes `"login": null` when no
/// sender is known.
#[derive(Deserialize)]
struct NullableLogin {
    login: Option<String>,
}

#[derive(Deserialize)]
struct PullRequestFields {
    number: Option<i64>,
    head: Option<ShaField>,
}

#[derive(Deserialize)]
struct ShaField {
    sha: Option<String>,
}

#[derive(Deserialize)]
struct ChangesFields {
    /// Present (and not null) when the base branch changed.
    base: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct CheckFields {
    name: Option<String>,
    head_sha: Option<String>,
    app: Option<AppField>,
}

#[derive(Deserialize)]
struct AppField {
    slug: Option<String>,
}

/// A delivery as the policy handler reads it: the payload's fields, its
/// common ones, and for a push the typed event.
struct Input {
    p: Fields,
    installation: Option<i64>,
    sender: Option<String>,
    repo: Option<String>,
    default_branch: Option<String>,
    push: Option<PushEvent>,
}

fn decode(event: &str, payload: &str) -> Result<Input, HandlerError> {
    let mut p: Fields = serde_json::from_str(payload)?;
    let push = match event {
        "push" => Some(serde_json::from_str::<PushEvent>(payload)?),
        _ => None,
    };
    let (repo, default_branch) = match p.repository.take() {
        Some(r) => (Some(r.full_name), r.default_branch),
        None => (None, None),
    };
    Ok(Input {
        installation: p.installation.as_ref().and_then(|i| i.id),
        sender: p.sender.as_mut().and_then(|s| s.login.take()),
        repo,
        default_branch,
        push,
        p,
    })
}

/// The policy to act on: the default branch's config, or — while that file
/// does not load — the last one that did, with the error.
struct PolicyConfig {
    config: Option<std::sync::Arc<RepoConfig>>,
    /// The default branch's file does not load: its blob and the error.
    broken: Option<(String, crate::config::repo::ConfigError)>,
}

async fn policy_config(
    cx: &Context,
    api: &Api,
    repo: &str,
    default_branch: &str,
) -> Result<PolicyConfig, HandlerError> {
    let loaded = cx.config(api, repo, default_branch).await?;
    match (loaded.config, loaded.source) {
        (Ok(config), ConfigSource::File { sha }) => {
            let known = cx.store.valid_config(repo).await?;
            if known.as_ref().map(|(blob, _)| blob) != Some(&sha) {
                let json = serde_json::to_string(&*config).expect("a config serializes");
                cx.store
                    .save_valid_config(repo, &sha, &json, crate::now_ms())
                    .await?;
            }
            Ok(PolicyConfig {
                config: Some(config),
                broken: None,
            })
        }
        (Ok(config), ConfigSource::Missing) => Ok(PolicyConfig {
            config: Some(config),
            broken: None,
        }),
        (Err(e), source) => {
            let blob = match source {
                ConfigSource::File { sha } => sha,
                ConfigSource::Missing => String::new(),
            };
            let last = cx
                .store
                .valid_config(repo)
                .await?
                .and_then(|(_, json)| serde_json::from_str::<RepoConfig>(&json).ok())
                .map(std::sync::Arc::new);
            Ok(PolicyConfig {
                config: last,
                broken: Some((blob, e)),
            })
        }
    }
}

/// Says once per broken file, on the tracking issue, that the policy file
/// does not load and what shipgate enforces meanwhile.
async fn report_broken(
    cx: &Context,
    api: &Api,
    repo: &str,
    default_branch: &str,
    policy: &PolicyConfig,
) -> Result<(), HandlerError> {
    let Some((blob, e)) = &policy.broken else {
        return Ok(());
    };
    let key = format!("config-broken:{blob}");
    if cx.store.problem_reported(repo, &key).await? {
        return Ok(());
    }
    let meanwhile = if policy.config.is_some() {
        "shipgate keeps enforcing the last valid policy until it loads again, and `shipgate/policy` fails on every pull request meanwhile."
    } else {
        "No earlier valid policy is known; `shipgate/policy` fails on every pull request until the file loads."
    };
    let text = format!(
        "⛔ `{CONFIG_PATH}` on `{default_branch}` does not load: {}\n\n{meanwhile}",
        crate::text::inline_text(&e.to_string())
    );
    report(cx, api, repo, &text).await?;
    cx.store.record_problem(repo, &key, crate::now_ms()).await?;
    Ok(())
}

/// Brings every branch of the policy to it (or, in audit mode, reports).
async fn enforce(
    cx: &Context,
    api: &Api,
    repo: &str,
    default_branch: Option<String>,
    trigger: &str,
    actor: Option<&str>,
) -> Result<(), HandlerError> {
    let default_branch = match default_branch {
        Some(b) => b,
        None => api.get::<Value>(&format!("/repos/{repo}")).await?["default_branch"]
            .as_str()
            .unwrap_or("main")
            .to_string(),
    };
    let policy = policy_config(cx, api, repo, &default_branch).await?;
    report_broken(cx, api, repo, &default_branch, &policy).await?;
    let Some(config) = policy.config else {
        return Ok(());
    };
    if config.protection.branches.is_empty() {
        return Ok(());
    }
    let audit = config.protection.mode == ProtectionMode::Audit;
    let mut sections = Vec::new();
    // Problems reported by this report: recorded once it is posted.
    let mut reported = Vec::new();
    for (branch, desired) in &config.protection.branches {
        let live = match api.protection(repo, branch).await {
            Ok(ProtectionRead::Protected(l)) => Some(*l),
            Ok(ProtectionRead::Unprotected) => None,
            Ok(ProtectionRead::BranchMissing) => {
                let key = format!("missing-branch:{branch}");
                if !cx.store.problem_reported(repo, &key).await? {
                    sections.push(format!(
                        "⏭️ Branch `{}` does not exist yet; its policy applies once it is created.",
                        crate::text::inline_text(branch)
                    ));
                    reported.push(key);
                }
                continue;
            }
            Err(e) => return report_problem(cx, api, repo, e).await,
        };
        let diffs = policy::diff(desired, live.as_ref());
        if diffs.is_empty() {
            continue;
        }
        let table = diff_table(&diffs);
        let detail = serde_json::to_string(&diffs).expect("diffs serialize");
        let entry = |action| PolicyLogEntry {
            repository: repo,
            branch,
            trigger,
            actor,
            action,
            detail: &detail,
        };
        let now = crate::now_ms();
        if audit {
            cx.store.log_policy(&entry("audited"), now).await?;
            sections.push(format!("🔎 **`{branch}` differs from the policy** (audit mode: nothing changed)\n\n{table}"));
            continue;
        }
        match api
            .put_protection(repo, branch, &policy::put_body(desired, live.as_ref()))
            .await
        {
            Ok(()) => {
                cx.store.log_policy(&entry("restored"), now).await?;
                sections.push(format!(
                    "✅ **`{branch}` restored to the policy**\n\n{table}"
                ));
            }
            Err(e) if !e.is_transient() => {
                cx.store.log_policy(&entry("failed"), now).await?;
                return report_problem(cx, api, repo, e).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if sections.is_empty() {
        return Ok(());
    }
    let who = actor.map(|a| format!(" by @{a}")).unwrap_or_default();
    let body = format!(
        "#### Branch protection: {trigger}{who}\n\n{}",
        sections.join("\n\n")
    );
    report(cx, api, repo, &body).await?;
    let now = crate::now_ms();
    for key in reported {
        cx.store.record_problem(repo, &key, now).await?;
    }
    Ok(())
}

fn diff_table(diffs: &[policy::FieldDiff]) -> String {
    let mut t = String::from("| Setting | Found | Policy |\n|---|---|---|\n");
    for d in diffs {
        t.push_str(&format!("| `{}` | {} | {} |\n", d.field, d.live, d.desired));
    }
    t
}

/// Reports a GitHub refusal with its fix, once per kind of problem.
async fn report_problem(
    cx: &Context,
    api: &Api,
    repo: &str,
    e: GitHubError,
) -> Result<(), HandlerError> {
    let (key, text) = match &e {
        GitHubError::Forbidden(m) => (
            "forbidden",
            format!("⛔ shipgate cannot read or change branch protection: GitHub answered 403 ({m}). Grant the App the **Administration: read & write** repository permission (or use a token with admin rights) and the policy will be applied on the next change."),
        ),
        GitHubError::NotFound(m) | GitHubError::Unprocessable(m) if m.contains("Upgrade") || m.contains("plan") => (
            "plan",
            format!("⛔ Branch protection is not available for this repository on its current plan (GitHub: {m}). Make the repository public or upgrade the plan; meanwhile the `shipgate/policy` check enforces the policy on pull requests — make it a required check."),
        ),
        _ => return Err(e.into()),
    };
    if !cx.store.problem_reported(repo, key).await? {
        report(cx, api, repo, &text).await?;
        cx.store.record_problem(repo, key, crate::now_ms()).await?;
    }
    Ok(())
}

/// Comments on the tracking issue, creating it the first time (and again
/// when it was deleted).
async fn report(cx: &Context, api: &Api, repo: &str, body: &str) -> Result<(), HandlerError> {
    let issue = match cx.store.sticky(repo, 0, "policy-issue").await? {
        Some(n) => n,
        None => tracking_issue(cx, api, repo, false).await?,
    };
    match api.create_comment(repo, issue, body).await {
        Ok(_) => Ok(()),
        // Deleted (404) or gone (410): open a new one.
        Err(GitHubError::NotFound(_) | GitHubError::Status { status: 410, .. }) => {
            let issue = tracking_issue(cx, api, repo, true).await?;
            api.create_comment(repo, issue, body).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The open tracking issue shipgate wrote, or a new one. `fresh`: the one on
/// record is gone; do not adopt it again.
async fn tracking_issue(
    cx: &Context,
    api: &Api,
    repo: &str,
    fresh: bool,
) -> Result<i64, HandlerError> {
    let me = cx.github.bot_login().await?;
    let gone = if fresh {
        cx.store.sticky(repo, 0, "policy-issue").await?
    } else {
        None
    };
    let existing = api.open_issues(repo).await?.into_iter().find(|i| {
        i.title == TRACKING_TITLE
            && i.user.as_ref().is_some_and(|u| u.login == me)
            && Some(i.number) != gone
    });
    let number = match existing {
        Some(i) => i.number,
        None => {
            let text = "shipgate keeps branch protection as declared in `.github/shipgate.yml` (`protection:`). Every drift it finds and every change it makes is reported here, one comment per event.";
            api.create_issue(repo, TRACKING_TITLE, text).await?.number
        }
    };
    cx.store.set_sticky(repo, 0, "policy-issue", number).await?;
    Ok(number)
}

/// Stores the policy job for `sha` of the current epoch: a job already stored
/// and not yet started takes this event's change too (its id is the same).
async fn request_policy_check(
    cx: &Context,
    repo: &str,
    sha: &str,
    installation: Option<i64>,
    default_branch: &str,
) -> Result<(), HandlerError> {
    let epoch = cx.store.policy_epoch(repo, sha).await?;
    let delivery_id = format!("policy:{repo}:{sha}:{epoch}");
    // Nearly always the job of this epoch is stored already (a CI run's
    // events share it): a read finds that, and the writer that ingress
    // commits through is left alone. The insert below is what decides.
    if cx.store.delivery_status(&delivery_id).await?.is_some() {
        return Ok(());
    }
    let job = json!({
        "repository": { "full_name": repo, "default_branch": default_branch },
        "installation": { "id": installation },
        "sha": sha,
    });
    let new = crate::store::NewDelivery {
        delivery_id,
        event: POLICY_EVENT.into(),
        action: None,
        installation_id: installation,
        repository: Some(format!("{repo}#policy")),
        payload: job.to_string().into(),
    };
    // Due after the delay, so the events of a CI run finishing job after job
    // share one evaluation (a stored job that has not started takes them).
    let delay = cx.policy_delay;
    let now = crate::now_ms();
    let due = now + delay.as_millis() as i64;
    if cx.store.insert_delivery_due(&new, now, due).await? == crate::store::InsertOutcome::Inserted
    {
        let wake = cx.wake.clone();
        if delay.is_zero() {
            wake.notify_one();
        } else {
            // Idle workers also poll; this wakes one when the job is due.
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                wake.notify_one();
            });
        }
    }
    Ok(())
}

/// `shipgate/policy` on the PR's head: the base branch's policy, evaluated.
#[allow(clippy::too_many_arguments)]
async fn policy_check(
    cx: &Context,
    api: &Api,
    policy: &PolicyConfig,
    repo: &str,
    number: i64,
    head: &str,
    base: &str,
    author: &str,
    default_branch: &str,
) -> Result<(), HandlerError> {
    let rules = policy
        .config
        .as_ref()
        .and_then(|c| c.protection.branches.get(base));
    let gates = match rules {
        Some(rules) => {
            let facts = policy::PullFacts {
                number,
                head,
                base,
                author,
            };
            policy::evaluate_pull_request_live(api, repo, rules, &facts).await?
        }
        None if policy.broken.is_none() => return Ok(()),
        None => Vec::new(),
    };
    let unmet = policy::unmet(&gates);
    let (conclusion, title) = match &policy.broken {
        // Until the file loads again, no pull request meets the policy.
        Some((_, e)) => (
            "failure",
            format!("{CONFIG_PATH} on `{default_branch}` does not load: {e}"),
        ),
        None if unmet.is_empty() => ("success", format!("meets the `{base}` policy")),
        None => (
            "failure",
            format!("{} unmet: {}", unmet.len(), unmet.join("; ")),
        ),
    };
    let mut summary = crate::render::gates::gate_table("Condition", &gates);
    if let Some((_, e)) = &policy.broken {
        let basis = if rules.is_some() {
            "The conditions above are the last valid policy's."
        } else {
            "No earlier valid policy is known."
        };
        summary = format!(
            "❌ `{CONFIG_PATH}` on `{default_branch}` does not load: {}\n\n{basis}\n\n{summary}",
            crate::text::inline_text(&e.to_string())
        );
    }
    let title: String = title.chars().take(250).collect();
    let run = NewCheckRun {
        name: POLICY_CHECK,
        head_sha: head,
        status: "completed",
        conclusion,
        details_url: None,
        output: CheckRunOutput {
            title: &title,
            summary: &summary,
        },
    };
    // One check run per commit, updated in place, and only when it changes.
    let digest = hex::encode(Sha256::digest(
        format!("{conclusion}\n{title}\n{summary}").as_bytes(),
    ));
    match cx.store.posted_check_run(repo, head, POLICY_CHECK).await? {
        Some((_, said)) if said == digest => {}
        Some((id, _)) => {
            api.update_check_run(repo, id, &run).await?;
            cx.store
                .set_posted_check_run(repo, head, POLICY_CHECK, id, &digest)
                .await?;
        }
        None => {
            let id = api.create_check_run(repo, &run).await?;
            cx.store
                .set_posted_check_run(repo, head, POLICY_CHECK, id, &digest)
                .await?;
        }
    }
    Ok(())
}

/// For a PR that edits the config: validate it and plan the protection changes.
async fn plan(
    cx: &Context,
    api: &Api,
    repo: &str,
    number: i64,
    head: &str,
    default_branch: &str,
) -> Result<(), HandlerError> {
    let proposed = cx.config(api, repo, head).await?;
    let current = cx.config(api, repo, default_branch).await?;
    if proposed.source == current.source || proposed.source == ConfigSource::Missing {
        return Ok(()); // the PR does not change the config
    }
    // Only repositories that use (or start using) a protection policy get a plan.
    let has_policy = |c: &Result<std::sync::Arc<RepoConfig>, _>| {
        c.as_ref().is_ok_and(|c| !c.protection.branches.is_empty())
    };
    if !has_policy(&proposed.config) && !has_policy(&current.config) {
        return Ok(());
    }
    let (conclusion, title, text, annotations) = match &proposed.config {
        Err(e) => {
            let (line, column) = e.location.unwrap_or((1, 1));
            let annotations = vec![json!({
                "path": CONFIG_PATH, "start_line": line, "end_line": line, "start_column": column, "end_column": column,
                "annotation_level": "failure", "message": e.message,
            })];
            (
                "failure",
                format!("{CONFIG_PATH} is invalid"),
                format!("❌ `{CONFIG_PATH}` is invalid: {e}"),
                annotations,
            )
        }
        Ok(config) => {
            let mut sections = Vec::new();
            for (branch, desired) in &config.protection.branches {
                let live = match api.protection(repo, branch).await {
                    Ok(ProtectionRead::Protected(l)) => Some(*l),
                    Ok(ProtectionRead::Unprotected) => None,
                    Ok(ProtectionRead::BranchMissing) => {
                        sections.push(format!("⏭️ `{branch}` does not exist yet."));
                        continue;
                    }
                    Err(GitHubError::Forbidden(_)) => {
                        sections.push(format!("⛔ `{branch}`: shipgate cannot read its protection (needs Administration: read)."));
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                let diffs = policy::diff(desired, live.as_ref());
                if diffs.is_empty() {
                    sections.push(format!("✅ `{branch}`: no change."));
                } else {
                    sections.push(format!(
                        "✏️ `{branch}`: {} change(s) when merged\n\n{}",
                        diffs.len(),
                        diff_table(&diffs)
                    ));
                }
            }
            if sections.is_empty() {
                sections.push("No branch protection policy.".into());
            }
            let mode = if config.protection.mode == ProtectionMode::Audit {
                " (audit mode: drift is reported, not changed)"
            } else {
                ""
            };
            (
                "success",
                "policy plan".to_string(),
                format!(
                    "### Branch protection plan{mode}\n\n{}",
                    sections.join("\n\n")
                ),
                Vec::new(),
            )
        }
    };
    api.create_check_run_json(
        repo,
        &json!({
            "name": PLAN_CHECK, "head_sha": head, "status": "completed", "conclusion": conclusion,
            "output": { "title": title, "summary": text, "annotations": annotations },
        }),
    )
    .await?;
    // One sticky comment per PR, updated on every push.
    let body = format!("{text}\n\n{PLAN_MARKER}");
    match cx.store.sticky(repo, number, "policy-plan").await? {
        Some(id) => api.update_comment(repo, id, &body).await?,
        None => {
            let c = api.create_comment(repo, number, &body).await?;
            cx.store
                .set_sticky(repo, number, "policy-plan", c.id)
                .await?;
        }
    }
    Ok(())
}
