//! The deploy domain's records: environment locks, command runs, queued
//! deploys, policy log entries and protection rule requests. Apart from the
//! delivery types: they are what the handlers keep, not the webhook queue.

use super::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// Taken by a deploy; released when its deployment reaches a final state.
    Deploy,
    /// Taken by `/lock`; stays until `/unlock`, its TTL, or the PR closing.
    Sticky,
}

impl LockKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LockKind::Deploy => "deploy",
            LockKind::Sticky => "sticky",
        }
    }
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "deploy" => Ok(LockKind::Deploy),
            "sticky" => Ok(LockKind::Sticky),
            other => Err(StoreError::Corrupt(format!("lock kind `{other}`"))),
        }
    }
}

/// An environment lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub repository: String,
    pub environment: String,
    pub kind: LockKind,
    /// Login of the user who took it.
    pub holder: String,
    /// The pull request (or issue) it was taken from.
    pub pr: Option<i64>,
    /// Identifies the taker; release is compare-and-delete on it.
    pub owner_token: String,
    pub deployment_id: Option<i64>,
    pub reason: Option<String>,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    Acquired,
    /// Someone holds it (possibly this same PR, in a way that was kept).
    HeldBy(Lock),
}

/// What was done for one command line of one comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRun {
    pub repository: String,
    pub comment_id: i64,
    pub line: i64,
    pub command: String,
    pub environment: Option<String>,
    pub actor: String,
    pub pr: Option<i64>,
    pub reply_comment_id: Option<i64>,
    pub deployment_id: Option<i64>,
    /// The reply's data (JSON), so it can be re-rendered as the deployment progresses.
    pub model: Option<String>,
    pub created_at: i64,
    /// The line's place among the comment's command lines.
    pub position: i64,
}

/// A `/deploy ENV queue` request waiting for the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedDeploy {
    pub seq: i64,
    pub repository: String,
    pub environment: String,
    pub pr: i64,
    pub comment_id: i64,
    pub line: i64,
    pub actor: String,
    pub git_ref: Option<String>,
    pub installation_id: Option<i64>,
    pub created_at: i64,
}

/// One branch protection event: drift found, restored or failed.
#[derive(Debug, Clone)]
pub struct PolicyLogEntry<'a> {
    pub repository: &'a str,
    pub branch: &'a str,
    pub trigger: &'a str,
    pub actor: Option<&'a str>,
    /// `restored`, `audited` or `failed`.
    pub action: &'a str,
    /// The differences, as JSON.
    pub detail: &'a str,
}

/// A deployment protection rule request (see `handlers::protection_rules`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectionRequest {
    pub id: i64,
    pub repository: String,
    pub environment: String,
    pub deployment_id: i64,
    pub callback_url: String,
    pub sha: String,
    pub git_ref: String,
    pub pr: Option<i64>,
    /// The pull request head a foreign deployment's workflow ran for.
    pub reviewed_sha: Option<String>,
    pub installation_id: Option<i64>,
    pub state: String,
    pub deadline: i64,
    pub next_check_at: i64,
    pub progress_posts: i64,
    pub last_comment: Option<String>,
    pub created_at: i64,
}
