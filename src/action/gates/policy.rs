//! The `policy` gate: a pull request against its base branch's protection
//! policy, with the gates the server's `shipgate/policy` check uses; and,
//! when the step deploys to an environment with `promote_from`, the soak
//! gate `/deploy` and the protection rule use.

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
    let pull = pull_request_policy(runner, req, config).await?;
    let Some(soak) = promotion(runner, req, config).await? else {
        return Ok(pull);
    };
    if pull.gate.verdict == Verdict::Skipped {
        return Ok(soak);
    }
    Ok(combine(pull, soak))
}

/// Both parts in one result: the worse verdict, both headlines, both details.
fn combine(a: GateResult, b: GateResult) -> GateResult {
    let verdict = a.gate.verdict.max(b.gate.verdict);
    let headline = [&a, &b]
        .iter()
        .filter(|r| r.gate.verdict == verdict)
        .map(|r| r.gate.reason.clone())
        .collect::<Vec<_>>()
        .join("; ");
    let mut r = GateResult::new(
        "policy",
        verdict,
        headline,
        format!("{}\n{}", a.markdown, b.markdown),
    );
    r.errors = a.errors + b.errors;
    r.warnings = a.warnings + b.warnings;
    r
}

/// The environment the step deploys to, and the commit: the `deployment`
/// event's, else the `environment` input with the pull request's head or
/// `GITHUB_SHA`. `default_environment` is not used: a step that names no
/// environment promotes nothing.
fn promotion_target(runner: &Runner, req: &CheckRequest) -> Option<(String, String)> {
    let deployment = runner.event().and_then(|e| e.deployment.as_ref());
    let environment = deployment
        .and_then(|d| d.environment.clone())
        .or_else(|| req.environment.clone())?;
    let sha = deployment
        .and_then(|d| d.sha.clone())
        .or_else(|| runner.pull_request()?.head_sha().map(str::to_string))
        .or_else(|| runner.var("GITHUB_SHA").map(str::to_string))?;
    Some((environment, sha))
}

/// The soak gate when the environment deployed to has `promote_from`.
async fn promotion(
    runner: &Runner,
    req: &CheckRequest,
    config: &RepoConfig,
) -> Result<Option<GateResult>, CheckError> {
    let Some((environment, sha)) = promotion_target(runner, req) else {
        return Ok(None);
    };
    let Some(promote) = config
        .environments
        .get(&environment)
        .and_then(|e| e.promote_from.as_ref())
    else {
        return Ok(None);
    };
    let (_, api, repo) = client(runner, req, "policy")?;
    let now = chrono::Utc::now();
    let facts = match crate::deploy::soak::soak_facts(&api, &repo, promote, &sha, now).await {
        Ok(f) => f,
        Err(e) => return Ok(Some(api_failure("policy", e))),
    };
    let gate = crate::deploy::gates::soak_gate(&environment, &facts, now, None);
    let md = crate::render::soak::promotion_markdown(&environment, &sha, &gate);
    // The step cannot wait out the soak: not yet is no.
    let verdict = match gate.verdict {
        Verdict::Wait => Verdict::Fail,
        v => v,
    };
    Ok(Some(GateResult::new(
        "policy",
        verdict,
        format!("{}: {}", gate.name, gate.reason),
        md,
    )))
}

async fn pull_request_policy(
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
