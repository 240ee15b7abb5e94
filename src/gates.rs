//! The deploy gate evaluator: one implementation for `/deploy`, `/rollback`
//! and (later) deployment protection rules and the Action's `policy` gate.
//!
//! Facts are gathered first (from GitHub and the store, see `chatops`); this
//! module only decides, so every rule is a pure function with unit tests.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::freeze::active_freeze;
use crate::github::content::{CommitStatus, StatusState};
use crate::github::repos::{CheckRun, Review};
use crate::repo_config::{Deployers, EnvironmentConfig, RepoConfig, Role};
use crate::store::{Lock, LockKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
}

/// One gate's result: a name, pass/fail and a one-line reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gate {
    pub name: String,
    pub verdict: Verdict,
    pub detail: String,
    /// The gate may open by itself later (checks running, a lock, a freeze
    /// that ends): a caller that can wait should.
    #[serde(default)]
    pub temporary: bool,
}

impl Gate {
    fn pass(name: &str, detail: impl Into<String>) -> Gate {
        Gate {
            name: name.into(),
            verdict: Verdict::Pass,
            detail: detail.into(),
            temporary: false,
        }
    }
    fn fail(name: &str, detail: impl Into<String>) -> Gate {
        Gate {
            name: name.into(),
            verdict: Verdict::Fail,
            detail: detail.into(),
            temporary: false,
        }
    }
    fn wait(name: &str, detail: impl Into<String>) -> Gate {
        Gate {
            temporary: true,
            ..Gate::fail(name, detail)
        }
    }
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }
}

pub const PERMISSION: &str = "Permission";
pub const PULL_REQUEST: &str = "Pull request";
pub const BASE_BRANCH: &str = "Base branch";
pub const APPROVALS: &str = "Approvals";
pub const CHECKS: &str = "Checks";
pub const FREEZE: &str = "Freeze";
pub const LOCK: &str = "Lock";

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

/// Latest decisive review per reviewer: APPROVED counts, CHANGES_REQUESTED
/// blocks, DISMISSED clears, COMMENTED changes nothing; the author never counts.
pub fn approvals_gate(required: u32, reviews: &[Review], author: &str) -> Option<Gate> {
    if required == 0 {
        return None;
    }
    let mut latest: Vec<(String, String)> = Vec::new();
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
        latest.retain(|(who, _)| !who.eq_ignore_ascii_case(&user.login));
        latest.push((user.login.clone(), state));
    }
    let approvers: Vec<&str> = latest
        .iter()
        .filter(|(_, s)| s == "APPROVED")
        .map(|(w, _)| w.as_str())
        .collect();
    let blockers: Vec<&str> = latest
        .iter()
        .filter(|(_, s)| s == "CHANGES_REQUESTED")
        .map(|(w, _)| w.as_str())
        .collect();
    Some(if !blockers.is_empty() {
        Gate::fail(
            APPROVALS,
            format!("changes requested by {}", at_list(&blockers)),
        )
    } else if (approvers.len() as u32) < required {
        let by = if approvers.is_empty() {
            String::new()
        } else {
            format!(" (by {})", at_list(&approvers))
        };
        Gate::fail(
            APPROVALS,
            format!("{} of {required} approvals{by}", approvers.len()),
        )
    } else {
        Gate::pass(
            APPROVALS,
            format!(
                "{} of {required} approvals (by {})",
                approvers.len(),
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
/// counts them); a status when it is success. `all` requires every check.
pub fn checks_gate(
    required: &[String],
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
    let mut all: Vec<(String, State)> = runs
        .iter()
        .map(|r| (r.name.clone(), run_state(r)))
        .collect();
    all.extend(
        statuses
            .iter()
            .map(|s| (s.context.clone(), status_state(s))),
    );

    let wanted: Vec<(String, Option<&State>)> = if required.iter().any(|r| r == "all") {
        if all.is_empty() {
            return Some(Gate::wait(
                CHECKS,
                format!("no checks reported on `{short_sha}` yet"),
            ));
        }
        all.iter().map(|(n, s)| (n.clone(), Some(s))).collect()
    } else {
        required
            .iter()
            .map(|name| {
                (
                    name.clone(),
                    all.iter().find(|(n, _)| n == name).map(|(_, s)| s),
                )
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

/// The environment's lock, as held by someone other than `pr`.
pub fn lock_gate(lock: Option<&Lock>, pr: Option<i64>) -> Gate {
    match lock {
        None => Gate::pass(LOCK, "not locked"),
        Some(l) if l.pr.is_some() && l.pr == pr => Gate::pass(LOCK, "held by this pull request"),
        Some(l) => Gate::wait(LOCK, describe_lock(l)),
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
        s.push_str(&format!(": {r}"));
    }
    if let Some(exp) = l
        .expires_at
        .and_then(DateTime::<Utc>::from_timestamp_millis)
    {
        s.push_str(&format!(" until {}", exp.format("%Y-%m-%d %H:%M UTC")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::repos::UserRef;

    fn review(who: &str, state: &str) -> Review {
        Review {
            user: Some(UserRef { login: who.into() }),
            state: state.into(),
            commit_id: None,
        }
    }

    fn actor(role: Option<Role>) -> Actor {
        Actor {
            login: "alice".into(),
            role,
            listed: false,
        }
    }

    #[test]
    fn roles_prefer_role_name_and_fall_back_to_permission() {
        assert_eq!(
            role_from_permission(Some("maintain"), "write"),
            Some(Role::Maintain)
        );
        assert_eq!(
            role_from_permission(Some("triage"), "read"),
            Some(Role::Triage)
        );
        assert_eq!(
            role_from_permission(Some("security-reviewer"), "write"),
            Some(Role::Write)
        );
        assert_eq!(role_from_permission(None, "none"), None);
    }

    #[test]
    fn permission_by_role_and_by_list() {
        let env: EnvironmentConfig = serde_yaml_ng::from_str("deployers: maintain").unwrap();
        let g = permission_gate("production", &env, &actor(Some(Role::Write)));
        assert_eq!(g.verdict, Verdict::Fail);
        assert_eq!(
            g.detail,
            "@alice has `write`; deploying to `production` needs `maintain` or higher"
        );
        assert!(permission_gate("production", &env, &actor(Some(Role::Admin))).passed());
        let default: EnvironmentConfig = serde_yaml_ng::from_str("{}").unwrap();
        assert!(permission_gate("staging", &default, &actor(Some(Role::Write))).passed());
        assert!(!permission_gate("staging", &default, &actor(Some(Role::Triage))).passed());
        let listed: EnvironmentConfig =
            serde_yaml_ng::from_str("deployers: [bob, '@acme/sre']").unwrap();
        assert!(!permission_gate("p", &listed, &actor(Some(Role::Admin))).passed());
        assert!(permission_gate(
            "p",
            &listed,
            &Actor {
                listed: true,
                ..actor(None)
            }
        )
        .passed());
    }

    #[test]
    fn approvals_count_the_latest_decisive_review_per_reviewer() {
        let reviews = [
            review("bob", "CHANGES_REQUESTED"),
            review("bob", "APPROVED"),
            review("carol", "APPROVED"),
            review("carol", "COMMENTED"),
            review("alice", "APPROVED"),
            review("dave", "APPROVED"),
            review("dave", "DISMISSED"),
        ];
        let g = approvals_gate(2, &reviews, "alice").unwrap();
        assert!(g.passed(), "{g:?}");
        assert_eq!(g.detail, "2 of 2 approvals (by @bob, @carol)");
        let g = approvals_gate(3, &reviews, "alice").unwrap();
        assert_eq!(
            (g.verdict, g.detail.as_str()),
            (Verdict::Fail, "2 of 3 approvals (by @bob, @carol)")
        );
        let g = approvals_gate(
            1,
            &[
                review("bob", "APPROVED"),
                review("erin", "CHANGES_REQUESTED"),
            ],
            "alice",
        )
        .unwrap();
        assert_eq!(g.detail, "changes requested by @erin");
        assert!(approvals_gate(0, &[], "alice").is_none());
        assert_eq!(
            approvals_gate(1, &[review("alice", "APPROVED")], "alice")
                .unwrap()
                .detail,
            "0 of 1 approvals"
        );
    }

    fn run(name: &str, status: &str, conclusion: Option<&str>) -> CheckRun {
        CheckRun {
            name: name.into(),
            status: status.into(),
            conclusion: conclusion.map(str::to_string),
        }
    }

    fn status(context: &str, state: StatusState) -> CommitStatus {
        CommitStatus {
            context: context.into(),
            state,
            description: None,
        }
    }

    #[test]
    fn checks_by_name_over_runs_and_statuses() {
        let runs = [
            run("ci", "completed", Some("success")),
            run("lint", "completed", Some("failure")),
            run("e2e", "in_progress", None),
        ];
        let statuses = [status("deploy/preview", StatusState::Success)];
        let req = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(
            checks_gate(&req(&["ci", "deploy/preview"]), &runs, &statuses, "abc1234")
                .unwrap()
                .passed()
        );
        let g = checks_gate(&req(&["ci", "lint"]), &runs, &statuses, "abc1234").unwrap();
        assert_eq!((g.verdict, g.temporary), (Verdict::Fail, false));
        assert_eq!(g.detail, "`lint` failure on `abc1234`");
        let g = checks_gate(&req(&["e2e", "missing"]), &runs, &statuses, "abc1234").unwrap();
        assert!(g.temporary);
        assert_eq!(
            g.detail,
            "`e2e` in progress, `missing` not reported on `abc1234`"
        );
        let g = checks_gate(&req(&["all"]), &runs, &statuses, "abc1234").unwrap();
        assert_eq!(g.detail, "`lint` failure, `e2e` in progress on `abc1234`");
        assert!(
            checks_gate(&req(&["all"]), &[], &[], "abc1234")
                .unwrap()
                .temporary
        );
        assert!(checks_gate(&[], &runs, &statuses, "abc1234").is_none());
        let skipped = [run("ci", "completed", Some("skipped"))];
        assert!(checks_gate(&req(&["ci"]), &skipped, &[], "x")
            .unwrap()
            .passed());
    }

    #[test]
    fn freeze_can_be_forced_only_by_maintainers() {
        let config = RepoConfig::parse(
            "environments:\n  production:\n    freeze:\n      - { dates: [\"2026-12-24\"] }\n",
        )
        .unwrap();
        let env = &config.environments["production"];
        let now = DateTime::parse_from_rfc3339("2026-12-24T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let g = freeze_gate(&config, env, now, false, &actor(Some(Role::Admin)));
        assert_eq!(
            g.detail,
            "freeze window (2026-12-24 00:00–23:59 UTC) until 2026-12-25 00:00 UTC"
        );
        assert!(!g.passed() && g.temporary);
        let g = freeze_gate(&config, env, now, true, &actor(Some(Role::Write)));
        assert!(!g.passed() && g.detail.ends_with("(`force` needs maintain or admin)"));
        let g = freeze_gate(&config, env, now, true, &actor(Some(Role::Maintain)));
        assert!(g.passed() && g.detail.contains("overridden with `force` by @alice"));
        let later = DateTime::parse_from_rfc3339("2026-12-26T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(freeze_gate(&config, env, later, false, &actor(Some(Role::Write))).passed());
    }

    #[test]
    fn locks_of_other_prs_block() {
        let l = Lock {
            repository: "o/r".into(),
            environment: "production".into(),
            kind: LockKind::Sticky,
            holder: "bob".into(),
            pr: Some(12),
            owner_token: "t".into(),
            deployment_id: None,
            reason: Some("migration".into()),
            expires_at: None,
            created_at: 0,
        };
        assert!(lock_gate(Some(&l), Some(12)).passed());
        let g = lock_gate(Some(&l), Some(13));
        assert_eq!(g.detail, "locked by #12 (@bob): migration");
        assert!(lock_gate(None, Some(13)).passed());
    }
}
