//! `protection.rulesets`: GitHub repository rulesets kept as code. Each
//! ruleset is keyed by its name; shipgate manages the rulesets whose names
//! the file lists and leaves every other ruleset alone.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The most rulesets GitHub allows on one repository.
pub const MAX_RULESETS: usize = 75;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesetConfig {
    /// What the patterns name: `branch` (default) or `tag`.
    #[serde(default)]
    pub target: RulesetTarget,
    /// GitHub's enforcement of the ruleset: `active` (default), `evaluate`
    /// (GitHub Enterprise only) or `disabled`.
    #[serde(default)]
    pub enforcement: RulesetEnforcement,
    /// Branch or tag name patterns the ruleset covers (`main`, `release/*`,
    /// `releases/**/*`, `~DEFAULT_BRANCH`, `~ALL`); `*` does not cross `/`.
    pub include: Vec<String>,
    /// Patterns excluded from `include`.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Who may bypass the rules.
    #[serde(default)]
    pub bypass: Vec<BypassActor>,
    /// The rules; a rule not named is off.
    #[serde(default)]
    pub rules: RulesetRules,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RulesetTarget {
    #[default]
    Branch,
    Tag,
}

impl RulesetTarget {
    pub fn as_str(self) -> &'static str {
        match self {
            RulesetTarget::Branch => "branch",
            RulesetTarget::Tag => "tag",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RulesetEnforcement {
    #[default]
    Active,
    Evaluate,
    Disabled,
}

impl RulesetEnforcement {
    pub fn as_str(self) -> &'static str {
        match self {
            RulesetEnforcement::Active => "active",
            RulesetEnforcement::Evaluate => "evaluate",
            RulesetEnforcement::Disabled => "disabled",
        }
    }
}

/// One actor that may bypass a ruleset: exactly one of `role`, `team`,
/// `app` or `org_admins`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BypassActor {
    /// A repository role: `admin`, `maintain` or `write`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<BypassRole>,
    /// A team, by its numeric id (`gh api /orgs/ORG/teams/SLUG --jq .id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<u64>,
    /// A GitHub App, by its App id (not an installation id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<u64>,
    /// The organization's owners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_admins: Option<bool>,
    /// `always` (default) or `pull_request` (only by merging a pull request).
    #[serde(default)]
    pub mode: BypassMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BypassRole {
    Admin,
    Maintain,
    Write,
}

impl BypassRole {
    /// GitHub's ids of the built-in repository roles (not in role order).
    pub fn actor_id(self) -> u64 {
        match self {
            BypassRole::Maintain => 2,
            BypassRole::Write => 4,
            BypassRole::Admin => 5,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BypassMode {
    #[default]
    Always,
    PullRequest,
}

impl BypassMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BypassMode::Always => "always",
            BypassMode::PullRequest => "pull_request",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesetRules {
    /// Changes go through a pull request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequestRule>,
    /// Checks that must pass before the ref is updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_status_checks: Option<StatusChecksRule>,
    /// No merge commits.
    #[serde(default)]
    pub required_linear_history: bool,
    /// Block force pushes (bypass actors still may).
    #[serde(default)]
    pub non_fast_forward: bool,
    /// Block deleting the ref.
    #[serde(default)]
    pub deletion: bool,
    /// Commits must carry verified signatures.
    #[serde(default)]
    pub required_signatures: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PullRequestRule {
    /// Approving reviews needed (0–10).
    #[serde(default)]
    pub required_approvals: u32,
    #[serde(default)]
    pub dismiss_stale_reviews: bool,
    #[serde(default)]
    pub require_code_owner_review: bool,
    #[serde(default)]
    pub require_last_push_approval: bool,
    #[serde(default)]
    pub required_conversation_resolution: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChecksRule {
    /// Check or status names (contexts).
    pub checks: Vec<String>,
    /// The branch must be up to date with its base before merging.
    #[serde(default)]
    pub strict: bool,
}

impl RulesetConfig {
    /// Checks what serde cannot; `at` names the ruleset in messages.
    pub fn validate(&self, at: &str) -> Result<(), String> {
        if self.include.is_empty() {
            return Err(format!(
                "{at}.include: name at least one branch or tag pattern"
            ));
        }
        for p in self.include.iter().chain(&self.exclude) {
            if p.trim().is_empty() || p.contains('\\') {
                return Err(format!(
                    "{at}: pattern {p:?} is empty or uses a backslash, which GitHub does not support"
                ));
            }
        }
        for (i, b) in self.bypass.iter().enumerate() {
            let named = usize::from(b.role.is_some())
                + usize::from(b.team.is_some())
                + usize::from(b.app.is_some())
                + usize::from(b.org_admins == Some(true));
            if named != 1 {
                return Err(format!(
                    "{at}.bypass[{i}]: name exactly one of role, team, app or org_admins: true"
                ));
            }
            if b.mode == BypassMode::PullRequest && self.target == RulesetTarget::Tag {
                return Err(format!(
                    "{at}.bypass[{i}].mode: pull_request applies only to branch rulesets"
                ));
            }
        }
        if let Some(pr) = &self.rules.pull_request {
            if pr.required_approvals > 10 {
                return Err(format!(
                    "{at}.rules.pull_request.required_approvals: at most 10, got {}",
                    pr.required_approvals
                ));
            }
        }
        if let Some(c) = &self.rules.required_status_checks {
            if c.checks.is_empty() {
                return Err(format!(
                    "{at}.rules.required_status_checks.checks: name at least one check"
                ));
            }
        }
        Ok(())
    }
}
