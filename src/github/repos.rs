//! Endpoints for ChatOps: comments, reactions, permissions, pull requests,
//! reviews, checks and deployments.

use serde::{Deserialize, Serialize};

use super::content::{encode_path, CommitStatus};
use super::{Api, GitHubError};

/// Pages of 100 comments searched for shipgate's own marked comment (a reply
/// posted just before a crash, the sticky preview comment). The newest
/// comments are on the last pages, so a short search would miss a reply on
/// a busy PR and post it again (found by the 10,000-delivery kill -9 run:
/// PRs with over 300 comments got two replies).
pub const MARKER_SEARCH_PAGES: u32 = 50;

#[derive(Debug, Clone, Deserialize)]
pub struct Comment {
    pub id: i64,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub user: Option<UserRef>,
}

/// `GET /repos/{repo}/collaborators/{user}/permission`. Read with our own type:
/// octocrab's fails for anyone but admins (see the shared notes).
#[derive(Debug, Clone, Deserialize)]
pub struct PermissionLevel {
    /// Legacy: admin | write | read | none (folds maintain and triage).
    pub permission: String,
    /// admin | maintain | write | triage | read, or a custom role's name.
    #[serde(default)]
    pub role_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UserRef {
    pub login: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BranchRef {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
    /// The repository the branch lives in; `None` when it was deleted (a
    /// fork that is gone).
    #[serde(default)]
    pub repo: Option<RepoName>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RepoName {
    pub full_name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PullRequest {
    pub number: i64,
    pub state: String,
    #[serde(default)]
    pub draft: bool,
    #[serde(default)]
    pub merged: bool,
    pub head: BranchRef,
    pub base: BranchRef,
    pub user: UserRef,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Review {
    #[serde(default)]
    pub user: Option<UserRef>,
    pub state: String,
    /// The commit the review was made on.
    #[serde(default)]
    pub commit_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CheckRun {
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub conclusion: Option<String>,
    /// The App that reported it.
    #[serde(default)]
    pub app: Option<AppRef>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct AppRef {
    #[serde(default)]
    pub slug: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CheckRuns {
    #[serde(default)]
    total_count: usize,
    check_runs: Vec<CheckRun>,
}

pub use super::MAX_LIST_PAGES;

#[derive(Debug, Clone, Serialize)]
pub struct NewDeployment<'a> {
    #[serde(rename = "ref")]
    pub git_ref: &'a str,
    pub environment: &'a str,
    pub auto_merge: bool,
    pub required_contexts: Vec<String>,
    pub production_environment: bool,
    pub transient_environment: bool,
    pub description: &'a str,
    pub payload: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Deployment {
    pub id: i64,
    pub sha: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub environment: String,
    pub created_at: String,
    #[serde(default)]
    pub creator: Option<UserRef>,
    #[serde(default)]
    pub payload: serde_json::Value,
    /// Whether the deployment is to a production environment (GitHub's
    /// flag, set by whoever created it).
    #[serde(default)]
    pub production_environment: bool,
}

/// `POST /repos/{repo}/deployments/{id}/statuses`.
#[derive(Debug, Clone, Serialize)]
pub struct NewDeploymentStatus<'a> {
    pub state: &'a str,
    pub description: &'a str,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentStatus {
    pub state: String,
    #[serde(default)]
    pub environment_url: Option<String>,
    #[serde(default)]
    pub log_url: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Commit {
    sha: String,
}

/// Reactions shipgate uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction {
    Eyes,
    Rocket,
    Confused,
}

impl Reaction {
    pub fn as_str(self) -> &'static str {
        match self {
            Reaction::Eyes => "eyes",
            Reaction::Rocket => "rocket",
            Reaction::Confused => "confused",
        }
    }
}

impl Api {
    /// Reacts to an issue or pull request comment (GitHub keeps one per kind and user).
    pub async fn react(
        &self,
        repo: &str,
        comment_id: i64,
        reaction: Reaction,
    ) -> Result<(), GitHubError> {
        let _: serde_json::Value = self
            .post(
                &format!("/repos/{repo}/issues/comments/{comment_id}/reactions"),
                &serde_json::json!({ "content": reaction.as_str() }),
            )
            .await?;
        Ok(())
    }

    pub async fn create_comment(
        &self,
        repo: &str,
        issue: i64,
        body: &str,
    ) -> Result<Comment, GitHubError> {
        self.post(
            &format!("/repos/{repo}/issues/{issue}/comments"),
            &serde_json::json!({ "body": body }),
        )
        .await
    }

    /// PATCH, as the OpenAPI description defines (octocrab's helper sends POST).
    pub async fn update_comment(
        &self,
        repo: &str,
        comment_id: i64,
        body: &str,
    ) -> Result<(), GitHubError> {
        let _: serde_json::Value = self
            .patch(
                &format!("/repos/{repo}/issues/comments/{comment_id}"),
                &serde_json::json!({ "body": body }),
            )
            .await?;
        Ok(())
    }

    /// Comments of an issue or PR, newest page last; up to `pages` pages of 100.
    pub async fn list_comments(
        &self,
        repo: &str,
        issue: i64,
        pages: u32,
    ) -> Result<Vec<Comment>, GitHubError> {
        self.all_pages(&format!("/repos/{repo}/issues/{issue}/comments"), pages)
            .await
    }

    /// A user's permission on `repo`. GitHub answers 404 for a login that is
    /// not a user (or, for some tokens, not a collaborator): no access.
    pub async fn permission(&self, repo: &str, user: &str) -> Result<PermissionLevel, GitHubError> {
        match self
            .get(&format!(
                "/repos/{repo}/collaborators/{}/permission",
                encode_path(user)
            ))
            .await
        {
            Err(GitHubError::NotFound(_)) => Ok(PermissionLevel {
                permission: "none".into(),
                role_name: None,
            }),
            other => other,
        }
    }

    /// Whether `user` is an active member of `org/team`.
    pub async fn is_team_member(
        &self,
        org: &str,
        team: &str,
        user: &str,
    ) -> Result<bool, GitHubError> {
        #[derive(Deserialize)]
        struct Membership {
            state: String,
        }
        let path = format!(
            "/orgs/{}/teams/{}/memberships/{}",
            encode_path(org),
            encode_path(team),
            encode_path(user)
        );
        match self.get::<Membership>(&path).await {
            Ok(m) => Ok(m.state == "active"),
            Err(GitHubError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn pull_request(&self, repo: &str, number: i64) -> Result<PullRequest, GitHubError> {
        self.get(&format!("/repos/{repo}/pulls/{number}")).await
    }

    /// Every review of a pull request, oldest first (all pages).
    pub async fn reviews(&self, repo: &str, number: i64) -> Result<Vec<Review>, GitHubError> {
        self.all_pages(
            &format!("/repos/{repo}/pulls/{number}/reviews"),
            MAX_LIST_PAGES,
        )
        .await
    }

    /// The latest check run of each name on a commit (all pages).
    pub async fn check_runs(&self, repo: &str, sha: &str) -> Result<Vec<CheckRun>, GitHubError> {
        let mut all = Vec::new();
        for page in 1..=MAX_LIST_PAGES {
            let runs: CheckRuns = self
                .get(&format!(
                    "/repos/{repo}/commits/{}/check-runs?per_page=100&filter=latest&page={page}",
                    encode_path(sha)
                ))
                .await?;
            let done = runs.check_runs.len() < 100;
            all.extend(runs.check_runs);
            if done || all.len() >= runs.total_count {
                break;
            }
        }
        Ok(all)
    }

    /// Every item of a plain JSON-array list endpoint, 100 per page, up to
    /// `max_pages` pages.
    pub async fn all_pages<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        max_pages: u32,
    ) -> Result<Vec<T>, GitHubError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut all = Vec::new();
        for page in 1..=max_pages {
            let batch: Vec<T> = self
                .get(&format!("{path}{sep}per_page=100&page={page}"))
                .await?;
            let done = batch.len() < 100;
            all.extend(batch);
            if done {
                break;
            }
        }
        Ok(all)
    }

    /// The statuses and check runs of a commit together.
    pub async fn checks(
        &self,
        repo: &str,
        sha: &str,
    ) -> Result<(Vec<CheckRun>, Vec<CommitStatus>), GitHubError> {
        let (runs, statuses) =
            tokio::join!(self.check_runs(repo, sha), self.combined_status(repo, sha));
        Ok((runs?, statuses?))
    }

    /// The full sha of a branch, tag or (short) sha.
    pub async fn resolve_ref(&self, repo: &str, git_ref: &str) -> Result<String, GitHubError> {
        let commit: Commit = self
            .get(&format!("/repos/{repo}/commits/{}", encode_path(git_ref)))
            .await?;
        Ok(commit.sha)
    }

    pub async fn create_deployment(
        &self,
        repo: &str,
        d: &NewDeployment<'_>,
    ) -> Result<Deployment, GitHubError> {
        self.post(&format!("/repos/{repo}/deployments"), d).await
    }

    pub async fn deployment(&self, repo: &str, id: i64) -> Result<Deployment, GitHubError> {
        self.get(&format!("/repos/{repo}/deployments/{id}")).await
    }

    /// Deployments of an environment, newest first.
    pub async fn deployments(
        &self,
        repo: &str,
        environment: &str,
        per_page: u32,
    ) -> Result<Vec<Deployment>, GitHubError> {
        let env: String = url::form_urlencoded::byte_serialize(environment.as_bytes()).collect();
        self.get(&format!(
            "/repos/{repo}/deployments?environment={env}&per_page={per_page}"
        ))
        .await
    }

    /// Deployments of `sha` to an environment, newest first.
    pub async fn deployments_of_sha(
        &self,
        repo: &str,
        environment: &str,
        sha: &str,
    ) -> Result<Vec<Deployment>, GitHubError> {
        let env: String = url::form_urlencoded::byte_serialize(environment.as_bytes()).collect();
        self.get(&format!(
            "/repos/{repo}/deployments?environment={env}&sha={sha}&per_page=30"
        ))
        .await
    }

    /// Whether `name` (`heads/main`, `tags/v1.0.0`) is a ref of `repo`, and
    /// the commit or tag object it points at.
    pub async fn git_ref(&self, repo: &str, name: &str) -> Result<Option<String>, GitHubError> {
        #[derive(Deserialize)]
        struct Target {
            sha: String,
        }
        #[derive(Deserialize)]
        struct Ref {
            #[serde(rename = "ref")]
            name: String,
            object: Target,
        }
        // One path parameter, slash included (`heads%2Fmain`), as GitHub's
        // description and octokit have it.
        let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
        match self
            .get::<Ref>(&format!(
                "/repos/{repo}/git/ref/{}",
                encoded.replace('+', "%20")
            ))
            .await
        {
            // GitHub answers a prefix match with the one ref it found: only
            // the exact name counts.
            Ok(r) if r.name == format!("refs/{name}") => Ok(Some(r.object.sha)),
            Ok(_) | Err(GitHubError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Adds a status to a deployment (`inactive` retires it).
    pub async fn create_deployment_status(
        &self,
        repo: &str,
        id: i64,
        status: &NewDeploymentStatus<'_>,
    ) -> Result<DeploymentStatus, GitHubError> {
        self.post(&format!("/repos/{repo}/deployments/{id}/statuses"), status)
            .await
    }

    /// Statuses of a deployment, newest first.
    pub async fn deployment_statuses(
        &self,
        repo: &str,
        id: i64,
    ) -> Result<Vec<DeploymentStatus>, GitHubError> {
        self.get(&format!(
            "/repos/{repo}/deployments/{id}/statuses?per_page=100"
        ))
        .await
    }
}

/// A pull request as `GET /repos/{repo}/commits/{sha}/pulls` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct PullSummary {
    pub number: i64,
    pub state: String,
    #[serde(default)]
    pub draft: bool,
    pub head: BranchRef,
    #[serde(default)]
    pub base: Option<BranchRef>,
    #[serde(default)]
    pub user: Option<UserRef>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckRunOutput<'a> {
    pub title: &'a str,
    pub summary: &'a str,
}

#[derive(Debug, Clone, Serialize)]
pub struct NewCheckRun<'a> {
    pub name: &'a str,
    pub head_sha: &'a str,
    pub status: &'a str,
    pub conclusion: &'a str,
    /// Left out when there is none: GitHub takes no `null` here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details_url: Option<&'a str>,
    pub output: CheckRunOutput<'a>,
}

impl Api {
    /// Pull requests whose commits include `sha`.
    pub async fn pulls_for_commit(
        &self,
        repo: &str,
        sha: &str,
    ) -> Result<Vec<PullSummary>, GitHubError> {
        self.get(&format!("/repos/{repo}/commits/{sha}/pulls?per_page=100"))
            .await
    }

    /// `POST /repos/{repo}/check-runs` (GitHub Apps only); the new run's id.
    pub async fn create_check_run(
        &self,
        repo: &str,
        run: &NewCheckRun<'_>,
    ) -> Result<i64, GitHubError> {
        #[derive(Deserialize)]
        struct Created {
            id: i64,
        }
        let created: Created = self.post(&format!("/repos/{repo}/check-runs"), run).await?;
        Ok(created.id)
    }

    /// `PATCH /repos/{repo}/check-runs/{id}`: a check run shipgate keeps
    /// for a commit, updated in place.
    pub async fn update_check_run(
        &self,
        repo: &str,
        id: i64,
        run: &NewCheckRun<'_>,
    ) -> Result<(), GitHubError> {
        // The update takes no head_sha: the run stays on its commit.
        let body = serde_json::json!({
            "status": run.status,
            "conclusion": run.conclusion,
            "output": run.output,
        });
        let _: serde_json::Value = self
            .patch(&format!("/repos/{repo}/check-runs/{id}"), &body)
            .await?;
        Ok(())
    }
}

/// The answer to a protection read.
#[derive(Debug)]
pub enum ProtectionRead {
    Protected(Box<super::protection::LiveProtection>),
    Unprotected,
    BranchMissing,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Issue {
    pub number: i64,
    pub title: String,
    #[serde(default)]
    pub user: Option<UserRef>,
    #[serde(default)]
    pub pull_request: Option<serde_json::Value>,
}

impl Api {
    /// `GET /repos/{repo}/branches/{branch}/protection`. GitHub answers 404
    /// both for an unprotected branch ("Branch not protected") and a missing
    /// one ("Branch not found"); the message tells them apart.
    pub async fn protection(
        &self,
        repo: &str,
        branch: &str,
    ) -> Result<ProtectionRead, GitHubError> {
        let path = format!("/repos/{repo}/branches/{}/protection", encode_path(branch));
        match self.get::<super::protection::LiveProtection>(&path).await {
            Ok(p) => Ok(ProtectionRead::Protected(Box::new(p))),
            Err(GitHubError::NotFound(m)) if m.contains("not protected") => {
                Ok(ProtectionRead::Unprotected)
            }
            Err(GitHubError::NotFound(m)) if m.contains("Branch not found") => {
                Ok(ProtectionRead::BranchMissing)
            }
            Err(e) => Err(e),
        }
    }

    /// `PUT /repos/{repo}/branches/{branch}/protection` with a complete body.
    pub async fn put_protection(
        &self,
        repo: &str,
        branch: &str,
        body: &serde_json::Value,
    ) -> Result<(), GitHubError> {
        let _: serde_json::Value = self
            .put(
                &format!("/repos/{repo}/branches/{}/protection", encode_path(branch)),
                body,
            )
            .await?;
        Ok(())
    }

    /// Open issues (not pull requests), all pages.
    pub async fn open_issues(&self, repo: &str) -> Result<Vec<Issue>, GitHubError> {
        let all: Vec<Issue> = self
            .all_pages(&format!("/repos/{repo}/issues?state=open"), MAX_LIST_PAGES)
            .await?;
        Ok(all
            .into_iter()
            .filter(|i| i.pull_request.is_none())
            .collect())
    }

    pub async fn create_issue(
        &self,
        repo: &str,
        title: &str,
        body: &str,
    ) -> Result<Issue, GitHubError> {
        self.post(
            &format!("/repos/{repo}/issues"),
            &serde_json::json!({ "title": title, "body": body }),
        )
        .await
    }

    /// How many commits `head` lacks from `base`.
    pub async fn behind_by(&self, repo: &str, base: &str, head: &str) -> Result<u64, GitHubError> {
        #[derive(Deserialize)]
        struct Compare {
            behind_by: u64,
        }
        let c: Compare = self
            .get(&format!(
                "/repos/{repo}/compare/{}...{}",
                encode_path(base),
                encode_path(head)
            ))
            .await?;
        Ok(c.behind_by)
    }

    /// A check run with annotations (for the policy plan's line/column errors).
    pub async fn create_check_run_json(
        &self,
        repo: &str,
        body: &serde_json::Value,
    ) -> Result<(), GitHubError> {
        let _: serde_json::Value = self
            .post(&format!("/repos/{repo}/check-runs"), body)
            .await?;
        Ok(())
    }
}
