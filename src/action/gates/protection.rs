//! The `protection` gate: each branch's live protection against the policy.

use crate::action::request::{api_failure, client, CheckError, CheckRequest, GateResult};
use crate::action::Runner;
use crate::config::repo::RepoConfig;
use crate::deploy::gates::Verdict;
use crate::github::repos::ProtectionRead;
use crate::render::inline_text;

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
            "✅ protection: no `protection:` policy in the config.\n",
        ));
    }
    let (_, api, repo) = client(runner, req, "protection")?;
    let mut md = String::new();
    let mut drifted = 0;
    for (branch, desired) in &config.protection.branches {
        let shown = inline_text(branch);
        let live = match api.protection(&repo, branch).await {
            Ok(ProtectionRead::Protected(l)) => Some(*l),
            Ok(ProtectionRead::Unprotected) => None,
            Ok(ProtectionRead::BranchMissing) => {
                md.push_str(&format!("⏭️ `{shown}` does not exist.\n\n"));
                continue;
            }
            Err(crate::github::GitHubError::Forbidden(m)) => {
                return Err(CheckError::Input(format!("the `protection` gate needs a token that can read branch protection (admin): {m}")))
            }
            Err(e) => return Ok(api_failure("protection", e)),
        };
        let diffs = crate::deploy::policy::diff(desired, live.as_ref());
        if diffs.is_empty() {
            md.push_str(&format!("✅ `{shown}` matches the policy.\n\n"));
        } else {
            drifted += 1;
            md.push_str(&format!("❌ `{shown}` differs from the policy:\n\n| Setting | Found | Policy |\n|---|---|---|\n"));
            for d in &diffs {
                md.push_str(&format!(
                    "| `{}` | {} | {} |\n",
                    inline_text(&d.field),
                    inline_text(&d.live),
                    inline_text(&d.desired)
                ));
            }
            md.push('\n');
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
