//! Branch protection as code, as people read it: the tracking issue and its
//! comments (drift restored or audited, problems that need a human), the
//! plan of a pull request that edits the policy, the `shipgate/policy`
//! check run, and the Action's `policy` gate; and any gate that reads GitHub
//! when GitHub fails.

use super::gates::gate_table;
use crate::config::repo::CONFIG_PATH;
use crate::deploy::gates::Gate;
use crate::deploy::policy::FieldDiff;
use crate::text::inline_text;

/// The policy's conditions as a table headed `Condition`. Names come from
/// the config and reasons name people (`by @bob`): both are escaped.
pub fn conditions_table(conditions: &[Gate]) -> String {
    let shown: Vec<Gate> = conditions
        .iter()
        .map(|g| Gate {
            name: inline_text(&g.name),
            reason: inline_text(&g.reason),
            ..g.clone()
        })
        .collect();
    gate_table("Condition", &shown)
}

/// The gate's details when the step was not started by a pull request.
pub fn not_a_pull_request() -> String {
    "⏭️ policy: not a pull request event.\n".to_string()
}

/// The gate's details when the config has no policy for the pull request's
/// base branch.
pub fn no_branch_policy(base: &str) -> String {
    format!(
        "✅ policy: `{}` has no protection policy.\n",
        inline_text(base)
    )
}

/// A gate's details when a GitHub API call failed: what GitHub answered.
pub fn github_failure(error: &str) -> String {
    format!("❌ GitHub answered: {}\n", inline_text(error))
}

/// The tracking issue's body, written once when shipgate opens it.
pub const TRACKING_ISSUE_BODY: &str = "shipgate keeps branch protection as declared in `.github/shipgate.yml` (`protection:`). Every drift it finds and every change it makes is reported here, one comment per event.";

/// Settings that differ: found on GitHub, and what the policy says.
pub fn diff_table(diffs: &[FieldDiff]) -> String {
    let mut t = String::from("| Setting | Found | Policy |\n|---|---|---|\n");
    for d in diffs {
        t.push_str(&format!(
            "| `{}` | {} | {} |\n",
            inline_text(&d.field),
            inline_text(&d.live),
            inline_text(&d.desired)
        ));
    }
    t
}

/// What enforcement did to one branch.
pub enum Enforced<'a> {
    /// The branch does not exist yet (reported once).
    Missing { branch: &'a str },
    /// Audit mode: the drift, unchanged.
    Audited {
        branch: &'a str,
        diffs: &'a [FieldDiff],
    },
    /// The branch was put back to the policy.
    Restored {
        branch: &'a str,
        diffs: &'a [FieldDiff],
    },
    /// Audit mode: a ruleset of the policy differs (or is absent).
    RulesetAudited {
        name: &'a str,
        absent: bool,
        diffs: &'a [FieldDiff],
    },
    /// A ruleset was put back to the policy, or created when it was absent.
    RulesetRestored {
        name: &'a str,
        created: bool,
        diffs: &'a [FieldDiff],
    },
}

/// One comment on the tracking issue: what triggered enforcement, who, and
/// each branch it found drifted or missing.
pub fn enforcement_report(trigger: &str, actor: Option<&str>, branches: &[Enforced]) -> String {
    let who = actor.map(|a| format!(" by @{a}")).unwrap_or_default();
    let sections: Vec<String> = branches
        .iter()
        .map(|b| match b {
            Enforced::Missing { branch } => format!(
                "⏭️ Branch `{}` does not exist yet; its policy applies once it is created.",
                inline_text(branch)
            ),
            Enforced::Audited { branch, diffs } => format!(
                "🔎 **`{}` differs from the policy** (audit mode: nothing changed)\n\n{}",
                inline_text(branch),
                diff_table(diffs)
            ),
            Enforced::Restored { branch, diffs } => format!(
                "✅ **`{}` restored to the policy**\n\n{}",
                inline_text(branch),
                diff_table(diffs)
            ),
            Enforced::RulesetAudited {
                name,
                absent,
                diffs,
            } => format!(
                "🔎 **Ruleset `{}` {}** (audit mode: nothing changed)\n\n{}",
                inline_text(name),
                if *absent {
                    "is missing"
                } else {
                    "differs from the policy"
                },
                diff_table(diffs)
            ),
            Enforced::RulesetRestored {
                name,
                created,
                diffs,
            } => format!(
                "✅ **Ruleset `{}` {}**\n\n{}",
                inline_text(name),
                if *created {
                    "created from the policy"
                } else {
                    "restored to the policy"
                },
                diff_table(diffs)
            ),
        })
        .collect();
    format!(
        "#### Branch protection: {trigger}{who}\n\n{}",
        sections.join("\n\n")
    )
}

/// The policy file on the default branch does not load; what shipgate
/// enforces meanwhile depends on whether an earlier valid one is known.
pub fn config_broken(default_branch: &str, error: &str, last_valid_known: bool) -> String {
    let meanwhile = if last_valid_known {
        "shipgate keeps enforcing the last valid policy until it loads again, and `shipgate/policy` fails on every pull request meanwhile."
    } else {
        "No earlier valid policy is known; `shipgate/policy` fails on every pull request until the file loads."
    };
    format!(
        "⛔ `{CONFIG_PATH}` on `{default_branch}` does not load: {}\n\n{meanwhile}",
        inline_text(error)
    )
}

/// A problem only a human can fix, with the fix.
pub enum Problem<'a> {
    /// GitHub answered 403: the App lacks Administration access.
    Forbidden { github_says: &'a str },
    /// The repository's plan has no branch protection.
    Plan { github_says: &'a str },
}

pub fn problem(p: &Problem) -> String {
    match p {
        Problem::Forbidden { github_says } => format!(
            "⛔ shipgate cannot read or change branch protection: GitHub answered 403 ({}). Grant the App the **Administration: read & write** repository permission (or use a token with admin rights) and the policy will be applied on the next change.",
            inline_text(github_says)
        ),
        Problem::Plan { github_says } => format!(
            "⛔ Branch protection is not available for this repository on its current plan (GitHub: {}). Make the repository public or upgrade the plan; meanwhile the `shipgate/policy` check enforces the policy on pull requests — make it a required check.",
            inline_text(github_says)
        ),
    }
}

/// What merging a pull request would do to one branch.
pub enum Planned<'a> {
    Missing {
        branch: &'a str,
    },
    Unreadable {
        branch: &'a str,
    },
    NoChange {
        branch: &'a str,
    },
    Changes {
        branch: &'a str,
        diffs: &'a [FieldDiff],
    },
    /// A ruleset of the proposed policy: created (absent today), changed,
    /// or unchanged (`diffs` empty).
    Ruleset {
        name: &'a str,
        absent: bool,
        diffs: &'a [FieldDiff],
    },
    /// A ruleset the current policy names and the proposed one does not:
    /// shipgate stops managing it and leaves it as it is.
    RulesetReleased {
        name: &'a str,
    },
    /// shipgate cannot read the repository's rulesets.
    RulesetsUnreadable,
}

/// The plan of a pull request that edits the policy (check run summary
/// and sticky comment).
pub fn plan(audit: bool, branches: &[Planned]) -> String {
    let mut sections: Vec<String> = branches
        .iter()
        .map(|b| match b {
            Planned::Missing { branch } => {
                format!("⏭️ `{}` does not exist yet.", inline_text(branch))
            }
            Planned::Unreadable { branch } => format!(
                "⛔ `{}`: shipgate cannot read its protection (needs Administration: read).",
                inline_text(branch)
            ),
            Planned::NoChange { branch } => format!("✅ `{}`: no change.", inline_text(branch)),
            Planned::Changes { branch, diffs } => format!(
                "✏️ `{}`: {} change(s) when merged\n\n{}",
                inline_text(branch),
                diffs.len(),
                diff_table(diffs)
            ),
            Planned::Ruleset {
                name, diffs: [], ..
            } => {
                format!("✅ Ruleset `{}`: no change.", inline_text(name))
            }
            Planned::Ruleset {
                name,
                absent: true,
                diffs,
            } => format!(
                "🆕 Ruleset `{}`: created when merged\n\n{}",
                inline_text(name),
                diff_table(diffs)
            ),
            Planned::Ruleset { name, diffs, .. } => format!(
                "✏️ Ruleset `{}`: {} change(s) when merged\n\n{}",
                inline_text(name),
                diffs.len(),
                diff_table(diffs)
            ),
            Planned::RulesetReleased { name } => format!(
                "⏏️ Ruleset `{}`: no longer in the policy; shipgate stops managing it and leaves it on GitHub as it is (delete it by hand if it should go).",
                inline_text(name)
            ),
            Planned::RulesetsUnreadable => "⛔ Rulesets: shipgate cannot read them (needs Administration: read).".to_string(),
        })
        .collect();
    if sections.is_empty() {
        sections.push("No branch protection policy.".into());
    }
    let mode = if audit {
        " (audit mode: drift is reported, not changed)"
    } else {
        ""
    };
    format!(
        "### Branch protection plan{mode}\n\n{}",
        sections.join("\n\n")
    )
}

/// The plan when the pull request's config does not load.
pub fn plan_invalid_config(error: &str) -> String {
    format!("❌ `{CONFIG_PATH}` is invalid: {}", inline_text(error))
}

/// The `shipgate/policy` check run's title and summary. `broken`: the
/// default branch's file does not load (its error, and whether the
/// conditions shown are the last valid policy's).
pub fn policy_check(
    base: &str,
    default_branch: &str,
    gates: &[Gate],
    unmet: &[String],
    broken: Option<(&str, bool)>,
) -> (String, String) {
    let title = match broken {
        Some((e, _)) => format!("{CONFIG_PATH} on `{default_branch}` does not load: {e}"),
        None if unmet.is_empty() => format!("meets the `{base}` policy"),
        None => format!("{} unmet: {}", unmet.len(), unmet.join("; ")),
    };
    let mut summary = conditions_table(gates);
    if let Some((e, rules_known)) = broken {
        let basis = if rules_known {
            "The conditions above are the last valid policy's."
        } else {
            "No earlier valid policy is known."
        };
        summary = format!(
            "❌ `{CONFIG_PATH}` on `{default_branch}` does not load: {}\n\n{basis}\n\n{summary}",
            inline_text(e)
        );
    }
    (title.chars().take(250).collect(), summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diffs() -> Vec<FieldDiff> {
        vec![
            FieldDiff {
                field: "required_approving_review_count".into(),
                live: "1".into(),
                desired: "2".into(),
            },
            FieldDiff {
                field: "enforce_admins".into(),
                live: "false | @x".into(),
                desired: "true".into(),
            },
        ]
    }

    #[test]
    fn enforcement_report() {
        let d = diffs();
        insta::assert_snapshot!(super::enforcement_report(
            "policy changed on the default branch",
            Some("alice"),
            &[
                Enforced::Restored {
                    branch: "main",
                    diffs: &d
                },
                Enforced::Audited {
                    branch: "release/*",
                    diffs: &d[..1]
                },
                Enforced::Missing { branch: "next" },
            ],
        ));
    }

    #[test]
    fn plan() {
        let d = diffs();
        insta::assert_snapshot!(super::plan(
            true,
            &[
                Planned::Changes {
                    branch: "main",
                    diffs: &d
                },
                Planned::NoChange { branch: "release" },
                Planned::Missing { branch: "next" },
                Planned::Unreadable { branch: "locked" },
            ],
        ));
        assert_eq!(
            super::plan(false, &[]),
            "### Branch protection plan\n\nNo branch protection policy."
        );
    }

    #[test]
    fn ruleset_enforcement_report() {
        let d = diffs();
        insta::assert_snapshot!(super::enforcement_report(
            "ruleset `releases` edited",
            Some("mallory"),
            &[
                Enforced::RulesetRestored {
                    name: "releases",
                    created: false,
                    diffs: &d[..1]
                },
                Enforced::RulesetRestored {
                    name: "tags",
                    created: true,
                    diffs: &d[1..]
                },
                Enforced::RulesetAudited {
                    name: "hotfix",
                    absent: false,
                    diffs: &d[..1]
                },
                Enforced::RulesetAudited {
                    name: "gone",
                    absent: true,
                    diffs: &d[..1]
                },
            ],
        ));
    }

    #[test]
    fn ruleset_plan() {
        let d = diffs();
        insta::assert_snapshot!(super::plan(
            false,
            &[
                Planned::Ruleset {
                    name: "releases",
                    absent: false,
                    diffs: &d
                },
                Planned::Ruleset {
                    name: "tags",
                    absent: true,
                    diffs: &d[..1]
                },
                Planned::Ruleset {
                    name: "same",
                    absent: false,
                    diffs: &[]
                },
                Planned::RulesetReleased { name: "old" },
                Planned::RulesetsUnreadable,
            ],
        ));
    }

    #[test]
    fn problems_and_broken_config() {
        insta::assert_snapshot!(format!(
            "{}\n\n---\n\n{}\n\n---\n\n{}\n\n---\n\n{}\n\n---\n\n{}",
            problem(&Problem::Forbidden {
                github_says: "Resource not accessible by integration"
            }),
            problem(&Problem::Plan {
                github_says: "Upgrade to GitHub Pro"
            }),
            config_broken("main", "line 3: unknown field `protectoin`", true),
            config_broken("main", "line 3: unknown field `protectoin`", false),
            plan_invalid_config("line 2: expected a map"),
        ));
    }

    #[test]
    fn policy_check() {
        let gates = vec![
            Gate::pass("Approvals", "2 of 2 approvals (by @bob, @carol)"),
            Gate::wait("Checks", "`ci` in progress on `abc1234`"),
        ];
        let unmet = vec!["Checks: `ci` in progress on `abc1234`".to_string()];
        let (title, summary) = super::policy_check("main", "main", &gates, &unmet, None);
        let (broken_title, broken_summary) =
            super::policy_check("main", "main", &gates, &unmet, Some(("line 1: bad", true)));
        insta::assert_snapshot!(format!(
            "{title}\n\n{summary}\n---\n{broken_title}\n\n{broken_summary}"
        ));
    }

    #[test]
    fn conditions_table() {
        insta::assert_snapshot!(super::conditions_table(&[
            Gate::pass("Approvals", "2 of 2 approvals (by @alice, @bob)"),
            Gate::fail("Checks `ci | lint`", "`ci` failed on `abc1234`"),
            Gate::skipped("Linear history", "not required"),
        ]));
    }

    #[test]
    fn policy_notes() {
        insta::assert_snapshot!([
            not_a_pull_request(),
            no_branch_policy("release | @acme/ops"),
            github_failure("422 Unprocessable Entity: <b>@octocat</b>\nretry"),
        ]
        .concat());
    }
}
