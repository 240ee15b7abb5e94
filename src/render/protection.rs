//! Branch protection as the Action's `protection` gate reports it: per
//! branch, whether it exists, matches its policy, or which settings differ.

use super::policy::diff_table;
use crate::deploy::policy::FieldDiff;
use crate::text::inline_text;

/// The gate's details when the config has no `protection:` policy.
pub fn no_protection_policy() -> String {
    "✅ protection: no `protection:` policy in the config.\n".to_string()
}

/// A branch the policy names that the repository does not have.
pub fn branch_missing(branch: &str) -> String {
    format!("⏭️ `{}` does not exist.\n\n", inline_text(branch))
}

/// A branch whose live protection matches the policy.
pub fn branch_matches(branch: &str) -> String {
    format!("✅ `{}` matches the policy.\n\n", inline_text(branch))
}

/// A branch whose live protection differs from the policy: a table of the
/// settings that differ, what was found and what the policy asks.
pub fn drift_table(branch: &str, diffs: &[FieldDiff]) -> String {
    format!(
        "❌ `{}` differs from the policy:\n\n{}\n",
        inline_text(branch),
        diff_table(diffs)
    )
}

/// A ruleset of the policy whose live ruleset matches it.
pub fn ruleset_matches(name: &str) -> String {
    format!("✅ ruleset `{}` matches the policy.\n\n", inline_text(name))
}

/// A ruleset of the policy that differs from GitHub's, or that GitHub does
/// not have (`absent`).
pub fn ruleset_drift_table(name: &str, absent: bool, diffs: &[FieldDiff]) -> String {
    format!(
        "❌ ruleset `{}` {}:\n\n{}\n",
        inline_text(name),
        if absent {
            "does not exist"
        } else {
            "differs from the policy"
        },
        diff_table(diffs)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protection_details() {
        let diffs = vec![
            FieldDiff {
                field: "required_approvals".into(),
                live: "0".into(),
                desired: "2".into(),
            },
            FieldDiff {
                field: "required_checks".into(),
                live: "none".into(),
                desired: "ci | @acme/bots <!-- x -->".into(),
            },
        ];
        insta::assert_snapshot!([
            no_protection_policy(),
            branch_missing("release/1.x"),
            branch_matches("main"),
            drift_table("main | @octocat", &diffs),
            ruleset_matches("releases"),
            ruleset_drift_table("tags", true, &diffs[..1]),
            ruleset_drift_table("hotfix", false, &diffs[1..]),
        ]
        .concat());
    }
}
