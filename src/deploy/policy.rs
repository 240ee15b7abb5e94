//! Branch protection as code: the live protection GitHub reports, the
//! difference from the policy in `.github/shipgate.yml`, the PUT body that
//! restores it (keeping every setting the policy does not mention), and the
//! `shipgate/policy` evaluation of a pull request against its base branch's
//! policy — built from the same gates `/deploy` uses.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::repo::{BranchProtection, RequiredCheck};
use crate::deploy::gates::{self, ApprovalRule, DecisiveReview, Gate, PullFacts, ReviewerRoles};
use crate::github::content::CommitStatus;
use crate::github::repos::CheckRun;

pub use crate::github::protection::{
    Actors, Enabled, LiveCheck, LiveProtection, LiveReviews, LiveStatusChecks, Login,
};

fn on(e: &Option<Enabled>) -> bool {
    e.as_ref().is_some_and(|e| e.enabled)
}

/// One setting that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDiff {
    pub field: String,
    pub live: String,
    pub desired: String,
}

/// The settings the policy names whose live value differs. `live` is
/// `None` for an unprotected branch.
pub fn diff(desired: &BranchProtection, live: Option<&LiveProtection>) -> Vec<FieldDiff> {
    let empty = LiveProtection::default();
    let l = live.unwrap_or(&empty);
    let reviews = l.required_pull_request_reviews.as_ref();
    let mut out = Vec::new();
    let mut cmp = |field: &str, live: String, desired: Option<String>| {
        if let Some(d) = desired {
            if d != live {
                out.push(FieldDiff {
                    field: field.into(),
                    live,
                    desired: d,
                });
            }
        }
    };
    cmp(
        "required_approvals",
        reviews
            .map(|r| r.required_approving_review_count.to_string())
            .unwrap_or_else(|| "off".into()),
        desired.required_approvals.map(|n| n.to_string()),
    );
    let flag = |b: bool| b.to_string();
    cmp(
        "dismiss_stale_reviews",
        flag(reviews.is_some_and(|r| r.dismiss_stale_reviews)),
        desired.dismiss_stale_reviews.map(flag),
    );
    cmp(
        "require_code_owner_reviews",
        flag(reviews.is_some_and(|r| r.require_code_owner_reviews)),
        desired.require_code_owner_reviews.map(flag),
    );
    cmp(
        "require_last_push_approval",
        flag(reviews.is_some_and(|r| r.require_last_push_approval)),
        desired.require_last_push_approval.map(flag),
    );
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    cmp(
        "required_checks",
        list(&l.contexts().unwrap_or_default()),
        desired.required_checks.as_ref().map(|d| {
            let mut d = d.clone();
            d.sort();
            list(&d)
        }),
    );
    cmp(
        "strict",
        flag(l.required_status_checks.as_ref().is_some_and(|c| c.strict)),
        desired.strict.map(flag),
    );
    cmp(
        "enforce_admins",
        flag(on(&l.enforce_admins)),
        desired.enforce_admins.map(flag),
    );
    cmp(
        "allow_force_pushes",
        flag(on(&l.allow_force_pushes)),
        desired.allow_force_pushes.map(flag),
    );
    cmp(
        "allow_deletions",
        flag(on(&l.allow_deletions)),
        desired.allow_deletions.map(flag),
    );
    cmp(
        "required_linear_history",
        flag(on(&l.required_linear_history)),
        desired.required_linear_history.map(flag),
    );
    cmp(
        "required_conversation_resolution",
        flag(on(&l.required_conversation_resolution)),
        desired.required_conversation_resolution.map(flag),
    );
    out
}

/// The PUT body: the policy over the live settings. GitHub replaces the whole
/// protection and requires the four top-level fields (`null` = off), so
/// everything the policy does not mention is written back as it is.
pub fn put_body(desired: &BranchProtection, live: Option<&LiveProtection>) -> Value {
    let empty = LiveProtection::default();
    let l = live.unwrap_or(&empty);

    let checks_on = desired.required_checks.is_some()
        || desired.strict.is_some()
        || l.required_status_checks.is_some();
    let required_status_checks = if checks_on {
        let contexts = desired
            .required_checks
            .clone()
            .unwrap_or_else(|| l.contexts().unwrap_or_default());
        let live_checks = l
            .required_status_checks
            .as_ref()
            .map(|c| c.checks.clone())
            .unwrap_or_default();
        let checks: Vec<Value> = contexts
            .iter()
            .map(|ctx| {
                match live_checks
                    .iter()
                    .find(|k| &k.context == ctx)
                    .and_then(|k| k.app_id)
                {
                    Some(app) => json!({ "context": ctx, "app_id": app }),
                    None => json!({ "context": ctx }),
                }
            })
            .collect();
        let strict = desired
            .strict
            .unwrap_or_else(|| l.required_status_checks.as_ref().is_some_and(|c| c.strict));
        json!({ "strict": strict, "checks": checks })
    } else {
        Value::Null
    };

    let reviews_named = desired.required_approvals.is_some()
        || desired.dismiss_stale_reviews.is_some()
        || desired.require_code_owner_reviews.is_some()
        || desired.require_last_push_approval.is_some();
    let lr = l.required_pull_request_reviews.clone();
    let required_pull_request_reviews = if reviews_named || lr.is_some() {
        let lr = lr.unwrap_or_default();
        let mut r = json!({
            "dismiss_stale_reviews": desired.dismiss_stale_reviews.unwrap_or(lr.dismiss_stale_reviews),
            "require_code_owner_reviews": desired.require_code_owner_reviews.unwrap_or(lr.require_code_owner_reviews),
            "required_approving_review_count": desired.required_approvals.unwrap_or(lr.required_approving_review_count),
            "require_last_push_approval": desired.require_last_push_approval.unwrap_or(lr.require_last_push_approval),
        });
        if let Some(d) = &lr.dismissal_restrictions {
            r["dismissal_restrictions"] = d.to_put(false);
        }
        if let Some(b) = &lr.bypass_pull_request_allowances {
            r["bypass_pull_request_allowances"] = b.to_put(true);
        }
        r
    } else {
        Value::Null
    };

    json!({
        "required_status_checks": required_status_checks,
        "enforce_admins": desired.enforce_admins.unwrap_or(on(&l.enforce_admins)),
        "required_pull_request_reviews": required_pull_request_reviews,
        "restrictions": l.restrictions.as_ref().map(|r| r.to_put(true)).unwrap_or(Value::Null),
        "required_linear_history": desired.required_linear_history.unwrap_or(on(&l.required_linear_history)),
        "allow_force_pushes": desired.allow_force_pushes.unwrap_or(on(&l.allow_force_pushes)),
        "allow_deletions": desired.allow_deletions.unwrap_or(on(&l.allow_deletions)),
        "required_conversation_resolution": desired.required_conversation_resolution.unwrap_or(on(&l.required_conversation_resolution)),
        "block_creations": on(&l.block_creations),
        "lock_branch": on(&l.lock_branch),
        "allow_fork_syncing": on(&l.allow_fork_syncing),
    })
}

/// Check names shipgate publishes itself; never required of themselves.
pub const OWN_CHECKS: &[&str] = &["shipgate/policy", "shipgate/policy-plan"];

/// What a pull request is judged on: its reviewers' latest decisive
/// reviews and their roles, the head's checks, and how far behind the base
/// it is.
#[derive(Debug, Clone, Default)]
pub struct PolicyFacts {
    pub reviews: Vec<DecisiveReview>,
    pub roles: ReviewerRoles,
    pub too_many_reviewers: bool,
    pub runs: Vec<CheckRun>,
    pub statuses: Vec<CommitStatus>,
    pub behind_by: Option<u64>,
}

/// A pull request against its base branch's policy: approvals counted as
/// the deploy decision counts them (reviewers with write access or more, the
/// latest decisive review per person, the author never; with
/// `dismiss_stale_reviews`, only approvals of the head commit), required
/// checks on the head SHA (shipgate's own excluded), and being up to date
/// with the base when `strict`.
pub fn evaluate_pull_request(
    policy: &BranchProtection,
    head_sha: &str,
    facts: &PolicyFacts,
) -> Vec<Gate> {
    let mut out = Vec::new();
    if let Some(n) = policy.required_approvals {
        if facts.too_many_reviewers && n > 0 {
            out.push(Gate::fail(
                gates::APPROVALS,
                format!(
                    "more than {} reviewers with a decisive review; shipgate checks at most {}",
                    crate::deploy::MAX_REVIEWERS,
                    crate::deploy::MAX_REVIEWERS
                ),
            ));
        } else {
            let rule = ApprovalRule {
                required: n,
                count_stale: policy.dismiss_stale_reviews != Some(true),
            };
            out.extend(gates::approvals_gate(
                rule,
                &facts.reviews,
                &facts.roles,
                head_sha,
            ));
        }
    }
    if let Some(required) = &policy.required_checks {
        let required: Vec<RequiredCheck> = required
            .iter()
            .filter(|c| !OWN_CHECKS.contains(&c.as_str()))
            .map(|c| RequiredCheck::from(c.as_str()))
            .collect();
        let runs: Vec<CheckRun> = facts
            .runs
            .iter()
            .filter(|r| !OWN_CHECKS.contains(&r.name.as_str()))
            .cloned()
            .collect();
        let statuses: Vec<CommitStatus> = facts
            .statuses
            .iter()
            .filter(|s| !OWN_CHECKS.contains(&s.context.as_str()))
            .cloned()
            .collect();
        out.extend(gates::checks_gate(
            &required,
            &runs,
            &statuses,
            crate::text::short(head_sha),
        ));
    }
    if policy.strict == Some(true) {
        out.push(match facts.behind_by {
            Some(0) | None => {
                Gate::pass("Up to date", "the branch contains the base's latest commit")
            }
            Some(n) => Gate::fail(
                "Up to date",
                format!("{n} commit(s) behind the base branch"),
            ),
        });
    }
    out
}

/// Gathers what the policy needs from GitHub (only what it names) and
/// evaluates the pull request: the server's `shipgate/policy` check and the
/// Action's `policy` gate both call this.
pub async fn evaluate_pull_request_live(
    api: &crate::github::Api,
    repo: &str,
    rules: &BranchProtection,
    pr: &PullFacts,
) -> Result<Vec<Gate>, crate::github::GitHubError> {
    let mut facts = PolicyFacts::default();
    if rules.required_approvals.is_some_and(|n| n > 0) {
        let (reviews, roles, too_many) =
            crate::deploy::review_facts(api, repo, pr.number, &pr.author).await?;
        facts.reviews = reviews;
        facts.roles = roles;
        facts.too_many_reviewers = too_many;
    }
    if rules.required_checks.is_some() {
        (facts.runs, facts.statuses) = api.checks(repo, &pr.head_sha).await?;
    }
    if rules.strict == Some(true) {
        facts.behind_by = Some(api.behind_by(repo, &pr.base_ref, &pr.head_sha).await?);
    }
    Ok(evaluate_pull_request(rules, &pr.head_sha, &facts))
}

/// The unmet conditions, one line each.
pub fn unmet(gates: &[Gate]) -> Vec<String> {
    gates
        .iter()
        .filter(|g| !g.passed())
        .map(|g| format!("{}: {}", g.name, g.reason))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(v: Value) -> LiveProtection {
        serde_json::from_value(v).unwrap()
    }

    fn policy(yaml: &str) -> BranchProtection {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn an_unprotected_branch_differs_in_every_named_setting() {
        let p = policy("{ required_approvals: 2, required_checks: [ci], strict: true, enforce_admins: true, allow_force_pushes: false }");
        let d = diff(&p, None);
        let fields: Vec<_> = d
            .iter()
            .map(|f| (f.field.as_str(), f.live.as_str(), f.desired.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("required_approvals", "off", "2"),
                ("required_checks", "none", "ci"),
                ("strict", "false", "true"),
                ("enforce_admins", "false", "true")
            ]
        );
        let body = put_body(&p, None);
        assert_eq!(
            body["required_status_checks"],
            json!({ "strict": true, "checks": [{ "context": "ci" }] })
        );
        assert_eq!(
            body["required_pull_request_reviews"]["required_approving_review_count"],
            json!(2)
        );
        assert_eq!(body["restrictions"], Value::Null);
        assert_eq!(body["enforce_admins"], json!(true));
    }

    #[test]
    fn a_compliant_branch_has_no_diff_and_unmentioned_settings_are_kept() {
        let l = live(json!({
            "required_status_checks": { "strict": true, "contexts": ["ci", "lint"], "checks": [{ "context": "ci", "app_id": 15368 }, { "context": "lint", "app_id": null }] },
            "enforce_admins": { "enabled": true },
            "required_pull_request_reviews": {
                "dismiss_stale_reviews": true, "require_code_owner_reviews": true, "required_approving_review_count": 2, "require_last_push_approval": false,
                "dismissal_restrictions": { "users": [{ "login": "octocat" }], "teams": [{ "slug": "leads" }] }
            },
            "restrictions": { "users": [], "teams": [{ "slug": "release" }], "apps": [] },
            "required_linear_history": { "enabled": true },
            "allow_force_pushes": { "enabled": false },
            "allow_deletions": { "enabled": false },
            "required_conversation_resolution": { "enabled": false },
            "lock_branch": { "enabled": false },
        }));
        let p = policy("{ required_approvals: 2, required_checks: [lint, ci], strict: true, enforce_admins: true }");
        assert!(diff(&p, Some(&l)).is_empty());
        // A partial policy changing one thing writes everything else back.
        let p = policy("{ required_approvals: 3 }");
        assert_eq!(
            diff(&p, Some(&l)),
            [FieldDiff {
                field: "required_approvals".into(),
                live: "2".into(),
                desired: "3".into()
            }]
        );
        let body = put_body(&p, Some(&l));
        assert_eq!(
            body["required_status_checks"],
            json!({ "strict": true, "checks": [{ "context": "ci", "app_id": 15368 }, { "context": "lint" }] })
        );
        assert_eq!(
            body["required_pull_request_reviews"]["required_approving_review_count"],
            json!(3)
        );
        assert_eq!(
            body["required_pull_request_reviews"]["require_code_owner_reviews"],
            json!(true)
        );
        assert_eq!(
            body["required_pull_request_reviews"]["dismissal_restrictions"],
            json!({ "users": ["octocat"], "teams": ["leads"] })
        );
        assert_eq!(
            body["restrictions"],
            json!({ "users": [], "teams": ["release"], "apps": [] })
        );
        assert_eq!(body["required_linear_history"], json!(true));
    }

    #[test]
    fn a_pull_request_against_its_policy() {
        use crate::config::repo::Role;
        use crate::github::repos::{Review, UserRef};
        let p = policy("{ required_approvals: 2, dismiss_stale_reviews: true, required_checks: [ci, shipgate/policy], strict: true }");
        let review = |who: &str, state: &str, commit: &str| Review {
            user: Some(UserRef { login: who.into() }),
            state: state.into(),
            commit_id: Some(commit.into()),
        };
        let reviews = [
            review("bob", "APPROVED", "head1"),
            review("carol", "APPROVED", "old0"),
            review("mallory", "APPROVED", "head1"),
        ];
        let facts = PolicyFacts {
            reviews: gates::decisive_reviews(&reviews, "alice"),
            roles: [
                ("bob".to_string(), Some(Role::Write)),
                ("carol".to_string(), Some(Role::Write)),
                ("mallory".to_string(), Some(Role::Read)),
            ]
            .into_iter()
            .collect(),
            runs: vec![CheckRun {
                name: "ci".into(),
                status: "completed".into(),
                conclusion: Some("success".into()),
                app: None,
            }],
            behind_by: Some(2),
            ..PolicyFacts::default()
        };
        let gates = evaluate_pull_request(&p, "head1", &facts);
        let failing: Vec<_> = gates
            .iter()
            .filter(|g| !g.passed())
            .map(|g| g.reason.as_str())
            .collect();
        assert_eq!(
            failing,
            [
                "1 of 2 approvals (by @bob); not counted: @carol (approved an earlier commit), @mallory (read)",
                "2 commit(s) behind the base branch"
            ]
        );
        assert!(
            gates.iter().any(|g| g.name == "Checks" && g.passed()),
            "shipgate/policy itself is not required: {gates:?}"
        );
    }
}
