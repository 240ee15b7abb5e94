//! A stateful fake of the GitHub REST API, served over HTTP on a loopback
//! port so the real octocrab-based client runs against it.
//!
//! The world holds repositories with branches, commits (full file trees),
//! pull requests, comments, statuses and collaborators. Every request is
//! recorded. A request the fake does not implement answers 404 and is kept
//! as "unexpected"; `assert_no_unexpected` fails the test naming method and
//! path. Fault knobs make the next N calls to an endpoint fail with a status,
//! answer with a rate limit, or hold the response after the effect happened.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use super::shapes;

mod apps;
mod checks;
mod deployments;
mod issues;
mod protection;
mod pulls;
mod repos;
mod rulesets;

pub const BOT_LOGIN: &str = "shipgate-test[bot]";
/// `documentation_url` of the fake's error answers.
const DOCS: &str = "https://docs.github.com/rest";

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub body: Value,
    /// The status the fake answered.
    pub status: u16,
    /// The Authorization header as sent.
    pub auth: String,
    /// When the fake received it.
    pub at: std::time::Instant,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub sha: String,
    pub state: String,
    pub context: String,
    pub description: String,
}

#[derive(Debug, Clone)]
pub struct Comment {
    pub id: u64,
    pub issue: u64,
    pub user: String,
    pub body: String,
    /// How often the body was edited (PATCH).
    pub edits: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reaction {
    pub comment_id: u64,
    pub content: String,
    pub user: String,
}

#[derive(Debug, Clone)]
pub struct Review {
    pub user: String,
    pub state: String,
    /// The commit reviewed (the PR's head when the review was given).
    pub commit_id: String,
}

#[derive(Debug, Clone)]
pub struct CheckRun {
    pub sha: String,
    pub name: String,
    pub status: String,
    pub conclusion: Option<String>,
    /// The slug of the App that reported it.
    pub app: String,
}

#[derive(Debug, Clone, Default)]
pub struct DeploymentStatus {
    pub state: String,
    pub environment_url: Option<String>,
    pub log_url: Option<String>,
    pub description: Option<String>,
    /// `created_at` (RFC 3339); `None`: the fixed `shapes::TIME`.
    pub created_at: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Deployment {
    pub id: u64,
    pub sha: String,
    pub git_ref: String,
    pub environment: String,
    pub payload: Value,
    pub creator: String,
    pub production_environment: bool,
    pub statuses: Vec<DeploymentStatus>,
    /// `created_at` (RFC 3339); `None`: the fixed `shapes::TIME`.
    pub created_at: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PullRequest {
    pub number: u64,
    pub head_ref: String,
    pub head_sha: String,
    pub base_ref: String,
    pub base_sha: String,
    pub author: String,
    pub state: String,
    pub draft: bool,
    pub reviews: Vec<Review>,
    /// The head lives in this fork (`owner/name`); `None`: in the repository.
    pub fork: Option<String>,
}

#[derive(Debug, Default, Clone)]
pub struct Repo {
    pub full_name: String,
    pub id: u64,
    pub default_branch: String,
    pub branches: BTreeMap<String, String>,
    /// Commit sha → full file tree (path → text).
    pub commits: HashMap<String, BTreeMap<String, String>>,
    pub pulls: BTreeMap<u64, PullRequest>,
    pub comments: Vec<Comment>,
    pub statuses: Vec<Status>,
    /// login → role_name (admin, maintain, write, triage, read).
    pub collaborators: HashMap<String, String>,
    pub reactions: Vec<Reaction>,
    pub check_runs: Vec<CheckRun>,
    pub deployments: Vec<Deployment>,
    pub tags: BTreeMap<String, String>,
    /// Check runs shipgate created (the request bodies).
    pub created_check_runs: Vec<Value>,
    /// Branch → protection, in the shape GET returns it.
    pub protection: BTreeMap<String, Value>,
    /// (number, title, author) of issues.
    pub issues: Vec<(u64, String, String)>,
    /// head sha → commits behind its base.
    pub behind: HashMap<String, u64>,
    /// (run id, body) of deployment protection rule callbacks.
    pub protection_callbacks: Vec<(String, Value)>,
    /// Issues deleted: commenting on them answers 410.
    pub deleted_issues: Vec<u64>,
    /// Repository rulesets by id, in the shape `GET …/rulesets/{id}` returns.
    pub rulesets: BTreeMap<u64, Value>,
    /// (issue number, event) of issue events (`labeled`, …), oldest first.
    pub issue_events: Vec<(u64, Value)>,
}

#[derive(Debug, Clone)]
enum FaultKind {
    Status(u16),
    RateLimit,
    /// Apply the effect, then answer only when released.
    HoldAfterEffect,
    /// Apply the effect, then answer with this status (a 5xx that lies).
    StatusAfterEffect(u16),
    /// Apply the effect, then answer after this long (a client timeout).
    DelayAfterEffect(Duration),
}

#[derive(Debug, Clone)]
struct Fault {
    method: Method,
    path: String,
    remaining: u32,
    kind: FaultKind,
}

#[derive(Default)]
pub struct World {
    pub repos: BTreeMap<String, Repo>,
    /// (org, team slug) → member logins.
    pub teams: HashMap<(String, String), Vec<String>>,
    /// Bot comments the test has read, by comment id.
    pub read_comments: Vec<u64>,
    pub requests: Vec<Recorded>,
    pub unexpected: Vec<String>,
    faults: Vec<Fault>,
    next_id: u64,
    pub held: u32,
    pub tokens_issued: u32,
    /// Installation tokens up to this number answer 401 (expired early).
    pub tokens_expired_upto: u32,
    /// The App's webhook deliveries, oldest first (`GET /app/hook/deliveries`).
    pub hook_deliveries: Vec<HookDelivery>,
    /// Where redeliveries go: (webhook URL, secret). Until set, redelivery
    /// requests wait in `pending_redeliveries`.
    pub hook_target: Option<(String, String)>,
    pub pending_redeliveries: Vec<u64>,
    /// What prism found wrong with requests and responses (conformance run).
    pub violations: Vec<String>,
    /// The test provokes violations on purpose.
    pub expect_violations: bool,
    /// This fake's URL as shipgate reaches it (GitHub's https://api.github.com).
    pub api: String,
    /// Every answer takes this long (the real API's 100–300 ms, for benchmarks).
    pub latency: Duration,
}

/// One webhook delivery attempt as GitHub lists it for the App.
#[derive(Debug, Clone)]
pub struct HookDelivery {
    pub id: u64,
    pub guid: String,
    pub event: String,
    pub action: Option<String>,
    pub payload: Value,
    pub status_code: u16,
    pub redelivery: bool,
    /// Seconds since the epoch.
    pub delivered_at: i64,
}

impl World {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
    pub fn repo(&self, full_name: &str) -> &Repo {
        self.repos
            .get(full_name)
            .unwrap_or_else(|| panic!("no repo {full_name} in the fake"))
    }
    fn repo_mut(&mut self, full_name: &str) -> &mut Repo {
        self.repos
            .get_mut(full_name)
            .unwrap_or_else(|| panic!("no repo {full_name} in the fake"))
    }
}

#[derive(Clone)]
pub struct FakeGitHub {
    pub addr: SocketAddr,
    /// In the conformance run: the front that sends requests through prism.
    pub front: Option<SocketAddr>,
    world: Arc<Mutex<World>>,
    changed: Arc<Notify>,
    release: Arc<Notify>,
}

fn blob_sha(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..20])
}

impl FakeGitHub {
    pub async fn start() -> FakeGitHub {
        Self::start_behind(super::conformance::prism_url()).await
    }

    /// A fake never put behind prism, even in the conformance run: for the
    /// load tests, whose thousands of requests are the same few that the
    /// story tests already send through prism, and which one node process
    /// would turn into a test of prism's speed.
    pub async fn start_direct() -> FakeGitHub {
        Self::start_behind(None).await
    }

    async fn start_behind(prism: Option<String>) -> FakeGitHub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let front = match prism {
            Some(prism) => {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                Some((l, prism))
            }
            None => None,
        };
        let fake = FakeGitHub {
            addr,
            front: front.as_ref().map(|(l, _)| l.local_addr().unwrap()),
            world: Arc::new(Mutex::new(World {
                next_id: 1000,
                ..World::default()
            })),
            changed: Arc::new(Notify::new()),
            release: Arc::new(Notify::new()),
        };
        let app = Router::new()
            .fallback(handle)
            .layer(axum::middleware::map_response_with_state(
                fake.clone(),
                rate_limit_headers,
            ))
            .with_state(fake.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let api = fake.url();
        fake.with_mut(|w| w.api = api);
        if let Some((l, prism)) = front {
            let f = fake.clone();
            super::conformance::serve_front(l, prism, addr.port(), move |checked| {
                checked.log(f.with(|w| w.expect_violations));
                if !checked.violations.is_empty() {
                    f.with_mut(|w| {
                        for v in &checked.violations {
                            w.violations.push(format!(
                                "{} {} -> {}: {v}",
                                checked.method, checked.path, checked.status
                            ));
                        }
                    });
                }
            });
        }
        fake
    }

    /// Where shipgate reaches this fake: through prism in the conformance run.
    pub fn url(&self) -> String {
        format!("http://{}", self.front.unwrap_or(self.addr))
    }

    /// Whether requests go through prism (the conformance run).
    pub fn conformance(&self) -> bool {
        self.front.is_some()
    }

    /// The test provokes violations on purpose: the run's summary does not
    /// count them (the test must still take them with `take_violations`).
    pub fn expect_violations(&self) {
        self.with_mut(|w| w.expect_violations = true);
    }

    /// Takes the violations prism found so far.
    pub fn take_violations(&self) -> Vec<String> {
        self.with_mut(|w| std::mem::take(&mut w.violations))
    }

    /// Reads the world.
    pub fn with<R>(&self, f: impl FnOnce(&World) -> R) -> R {
        f(&self.world.lock().unwrap())
    }

    fn with_mut<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let r = f(&mut self.world.lock().unwrap());
        self.changed.notify_waiters();
        r
    }

    /// Waits until `cond` holds for the world, re-checking after each request
    /// the fake serves. Panics after 20 s with `what`.
    pub async fn wait_for(&self, what: &str, cond: impl Fn(&World) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.with(&cond) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let log: Vec<String> = self.with(|w| {
                    w.requests
                        .iter()
                        .map(|r| format!("{} {} -> {}", r.method, r.path, r.status))
                        .collect()
                });
                panic!(
                    "timed out waiting for: {what}\nrequests so far:\n{}",
                    log.join("\n")
                );
            }
        }
    }

    /// Adds a repository with one commit on its default branch; returns that commit's sha.
    pub fn add_repo(&self, full_name: &str, files: &[(&str, &str)]) -> String {
        self.with_mut(|w| {
            let id = w.next_id();
            let mut repo = Repo {
                full_name: full_name.to_string(),
                id,
                default_branch: "main".into(),
                ..Repo::default()
            };
            let tree: BTreeMap<String, String> = files
                .iter()
                .map(|(p, t)| (p.to_string(), t.to_string()))
                .collect();
            let sha = commit_sha(id);
            repo.commits.insert(sha.clone(), tree);
            repo.branches.insert("main".into(), sha.clone());
            repo.collaborators.insert("octocat".into(), "admin".into());
            w.repos.insert(full_name.to_string(), repo);
            sha
        })
    }

    /// Commits `files` (added or replaced; `None` deletes) on `branch`,
    /// creating the branch from the default branch if needed. Returns the sha.
    pub fn commit(&self, repo: &str, branch: &str, files: &[(&str, Option<&str>)]) -> String {
        self.with_mut(|w| {
            let id = w.next_id();
            let r = w.repo_mut(repo);
            let parent = r
                .branches
                .get(branch)
                .or_else(|| r.branches.get(&r.default_branch))
                .cloned()
                .unwrap();
            let mut tree = r.commits[&parent].clone();
            for (path, text) in files {
                match text {
                    Some(t) => {
                        tree.insert(path.to_string(), t.to_string());
                    }
                    None => {
                        tree.remove(*path);
                    }
                }
            }
            let sha = commit_sha(id);
            r.commits.insert(sha.clone(), tree);
            r.branches.insert(branch.to_string(), sha.clone());
            sha
        })
    }

    /// Opens a pull request from `head` into the default branch.
    pub fn open_pr(&self, repo: &str, head: &str, author: &str) -> u64 {
        self.with_mut(|w| {
            let number = w.next_id();
            let r = w.repo_mut(repo);
            let base_ref = r.default_branch.clone();
            let pr = PullRequest {
                number,
                head_ref: head.to_string(),
                head_sha: r.branches[head].clone(),
                base_sha: r.branches[&base_ref].clone(),
                base_ref,
                author: author.to_string(),
                state: "open".into(),
                draft: false,
                reviews: Vec::new(),
                fork: None,
            };
            r.pulls.insert(number, pr);
            number
        })
    }

    /// Gives `login` a role on `repo` (admin, maintain, write, triage, read).
    pub fn set_role(&self, repo: &str, login: &str, role: &str) {
        self.with_mut(|w| {
            w.repo_mut(repo)
                .collaborators
                .insert(login.to_string(), role.to_string());
        });
    }

    pub fn add_team_member(&self, org: &str, team: &str, login: &str) {
        self.with_mut(|w| {
            w.teams
                .entry((org.to_string(), team.to_string()))
                .or_default()
                .push(login.to_string())
        });
    }

    /// A review of the PR's current head.
    pub fn review(&self, repo: &str, pr: u64, user: &str, state: &str) {
        let head = self.pr(repo, pr).head_sha;
        self.review_of(repo, pr, user, state, &head);
    }

    /// A review of commit `sha` of the PR (an earlier head).
    pub fn review_of(&self, repo: &str, pr: u64, user: &str, state: &str, sha: &str) {
        self.with_mut(|w| {
            w.repo_mut(repo)
                .pulls
                .get_mut(&pr)
                .unwrap()
                .reviews
                .push(Review {
                    user: user.into(),
                    state: state.into(),
                    commit_id: sha.into(),
                })
        });
    }

    pub fn set_pr(&self, repo: &str, pr: u64, f: impl FnOnce(&mut PullRequest)) {
        self.with_mut(|w| f(w.repo_mut(repo).pulls.get_mut(&pr).unwrap()));
    }

    /// Sets a check run on `sha` (replacing one of the same name).
    pub fn check_run(
        &self,
        repo: &str,
        sha: &str,
        name: &str,
        status: &str,
        conclusion: Option<&str>,
    ) {
        self.with_mut(|w| {
            let r = w.repo_mut(repo);
            r.check_runs.retain(|c| !(c.sha == sha && c.name == name));
            r.check_runs.push(CheckRun {
                sha: sha.into(),
                name: name.into(),
                status: status.into(),
                conclusion: conclusion.map(str::to_string),
                app: "github-actions".into(),
            });
        });
    }

    /// A deployment made outside shipgate (history for rollbacks).
    pub fn add_deployment(&self, repo: &str, sha: &str, environment: &str, states: &[&str]) -> u64 {
        self.with_mut(|w| {
            let id = w.next_id();
            let d = Deployment {
                id,
                sha: sha.into(),
                git_ref: sha.into(),
                environment: environment.into(),
                payload: json!({}),
                creator: "octocat".into(),
                production_environment: false,
                statuses: states
                    .iter()
                    .map(|s| DeploymentStatus {
                        state: s.to_string(),
                        ..Default::default()
                    })
                    .collect(),
                created_at: None,
            };
            w.repo_mut(repo).deployments.push(d);
            id
        })
    }

    /// A deployment made outside shipgate at a chosen time, with statuses
    /// at chosen times (`(state, created_at)`, RFC 3339): a history hours
    /// or days old, relative to now.
    pub fn add_deployment_at(
        &self,
        repo: &str,
        sha: &str,
        environment: &str,
        payload: Value,
        created_at: &str,
        statuses: &[(&str, &str)],
    ) -> u64 {
        let id = self.create_deployment(repo, sha, environment, payload);
        self.with_mut(|w| {
            let d = w
                .repo_mut(repo)
                .deployments
                .iter_mut()
                .find(|d| d.id == id)
                .unwrap();
            d.created_at = Some(created_at.to_string());
            d.statuses = statuses
                .iter()
                .map(|(state, at)| DeploymentStatus {
                    state: state.to_string(),
                    created_at: Some(at.to_string()),
                    ..Default::default()
                })
                .collect();
        });
        id
    }

    /// Moves a deployment and every status of it to `created_at` (time
    /// passing, without waiting for it).
    pub fn set_deployment_time(&self, repo: &str, id: u64, created_at: &str) {
        self.with_mut(|w| {
            let d = w
                .repo_mut(repo)
                .deployments
                .iter_mut()
                .find(|d| d.id == id)
                .unwrap();
            d.created_at = Some(created_at.to_string());
            for s in &mut d.statuses {
                s.created_at = Some(created_at.to_string());
            }
        });
    }

    /// Marks a deployment `production_environment: true`, as its creator may.
    pub fn set_production_environment(&self, repo: &str, id: u64) {
        self.with_mut(|w| {
            let d = w.repo_mut(repo).deployments.iter_mut().find(|d| d.id == id);
            d.unwrap().production_environment = true;
        });
    }

    pub fn deployments(&self, repo: &str) -> Vec<Deployment> {
        self.with(|w| w.repo(repo).deployments.clone())
    }

    /// Adds a status to a deployment (as the repository's deploy workflow
    /// would) and returns the `deployment_status` payload GitHub sends.
    pub fn deployment_status(
        &self,
        repo: &str,
        id: u64,
        state: &str,
        environment_url: Option<&str>,
        log_url: Option<&str>,
    ) -> Value {
        let d = self.with_mut(|w| {
            let d = w
                .repo_mut(repo)
                .deployments
                .iter_mut()
                .find(|d| d.id == id)
                .unwrap();
            d.statuses.push(DeploymentStatus {
                state: state.into(),
                environment_url: environment_url.map(str::to_string),
                log_url: log_url.map(str::to_string),
                created_at: Some(deployments::now_rfc3339()),
                ..Default::default()
            });
            d.clone()
        });
        json!({
            "action": "created",
            "deployment_status": { "id": self.with_mut(|w| w.next_id()), "state": state, "environment_url": environment_url.unwrap_or(""), "log_url": log_url.unwrap_or(""), "target_url": log_url.unwrap_or("") },
            "deployment": deployment_json(&self.url(), repo, &d),
            "repository": self.repository_json(repo),
            "installation": { "id": 42 },
            "sender": { "login": "github-actions[bot]", "type": "Bot" },
        })
    }

    /// The `deployment_status` webhook GitHub sends for the newest status of
    /// deployment `id`, one a workflow (or the Action) posted through the API.
    pub fn status_event(&self, repo: &str, id: u64) -> Value {
        let d = self.with(|w| {
            w.repos[repo]
                .deployments
                .iter()
                .find(|d| d.id == id)
                .cloned()
                .unwrap()
        });
        let s = d.statuses.last().expect("the deployment has a status");
        json!({
            "action": "created",
            "deployment_status": {
                "id": self.with_mut(|w| w.next_id()), "state": s.state,
                "environment_url": s.environment_url.as_deref().unwrap_or(""),
                "log_url": s.log_url.as_deref().unwrap_or(""),
                "target_url": s.log_url.as_deref().unwrap_or(""),
                "description": s.description.as_deref().unwrap_or(""),
            },
            "deployment": deployment_json(&self.url(), repo, &d),
            "repository": self.repository_json(repo),
            "installation": { "id": 42 },
            "sender": { "login": "github-actions[bot]", "type": "Bot" },
        })
    }

    /// Sets a branch's protection as a human would (GET shape).
    pub fn set_protection(&self, repo: &str, branch: &str, protection: Value) {
        self.with_mut(|w| {
            w.repo_mut(repo)
                .protection
                .insert(branch.to_string(), protection);
        });
    }

    pub fn protection(&self, repo: &str, branch: &str) -> Option<Value> {
        self.with(|w| w.repo(repo).protection.get(branch).cloned())
    }

    pub fn set_behind(&self, repo: &str, head: &str, behind: u64) {
        self.with_mut(|w| {
            w.repo_mut(repo).behind.insert(head.to_string(), behind);
        });
    }

    /// Callbacks of a deployment protection rule run: the bodies, in order.
    pub fn protection_callbacks(&self, repo: &str, run: &str) -> Vec<Value> {
        self.with(|w| {
            w.repo(repo)
                .protection_callbacks
                .iter()
                .filter(|(id, _)| id == run)
                .map(|(_, b)| b.clone())
                .collect()
        })
    }

    /// A `deployment_protection_rule` request for `deployment` of `sha` on `git_ref`.
    #[allow(clippy::too_many_arguments)]
    pub fn protection_rule_payload(
        &self,
        repo: &str,
        run: &str,
        environment: &str,
        deployment: u64,
        sha: &str,
        git_ref: &str,
        pr: Option<u64>,
    ) -> Value {
        let prs: Vec<Value> = pr
            .map(|n| json!({ "number": n, "head": { "sha": sha } }))
            .into_iter()
            .collect();
        json!({
            "action": "requested",
            "environment": environment,
            "event": "push",
            "ref": git_ref,
            "sha": sha,
            "deployment": { "id": deployment, "sha": sha, "ref": git_ref, "creator": { "login": "github-actions[bot]" } },
            "deployment_callback_url": format!("{}/repos/{repo}/actions/runs/{run}/deployment_protection_rule", self.url()),
            "pull_requests": prs,
            "repository": self.repository_json(repo),
            "installation": { "id": 42 },
            "sender": { "login": "alice", "type": "User" },
        })
    }

    /// Issues of `repo`: (number, title, author).
    pub fn issues(&self, repo: &str) -> Vec<(u64, String, String)> {
        self.with(|w| w.repo(repo).issues.clone())
    }

    /// Check runs shipgate created on `repo`.
    pub fn created_check_runs(&self, repo: &str) -> Vec<Value> {
        self.with(|w| w.repo(repo).created_check_runs.clone())
    }

    /// Creates a deployment as a provider or workflow would; returns its id.
    pub fn create_deployment(
        &self,
        repo: &str,
        sha: &str,
        environment: &str,
        payload: Value,
    ) -> u64 {
        self.with_mut(|w| {
            let id = w.next_id();
            let d = Deployment {
                id,
                sha: sha.into(),
                git_ref: sha.into(),
                environment: environment.into(),
                payload,
                creator: "vercel[bot]".into(),
                production_environment: false,
                statuses: Vec::new(),
                created_at: None,
            };
            w.repo_mut(repo).deployments.push(d);
            id
        })
    }

    /// Moves a PR's head to the latest commit of its branch (a push).
    pub fn sync_pr(&self, repo: &str, pr: u64) {
        self.with_mut(|w| {
            let r = w.repo_mut(repo);
            let head_ref = r.pulls[&pr].head_ref.clone();
            let sha = r.branches[&head_ref].clone();
            r.pulls.get_mut(&pr).unwrap().head_sha = sha;
        });
    }

    /// A user's comment on an issue or PR; returns its id.
    pub fn add_comment(&self, repo: &str, issue: u64, user: &str, body: &str) -> u64 {
        self.with_mut(|w| {
            let id = w.next_id();
            w.repo_mut(repo).comments.push(Comment {
                id,
                issue,
                user: user.into(),
                body: body.into(),
                edits: 0,
            });
            id
        })
    }

    /// The `issue_comment` payload for comment `id` (`created`, or `edited` with the old body).
    pub fn issue_comment_payload(
        &self,
        repo: &str,
        id: u64,
        action: &str,
        previous_body: Option<&str>,
    ) -> Value {
        let (c, is_pr) = self.with(|w| {
            let r = w.repo(repo);
            let c = r.comments.iter().find(|c| c.id == id).unwrap().clone();
            let is_pr = r.pulls.contains_key(&c.issue);
            (c, is_pr)
        });
        let mut issue = json!({ "number": c.issue, "title": format!("#{}", c.issue), "state": "open", "user": { "login": "alice" } });
        if is_pr {
            issue["pull_request"] =
                json!({ "url": format!("{}/repos/{repo}/pulls/{}", self.url(), c.issue) });
        }
        let user_type = if c.user.ends_with("[bot]") {
            "Bot"
        } else {
            "User"
        };
        let mut payload = json!({
            "action": action,
            "issue": issue,
            "comment": { "id": c.id, "body": c.body, "user": { "login": c.user, "type": user_type } },
            "repository": self.repository_json(repo),
            "installation": { "id": 42 },
            "sender": { "login": c.user, "type": user_type },
        });
        if let Some(prev) = previous_body {
            payload["changes"] = json!({ "body": { "from": prev } });
        }
        payload
    }

    /// Reactions on a comment, in order.
    pub fn reactions(&self, repo: &str, comment_id: u64) -> Vec<String> {
        self.with(|w| {
            w.repo(repo)
                .reactions
                .iter()
                .filter(|r| r.comment_id == comment_id)
                .map(|r| r.content.clone())
                .collect()
        })
    }

    /// Bot comments on `issue`, oldest first.
    pub fn bot_comments(&self, repo: &str, issue: u64) -> Vec<Comment> {
        self.with(|w| {
            w.repo(repo)
                .comments
                .iter()
                .filter(|c| c.issue == issue && c.user == BOT_LOGIN)
                .cloned()
                .collect()
        })
    }

    /// The oldest bot comment on `issue` the test has not read yet; marks it read.
    pub fn next_bot_comment(&self, repo: &str, issue: u64) -> Comment {
        self.with_mut(|w| {
            let read = w.read_comments.clone();
            let c = w
                .repo(repo)
                .comments
                .iter()
                .find(|c| c.issue == issue && c.user == BOT_LOGIN && !read.contains(&c.id))
                .cloned()
                .unwrap_or_else(|| {
                    panic!("expected a bot comment on {repo}#{issue}, found none unread")
                });
            w.read_comments.push(c.id);
            c
        })
    }

    /// The current text of a comment.
    pub fn comment_body(&self, repo: &str, id: u64) -> String {
        self.with(|w| {
            w.repo(repo)
                .comments
                .iter()
                .find(|c| c.id == id)
                .unwrap()
                .body
                .clone()
        })
    }

    /// Fails the test if the bot posted comments the test never read.
    pub fn assert_no_unread_bot_comments(&self) {
        let unread: Vec<String> = self.with(|w| {
            w.repos
                .values()
                .flat_map(|r| r.comments.iter().map(move |c| (r, c)))
                .filter(|(_, c)| c.user == BOT_LOGIN && !w.read_comments.contains(&c.id))
                .map(|(r, c)| format!("{}#{}: {}", r.full_name, c.issue, c.body))
                .collect()
        });
        assert!(
            unread.is_empty(),
            "the bot posted comments no test step expected:\n{}",
            unread.join("\n---\n")
        );
    }

    pub fn pr(&self, repo: &str, number: u64) -> PullRequest {
        self.with(|w| w.repo(repo).pulls[&number].clone())
    }

    pub fn statuses(&self, repo: &str, sha: &str) -> Vec<Status> {
        self.with(|w| {
            w.repo(repo)
                .statuses
                .iter()
                .filter(|s| s.sha == sha)
                .cloned()
                .collect()
        })
    }

    /// Requests matching `method` and `path` (exact, without query).
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<Recorded> {
        self.with(|w| {
            w.requests
                .iter()
                .filter(|r| r.method.as_str() == method && r.path == path)
                .cloned()
                .collect()
        })
    }

    /// The next `times` requests to `method path` answer `status`.
    pub fn fail_next(&self, method: &str, path: &str, times: u32, status: u16) {
        self.add_fault(method, path, times, FaultKind::Status(status));
    }

    /// The next `times` requests to `method path` answer 403 with
    /// `x-ratelimit-remaining: 0` and `retry-after: 0`.
    pub fn rate_limit_next(&self, method: &str, path: &str, times: u32) {
        self.add_fault(method, path, times, FaultKind::RateLimit);
    }

    /// Lets every held request answer.
    pub fn release_held(&self) {
        self.release.notify_waiters();
    }

    /// The next request to `method path` takes effect, then does not answer
    /// until `release_held` (or the caller gives up).
    pub fn hold_after_effect(&self, method: &str, path: &str) {
        self.add_fault(method, path, 1, FaultKind::HoldAfterEffect);
    }

    fn add_fault(&self, method: &str, path: &str, times: u32, kind: FaultKind) {
        self.with_mut(|w| {
            w.faults.push(Fault {
                method: method.parse().unwrap(),
                path: path.to_string(),
                remaining: times,
                kind,
            })
        });
    }

    /// Fails the test if shipgate called an endpoint the fake does not implement.
    pub fn assert_no_unexpected(&self) {
        let unexpected = self.with(|w| w.unexpected.clone());
        assert!(
            unexpected.is_empty(),
            "shipgate made API calls the fake GitHub does not expect:\n{}",
            unexpected.join("\n")
        );
        let violations = self.with(|w| w.violations.clone());
        assert!(
            violations.is_empty(),
            "GitHub's OpenAPI description does not allow these requests or the fake's answers (prism):\n{}",
            violations.join("\n")
        );
    }

    /// The payload `repository` object GitHub sends for `repo`.
    pub fn repository_json(&self, repo: &str) -> Value {
        self.with(|w| {
            let r = w.repo(repo);
            let (owner, name) = r.full_name.split_once('/').unwrap();
            json!({
                "id": r.id, "name": name, "full_name": r.full_name, "private": false,
                "owner": { "login": owner, "id": 1, "type": "Organization" },
                "default_branch": r.default_branch,
                "html_url": format!("https://github.com/{}", r.full_name),
            })
        })
    }

    /// A `pull_request` webhook payload built from the fake's own PR.
    pub fn pull_request_payload(&self, repo: &str, number: u64, action: &str) -> Value {
        let pr = self.pr(repo, number);
        json!({
            "action": action,
            "number": number,
            "pull_request": {
                "number": number, "state": "open", "title": format!("PR {number}"),
                "user": { "login": pr.author, "type": "User" },
                "head": { "ref": pr.head_ref, "sha": pr.head_sha },
                "base": { "ref": pr.base_ref, "sha": pr.base_sha },
            },
            "repository": self.repository_json(repo),
            "installation": { "id": 42 },
            "sender": { "login": pr.author, "type": "User" },
        })
    }

    /// A `push` webhook payload for the latest commit on `branch`, listing `changed` paths.
    pub fn push_payload(&self, repo: &str, branch: &str, changed: &[&str]) -> Value {
        let after = self.with(|w| w.repo(repo).branches[branch].clone());
        json!({
            "ref": format!("refs/heads/{branch}"),
            "before": "0000000000000000000000000000000000000000",
            "after": after,
            "deleted": false,
            "commits": [{ "id": after, "added": [], "removed": [], "modified": changed }],
            "head_commit": { "id": after, "added": [], "removed": [], "modified": changed },
            "repository": self.repository_json(repo),
            "installation": { "id": 42 },
            "sender": { "login": "octocat", "type": "User" },
        })
    }
}

fn json_response(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

fn not_found(what: &str) -> (u16, Value) {
    (404, shapes::error(&format!("Not Found: {what}")))
}

/// Like GitHub, every answer tells the rate limit left: 5,000 an hour for
/// `core`, less one per request served so far, at least 1 (an injected rate
/// limit keeps its own headers).
async fn rate_limit_headers(State(fake): State<FakeGitHub>, mut resp: Response) -> Response {
    let h = resp.headers_mut();
    if !h.contains_key("x-ratelimit-remaining") {
        let served = fake.with(|w| w.requests.len());
        // Never 0: that would make any 403 read as an exhausted limit.
        let remaining = 5000usize.saturating_sub(served).max(1);
        h.insert("x-ratelimit-limit", "5000".parse().unwrap());
        h.insert("x-ratelimit-remaining", remaining.into());
        h.insert("x-ratelimit-resource", "core".parse().unwrap());
    }
    resp
}

async fn handle(
    State(fake): State<FakeGitHub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let body_json: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };

    // Faults first.
    let fault = fake.with_mut(|w| {
        let f = w
            .faults
            .iter_mut()
            .find(|f| f.method == method && f.path == path && f.remaining > 0)?;
        f.remaining -= 1;
        Some(f.kind.clone())
    });
    let received_at = std::time::Instant::now();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let record = |status: u16| {
        fake.with_mut(|w| {
            w.requests.push(Recorded {
                method: method.clone(),
                path: path.clone(),
                query: uri.query().unwrap_or("").to_string(),
                body: body_json.clone(),
                status,
                auth: auth.clone(),
                at: received_at,
            })
        })
    };
    match fault {
        Some(FaultKind::Status(status)) => {
            record(status);
            let mut resp = json_response(
                status,
                json!({ "message": "injected fault", "documentation_url": DOCS }),
            );
            resp.headers_mut()
                .insert(super::conformance::INJECTED_HEADER, "1".parse().unwrap());
            return resp;
        }
        Some(FaultKind::RateLimit) => {
            record(403);
            let mut resp = json_response(
                403,
                json!({ "message": "API rate limit exceeded", "documentation_url": DOCS }),
            );
            let h = resp.headers_mut();
            h.insert(super::conformance::INJECTED_HEADER, "1".parse().unwrap());
            h.insert("x-ratelimit-remaining", "0".parse().unwrap());
            h.insert(
                "x-ratelimit-reset",
                (std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs())
                .to_string()
                .parse()
                .unwrap(),
            );
            h.insert("retry-after", "0".parse().unwrap());
            return resp;
        }
        _ => {}
    }

    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // App endpoints take only the App's JWT (three dot-separated parts).
    if segments.first() == Some(&"app") {
        let jwt = auth.strip_prefix("Bearer ").unwrap_or("");
        if jwt.split('.').count() != 3 {
            record(401);
            return json_response(
                401,
                json!({ "message": "A JSON web token could not be decoded" }),
            );
        }
    }
    if let Some(n) = auth
        .rsplit("ghs_fake")
        .next()
        .filter(|_| auth.contains("ghs_fake"))
        .and_then(|n| n.parse::<u32>().ok())
    {
        if fake.with(|w| n <= w.tokens_expired_upto) {
            record(401);
            let mut resp = json_response(
                401,
                json!({ "message": "Bad credentials", "documentation_url": DOCS }),
            );
            resp.headers_mut()
                .insert(super::conformance::INJECTED_HEADER, "1".parse().unwrap());
            return resp;
        }
    }
    if let Some(resp) = fake.hook_deliveries_endpoint(&method, &segments, &query) {
        record(resp.status().as_u16());
        return resp;
    }
    let if_none_match = headers
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (status, resp_body, etag) = fake.with_mut(|w| {
        route(
            w,
            &method,
            &segments,
            &query,
            &body_json,
            if_none_match.as_deref(),
        )
    });
    if status == 404 && resp_body.get("unimplemented").is_some() {
        fake.with_mut(|w| w.unexpected.push(format!("{method} {path}")));
    }
    record(status);
    match fault {
        Some(FaultKind::StatusAfterEffect(status)) => {
            let mut resp = json_response(
                status,
                json!({ "message": "injected fault after the effect", "documentation_url": DOCS }),
            );
            resp.headers_mut()
                .insert(super::conformance::INJECTED_HEADER, "1".parse().unwrap());
            return resp;
        }
        Some(FaultKind::DelayAfterEffect(delay)) => tokio::time::sleep(delay).await,
        _ if fake.with(|w| w.latency > Duration::ZERO) => {
            tokio::time::sleep(fake.with(|w| w.latency)).await
        }
        _ => {}
    }
    if matches!(fault, Some(FaultKind::HoldAfterEffect)) {
        // Register as a waiter before announcing the hold, so a release that
        // follows the announcement cannot be missed.
        let released = fake.release.notified();
        tokio::pin!(released);
        released.as_mut().enable();
        fake.with_mut(|w| w.held += 1);
        released.await;
    }
    let mut resp = if status == 304 {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        json_response(status, resp_body)
    };
    if let Some(tag) = etag {
        resp.headers_mut().insert("etag", tag.parse().unwrap());
    }
    resp
}

type Routed = (u16, Value, Option<String>);

/// Answers one API request: each area of the API has its module.
fn route(
    w: &mut World,
    method: &Method,
    seg: &[&str],
    query: &HashMap<String, String>,
    body: &Value,
    if_none_match: Option<&str>,
) -> Routed {
    let area: fn(&mut World, &Req) -> Routed = match seg {
        ["user"] | ["app", ..] | ["orgs", ..] => apps::route,
        ["repos", _, _, "deployments", ..] => deployments::route,
        ["repos", _, _, "check-runs", ..]
        | ["repos", _, _, "statuses", ..]
        | ["repos", _, _, "commits", _, "status" | "check-runs"] => checks::route,
        ["repos", _, _, "pulls", ..] | ["repos", _, _, "commits", _, "pulls"] => pulls::route,
        ["repos", _, _, "issues" | "collaborators", ..] => issues::route,
        ["repos", _, _, "branches" | "actions", ..] => protection::route,
        ["repos", _, _, "rulesets" | "rules", ..] => rulesets::route,
        ["repos", ..] => repos::route,
        _ => return unimplemented(),
    };
    let api = w.api.clone();
    let req = Req {
        api: &api,
        method,
        seg,
        query,
        body,
        if_none_match,
    };
    area(w, &req)
}

/// One API request, as an area's `route` reads it.
#[derive(Clone, Copy)]
struct Req<'a> {
    /// The fake's base URL, for the URLs in its answers.
    api: &'a str,
    method: &'a Method,
    seg: &'a [&'a str],
    query: &'a HashMap<String, String>,
    body: &'a Value,
    if_none_match: Option<&'a str>,
}

/// A 200 with `body` and no ETag.
fn ok(body: Value) -> Routed {
    (200, body, None)
}

/// What the fake answers for an endpoint it does not implement; the request
/// is recorded as unexpected.
fn unimplemented() -> Routed {
    (
        404,
        json!({ "message": "Not Found", "unimplemented": true }),
        None,
    )
}

/// A PUT protection body in the shape GET returns.
fn protection_from_put(body: &Value) -> Value {
    let enabled = |v: &Value| json!({ "enabled": v.as_bool().unwrap_or(false) });
    let mut out = json!({
        "enforce_admins": enabled(&body["enforce_admins"]),
        "required_linear_history": enabled(&body["required_linear_history"]),
        "allow_force_pushes": enabled(&body["allow_force_pushes"]),
        "allow_deletions": enabled(&body["allow_deletions"]),
        "required_conversation_resolution": enabled(&body["required_conversation_resolution"]),
        "block_creations": enabled(&body["block_creations"]),
        "lock_branch": enabled(&body["lock_branch"]),
        "allow_fork_syncing": enabled(&body["allow_fork_syncing"]),
    });
    if let Some(c) = body["required_status_checks"].as_object() {
        let checks: Vec<Value> = c
            .get("checks")
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default();
        let mut contexts: Vec<Value> = checks.iter().map(|k| k["context"].clone()).collect();
        if let Some(cs) = c.get("contexts").and_then(|v| v.as_array()) {
            contexts.extend(cs.iter().cloned());
        }
        out["required_status_checks"] = json!({ "strict": c.get("strict").cloned().unwrap_or(json!(false)), "contexts": contexts, "checks": checks });
    }
    if let Some(r) = body["required_pull_request_reviews"].as_object() {
        let mut reviews = Value::Object(r.clone());
        if let Some(d) = r.get("dismissal_restrictions") {
            let users: Vec<Value> = d["users"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|u| json!({ "login": u }))
                .collect();
            let teams: Vec<Value> = d["teams"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|t| json!({ "slug": t }))
                .collect();
            reviews["dismissal_restrictions"] = json!({ "users": users, "teams": teams });
        }
        out["required_pull_request_reviews"] = reviews;
    }
    if let Some(r) = body["restrictions"].as_object() {
        let objs = |k: &str, f: &str| -> Vec<Value> {
            r.get(k)
                .and_then(|v| v.as_array())
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|x| json!({ f: x }))
                .collect()
        };
        out["restrictions"] = json!({ "users": objs("users", "login"), "teams": objs("teams", "slug"), "apps": objs("apps", "slug") });
    }
    out
}

fn deployment_json(api: &str, full: &str, d: &Deployment) -> Value {
    let mut out = shapes::deployment(
        api,
        full,
        d.id,
        &d.sha,
        &d.git_ref,
        &d.environment,
        &d.payload,
        &d.creator,
        d.production_environment,
    );
    if let Some(at) = &d.created_at {
        out["created_at"] = json!(at);
        out["updated_at"] = json!(at);
    }
    out
}

/// What `shapes::pull_request` needs of the fake's pull request.
fn pr_fields(api: &str, p: &PullRequest) -> Value {
    let mut head = json!({ "ref": p.head_ref, "sha": p.head_sha });
    if let Some(fork) = &p.fork {
        head["repo"] = if fork.is_empty() {
            Value::Null // the fork was deleted
        } else {
            shapes::repository(api, fork, shapes::id_of(fork), "main")
        };
    }
    json!({
        "number": p.number, "state": p.state, "draft": p.draft, "author": p.author,
        "head": head,
        "base": { "ref": p.base_ref, "sha": p.base_sha },
    })
}

/// One page of a list, by `per_page` (default 30, at most 100) and `page`.
fn page_of(all: Vec<Value>, query: &HashMap<String, String>) -> Vec<Value> {
    let per_page: usize = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page: usize = query
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    all.into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect()
}

fn with_none((status, body): (u16, Value)) -> Routed {
    (status, body, None)
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A commit sha that looks like one (distinct short prefixes).
fn commit_sha(id: u64) -> String {
    hex::encode(&Sha256::digest(format!("commit {id}").as_bytes())[..20])
}

// ---- faults that happen after the effect, expired tokens, and the App's
// webhook delivery log (for the redelivery sweeper).
impl FakeGitHub {
    /// The next `times` calls take effect and then answer `status`.
    pub fn fail_after_effect(&self, method: &str, path: &str, times: u32, status: u16) {
        self.add_fault(method, path, times, FaultKind::StatusAfterEffect(status));
    }

    /// The next `times` calls take effect and then answer only after `delay`.
    pub fn delay_after_effect(&self, method: &str, path: &str, times: u32, delay: Duration) {
        self.add_fault(method, path, times, FaultKind::DelayAfterEffect(delay));
    }

    /// Every installation token issued so far answers 401 from now on.
    pub fn expire_installation_tokens(&self) {
        self.with_mut(|w| w.tokens_expired_upto = w.tokens_issued);
    }

    /// Records a delivery attempt in the App's delivery log, `age_secs` ago.
    pub fn log_hook_delivery(
        &self,
        guid: &str,
        event: &str,
        payload: &Value,
        status_code: u16,
        age_secs: i64,
    ) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        self.with_mut(|w| {
            let id = w.next_id();
            w.hook_deliveries.push(HookDelivery {
                id,
                guid: guid.into(),
                event: event.into(),
                action: payload["action"].as_str().map(str::to_string),
                payload: payload.clone(),
                status_code,
                redelivery: false,
                delivered_at: now - age_secs,
            });
            w.hook_deliveries.sort_by_key(|d| d.delivered_at);
            id
        })
    }

    /// Changes a logged delivery attempt.
    pub fn with_mut_hook(&self, id: u64, f: impl FnOnce(&mut HookDelivery)) {
        self.with_mut(|w| f(w.hook_deliveries.iter_mut().find(|d| d.id == id).unwrap()));
    }

    /// Points redeliveries at shipgate's webhook; sends those already asked for.
    pub fn set_hook_target(&self, url: &str, secret: &str) {
        let pending = self.with_mut(|w| {
            w.hook_target = Some((url.into(), secret.into()));
            std::mem::take(&mut w.pending_redeliveries)
        });
        for id in pending {
            self.redeliver(id);
        }
    }

    /// Redelivery requests received (`POST /app/hook/deliveries/{id}/attempts`).
    pub fn redelivery_requests(&self) -> Vec<u64> {
        self.with(|w| {
            w.requests
                .iter()
                .filter(|r| r.method == Method::POST)
                .filter_map(|r| {
                    let rest = r.path.strip_prefix("/app/hook/deliveries/")?;
                    rest.strip_suffix("/attempts")?.parse().ok()
                })
                .collect()
        })
    }

    fn hook_deliveries_endpoint(
        &self,
        method: &Method,
        seg: &[&str],
        query: &HashMap<String, String>,
    ) -> Option<Response> {
        match (method.as_str(), seg) {
            ("GET", ["app", "hook", "deliveries"]) => {
                let per_page: usize = query
                    .get("per_page")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(30)
                    .clamp(1, 100);
                // The cursor is the position in the newest-first list.
                let start: usize = query
                    .get("cursor")
                    .and_then(|c| c.strip_prefix("v1_"))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let (page, more) = self.with(|w| {
                    let newest_first: Vec<&HookDelivery> = w.hook_deliveries.iter().rev().collect();
                    let page: Vec<Value> = newest_first
                        .iter()
                        .skip(start)
                        .take(per_page)
                        .map(|d| hook_delivery_json(d))
                        .collect();
                    (page, newest_first.len() > start + per_page)
                });
                let mut resp = json_response(200, Value::Array(page));
                if more {
                    let link = format!(
                        "<{}/app/hook/deliveries?per_page={per_page}&cursor=v1_{}>; rel=\"next\"",
                        self.url(),
                        start + per_page
                    );
                    resp.headers_mut().insert("link", link.parse().unwrap());
                }
                Some(resp)
            }
            ("POST", ["app", "hook", "deliveries", id, "attempts"]) => {
                let id: u64 = id.parse().ok()?;
                let known = self.with(|w| w.hook_deliveries.iter().any(|d| d.id == id));
                if !known {
                    return Some(json_response(404, json!({ "message": "Not Found" })));
                }
                let target = self.with_mut(|w| {
                    if w.hook_target.is_none() {
                        w.pending_redeliveries.push(id);
                    }
                    w.hook_target.clone()
                });
                if target.is_some() {
                    self.redeliver(id);
                }
                Some(json_response(202, json!({})))
            }
            _ => None,
        }
    }

    /// Sends delivery `id` again, as GitHub does after a redelivery request,
    /// and logs the new attempt with its answer.
    fn redeliver(&self, id: u64) {
        let fake = self.clone();
        tokio::spawn(async move {
            let (original, (url, secret)) = fake.with(|w| {
                let d = w
                    .hook_deliveries
                    .iter()
                    .find(|d| d.id == id)
                    .unwrap()
                    .clone();
                (d, w.hook_target.clone().unwrap())
            });
            let body = serde_json::to_vec(&original.payload).unwrap();
            let sig = shipgate::github::signature::sign(secret.as_bytes(), &body);
            let status = reqwest::Client::new()
                .post(&url)
                .header("content-type", "application/json")
                .header("x-github-event", &original.event)
                .header("x-github-delivery", &original.guid)
                .header("x-hub-signature-256", sig)
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(502);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            fake.with_mut(|w| {
                let id = w.next_id();
                w.hook_deliveries.push(HookDelivery {
                    id,
                    redelivery: true,
                    status_code: status,
                    delivered_at: now,
                    ..original
                });
            });
        });
    }
}

fn hook_delivery_json(d: &HookDelivery) -> Value {
    let at = chrono::DateTime::from_timestamp(d.delivered_at, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    json!({
        "id": d.id,
        "guid": d.guid,
        "delivered_at": at,
        "redelivery": d.redelivery,
        "duration": 0.05,
        "status": if (200..300).contains(&d.status_code) { "OK" } else { "Invalid HTTP Response: 502" },
        "status_code": d.status_code,
        "event": d.event,
        "action": d.action,
        "installation_id": d.payload["installation"]["id"].as_i64(),
        "repository_id": d.payload["repository"]["id"].as_i64(),
    })
}

// ---- deploy decision: forks, editors, tags, deleted issues.
impl FakeGitHub {
    /// Moves a PR's head into a fork (`owner/name`; empty: a deleted fork).
    pub fn make_fork_pr(&self, repo: &str, pr: u64, fork: &str) {
        self.set_pr(repo, pr, |p| p.fork = Some(fork.to_string()));
    }

    /// A tag named `name` at `sha`.
    pub fn tag(&self, repo: &str, name: &str, sha: &str) {
        self.with_mut(|w| {
            w.repo_mut(repo)
                .tags
                .insert(name.to_string(), sha.to_string());
        });
    }

    /// `editor` edits comment `id` into `body`; returns the `edited` payload
    /// GitHub sends (the author stays `comment.user`, the editor is `sender`).
    pub fn edit_comment(&self, repo: &str, id: u64, editor: &str, body: &str) -> Value {
        let previous = self.with_mut(|w| {
            let c = w
                .repo_mut(repo)
                .comments
                .iter_mut()
                .find(|c| c.id == id)
                .unwrap();
            std::mem::replace(&mut c.body, body.to_string())
        });
        let mut payload = self.issue_comment_payload(repo, id, "edited", Some(&previous));
        payload["sender"] = json!({ "login": editor, "type": "User" });
        payload
    }

    /// A check run of `name` on `sha` reported by the App `app` (slug).
    pub fn check_run_from(&self, repo: &str, sha: &str, name: &str, app: &str, conclusion: &str) {
        self.with_mut(|w| {
            let r = w.repo_mut(repo);
            r.check_runs
                .retain(|c| !(c.sha == sha && c.name == name && c.app == app));
            r.check_runs.push(CheckRun {
                sha: sha.into(),
                name: name.into(),
                status: "completed".into(),
                conclusion: Some(conclusion.into()),
                app: app.into(),
            });
        });
    }

    /// Someone deletes issue `number`.
    pub fn delete_issue(&self, repo: &str, number: u64) {
        self.with_mut(|w| w.repo_mut(repo).deleted_issues.push(number));
    }
}

// ---- action: issue events, so the Action can learn who added a label.
impl FakeGitHub {
    /// Records that `actor` added (or, with `labeled: false`, removed)
    /// `label` on issue or PR `issue`; returns the event's id.
    pub fn label_event(
        &self,
        repo: &str,
        issue: u64,
        label: &str,
        actor: &str,
        labeled: bool,
    ) -> u64 {
        self.with_mut(|w| {
            let id = w.next_id();
            let api = w.api.clone();
            let kind = if labeled { "labeled" } else { "unlabeled" };
            let event = json!({
                "id": id,
                "node_id": shapes::node_id("LE", id),
                "url": format!("{api}/repos/{repo}/issues/events/{id}"),
                "actor": shapes::user(&api, actor),
                "event": kind,
                "commit_id": null,
                "commit_url": null,
                "created_at": shapes::TIME,
                "performed_via_github_app": null,
                "label": { "name": label, "color": "ededed" },
            });
            w.repo_mut(repo).issue_events.push((issue, event));
            id
        })
    }
}

// ---- policy: check runs completing, and the real API's pace.
impl FakeGitHub {
    /// Every answer from now on takes `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.with_mut(|w| w.latency = latency);
    }

    /// The `check_run` `completed` payload of a CI job `name` finishing on
    /// `sha`, as the App `github-actions` reports it.
    pub fn check_run_payload(&self, repo: &str, sha: &str, name: &str, conclusion: &str) -> Value {
        let api = self.url();
        let id = shapes::id_of(&format!("{sha}/{name}/github-actions"));
        let mut run = shapes::check_run_of(
            &api,
            repo,
            id,
            name,
            sha,
            "completed",
            &json!(conclusion),
            "github-actions",
        );
        let prs: Vec<Value> = self.with(|w| {
            w.repo(repo)
                .pulls
                .values()
                .filter(|p| p.head_sha == sha && p.fork.is_none())
                .map(|p| {
                    json!({
                        "id": p.number, "number": p.number,
                        "url": format!("{api}/repos/{repo}/pulls/{}", p.number),
                        "head": { "ref": p.head_ref, "sha": p.head_sha, "repo": { "id": 1, "name": "app", "url": format!("{api}/repos/{repo}") } },
                        "base": { "ref": p.base_ref, "sha": p.base_sha, "repo": { "id": 1, "name": "app", "url": format!("{api}/repos/{repo}") } },
                    })
                })
                .collect()
        });
        run["pull_requests"] = json!(prs);
        json!({
            "action": "completed",
            "check_run": run,
            "repository": self.repository_json(repo),
            "installation": { "id": 42 },
            "sender": { "login": "github-actions[bot]", "type": "Bot" },
        })
    }
}
