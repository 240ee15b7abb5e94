//! Repository rulesets (`/repos/{o}/{r}/rulesets`): the list, one ruleset,
//! and the writes shipgate makes to the rulesets it manages. Rulesets are
//! read and written as JSON in GitHub's own shape; `deploy::rulesets`
//! compares them.

use serde::Deserialize;
use serde_json::Value;

use super::{Api, GitHubError};

/// One entry of the repository's ruleset list.
#[derive(Debug, Clone, Deserialize)]
pub struct RulesetSummary {
    pub id: i64,
    pub name: String,
    /// `Repository`, `Organization` or `Enterprise`; absent reads as the
    /// repository's own.
    #[serde(default)]
    pub source_type: Option<String>,
}

impl RulesetSummary {
    /// Whether the ruleset belongs to the repository (not inherited from its
    /// organization or enterprise).
    pub fn is_repository_level(&self) -> bool {
        self.source_type
            .as_deref()
            .is_none_or(|s| s == "Repository")
    }
}

impl Api {
    /// The repository's own rulesets (a repository holds at most 75, one page).
    pub async fn rulesets(&self, repo: &str) -> Result<Vec<RulesetSummary>, GitHubError> {
        let all: Vec<RulesetSummary> = self
            .get(&format!(
                "/repos/{repo}/rulesets?includes_parents=false&per_page=100"
            ))
            .await?;
        Ok(all
            .into_iter()
            .filter(RulesetSummary::is_repository_level)
            .collect())
    }

    /// One ruleset with its conditions, rules and bypass actors.
    pub async fn ruleset(&self, repo: &str, id: i64) -> Result<Value, GitHubError> {
        self.get(&format!("/repos/{repo}/rulesets/{id}")).await
    }

    /// `POST /repos/{repo}/rulesets`: the new ruleset's id.
    pub async fn create_ruleset(&self, repo: &str, body: &Value) -> Result<i64, GitHubError> {
        let created: RulesetSummary = self.post(&format!("/repos/{repo}/rulesets"), body).await?;
        Ok(created.id)
    }

    /// `PUT /repos/{repo}/rulesets/{id}` with the whole desired ruleset.
    pub async fn update_ruleset(
        &self,
        repo: &str,
        id: i64,
        body: &Value,
    ) -> Result<(), GitHubError> {
        let _: Value = self
            .put(&format!("/repos/{repo}/rulesets/{id}"), body)
            .await?;
        Ok(())
    }
}
