//! Replies to `/lock`, `/unlock`, `/status` and `/help`, the refusals of any
//! command, and the texts a deploy leaves on GitHub (its deployment's
//! description, the notes of an override).

use std::time::Duration;

use crate::config::repo::{humanize, Deployers, RepoConfig, Role};
use crate::deploy::commands::USAGE;
use crate::deploy::gates::describe_lock;
use crate::deploy::refusal::Refusal;
use crate::freeze::Freeze;
use crate::store::Lock;
use crate::text::{inline_text, short};

fn code_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{}`", inline_text(n)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The icon of a refusal.
pub const REFUSED: &str = "⚠️";
/// The icon of a lock taken or held.
pub const LOCKED: &str = "🔒";
/// The icon of a lock released or absent.
pub const UNLOCKED: &str = "🔓";
/// The icon of a note.
pub const NOTE: &str = "ℹ️";

/// A refused command, in one line (shown after ⚠️).
pub fn refusal(r: &Refusal) -> String {
    match r {
        Refusal::ConfigInvalid { default_branch, error } => format!(
            "commands cannot run: `.github/shipgate.yml` on `{}` is invalid: {}",
            inline_text(default_branch),
            inline_text(error)
        ),
        Refusal::NoEnvironments => {
            "no environments are configured in `.github/shipgate.yml`".to_string()
        }
        Refusal::NameAnEnvironment { environments } => format!(
            "name an environment: there is no `default_environment` and several exist ({})",
            code_list(environments)
        ),
        Refusal::UnknownEnvironment { wanted, suggestion, environments } => format!(
            "unknown environment `{}`{} (environments: {})",
            inline_text(wanted),
            suggestion
                .as_deref()
                .map(|s| format!("; did you mean `{}`?", inline_text(s)))
                .unwrap_or_default(),
            code_list(environments)
        ),
        Refusal::BadCommand { message } => message.clone(),
        Refusal::NotARef { arg, value } => format!(
            "`{arg}={}` is not a branch, tag or commit of this repository",
            inline_text(value)
        ),
        Refusal::DeployOutsidePullRequest => {
            "`/deploy` works in pull request comments; use `/rollback` here".to_string()
        }
        Refusal::GitHubRefused { error } => {
            format!("GitHub refused the deployment: {}", inline_text(error))
        }
        Refusal::DeploymentElsewhere { id, environment, wanted } => format!(
            "deployment {id} is a deployment to `{}`, not `{}`",
            inline_text(environment),
            inline_text(wanted)
        ),
        Refusal::NoSuchDeployment { id } => {
            format!("there is no deployment {id} in this repository")
        }
        Refusal::NothingToRollBack { environment, current: None } => format!(
            "`{}` has no deployments yet, so there is nothing to roll back to",
            inline_text(environment)
        ),
        Refusal::NothingToRollBack { environment, current: Some(sha) } => format!(
            "`{}` has no successful deployment before the current one (`{}`) to roll back to",
            inline_text(environment),
            short(sha)
        ),
        Refusal::CannotLock { reason } => format!("cannot lock: {reason}"),
        Refusal::LockHeld { environment, lock } => {
            format!("`{}` is {}.", inline_text(environment), describe_lock(lock))
        }
        Refusal::NotTheHolder { holder, environment, actor, role } => format!(
            "only @{holder} (who holds it) or a user with `maintain` or `admin` can unlock `{}`; @{actor} has `{}`",
            inline_text(environment),
            role.map(Role::as_str).unwrap_or("no access")
        ),
    }
}

/// `/lock` took the lock (shown after 🔒).
pub fn locked(environment: &str, actor: &str, issue: i64, ttl: Option<Duration>) -> String {
    let until = ttl
        .map(|t| format!(" for {}", humanize(t)))
        .unwrap_or_else(|| " until `/unlock` or this PR closes".into());
    format!(
        "`{}` is locked by @{actor} for #{issue}{until}.",
        inline_text(environment)
    )
}

/// `/lock` of a lock this pull request already holds (shown after 🔒).
pub fn already_held(environment: &str, lock: &Lock) -> String {
    format!(
        "`{}` is already held by this pull request ({}).",
        inline_text(environment),
        describe_lock(lock)
    )
}

/// `/unlock` of an environment nobody holds (shown after 🔓).
pub fn not_locked(environment: &str) -> String {
    format!("`{}` is not locked.", inline_text(environment))
}

/// `/unlock` released the lock (shown after 🔓).
pub fn unlocked(environment: &str, actor: &str, was: &Lock) -> String {
    format!(
        "`{}` unlocked by @{actor} (was {}).",
        inline_text(environment),
        describe_lock(was)
    )
}

/// `/status` without environments (shown after ℹ️).
pub const NO_ENVIRONMENTS: &str = "no environments are configured in `.github/shipgate.yml`.";

/// Command lines of a comment past the limit (shown after ℹ️).
pub fn lines_not_run(skipped: usize, limit: usize) -> String {
    format!("{skipped} more command line(s) were not run: a comment runs at most {limit}.")
}

/// An environment's current deployment, as `/status` shows it.
pub struct CurrentDeployment {
    pub sha: String,
    pub pr: Option<i64>,
    /// Who deployed: the payload's actor, else the deployment's creator.
    pub by: Option<String>,
    pub created_at: String,
    pub state: String,
}

/// One environment in `/status`.
pub struct EnvironmentStatus {
    pub name: String,
    pub current: Option<CurrentDeployment>,
    pub lock: Option<Lock>,
    pub freeze: Option<Freeze>,
    /// Queued deploys: pull request and who asked.
    pub queue: Vec<(i64, String)>,
}

/// The `/status` reply: per environment, its deployment, lock, freeze and queue.
pub fn status(environments: &[EnvironmentStatus]) -> String {
    let mut out = String::from("### Deployment status\n");
    for e in environments {
        let current = match &e.current {
            None => "none yet".to_string(),
            Some(d) => format!(
                "`{}`{} by {} at {} — {}",
                short(&d.sha),
                d.pr.map(|n| format!(" from #{n}")).unwrap_or_default(),
                // Another tool's payload is outside text.
                d.by.as_deref()
                    .map(|w| inline_text(&format!("@{w}")))
                    .unwrap_or_default(),
                inline_text(&d.created_at),
                inline_text(&d.state)
            ),
        };
        let lock = e
            .lock
            .as_ref()
            .map(describe_lock)
            .unwrap_or_else(|| "not locked".into());
        let freeze = e
            .freeze
            .as_ref()
            .map(|f| {
                format!(
                    "{} until {}",
                    inline_text(&f.description),
                    f.ends_at.format("%Y-%m-%d %H:%M UTC")
                )
            })
            .unwrap_or_else(|| "none active".into());
        let queue = if e.queue.is_empty() {
            "empty".to_string()
        } else {
            e.queue
                .iter()
                .map(|(pr, actor)| format!("#{pr} (@{actor})"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "\n#### `{}`\n\n| | |\n|---|---|\n| Current deployment | {current} |\n| Lock | {lock} |\n| Freeze | {freeze} |\n| Queue | {queue} |\n",
            inline_text(&e.name)
        ));
    }
    out
}

/// The `/help` reply: the commands, and each environment's gates.
pub fn help(config: &RepoConfig) -> String {
    let mut out = String::from("### shipgate commands\n\n| Command | |\n|---|---|\n");
    for (_, usage, what) in USAGE {
        // A `|` ends a table cell even inside code.
        out.push_str(&format!("| `{}` | {what} |\n", usage.replace('|', "\\|")));
    }
    if config.environments.is_empty() {
        out.push_str("\nNo environments are configured in `.github/shipgate.yml` yet.\n");
        return out;
    }
    out.push_str(
        "\n| Environment | Deployers | Approvals | Checks | Other gates |\n|---|---|---|---|---|\n",
    );
    for (name, env) in &config.environments {
        let deployers = match env.deployers() {
            Deployers::Role(r) => format!("`{}`+", r.as_str()),
            Deployers::List(l) => inline_text(&l.join(", ")),
        };
        let checks = if env.required_checks.is_empty() {
            "—".to_string()
        } else {
            let labels: Vec<String> = env.required_checks.iter().map(|c| c.label()).collect();
            inline_text(&labels.join(", "))
        };
        let mut other = Vec::new();
        if !env.base_branches.is_empty() {
            other.push(format!(
                "from PRs into {}",
                inline_text(&env.base_branches.join(", "))
            ));
        }
        let windows = config.freeze_windows(env).count();
        if windows > 0 {
            other.push(format!("{windows} freeze window(s)"));
        }
        if let Some(ttl) = env.lock_ttl {
            other.push(format!("lock TTL {}", humanize(ttl.0)));
        }
        let default = if config.default_environment() == Some(name.as_str()) {
            " (default)"
        } else {
            ""
        };
        out.push_str(&format!(
            "| `{}`{default} | {deployers} | {} | {checks} | {} |\n",
            inline_text(name),
            env.required_approvals,
            if other.is_empty() {
                "—".into()
            } else {
                other.join("; ")
            }
        ));
    }
    out
}

/// The description of a deployment a command creates.
pub fn deployment_description(rollback: bool, environment: &str, actor: &str, pr: i64) -> String {
    if rollback {
        format!("shipgate: /rollback {environment} by @{actor}")
    } else {
        format!("shipgate: /deploy {environment} by @{actor} from #{pr}")
    }
}

/// A deploy reply's note when `force` opened a freeze.
pub fn freeze_overridden(detail: &str) -> String {
    format!("⚠️ Freeze overridden: {detail}")
}

/// A rollback reply's note when `force` took a held lock.
pub fn lock_overridden(held: &Lock) -> String {
    format!("⚠️ Lock overridden with `force`: {}", describe_lock(held))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LockKind;

    fn lock() -> Lock {
        Lock {
            repository: "o/r".into(),
            environment: "production".into(),
            kind: LockKind::Sticky,
            holder: "bob".into(),
            pr: Some(12),
            owner_token: "run:1:2".into(),
            deployment_id: None,
            reason: Some("migration | @ops".into()),
            expires_at: Some(1_795_000_000_000),
            created_at: 1_794_000_000_000,
        }
    }

    #[test]
    fn refusals() {
        let envs = vec!["staging".to_string(), "production".to_string()];
        let all = [
            Refusal::ConfigInvalid {
                default_branch: "main".into(),
                error: "line 2: unknown field `enviroments`".into(),
            },
            Refusal::NoEnvironments,
            Refusal::NameAnEnvironment {
                environments: envs.clone(),
            },
            Refusal::UnknownEnvironment {
                wanted: "prod".into(),
                suggestion: Some("production".into()),
                environments: envs.clone(),
            },
            Refusal::UnknownEnvironment {
                wanted: "@acme | x".into(),
                suggestion: None,
                environments: envs,
            },
            Refusal::BadCommand {
                message: "`/deploy` takes `ref=REF`, not `rev=main`".into(),
            },
            Refusal::NotARef {
                arg: "ref".into(),
                value: "nope".into(),
            },
            Refusal::DeployOutsidePullRequest,
            Refusal::GitHubRefused {
                error: "422: conflict merging main".into(),
            },
            Refusal::DeploymentElsewhere {
                id: 7,
                environment: "staging".into(),
                wanted: "production".into(),
            },
            Refusal::NoSuchDeployment { id: 7 },
            Refusal::NothingToRollBack {
                environment: "production".into(),
                current: None,
            },
            Refusal::NothingToRollBack {
                environment: "production".into(),
                current: Some("0123456789".into()),
            },
            Refusal::CannotLock {
                reason: "@carol has `triage`; deploying to `production` needs `write`".into(),
            },
            Refusal::LockHeld {
                environment: "production".into(),
                lock: lock(),
            },
            Refusal::NotTheHolder {
                holder: "bob".into(),
                environment: "production".into(),
                actor: "carol".into(),
                role: Some(Role::Write),
            },
        ];
        let lines: Vec<String> = all.iter().map(refusal).collect();
        insta::assert_snapshot!(lines.join("\n"));
    }

    #[test]
    fn lock_messages_and_notes() {
        let l = lock();
        insta::assert_snapshot!([
            locked("production", "alice", 12, Some(Duration::from_secs(5400))),
            locked("production", "alice", 12, None),
            already_held("production", &l),
            not_locked("production"),
            unlocked("production", "alice", &l),
            NO_ENVIRONMENTS.to_string(),
            lines_not_run(3, 10),
            deployment_description(false, "production", "alice", 12),
            deployment_description(true, "production", "alice", 12),
            freeze_overridden("Friday freeze — overridden with `force` by @alice"),
            lock_overridden(&l),
        ]
        .join("\n"));
    }

    #[test]
    fn status() {
        let envs = vec![
            EnvironmentStatus {
                name: "production".into(),
                current: Some(CurrentDeployment {
                    sha: "0123456789".into(),
                    pr: Some(12),
                    by: Some("alice".into()),
                    created_at: "2026-11-18T11:06:00Z".into(),
                    state: "success".into(),
                }),
                lock: Some(lock()),
                freeze: Some(Freeze {
                    description: "Friday freeze".into(),
                    ends_at: chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap(),
                }),
                queue: vec![(13, "carol".into()), (14, "dave".into())],
            },
            EnvironmentStatus {
                name: "staging".into(),
                current: None,
                lock: None,
                freeze: None,
                queue: vec![],
            },
        ];
        insta::assert_snapshot!(super::status(&envs));
    }

    #[test]
    fn help() {
        let config = RepoConfig::parse(
            "default_environment: staging\nenvironments:\n  staging: {}\n  production:\n    deployers: [alice, \"@acme/release\"]\n    required_approvals: 2\n    required_checks: [ci, { name: e2e, app: github-actions }]\n    base_branches: [main]\n    lock_ttl: 2h\n    freeze:\n      - { days: [fri] }\n",
        )
        .unwrap();
        insta::assert_snapshot!(super::help(&config));
        insta::assert_snapshot!(
            "help_without_environments",
            super::help(&RepoConfig::default())
        );
    }
}
