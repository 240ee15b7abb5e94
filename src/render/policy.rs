//! The Action's `policy` gate when there is nothing to judge, and any gate
//! that reads GitHub when GitHub fails. (The conditions themselves are a
//! [`super::gates::gate_table`].)

use crate::text::inline_text;

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
    fn policy_notes() {
        insta::assert_snapshot!([
            not_a_pull_request(),
            no_branch_policy("release | @acme/ops"),
            github_failure("422 Unprocessable Entity: <b>@octocat</b>\nretry"),
        ]
        .concat());
    }
}
