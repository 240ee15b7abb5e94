//! The `policy` gate: a pull request against its base branch's protection
//! policy, with the gates the server's `shipgate/policy` check uses.

use crate::action::request::{api_failure, client, CheckError, CheckRequest, GateResult};
use crate::action::Runner;
use crate::config::repo::RepoConfig;
use crate::deploy::gates::{PullFacts, Verdict};
use crate::render::policy::{conditions_table, no_branch_policy, not_a_pull_request};

pub async fn run(
    runner: &Runner,
    req: &CheckRequest,
    config: &RepoConfig,
) -> Result<GateResult, CheckError> {
    let Some(pr) = runner.pull_request() else {
        return Ok(GateResult::new(
            "policy",
            Verdict::Skipped,
            "not a pull request event",
            not_a_pull_request(),
        ));
    };
    let base = pr.base_ref().unwrap_or_default().to_string();
    let Some(rules) = config.protection.branches.get(&base) else {
        return Ok(GateResult::new(
            "policy",
            Verdict::Pass,
            format!("no policy for `{base}`"),
            no_branch_policy(&base),
        ));
    };
    let (_, api, repo) = client(runner, req, "policy")?;
    let number = pr.number.unwrap_or_default();
    let facts = PullFacts {
        number,
        open: pr.state.as_deref().is_none_or(|s| s == "open"),
        draft: pr.draft.unwrap_or(false),
        base_ref: base.clone(),
        author: pr.author().unwrap_or_default().to_string(),
        head_sha: pr.head_sha().unwrap_or_default().to_string(),
        fork: crate::deploy::is_fork(pr.head_repo(), &repo),
    };
    let gates =
        match crate::deploy::policy::evaluate_pull_request_live(&api, &repo, rules, &facts).await {
            Ok(g) => g,
            Err(e) => return Ok(api_failure("policy", e)),
        };
    let unmet = crate::deploy::policy::unmet(&gates);
    let md = conditions_table(&gates);
    let (outcome, headline) = if unmet.is_empty() {
        (
            Verdict::Pass,
            format!("#{number} meets the `{base}` policy"),
        )
    } else {
        (Verdict::Fail, unmet.join("; "))
    };
    let mut r = GateResult::new("policy", outcome, headline, md);
    r.errors = unmet.len();
    Ok(r)
}
