//! A branch's protection as GitHub reports it
//! (`GET /repos/{o}/{r}/branches/{b}/protection`): the parts shipgate reads
//! or keeps when it restores a policy.

use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Enabled {
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LiveCheck {
    pub context: String,
    #[serde(default)]
    pub app_id: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LiveStatusChecks {
    #[serde(default)]
    pub strict: bool,
    #[serde(default)]
    pub contexts: Vec<String>,
    #[serde(default)]
    pub checks: Vec<LiveCheck>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Login {
    #[serde(default)]
    pub login: Option<String>,
    #[serde(default)]
    pub slug: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Actors {
    #[serde(default)]
    pub users: Vec<Login>,
    #[serde(default)]
    pub teams: Vec<Login>,
    #[serde(default)]
    pub apps: Vec<Login>,
}

impl Actors {
    /// The shape PUT takes: logins and slugs.
    pub fn to_put(&self, with_apps: bool) -> Value {
        let users: Vec<&str> = self
            .users
            .iter()
            .filter_map(|u| u.login.as_deref())
            .collect();
        let teams: Vec<&str> = self
            .teams
            .iter()
            .filter_map(|t| t.slug.as_deref())
            .collect();
        let mut v = json!({ "users": users, "teams": teams });
        if with_apps {
            let apps: Vec<&str> = self.apps.iter().filter_map(|a| a.slug.as_deref()).collect();
            v["apps"] = json!(apps);
        }
        v
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LiveReviews {
    #[serde(default)]
    pub dismiss_stale_reviews: bool,
    #[serde(default)]
    pub require_code_owner_reviews: bool,
    #[serde(default)]
    pub required_approving_review_count: u32,
    #[serde(default)]
    pub require_last_push_approval: bool,
    #[serde(default)]
    pub dismissal_restrictions: Option<Actors>,
    #[serde(default)]
    pub bypass_pull_request_allowances: Option<Actors>,
}

/// `GET /repos/{o}/{r}/branches/{b}/protection`, the parts shipgate reads or keeps.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LiveProtection {
    #[serde(default)]
    pub required_status_checks: Option<LiveStatusChecks>,
    #[serde(default)]
    pub enforce_admins: Option<Enabled>,
    #[serde(default)]
    pub required_pull_request_reviews: Option<LiveReviews>,
    #[serde(default)]
    pub restrictions: Option<Actors>,
    #[serde(default)]
    pub required_linear_history: Option<Enabled>,
    #[serde(default)]
    pub allow_force_pushes: Option<Enabled>,
    #[serde(default)]
    pub allow_deletions: Option<Enabled>,
    #[serde(default)]
    pub required_conversation_resolution: Option<Enabled>,
    #[serde(default)]
    pub block_creations: Option<Enabled>,
    #[serde(default)]
    pub lock_branch: Option<Enabled>,
    #[serde(default)]
    pub allow_fork_syncing: Option<Enabled>,
}

impl LiveProtection {
    pub fn contexts(&self) -> Option<Vec<String>> {
        self.required_status_checks.as_ref().map(|c| {
            let mut all: Vec<String> = c.checks.iter().map(|k| k.context.clone()).collect();
            for ctx in &c.contexts {
                if !all.contains(ctx) {
                    all.push(ctx.clone());
                }
            }
            all.sort();
            all
        })
    }
}
