//! Promotion after soak as people read it. The soak gate's reason (how
//! long is left, or what incident reset it) is drawn in the deploy reply,
//! the protection rule's answer and, here, the Action's `policy` gate.

use crate::deploy::gates::Gate;
use crate::render::policy::conditions_table;

/// The `policy` gate's details for a commit promoted to `environment`.
pub fn promotion_markdown(environment: &str, sha: &str, soak: &Gate) -> String {
    format!(
        "#### Promotion of `{}` to `{}`\n\n{}",
        crate::text::short(sha),
        crate::render::inline_text(environment),
        conditions_table(std::slice::from_ref(soak))
    )
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use crate::deploy::gates::soak::{soak_gate, SoakEvent, SoakEventKind, SoakFacts};
    use crate::deploy::gates::{Actor, Gate};
    use crate::render::chatops::{render_deploy_reply, DeployKind, DeployOutcome, DeployReply};
    use crate::render::gates::{protection_rule_comment, RuleVerdict};

    const SHA: &str = "abc1234def5678abc1234def5678abc1234def56";

    fn soak(events: Vec<SoakEvent>, force_by: Option<&Actor>) -> Gate {
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap();
        let facts = SoakFacts {
            environment: "staging".into(),
            soak: std::time::Duration::from_secs(24 * 3600),
            sha: SHA.into(),
            events,
        };
        soak_gate("production", &facts, now, force_by)
    }

    fn at(hours_ago: i64, minutes: i64) -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap()
            - Duration::hours(hours_ago)
            - Duration::minutes(minutes)
    }

    fn success(hours_ago: i64, minutes: i64, deployment: i64) -> SoakEvent {
        SoakEvent {
            at: at(hours_ago, minutes),
            kind: SoakEventKind::Succeeded { deployment },
        }
    }

    #[test]
    fn soak_refusals_and_passes() {
        let maya = Actor {
            login: "maya".into(),
            role: Some(crate::config::repo::Role::Maintain),
            listed: false,
        };
        let cases = [
            ("soaking", soak(vec![success(20, 48, 7)], None)),
            ("never deployed there", soak(vec![], None)),
            (
                "reset by a failure",
                soak(
                    vec![
                        success(30, 0, 7),
                        SoakEvent {
                            at: at(2, 0),
                            kind: SoakEventKind::Failed {
                                deployment: 7,
                                state: "failure".into(),
                            },
                        },
                    ],
                    None,
                ),
            ),
            (
                "reset by a rollback",
                soak(
                    vec![
                        success(30, 0, 7),
                        SoakEvent {
                            at: at(1, 0),
                            kind: SoakEventKind::RolledBack { rollback: 11 },
                        },
                    ],
                    None,
                ),
            ),
            ("soaked", soak(vec![success(25, 3, 7)], None)),
            ("overridden", soak(vec![success(23, 0, 7)], Some(&maya))),
        ];
        let mut out = String::new();
        for (what, gate) in cases {
            let reply = DeployReply {
                kind: DeployKind::Deploy,
                environment: "production".into(),
                requested: "#12 head".into(),
                sha: Some(SHA.into()),
                from_sha: None,
                actor: "alice".into(),
                gates: vec![
                    Gate::pass("Permission", "@alice has `maintain` (needs `maintain`)"),
                    gate.clone(),
                    Gate::pass("Freeze", "no freeze window active"),
                ],
                outcome: if gate.passed() {
                    DeployOutcome::Created { deployment_id: 42 }
                } else {
                    DeployOutcome::Refused
                },
                progress: None,
                notes: vec![],
            };
            out.push_str(&format!("==== {what}: /deploy reply\n"));
            out.push_str(&render_deploy_reply(&reply, ""));
            out.push_str("\n==== protection rule\n");
            out.push_str(&protection_rule_comment(
                if gate.passed() {
                    RuleVerdict::Approved
                } else {
                    RuleVerdict::Rejected
                },
                std::slice::from_ref(&gate),
            ));
            out.push_str("\n==== Action policy gate\n");
            out.push_str(&super::promotion_markdown("production", SHA, &gate));
            out.push('\n');
        }
        insta::assert_snapshot!(out);
    }
}
