//! Minimal serde types for the webhook payloads shipgate reads.
//!
//! We keep our own small structs instead of octocrab's webhook types: those
//! require fields real payloads lack or misspell (see the shared notes), and a
//! payload we cannot parse would be a lost delivery. Unknown fields are ignored.

use serde::Deserialize;

/// The fields every delivery may carry, read at ingress to route and order
/// work. Lenient: a field of an unexpected shape reads as absent, so an odd
/// payload is still stored rather than refused.
#[derive(Debug, Default, Deserialize)]
pub struct Envelope {
    #[serde(default, deserialize_with = "lenient")]
    pub action: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub installation: Option<IdOnly>,
    #[serde(default, deserialize_with = "lenient")]
    pub repository: Option<RepositoryRef>,
}

impl Envelope {
    /// Parses a payload, which must be a JSON object.
    pub fn parse(payload: &[u8]) -> Result<Envelope, String> {
        if payload.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err("expected a JSON object".into());
        }
        serde_json::from_slice(payload).map_err(|e| e.to_string())
    }
}

fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    // The field's text, re-read as T: no tree of values is built for the
    // large objects (a repository has about a hundred fields).
    let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
    Ok(serde_json::from_str(raw.get()).ok())
}

#[derive(Debug, Clone, Deserialize)]
pub struct IdOnly {
    pub id: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RepositoryRef {
    pub full_name: String,
    #[serde(default)]
    pub default_branch: Option<String>,
}

impl RepositoryRef {
    /// `(owner, name)` from `full_name`.
    pub fn owner_and_name(&self) -> Option<(&str, &str)> {
        self.full_name.split_once('/')
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub login: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GitRef {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    pub head: GitRef,
    pub base: GitRef,
    #[serde(default)]
    pub user: Option<User>,
}

/// `pull_request` events.
#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestEvent {
    pub action: String,
    pub pull_request: PullRequest,
    pub repository: RepositoryRef,
    #[serde(default)]
    pub installation: Option<IdOnly>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PushCommit {
    #[serde(default)]
    pub added: Vec<String>,
    #[serde(default)]
    pub modified: Vec<String>,
    #[serde(default)]
    pub removed: Vec<String>,
}

/// `push` events.
#[derive(Debug, Clone, Deserialize)]
pub struct PushEvent {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub after: String,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub commits: Vec<PushCommit>,
    #[serde(default)]
    pub head_commit: Option<PushCommit>,
    pub repository: RepositoryRef,
    #[serde(default)]
    pub installation: Option<IdOnly>,
}

impl PushEvent {
    /// Whether any commit in the push touched `path`. GitHub lists at most 2048
    /// commits; a push whose list is empty but not a deletion (e.g. a force
    /// push of existing commits) counts as touching everything.
    pub fn touches(&self, path: &str) -> bool {
        if self.commits.is_empty() {
            return !self.deleted;
        }
        self.commits.iter().chain(self.head_commit.iter()).any(|c| {
            c.added
                .iter()
                .chain(&c.modified)
                .chain(&c.removed)
                .any(|p| p == path)
        })
    }

    /// The branch name when the push is to a branch.
    pub fn branch(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/heads/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_reads_routing_fields_and_tolerates_their_absence() {
        let e: Envelope = serde_json::from_str(
            r#"{"action":"opened","installation":{"id":7,"node_id":"x"},"repository":{"full_name":"o/r","default_branch":"main","id":1}}"#,
        )
        .unwrap();
        assert_eq!(e.action.as_deref(), Some("opened"));
        assert_eq!(e.installation.unwrap().id, 7);
        assert_eq!(e.repository.unwrap().owner_and_name(), Some(("o", "r")));
        let e: Envelope =
            serde_json::from_str(r#"{"zen":"Keep it logically awesome.","hook_id":1}"#).unwrap();
        assert!(e.action.is_none() && e.repository.is_none());
        let e: Envelope =
            serde_json::from_str(r#"{"action":5,"repository":{"id":1},"installation":null}"#)
                .unwrap();
        assert!(e.action.is_none() && e.repository.is_none() && e.installation.is_none());
        assert!(Envelope::parse(b"[1,2]").is_err());
        assert!(Envelope::parse(b"  \n{}").is_ok());
        assert!(Envelope::parse(b"{\"action\":").is_err());
        assert!(Envelope::parse(b"null").is_err());
    }

    #[test]
    fn push_touches_only_listed_paths() {
        let push: PushEvent = serde_json::from_str(
            r#"{"ref":"refs/heads/main","after":"abc","repository":{"full_name":"o/r"},
                "commits":[{"added":[],"modified":["README.md"],"removed":[]}]}"#,
        )
        .unwrap();
        assert!(push.touches("README.md"));
        assert!(!push.touches(".github/shipgate.yml"));
        assert_eq!(push.branch(), Some("main"));
    }
}

/// `issue_comment` events (on issues and pull requests).
#[derive(Debug, Clone, Deserialize)]
pub struct IssueCommentEvent {
    pub action: String,
    pub issue: IssueRef,
    pub comment: CommentRef,
    #[serde(default)]
    pub changes: Option<CommentChanges>,
    /// Who did it: for `edited`, the editor (who may not be the author).
    #[serde(default)]
    pub sender: Option<User>,
    pub repository: RepositoryRef,
    #[serde(default)]
    pub installation: Option<IdOnly>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IssueRef {
    pub number: i64,
    /// Present when the issue is a pull request.
    #[serde(default)]
    pub pull_request: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CommentRef {
    pub id: i64,
    #[serde(default)]
    pub body: Option<String>,
    pub user: User,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CommentChanges {
    #[serde(default)]
    pub body: Option<ChangedFrom>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChangedFrom {
    pub from: String,
}

/// `deployment_status` events.
#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentStatusEvent {
    pub deployment_status: DeploymentStatusRef,
    pub deployment: DeploymentRef,
    pub repository: RepositoryRef,
    #[serde(default)]
    pub installation: Option<IdOnly>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentStatusRef {
    pub state: String,
    #[serde(default)]
    pub environment_url: Option<String>,
    #[serde(default)]
    pub log_url: Option<String>,
    #[serde(default)]
    pub target_url: Option<String>,
}

impl DeploymentStatusRef {
    /// The deployed URL: `environment_url`, or `target_url` as some providers
    /// (Vercel) send it. Empty strings count as absent.
    pub fn url(&self) -> Option<String> {
        non_empty(&self.environment_url).or_else(|| non_empty(&self.target_url))
    }

    /// The build log: `log_url`, or `target_url`.
    pub fn log(&self) -> Option<String> {
        non_empty(&self.log_url).or_else(|| non_empty(&self.target_url))
    }
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.is_empty())
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentRef {
    pub id: i64,
    pub sha: String,
    pub environment: String,
    #[serde(default)]
    pub payload: serde_json::Value,
}
