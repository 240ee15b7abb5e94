//! The deploy decision: one implementation for `/deploy`, `/rollback`,
//! automatic rollbacks and the deployment protection rule.
//!
//! [`decide`] gathers the facts once (from GitHub and the store, only what
//! the environment's gates need), then [`evaluate`] — a pure function —
//! turns them into gates. Deployments are created only through a
//! [`lock::LockGuard`], with the one typed [`payload::DeploymentPayload`].
//! The `shipgate/policy` check and the Action's `policy` gate count
//! approvals with the same [`review_facts`].

pub mod commands;
pub mod gates;
pub mod lock;
pub mod payload;
pub mod policy;
pub mod refusal;
pub mod rulesets;
pub mod soak;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use crate::config::repo::{Deployers, EnvironmentConfig, RepoConfig, Role};
use crate::deploy::gates::{
    Actor, ApprovalRule, DecisiveReview, Gate, LockClaim, PullFacts, RefKind, ReviewerRoles,
    RollbackTargetFacts,
};
use crate::freeze::active_freeze;
use crate::github::content::CommitStatus;
use crate::github::repos::CheckRun;
use crate::github::{Api, GitHubError};
use crate::store::{DynStore, Lock, StoreError};

/// Reviewers whose roles one decision looks up at most; with more, the
/// approvals gate fails closed instead of spending the API quota.
pub const MAX_REVIEWERS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What is being decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `/deploy` of a pull request (or a deployment it created).
    Deploy,
    /// `/rollback` (or a deployment it created): the target must have run
    /// here successfully before; approvals, checks and freezes are not asked.
    Rollback,
    /// An automatic rollback after failed smoke checks: no person asks.
    AutomaticRollback,
    /// A deployment shipgate did not create, asking through the deployment
    /// protection rule.
    Foreign,
}

/// Where the facts come from.
pub struct Sources<'a> {
    pub api: &'a Api,
    pub store: &'a DynStore,
    pub repo: &'a str,
}

/// A decision to make.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub purpose: Purpose,
    pub environment: &'a str,
    pub env: &'a EnvironmentConfig,
    pub config: &'a RepoConfig,
    /// The pull request the deploy comes from (or the issue a `/rollback`
    /// was typed in).
    pub pr: Option<i64>,
    /// The commit to deploy; `None`: the pull request's head.
    pub sha: Option<&'a str>,
    /// The ref a foreign deployment names, for `refs:`.
    pub git_ref: Option<&'a str>,
    /// For a foreign deployment from a pull request's workflow: the PR head
    /// it ran for (the deployed commit is then GitHub's merge commit), whose
    /// approvals count. `None`: the deployed commit's.
    pub reviewed_sha: Option<&'a str>,
    pub force: bool,
    /// The deployment being decided, when it exists already.
    pub deployment_id: Option<i64>,
}

/// Everything the gates look at.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub actor: Option<Actor>,
    pub pull: Option<PullFacts>,
    pub sha: Option<String>,
    /// The latest decisive reviews and their reviewers' roles.
    pub reviews: Option<(Vec<DecisiveReview>, ReviewerRoles)>,
    /// Reviewers beyond [`MAX_REVIEWERS`] were not looked up.
    pub too_many_reviewers: bool,
    pub checks: Option<(Vec<CheckRun>, Vec<CommitStatus>)>,
    pub git_ref: Option<RefKind>,
    pub target: Option<RollbackTargetFacts>,
    pub lock: Option<Lock>,
    pub now: Option<DateTime<Utc>>,
    /// The commit's history in `promote_from`'s environment.
    pub soak: Option<gates::SoakFacts>,
}

/// The gates of one decision and the facts behind them.
#[derive(Debug, Clone)]
pub struct Decision {
    pub gates: Vec<Gate>,
    pub facts: Facts,
}

impl Decision {
    /// Every gate passes.
    pub fn allowed(&self) -> bool {
        self.gates.iter().all(Gate::passed)
    }

    /// Only gates that may open by themselves are closed.
    pub fn only_waiting(&self) -> bool {
        !self.allowed() && self.gates.iter().all(|g| g.passed() || g.waiting())
    }

    /// Every gate but the lock passes (a deploy that may queue).
    pub fn only_the_lock_is_closed(&self) -> bool {
        !self.allowed()
            && self
                .gates
                .iter()
                .all(|g| g.passed() || g.name == gates::LOCK)
    }

    /// The freeze a maintainer overrode with `force`, if any.
    pub fn freeze_override(&self) -> Option<String> {
        self.gates
            .iter()
            .find(|g| g.name == gates::FREEZE && g.passed() && g.reason.contains("overridden"))
            .map(|g| g.reason.clone())
    }

    /// When the soak still holding this deploy back ends, if it is the
    /// soak (and not an incident) that holds it.
    pub fn soak_ends_at(&self) -> Option<DateTime<Utc>> {
        let waiting = self
            .gates
            .iter()
            .any(|g| g.name == gates::SOAK && g.waiting());
        let now = self.facts.now.unwrap_or_else(Utc::now);
        waiting
            .then(|| self.facts.soak.as_ref()?.ends_at(now))
            .flatten()
    }
}

/// Gathers the facts `req` needs and evaluates its gates. `actor` is the
/// person asking (see [`actor_facts`]: who typed the command, or for an
/// edited comment who edited it); `None`: nobody (automatic, or a
/// deployment from elsewhere). A person without the deployer role is
/// refused before anything else is looked up.
pub async fn decide(
    src: &Sources<'_>,
    req: &Request<'_>,
    actor: Option<Actor>,
) -> Result<Decision, FactsError> {
    let mut facts = Facts {
        now: Some(Utc::now()),
        ..Facts::default()
    };
    if let Some(actor) = actor {
        let permission = gates::permission_gate(req.environment, req.env, &actor);
        facts.actor = Some(actor);
        if !permission.passed() {
            return Ok(Decision {
                gates: vec![permission],
                facts,
            });
        }
    }
    let wants_pull = matches!(req.purpose, Purpose::Deploy | Purpose::Foreign);
    if let (true, Some(number)) = (wants_pull, req.pr) {
        facts.pull = Some(pull_facts(src.api, src.repo, number).await?);
    }
    let sha = req
        .sha
        .map(str::to_string)
        .or_else(|| facts.pull.as_ref().map(|p| p.head_sha.clone()));
    facts.sha = sha.clone();
    let Some(sha) = sha else {
        return Ok(Decision {
            gates: evaluate(req, &facts),
            facts,
        });
    };
    match req.purpose {
        Purpose::Deploy | Purpose::Foreign => {
            if let Some(pull) = &facts.pull {
                // `/deploy` approvals count only for the PR's head: what was reviewed.
                let reviewed = req.purpose == Purpose::Foreign || pull.head_sha == sha;
                if req.env.required_approvals > 0 && reviewed {
                    let (reviews, roles, too_many) =
                        review_facts(src.api, src.repo, pull.number, &pull.author).await?;
                    facts.reviews = Some((reviews, roles));
                    facts.too_many_reviewers = too_many;
                }
            }
            if !req.env.required_checks.is_empty() {
                facts.checks = Some(src.api.checks(src.repo, &sha).await?);
            }
            if let Some(promote) = &req.env.promote_from {
                let now = facts.now.unwrap_or_else(Utc::now);
                facts.soak = Some(soak::soak_facts(src.api, src.repo, promote, &sha, now).await?);
            }
            if req.purpose == Purpose::Foreign && !req.env.refs.is_empty() {
                facts.git_ref =
                    Some(ref_kind(src.api, src.repo, req.git_ref.unwrap_or(&sha)).await?);
            }
        }
        Purpose::Rollback | Purpose::AutomaticRollback => {
            facts.target = Some(RollbackTargetFacts {
                succeeded_in: succeeded_deployment(src.api, src.repo, req.environment, &sha)
                    .await?,
                sha: sha.clone(),
            });
        }
    }
    facts.lock = src
        .store
        .get_lock(src.repo, req.environment, crate::now_ms())
        .await?;
    Ok(Decision {
        gates: evaluate(req, &facts),
        facts,
    })
}

/// The gates of `req` over `facts`: pure, so every rule has a unit test.
pub fn evaluate(req: &Request<'_>, facts: &Facts) -> Vec<Gate> {
    let env_name = req.environment;
    let env = req.env;
    let mut out = Vec::new();
    if let Some(actor) = &facts.actor {
        let g = gates::permission_gate(env_name, env, actor);
        let refused = !g.passed();
        out.push(g);
        if refused {
            return out;
        }
    }
    let claim = LockClaim {
        pr: req.pr,
        deployment_id: req.deployment_id,
        same_pr_deploy: req.purpose != Purpose::Foreign,
    };
    let now = facts.now.unwrap_or_else(Utc::now);
    let sha = facts.sha.as_deref().unwrap_or_default();
    match req.purpose {
        Purpose::Deploy | Purpose::Foreign => {
            if req.purpose == Purpose::Foreign {
                if let Some(kind) = &facts.git_ref {
                    out.extend(gates::ref_gate(env_name, &env.refs, kind));
                }
            }
            match &facts.pull {
                Some(pull) => {
                    if req.purpose == Purpose::Deploy {
                        out.push(gates::pull_request_gate(pull));
                    }
                    out.extend(gates::fork_gate(env_name, env, pull));
                    out.extend(gates::base_branch_gate(env_name, env, pull));
                    out.extend(approvals(req, pull, sha, facts));
                }
                None if req.purpose == Purpose::Deploy => out.push(Gate::fail(
                    gates::PULL_REQUEST,
                    "`/deploy` deploys a pull request; comment on one",
                )),
                None => {}
            }
            if let Some((runs, statuses)) = &facts.checks {
                out.extend(gates::checks_gate(
                    &env.required_checks,
                    runs,
                    statuses,
                    crate::text::short(sha),
                ));
            }
            let nobody = Actor {
                login: String::new(),
                role: None,
                listed: false,
            };
            let actor = facts.actor.as_ref().unwrap_or(&nobody);
            out.extend(soak_gate(req, facts, now));
            out.push(gates::freeze_gate(req.config, env, now, req.force, actor));
            out.push(gates::lock_gate(facts.lock.as_ref(), claim));
        }
        Purpose::Rollback | Purpose::AutomaticRollback => {
            if let Some(target) = &facts.target {
                out.push(gates::target_gate(env_name, target));
            }
            out.push(Gate::pass(
                "Approvals, checks and freeze",
                "not asked: a rollback returns to what ran here before",
            ));
            let lock = gates::lock_gate(facts.lock.as_ref(), claim);
            let may_force = req.force
                && facts
                    .actor
                    .as_ref()
                    .is_some_and(|a| a.at_least(Role::Maintain));
            out.push(if !lock.passed() && may_force {
                Gate::pass(
                    gates::LOCK,
                    format!("{} — overridden with `force`", lock.reason),
                )
            } else {
                lock
            });
        }
    }
    out
}

/// The soak gate when the environment has `promote_from`: closed when the
/// commit's history there was not read. `force` counts only from a person.
fn soak_gate(req: &Request<'_>, facts: &Facts, now: DateTime<Utc>) -> Option<Gate> {
    req.env.promote_from.as_ref()?;
    let Some(soak) = &facts.soak else {
        return Some(Gate::fail(
            gates::SOAK,
            "no commit to look up in the environment it is promoted from",
        ));
    };
    let force_by = facts.actor.as_ref().filter(|_| req.force);
    Some(gates::soak_gate(req.environment, soak, now, force_by))
}

fn approvals(req: &Request<'_>, pull: &PullFacts, sha: &str, facts: &Facts) -> Option<Gate> {
    let env = req.env;
    if env.required_approvals == 0 {
        return None;
    }
    let reviewed = match req.purpose {
        Purpose::Foreign => req.reviewed_sha.unwrap_or(sha),
        _ => sha,
    };
    if req.purpose == Purpose::Deploy && pull.head_sha != sha {
        return Some(Gate::fail(
            gates::APPROVALS,
            format!(
                "approvals of #{} count for its head `{}`, and the commit to deploy is `{}`",
                pull.number,
                crate::text::short(&pull.head_sha),
                crate::text::short(sha)
            ),
        ));
    }
    if facts.too_many_reviewers {
        return Some(Gate::fail(
            gates::APPROVALS,
            format!(
                "#{} has more than {MAX_REVIEWERS} reviewers with a decisive review; shipgate checks at most {MAX_REVIEWERS}",
                pull.number
            ),
        ));
    }
    let (reviews, roles) = facts.reviews.as_ref()?;
    gates::approvals_gate(
        ApprovalRule {
            required: env.required_approvals,
            count_stale: env.stale_approvals,
        },
        reviews,
        roles,
        reviewed,
    )
}

/// The actor's role (and list membership) for an environment.
pub async fn actor_facts(
    api: &Api,
    repo: &str,
    login: &str,
    env: &EnvironmentConfig,
) -> Result<Actor, GitHubError> {
    let role = role_of(api, repo, login).await?;
    let mut listed = false;
    if let Deployers::List(list) = env.deployers() {
        for entry in &list {
            if let Some(team) = entry.strip_prefix('@') {
                if let Some((org, slug)) = team.split_once('/') {
                    if api.is_team_member(org, slug, login).await? {
                        listed = true;
                        break;
                    }
                }
            } else if entry.eq_ignore_ascii_case(login) {
                listed = true;
                break;
            }
        }
    }
    Ok(Actor {
        login: login.to_string(),
        role,
        listed,
    })
}

/// A user's role on the repository (`None`: no access).
pub async fn role_of(api: &Api, repo: &str, login: &str) -> Result<Option<Role>, GitHubError> {
    let level = api.permission(repo, login).await?;
    Ok(gates::role_from_permission(
        level.role_name.as_deref(),
        &level.permission,
    ))
}

/// A pull request as the gates see it.
pub async fn pull_facts(api: &Api, repo: &str, number: i64) -> Result<PullFacts, GitHubError> {
    let pr = api.pull_request(repo, number).await?;
    Ok(PullFacts {
        number: pr.number,
        open: pr.state == "open",
        draft: pr.draft,
        base_ref: pr.base.git_ref.clone(),
        author: pr.user.login.clone(),
        head_sha: pr.head.sha.clone(),
        fork: is_fork(pr.head.repo.as_ref().map(|r| r.full_name.as_str()), repo),
    })
}

/// A pull request listed for a commit, as the gates see it; `default_base`
/// when the listing leaves its base out.
pub fn pull_facts_of(
    pr: &crate::github::repos::PullSummary,
    repo: &str,
    default_base: &str,
) -> PullFacts {
    PullFacts {
        number: pr.number,
        open: pr.state == "open",
        draft: pr.draft,
        base_ref: pr
            .base
            .as_ref()
            .map_or(default_base, |b| b.git_ref.as_str())
            .to_string(),
        author: pr
            .user
            .as_ref()
            .map(|u| u.login.clone())
            .unwrap_or_default(),
        head_sha: pr.head.sha.clone(),
        fork: is_fork(pr.head.repo.as_ref().map(|r| r.full_name.as_str()), repo),
    }
}

/// A head in another repository, or in one since deleted, is a fork's.
pub fn is_fork(head_repo: Option<&str>, repo: &str) -> bool {
    head_repo.is_none_or(|h| !h.eq_ignore_ascii_case(repo))
}

/// The latest decisive review of each reviewer of a pull request, and the
/// roles of those reviewers (looked up at most [`MAX_REVIEWERS`], eight at a
/// time). The third value says whether there were more.
pub async fn review_facts(
    api: &Api,
    repo: &str,
    number: i64,
    author: &str,
) -> Result<(Vec<DecisiveReview>, ReviewerRoles, bool), GitHubError> {
    let reviews = api.reviews(repo, number).await?;
    let decisive = gates::decisive_reviews(&reviews, author);
    let too_many = decisive.len() > MAX_REVIEWERS;
    let logins: Vec<String> = decisive
        .iter()
        .take(MAX_REVIEWERS)
        .map(|d| d.login.clone())
        .collect();
    let looked_up: Vec<Result<(String, Option<Role>), GitHubError>> =
        futures_util::stream::iter(logins)
            .map(|login| async move {
                let role = role_of(api, repo, &login).await?;
                Ok((login.to_ascii_lowercase(), role))
            })
            .buffered(8)
            .collect()
            .await;
    let mut roles = ReviewerRoles::new();
    for r in looked_up {
        let (login, role) = r?;
        roles.insert(login, role);
    }
    Ok((decisive, roles, too_many))
}

/// What a deployment's ref names. A full ref says it; a short name is
/// looked up as a branch and as a tag.
pub async fn ref_kind(api: &Api, repo: &str, git_ref: &str) -> Result<RefKind, GitHubError> {
    if let Some(b) = git_ref.strip_prefix("refs/heads/") {
        return Ok(RefKind::Branch(b.to_string()));
    }
    if let Some(t) = git_ref.strip_prefix("refs/tags/") {
        return Ok(RefKind::Tag(t.to_string()));
    }
    if git_ref.len() == 40 && git_ref.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(RefKind::Commit(git_ref.to_string()));
    }
    let branch = api.git_ref(repo, &format!("heads/{git_ref}")).await?;
    let tag = api.git_ref(repo, &format!("tags/{git_ref}")).await?;
    Ok(match (branch, tag) {
        (Some(_), Some(_)) => RefKind::Ambiguous(git_ref.to_string()),
        (Some(_), None) => RefKind::Branch(git_ref.to_string()),
        (None, Some(_)) => RefKind::Tag(git_ref.to_string()),
        (None, None) => RefKind::Unknown(git_ref.to_string()),
    })
}

/// The newest deployment of `sha` to `environment` that ever reached
/// `success` (GitHub marks superseded deployments `inactive`, so the whole
/// status history counts).
pub async fn succeeded_deployment(
    api: &Api,
    repo: &str,
    environment: &str,
    sha: &str,
) -> Result<Option<i64>, GitHubError> {
    for d in api
        .deployments_of_sha(repo, environment, sha)
        .await?
        .iter()
        .filter(|d| d.sha == sha && d.environment == environment)
        .take(10)
    {
        let statuses = api.deployment_statuses(repo, d.id).await?;
        if statuses.iter().any(|st| st.state == "success") {
            return Ok(Some(d.id));
        }
    }
    Ok(None)
}

/// The newest deployment before the current one (`history[0]`, newest
/// first) that succeeded at some point, and its sha.
pub async fn last_good(
    api: &Api,
    repo: &str,
    history: &[crate::github::repos::Deployment],
) -> Result<Option<String>, GitHubError> {
    let Some(current) = history.first() else {
        return Ok(None);
    };
    for d in history
        .iter()
        .skip(1)
        .filter(|d| d.sha != current.sha)
        .take(10)
    {
        let statuses = api.deployment_statuses(repo, d.id).await?;
        if statuses.iter().any(|st| st.state == "success") {
            return Ok(Some(d.sha.clone()));
        }
    }
    Ok(None)
}

/// The freeze active on an environment now, for `/status`.
pub fn active_freeze_now(
    config: &RepoConfig,
    env: &EnvironmentConfig,
) -> Option<crate::freeze::Freeze> {
    active_freeze(config.freeze_windows(env), Utc::now())
}
