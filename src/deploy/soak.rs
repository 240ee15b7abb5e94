//! The facts of the soak gate ([`crate::deploy::gates::soak`]), read from
//! GitHub: the deployments of the commit to the `promote_from` environment
//! with their whole status history (GitHub marks superseded ones
//! `inactive`, so a `success` anywhere in it counts), and shipgate's
//! rollback deployments there that name the commit (or one of its
//! deployments) as what they rolled back.
//!
//! A rollback's payload is read without asking the store who created it: it
//! can only hold a promotion back, never let one through.

use chrono::{DateTime, Utc};

use crate::config::repo::PromoteFrom;
use crate::deploy::gates::soak::{SoakEvent, SoakEventKind, SoakFacts};
use crate::deploy::payload::{DeploymentKind, DeploymentPayload};
use crate::github::repos::{Deployment, DeploymentStatus};
use crate::github::{Api, GitHubError};

/// The newest deployments of the environment read for rollbacks.
const ROLLBACKS_LOOKED_AT: u32 = 100;

/// Reads the soak facts of deploying `sha` after `promote`.
pub async fn soak_facts(
    api: &Api,
    repo: &str,
    promote: &PromoteFrom,
    sha: &str,
    now: DateTime<Utc>,
) -> Result<SoakFacts, GitHubError> {
    let env = promote.environment.as_str();
    let mut deployed = Vec::new();
    for d in api.deployments_of_sha(repo, env, sha).await? {
        if d.sha == sha && d.environment == env {
            let statuses = api.deployment_statuses(repo, d.id).await?;
            deployed.push((d, statuses));
        }
    }
    let recent = if deployed.is_empty() {
        Vec::new()
    } else {
        api.deployments(repo, env, ROLLBACKS_LOOKED_AT).await?
    };
    Ok(SoakFacts {
        environment: env.to_string(),
        soak: promote.soak.0,
        sha: sha.to_string(),
        events: events(env, sha, &deployed, &recent, now),
    })
}

fn time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// What happened to `sha` in `environment`: successes and failures of its
/// own deployments there, and rollbacks away from it. A status without a
/// time is no success, and a failure at `now`: unknown never counts for
/// a promotion.
pub fn events(
    environment: &str,
    sha: &str,
    deployed: &[(Deployment, Vec<DeploymentStatus>)],
    recent: &[Deployment],
    now: DateTime<Utc>,
) -> Vec<SoakEvent> {
    let mut out = Vec::new();
    let ids: Vec<i64> = deployed
        .iter()
        .filter(|(d, _)| d.sha == sha && d.environment == environment)
        .map(|(d, _)| d.id)
        .collect();
    for (d, statuses) in deployed {
        if !ids.contains(&d.id) {
            continue;
        }
        for st in statuses {
            let at = st.created_at.as_deref().and_then(time);
            let kind = match st.state.as_str() {
                "success" => SoakEventKind::Succeeded { deployment: d.id },
                "failure" | "error" => SoakEventKind::Failed {
                    deployment: d.id,
                    state: st.state.clone(),
                },
                _ => continue,
            };
            match (at, &kind) {
                (Some(at), _) => out.push(SoakEvent { at, kind }),
                (None, SoakEventKind::Failed { .. }) => out.push(SoakEvent { at: now, kind }),
                (None, _) => {}
            }
        }
    }
    for d in recent {
        if d.environment != environment || d.sha == sha {
            continue;
        }
        let p = DeploymentPayload::read(&d.payload);
        let away = p.previous_sha.as_deref() == Some(sha)
            || p.rolled_back_deployment.is_some_and(|id| ids.contains(&id));
        if p.kind == Some(DeploymentKind::Rollback) && away {
            out.push(SoakEvent {
                at: time(&d.created_at).unwrap_or(now),
                kind: SoakEventKind::RolledBack { rollback: d.id },
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SHA: &str = "abc1234def5678abc1234def5678abc1234def56";

    fn deployment(id: i64, sha: &str, environment: &str, payload: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "id": id, "sha": sha, "ref": sha, "environment": environment,
            "created_at": "2026-12-04T10:00:00Z", "payload": payload,
        }))
        .unwrap()
    }

    fn status(state: &str, at: Option<&str>) -> DeploymentStatus {
        serde_json::from_value(json!({ "state": state, "created_at": at })).unwrap()
    }

    fn now() -> DateTime<Utc> {
        time("2026-12-04T12:00:00Z").unwrap()
    }

    #[test]
    fn only_the_commits_deployments_to_the_soak_environment_count() {
        let deployed = vec![
            (
                deployment(1, SHA, "staging", json!({})),
                vec![
                    status("success", Some("2026-12-03T08:00:00Z")),
                    status("inactive", Some("2026-12-03T09:00:00Z")),
                    status("in_progress", Some("2026-12-03T07:00:00Z")),
                ],
            ),
            // A success in another environment, or of another commit, does not count.
            (
                deployment(2, SHA, "preview", json!({})),
                vec![status("success", Some("2026-12-01T08:00:00Z"))],
            ),
            (
                deployment(3, "other", "staging", json!({})),
                vec![status("success", Some("2026-12-01T08:00:00Z"))],
            ),
        ];
        let e = events("staging", SHA, &deployed, &[], now());
        assert_eq!(
            e,
            [SoakEvent {
                at: time("2026-12-03T08:00:00Z").unwrap(),
                kind: SoakEventKind::Succeeded { deployment: 1 }
            }]
        );
        // Only deployments to staging: the success in `preview` alone is "never".
        let only_preview = &deployed[1..2];
        assert!(events("staging", SHA, only_preview, &[], now()).is_empty());
    }

    #[test]
    fn failures_and_rollbacks_away_from_the_commit_are_incidents() {
        let deployed = vec![(
            deployment(1, SHA, "staging", json!({})),
            vec![
                status("success", Some("2026-12-03T08:00:00Z")),
                status("error", None),
            ],
        )];
        let recent = vec![
            deployment(
                5,
                "older",
                "staging",
                json!({ "kind": "rollback", "previous_sha": SHA }),
            ),
            deployment(
                6,
                "older",
                "staging",
                json!({ "kind": "rollback", "rolled_back_deployment": 1 }),
            ),
            // A deploy naming the commit as its predecessor is no rollback.
            deployment(
                7,
                "newer",
                "staging",
                json!({ "kind": "deploy", "previous_sha": SHA }),
            ),
            // A rollback away from another commit is not this one's incident.
            deployment(
                8,
                "older",
                "staging",
                json!({ "kind": "rollback", "previous_sha": "newer" }),
            ),
        ];
        let e = events("staging", SHA, &deployed, &recent, now());
        let kinds: Vec<_> = e.iter().map(|e| e.kind.clone()).collect();
        assert_eq!(
            kinds,
            [
                SoakEventKind::Succeeded { deployment: 1 },
                SoakEventKind::Failed {
                    deployment: 1,
                    state: "error".into()
                },
                SoakEventKind::RolledBack { rollback: 5 },
                SoakEventKind::RolledBack { rollback: 6 },
            ]
        );
        assert_eq!(e[1].at, now(), "an undated failure counts as of now");
    }
}
