//! The deploy gates: each one a pure function of facts already gathered,
//! with unit tests. `crate::deploy` gathers the facts once and picks the
//! gates for `/deploy`, `/rollback`, automatic rollbacks, the deployment
//! protection rule; the `shipgate/policy` check and the Action's `policy`
//! gate count approvals and checks with the same functions.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::config::repo::{Deployers, EnvironmentConfig, RepoConfig, RequiredCheck, Role};
use crate::freeze::active_freeze;
use crate::github::content::{CommitStatus, StatusState};
use crate::github::repos::{CheckRun, Review};
use crate::store::{Lock, LockKind};

pub mod soak;
mod verdict;

pub use soak::{soak_gate, SoakFacts, SOAK};
pub use verdict::{Gate, Verdict};

pub const PERMISSION: &str = "Permission";
pub const PULL_REQUEST: &str = "Pull request";
pub const BASE_BRANCH: &str = "Base branch";
pub const APPROVALS: &str = "Approvals";
pub const CHECKS: &str = "Checks";
pub const FREEZE: &str = "Freeze";
pub const LOCK: &str = "Lock";
pub const FORK: &str = "Fork";
pub const REF: &str = "Ref";
pub const TARGET: &str = "Target";

/// The actor's standing, resolved from GitHub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub login: String,
    /// `None`: no access to the repository (or a custom role with none).
    pub role: Option<Role>,
    /// For a list of deployers: whether the actor is named or in a named team.
    pub listed: bool,
}

impl Actor {
    pub fn at_least(&self, role: Role) -> bool {
        self.role.is_some_and(|r| r >= role)
    }
}

/// Reads GitHub's permission answer: `role_name` when it is a standard role
/// (it tells maintain and triage apart), else the legacy `permission`.
pub fn role_from_permission(role_name: Option<&str>, permission: &str) -> Option<Role> {
    let parse = |s: &str| match s {
        "admin" => Some(Role::Admin),
        "maintain" => Some(Role::Maintain),
        "write" | "push" => Some(Role::Write),
        "triage" => Some(Role::Triage),
        "read" | "pull" => Some(Role::Read),
        _ => None,
    };
    role_name.and_then(parse).or_else(|| parse(permission))
}

pub fn permission_gate(env_name: &str, env: &EnvironmentConfig, actor: &Actor) -> Gate {
    let role = actor.role.map(Role::as_str).unwrap_or("no access");
    match env.deployers() {
        Deployers::Role(min) => {
            if actor.at_least(min) {
                Gate::pass(
                    PERMISSION,
                    format!("@{} has `{role}` (needs `{}`)", actor.login, min.as_str()),
                )
            } else {
                Gate::fail(
                    PERMISSION,
                    format!(
                        "@{} has `{role}`; deploying to `{env_name}` needs `{}` or higher",
                        actor.login,
                        min.as_str()
                    ),
                )
            }
        }
        Deployers::List(list) => {
            if actor.listed {
                Gate::pass(
                    PERMISSION,
                    format!("@{} is a deployer of `{env_name}`", actor.login),
                )
            } else {
                Gate::fail(
                    PERMISSION,
                    format!(
                        "@{} is not among the deployers of `{env_name}`: {}",
                        actor.login,
                        list.join(", ")
                    ),
                )
            }
        }
    }
}

/// Facts about the pull request a deploy comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullFacts {
    pub number: i64,
    pub open: bool,
    pub draft: bool,
    pub base_ref: String,
    pub author: String,
    /// The PR's head commit now.
    pub head_sha: String,
    /// The head lives in another repository (or in one since deleted).
    pub fork: bool,
}

/// A fork's code runs with the repository's deploy secrets: only where the
/// environment says so.
pub fn fork_gate(env_name: &str, env: &EnvironmentConfig, pr: &PullFacts) -> Option<Gate> {
    if !pr.fork {
        return None;
    }
    Some(if env.allow_forks {
        Gate::pass(
            FORK,
            format!(
                "#{} comes from a fork; `{env_name}` allows forks",
                pr.number
            ),
        )
    } else {
        Gate::fail(
            FORK,
            format!(
                "#{} comes from a fork, and `{env_name}` does not deploy forks (`allow_forks: true` allows it)",
                pr.number
            ),
        )
    })
}

pub fn pull_request_gate(pr: &PullFacts) -> Gate {
    if !pr.open {
        Gate::fail(PULL_REQUEST, format!("#{} is closed", pr.number))
    } else if pr.draft {
        Gate::fail(PULL_REQUEST, format!("#{} is a draft", pr.number))
    } else {
        Gate::pass(PULL_REQUEST, format!("#{} is open", pr.number))
    }
}

pub fn base_branch_gate(env_name: &str, env: &EnvironmentConfig, pr: &PullFacts) -> Option<Gate> {
    if env.base_branches.is_empty() {
        return None;
    }
    let allowed = env.base_branches.iter().any(|b| b == &pr.base_ref);
    let list = env
        .base_branches
        .iter()
        .map(|b| format!("`{b}`"))
        .collect::<Vec<_>>()
        .join(", ");
    Some(if allowed {
        Gate::pass(BASE_BRANCH, format!("targets `{}`", pr.base_ref))
    } else {
        Gate::fail(
            BASE_BRANCH,
            format!(
                "targets `{}`; `{env_name}` deploys only from PRs into {list}",
                pr.base_ref
            ),
        )
    })
}

/// A reviewer's latest review that decides something: APPROVED or
/// CHANGES_REQUESTED (DISMISSED clears what came before; COMMENTED changes
/// nothing). The pull request's author never counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisiveReview {
    pub login: String,
    /// `APPROVED` or `CHANGES_REQUESTED`.
    pub state: String,
    /// The commit the review was made on.
    pub commit_id: Option<String>,
}

/// The latest decisive review per reviewer, in GitHub's (chronological) order.
pub fn decisive_reviews(reviews: &[Review], author: &str) -> Vec<DecisiveReview> {
    let mut latest: Vec<DecisiveReview> = Vec::new();
    for r in reviews {
        let Some(user) = &r.user else { continue };
        if user.login.eq_ignore_ascii_case(author) {
            continue;
        }
        let state = r.state.to_ascii_uppercase();
        if !matches!(
            state.as_str(),
            "APPROVED" | "CHANGES_REQUESTED" | "DISMISSED"
        ) {
            continue;
        }
        latest.retain(|d| !d.login.eq_ignore_ascii_case(&user.login));
        if state != "DISMISSED" {
            latest.push(DecisiveReview {
                login: user.login.clone(),
                state,
                commit_id: r.commit_id.clone(),
            });
        }
    }
    latest
}

/// Reviewers' roles on the repository, by lower-cased login (`None`: no
/// access). Only reviews by people with write access or more count, as
/// GitHub's branch protection counts them.
pub type ReviewerRoles = HashMap<String, Option<Role>>;

/// How approvals are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalRule {
    pub required: u32,
    /// Approvals of an earlier head commit still count (off by default:
    /// what was approved is not what is being deployed).
    pub count_stale: bool,
}

/// Approvals of `sha` by reviewers with write access or more: the latest
/// decisive review per person; APPROVED counts, CHANGES_REQUESTED blocks;
/// reviews by people without write access neither approve nor block; an
/// approval of another commit counts only with `count_stale`.
pub fn approvals_gate(
    rule: ApprovalRule,
    decisive: &[DecisiveReview],
    roles: &ReviewerRoles,
    sha: &str,
) -> Option<Gate> {
    if rule.required == 0 {
        return None;
    }
    let can_write = |login: &str| {
        roles
            .get(&login.to_ascii_lowercase())
            .copied()
            .flatten()
            .is_some_and(|r| r >= Role::Write)
    };
    let mut approvers = Vec::new();
    let mut blockers = Vec::new();
    let mut not_counted = Vec::new();
    for d in decisive {
        if !can_write(&d.login) {
            let role = roles
                .get(&d.login.to_ascii_lowercase())
                .copied()
                .flatten()
                .map_or("no access", Role::as_str);
            not_counted.push(format!("@{} ({role})", d.login));
            continue;
        }
        if d.state == "CHANGES_REQUESTED" {
            blockers.push(d.login.as_str());
        } else if rule.count_stale || d.commit_id.as_deref() == Some(sha) {
            approvers.push(d.login.as_str());
        } else {
            not_counted.push(format!("@{} (approved an earlier commit)", d.login));
        }
    }
    let ignored = if not_counted.is_empty() {
        String::new()
    } else {
        format!("; not counted: {}", not_counted.join(", "))
    };
    Some(if !blockers.is_empty() {
        Gate::fail(
            APPROVALS,
            format!("changes requested by {}", at_list(&blockers)),
        )
    } else if (approvers.len() as u32) < rule.required {
        let by = if approvers.is_empty() {
            String::new()
        } else {
            format!(" (by {})", at_list(&approvers))
        };
        Gate::fail(
            APPROVALS,
            format!(
                "{} of {} approvals{by}{ignored}",
                approvers.len(),
                rule.required
            ),
        )
    } else {
        Gate::pass(
            APPROVALS,
            format!(
                "{} of {} approvals (by {}){ignored}",
                approvers.len(),
                rule.required,
                at_list(&approvers)
            ),
        )
    })
}

fn at_list(logins: &[&str]) -> String {
    logins
        .iter()
        .map(|l| format!("@{l}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Check runs and commit statuses on the exact commit. A check run passes
/// when it completed with success, neutral or skipped (as branch protection
/// counts them); a status when it is success. `all` requires every check. A
/// check named with its app is satisfied only by a check run of that app.
pub fn checks_gate(
    required: &[RequiredCheck],
    runs: &[CheckRun],
    statuses: &[CommitStatus],
    short_sha: &str,
) -> Option<Gate> {
    if required.is_empty() {
        return None;
    }
    #[derive(PartialEq)]
    enum State {
        Green,
        Pending,
        Red(String),
    }
    let run_state = |r: &CheckRun| {
        if r.status != "completed" {
            State::Pending
        } else {
            match r.conclusion.as_deref() {
                Some("success" | "neutral" | "skipped") => State::Green,
                other => State::Red(other.unwrap_or("unknown").to_string()),
            }
        }
    };
    let status_state = |s: &CommitStatus| match s.state {
        StatusState::Success => State::Green,
        StatusState::Pending => State::Pending,
        StatusState::Failure => State::Red("failure".into()),
        StatusState::Error => State::Red("error".into()),
    };
    // (name, app slug for check runs, state)
    let mut all: Vec<(String, Option<String>, State)> = runs
        .iter()
        .map(|r| {
            let app = r.app.as_ref().and_then(|a| a.slug.clone());
            (r.name.clone(), app, run_state(r))
        })
        .collect();
    all.extend(
        statuses
            .iter()
            .map(|s| (s.context.clone(), None, status_state(s))),
    );

    let wanted: Vec<(String, Option<&State>)> = if required.iter().any(|r| r.name() == "all") {
        if all.is_empty() {
            return Some(Gate::wait(
                CHECKS,
                format!("no checks reported on `{short_sha}` yet"),
            ));
        }
        all.iter().map(|(n, _, s)| (n.clone(), Some(s))).collect()
    } else {
        required
            .iter()
            .map(|req| {
                let found = all
                    .iter()
                    .filter(|(n, app, _)| {
                        n == req.name()
                            && req.app().is_none_or(|want| {
                                app.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(want))
                            })
                    })
                    // A green one from the named source wins over others.
                    .min_by_key(|(_, _, st)| match st {
                        State::Green => 0,
                        State::Pending => 1,
                        State::Red(_) => 2,
                    })
                    .map(|(_, _, s)| s);
                (req.label(), found)
            })
            .collect()
    };
    let mut red = Vec::new();
    let mut waiting = Vec::new();
    for (name, state) in &wanted {
        match state {
            Some(State::Green) => {}
            Some(State::Red(c)) => red.push(format!("`{name}` {c}")),
            Some(State::Pending) => waiting.push(format!("`{name}` in progress")),
            None => waiting.push(format!("`{name}` not reported")),
        }
    }
    Some(if !red.is_empty() {
        let mut parts = red;
        parts.extend(waiting);
        Gate::fail(CHECKS, format!("{} on `{short_sha}`", parts.join(", ")))
    } else if !waiting.is_empty() {
        Gate::wait(CHECKS, format!("{} on `{short_sha}`", waiting.join(", ")))
    } else {
        let names: Vec<String> = wanted.iter().map(|(n, _)| format!("`{n}`")).collect();
        Gate::pass(
            CHECKS,
            format!("{} green on `{short_sha}`", names.join(", ")),
        )
    })
}

/// Freeze windows of the environment; `force` by maintain/admin overrides.
pub fn freeze_gate(
    config: &RepoConfig,
    env: &EnvironmentConfig,
    now: DateTime<Utc>,
    force: bool,
    actor: &Actor,
) -> Gate {
    match active_freeze(config.freeze_windows(env), now) {
        None => Gate::pass(FREEZE, "no freeze window active"),
        Some(f) if force && actor.at_least(Role::Maintain) => Gate::pass(
            FREEZE,
            format!(
                "{} — overridden with `force` by @{}",
                f.description, actor.login
            ),
        ),
        Some(f) => {
            let hint = if force {
                " (`force` needs maintain or admin)"
            } else {
                ""
            };
            Gate::wait(
                FREEZE,
                format!(
                    "{} until {}{hint}",
                    f.description,
                    f.ends_at.format("%Y-%m-%d %H:%M UTC")
                ),
            )
        }
    }
}

/// Who asks to pass the environment's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockClaim {
    /// The pull request deploying.
    pub pr: Option<i64>,
    /// The deployment being decided, when it exists already: a deployment
    /// shipgate created under a lock passes that lock.
    pub deployment_id: Option<i64>,
    /// A deploy lock of the same PR passes (a PR may deploy again); off for
    /// deployments shipgate did not create, which pass only a PR's `/lock`.
    pub same_pr_deploy: bool,
}

/// The environment's lock, unless it is held for this claim.
pub fn lock_gate(lock: Option<&Lock>, claim: LockClaim) -> Gate {
    let Some(l) = lock else {
        return Gate::pass(LOCK, "not locked");
    };
    if l.deployment_id.is_some() && l.deployment_id == claim.deployment_id {
        return Gate::pass(LOCK, "held for this deployment");
    }
    let same_pr = l.pr.is_some() && l.pr == claim.pr;
    match l.kind {
        LockKind::Sticky if same_pr => Gate::pass(LOCK, "held by this pull request"),
        LockKind::Deploy if same_pr && claim.same_pr_deploy => {
            Gate::pass(LOCK, "held by this pull request")
        }
        _ => Gate::wait(LOCK, describe_lock(l)),
    }
}

pub fn describe_lock(l: &Lock) -> String {
    let from = l.pr.map(|n| format!("#{n} ")).unwrap_or_default();
    let what = match l.kind {
        LockKind::Deploy => "deploying".to_string(),
        LockKind::Sticky => "locked".to_string(),
    };
    let mut s = format!("{what} by {from}(@{})", l.holder);
    if let Some(r) = &l.reason {
        s.push_str(&format!(": {}", crate::text::inline_text(r)));
    }
    if let Some(exp) = l
        .expires_at
        .and_then(DateTime::<Utc>::from_timestamp_millis)
    {
        s.push_str(&format!(" until {}", exp.format("%Y-%m-%d %H:%M UTC")));
    }
    s
}

/// What a deployment's ref names, as GitHub knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefKind {
    Branch(String),
    Tag(String),
    /// A bare commit sha.
    Commit(String),
    /// A branch and a tag with this name both exist.
    Ambiguous(String),
    /// Neither a branch nor a tag with this name exists.
    Unknown(String),
}

/// Whether `pattern` of `refs:` names tags (`refs/tags/…`) and its glob.
fn ref_pattern(pattern: &str) -> (bool, &str) {
    match pattern.strip_prefix("refs/tags/") {
        Some(glob) => (true, glob),
        None => (
            false,
            pattern.strip_prefix("refs/heads/").unwrap_or(pattern),
        ),
    }
}

fn glob_matches(glob: &str, name: &str) -> bool {
    globset::GlobBuilder::new(glob)
        .literal_separator(false)
        .build()
        .map(|g| g.compile_matcher().is_match(name))
        .unwrap_or(false)
}

/// `refs:` of an environment: branches are named as they are (`main`,
/// `release/*`, or `refs/heads/…`), tags as `refs/tags/v*`. A tag never
/// passes a branch pattern, whatever its name.
pub fn ref_gate(env_name: &str, patterns: &[String], kind: &RefKind) -> Option<Gate> {
    if patterns.is_empty() {
        return None;
    }
    let matches = |tag: bool, name: &str| {
        patterns.iter().any(|p| {
            let (is_tag, glob) = ref_pattern(p);
            is_tag == tag && glob_matches(glob, name)
        })
    };
    let list = patterns
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let shown = |n: &str| crate::text::inline_text(n);
    Some(match kind {
        RefKind::Branch(n) if matches(false, n) => Gate::pass(
            REF,
            format!("branch `{}` may deploy to `{env_name}`", shown(n)),
        ),
        RefKind::Tag(n) if matches(true, n) => Gate::pass(
            REF,
            format!("tag `{}` may deploy to `{env_name}`", shown(n)),
        ),
        RefKind::Ambiguous(n) if matches(true, n) && matches(false, n) => Gate::pass(
            REF,
            format!("`{}` (a branch and a tag) may deploy to `{env_name}`", shown(n)),
        ),
        RefKind::Branch(n) => Gate::fail(
            REF,
            format!(
                "branch `{}` may not deploy to `{env_name}` (allowed: {list})",
                shown(n)
            ),
        ),
        RefKind::Tag(n) => {
            let hint = if matches(false, n) {
                "; tags are named as `refs/tags/PATTERN` in `refs:`"
            } else {
                ""
            };
            Gate::fail(
                REF,
                format!(
                    "tag `{}` may not deploy to `{env_name}` (allowed: {list}){hint}",
                    shown(n)
                ),
            )
        }
        RefKind::Ambiguous(n) => Gate::fail(
            REF,
            format!(
                "`{}` is both a branch and a tag; `{env_name}` allows only one of them (allowed: {list})",
                shown(n)
            ),
        ),
        RefKind::Commit(sha) => Gate::fail(
            REF,
            format!(
                "`{}` is a commit, not a branch or tag that may deploy to `{env_name}` (allowed: {list})",
                crate::text::short(sha)
            ),
        ),
        RefKind::Unknown(n) => Gate::fail(
            REF,
            format!(
                "`{}` is neither a branch nor a tag of this repository (allowed: {list})",
                shown(n)
            ),
        ),
    })
}

/// A rollback's target: a commit that was deployed to the environment
/// successfully before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackTargetFacts {
    pub sha: String,
    /// The deployment of `sha` to the environment that once reached `success`.
    pub succeeded_in: Option<i64>,
}

pub fn target_gate(env_name: &str, target: &RollbackTargetFacts) -> Gate {
    match target.succeeded_in {
        Some(id) => Gate::pass(
            TARGET,
            format!(
                "`{}` was deployed to `{env_name}` successfully (deployment {id})",
                crate::text::short(&target.sha)
            ),
        ),
        None => Gate::fail(
            TARGET,
            format!(
                "`{}` was never deployed to `{env_name}` successfully, so it is not a rollback; to ship it, use `/deploy {env_name} ref=…`, where every gate applies",
                crate::text::short(&target.sha)
            ),
        ),
    }
}

#[cfg(test)]
mod tests;
