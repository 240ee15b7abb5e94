//! The Action's `policy` gate: its conditions, or why there is nothing to
//! judge; and any gate that reads GitHub when GitHub fails.

use super::gates::gate_table;
use crate::deploy::gates::Gate;
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

#[cfg(test)]
mod tests {
    use super::*;

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
