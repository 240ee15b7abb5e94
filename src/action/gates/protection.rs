//! The `protection` gate: each branch's live protection, and each ruleset
//! of the policy, against the policy. It only reads.

use crate::action::request::{api_failure, client, CheckError, CheckRequest, GateResult};
use crate::action::Runner;
use crate::config::repo::RepoConfig;
use crate::deploy::gates::Verdict;
use crate::github::repos::ProtectionRead;
use crate::render::protection::{
    branch_matches, branch_missing, drift_table, no_protection_policy, ruleset_drift_table,
    ruleset_matches,
};

pub async fn run(
    runner: &Runner,
    req: &CheckRequest,
    config: &RepoConfig,
) -> Result<GateResult, CheckError> {
    if config.protection.is_empty() {
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
    if !config.protection.rulesets.is_empty() {
        match rulesets(&api, &repo, config, &mut md).await {
            Ok(n) => drifted += n,
            Err(crate::github::GitHubError::Forbidden(m)) => {
                return Err(CheckError::Input(format!("the `protection` gate needs a token that can read the repository's rulesets (admin): {m}")))
            }
            Err(e) => return Ok(api_failure("protection", e)),
        }
    }
    let mut r = if drifted == 0 {
        GateResult::new(
            "protection",
            Verdict::Pass,
            "every branch and ruleset matches the policy",
            md,
        )
    } else {
        GateResult::new(
            "protection",
            Verdict::Fail,
            format!("{drifted} branch(es) or ruleset(s) differ from the policy"),
            md,
        )
    };
    r.errors = drifted;
    Ok(r)
}

/// Each ruleset of the policy against the repository's own ruleset of its
/// name (only those are read); the number that differ.
async fn rulesets(
    api: &crate::github::Api,
    repo: &str,
    config: &RepoConfig,
    md: &mut String,
) -> Result<usize, crate::github::GitHubError> {
    let mut live = std::collections::HashMap::new();
    for s in api.rulesets(repo).await? {
        if config.protection.rulesets.contains_key(&s.name) {
            live.insert(s.name.clone(), api.ruleset(repo, s.id).await?);
        }
    }
    let mut drifted = 0;
    for (name, r) in &config.protection.rulesets {
        let current = live.get(name);
        let diffs = crate::deploy::rulesets::diff(&crate::deploy::rulesets::body(name, r), current);
        if diffs.is_empty() {
            md.push_str(&ruleset_matches(name));
        } else {
            drifted += 1;
            md.push_str(&ruleset_drift_table(name, current.is_none(), &diffs));
        }
    }
    Ok(drifted)
}
