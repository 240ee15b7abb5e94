//! Promotion after soak (`promote_from: { environment: staging, soak: 24h }`):
//! the commit deploys only after a successful deployment of it to the
//! `promote_from` environment has run there for `soak`, with no incident
//! since: no `failure` or `error` status of a deployment of that commit
//! there, and no shipgate rollback away from it. The facts come from
//! GitHub's deployments and statuses (see `crate::deploy::soak`), so the
//! server after a restart and the Action without a store judge alike.

use chrono::{DateTime, Utc};

use super::{Actor, Gate};
use crate::config::repo::Role;

pub const SOAK: &str = "Soak";

/// Something that happened to the commit in the soak environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoakEventKind {
    /// A deployment of the commit reached `success`.
    Succeeded { deployment: i64 },
    /// A deployment of the commit reported `failure` or `error`.
    Failed { deployment: i64, state: String },
    /// A shipgate rollback deployment took the environment away from the commit.
    RolledBack { rollback: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoakEvent {
    pub at: DateTime<Utc>,
    pub kind: SoakEventKind,
}

impl SoakEvent {
    fn incident(&self) -> bool {
        !matches!(self.kind, SoakEventKind::Succeeded { .. })
    }
}

/// The commit's history in the environment it soaks in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoakFacts {
    /// The environment it soaks in (`promote_from.environment`).
    pub environment: String,
    pub soak: std::time::Duration,
    pub sha: String,
    /// In any order.
    pub events: Vec<SoakEvent>,
}

/// Where the commit stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoakState {
    /// No deployment of the commit there ever succeeded.
    Never,
    /// An incident, and no successful deployment since.
    Reset(SoakEvent),
    /// Running there since `since`, not yet for long enough. `after`: the
    /// incident the clock restarted after, if any.
    Soaking {
        since: DateTime<Utc>,
        deployment: i64,
        left: chrono::Duration,
        after: Option<SoakEvent>,
    },
    /// Running there without incident for `soak` or longer.
    Soaked {
        since: DateTime<Utc>,
        deployment: i64,
        elapsed: chrono::Duration,
    },
}

impl SoakFacts {
    /// The soak clock starts at the first success after the latest
    /// incident; exactly `soak` later it has soaked.
    pub fn state(&self, now: DateTime<Utc>) -> SoakState {
        let soak = chrono::Duration::from_std(self.soak).unwrap_or(chrono::Duration::MAX);
        let last_incident = self
            .events
            .iter()
            .filter(|e| e.incident())
            .max_by_key(|e| e.at);
        let first_clean = self
            .events
            .iter()
            .filter_map(|e| match e.kind {
                SoakEventKind::Succeeded { deployment }
                    if last_incident.is_none_or(|i| e.at > i.at) =>
                {
                    Some((e.at, deployment))
                }
                _ => None,
            })
            .min_by_key(|(at, _)| *at);
        match (first_clean, last_incident) {
            (None, None) => SoakState::Never,
            (None, Some(i)) => SoakState::Reset(i.clone()),
            (Some((since, deployment)), after) => {
                let elapsed = now - since;
                if elapsed >= soak {
                    SoakState::Soaked {
                        since,
                        deployment,
                        elapsed,
                    }
                } else {
                    SoakState::Soaking {
                        since,
                        deployment,
                        left: soak - elapsed,
                        after: after.cloned(),
                    }
                }
            }
        }
    }

    /// When a soak still running ends (`None`: it is not running).
    pub fn ends_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.state(now) {
            SoakState::Soaking { left, .. } => Some(now + left),
            _ => None,
        }
    }
}

/// `3h 12m`, `25h`, `40m`: whole minutes, rounded up when `up` (time left
/// never shows as `0m`).
pub fn span(d: chrono::Duration, up: bool) -> String {
    let secs = d.num_seconds().max(0);
    let minutes = if up { (secs + 59) / 60 } else { secs / 60 };
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h {m}m"),
    }
}

fn at(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn incident(e: &SoakEvent, sha: &str) -> String {
    match &e.kind {
        SoakEventKind::Failed { deployment, state } => {
            format!("deployment {deployment} reported `{state}` at {}", at(e.at))
        }
        SoakEventKind::RolledBack { rollback } => format!(
            "rollback deployment {rollback} took it away from `{}` at {}",
            crate::text::short(sha),
            at(e.at)
        ),
        SoakEventKind::Succeeded { deployment } => {
            format!("deployment {deployment} succeeded at {}", at(e.at))
        }
    }
}

/// The soak gate of deploying `facts.sha` to `env_name` at `now`. A
/// maintainer's (or admin's) `force` opens it, and says so.
pub fn soak_gate(
    env_name: &str,
    facts: &SoakFacts,
    now: DateTime<Utc>,
    force_by: Option<&Actor>,
) -> Gate {
    let from = &facts.environment;
    let soak = span(
        chrono::Duration::from_std(facts.soak).unwrap_or(chrono::Duration::MAX),
        true,
    );
    let short = crate::text::short(&facts.sha);
    let closed = match facts.state(now) {
        SoakState::Soaked {
            since,
            deployment,
            elapsed,
        } => {
            return Gate::pass(
                SOAK,
                format!(
                    "`{short}` has run in `{from}` for {} without incident (deployment {deployment}, since {}; needs {soak})",
                    span(elapsed, false),
                    at(since)
                ),
            )
        }
        SoakState::Never => Gate::fail(
            SOAK,
            format!(
                "`{short}` was never deployed to `{from}` successfully; `{env_name}` takes a commit after {soak} there without incident"
            ),
        ),
        SoakState::Reset(e) => Gate::fail(
            SOAK,
            format!(
                "`{from}` soak reset: {}, and no deployment of `{short}` to `{from}` succeeded since; `{env_name}` takes it after {soak} there without incident",
                incident(&e, &facts.sha)
            ),
        ),
        SoakState::Soaking {
            since,
            deployment,
            left,
            after,
        } => {
            let restarted = after
                .map(|e| format!("; restarted after {}", incident(&e, &facts.sha)))
                .unwrap_or_default();
            Gate::wait(
                SOAK,
                format!(
                    "`{from}` soak: {} left (deployed `{short}` at {}, deployment {deployment}; needs {soak}){restarted}",
                    span(left, true),
                    at(since)
                ),
            )
        }
    };
    match force_by {
        Some(a) if a.at_least(Role::Maintain) => Gate::pass(
            SOAK,
            format!(
                "{} — overridden with `force` by @{}",
                closed.reason, a.login
            ),
        ),
        Some(_) => Gate {
            reason: format!("{} (`force` needs maintain or admin)", closed.reason),
            ..closed
        },
        None => closed,
    }
}

#[cfg(test)]
#[path = "soak_tests.rs"]
mod tests;
