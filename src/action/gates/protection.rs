//! The `protection` gate: each branch's live protection against the policy.

use crate::action::request::{api_failure, client, CheckError, CheckRequest, GateResult};
use crate::action::Runner;
use crate::config::repo::RepoConfig;
use crate::deploy::gates::Verdict;
use crate::github::repos::ProtectionRead;
use crate::render::protection::{
    branch_matches, branch_missing, drift_table, no_protection_policy,
};

pub async fn run(
    runner: &Runner,
    req: &CheckRequest,
    config: &RepoConfig,
) -> Result<GateResult, CheckError> {
    if config.protection.branches.is_empty() {
        return Ok(GateResult::new(
            "protection",
            Verdict::Pass,
            "no protection policy",
            no_protection_policy(),
        ));
    }
    let (_, api, repo) = client(runner, req, "protection")?;
    let mut md = String::new();
    let mut drifted = 0;
    for (branch, desired) in &config.protection.branches {
        let live = match api.protection(&repo, branch).await {
            Ok(ProtectionRead::Protected(l)) => Some(*l),
            Ok(ProtectionRead::Unprotected) => None,
            Ok(ProtectionRead::BranchMissing) => {
                md.push_str(&branch_missing(branch));
                continue;
            }
            Err(crate::github::GitHubError::Forbidden(m)) => {
                return Err(CheckError::Input(format!("the `protection` gate needs a token that can read branch protection (admin): {m}")))
            }
            Err(e) => return Ok(api_failure("protection", e)),
        };
        let diffs = crate::deploy::policy::diff(desired, live.as_ref());
        if diffs.is_empty() {
            md.push_str(&branch_matches(branch));
        } else {
            drifted += 1;
            md.push_str(&drift_table(branch, &diffs));
        }
    }
    let mut r = if drifted == 0 {
        GateResult::new(
            "protection",
            Verdict::Pass,
            "every branch matches the policy",
            md,
        )
    } else {
        GateResult::new(
            "protection",
            Verdict::Fail,
            format!("{drifted} branch(es) differ from the policy"),
            md,
        )
    };
    r.errors = drifted;
    Ok(r)
}
