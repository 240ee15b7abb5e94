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
    #[serde(default)]
    pub sender: Option<User>,
    /// For `edited`: what changed; `base` is present when the base branch did.
    #[serde(default)]
    pub changes: Option<PullRequestChanges>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestChanges {
    #[serde(default)]
    pub base: Option<serde::de::IgnoredAny>,
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
    #[serde(default)]
    pub sender: Option<User>,
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
    #[serde(default)]
    pub sender: Option<User>,
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
    #[serde(default)]
    pub description: Option<String>,
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

/// The repository, installation and sender of the events that carry only
/// those (`repository`, `branch_protection_rule`, `pull_request_review`).
#[derive(Debug, Clone, Deserialize)]
pub struct RepositoryEvent {
    #[serde(default)]
    pub action: Option<String>,
    pub repository: RepositoryRef,
    #[serde(default)]
    pub installation: Option<IdOnly>,
    #[serde(default)]
    pub sender: Option<User>,
    /// `pull_request_review`: the reviewed pull request.
    #[serde(default)]
    pub pull_request: Option<PullRequestHead>,
}

/// `repository_ruleset` events: a ruleset created, edited or deleted. The
/// repository is absent for organization rulesets; `changes` is not read
/// (it omits bypass actors): the ruleset is read again instead.
#[derive(Debug, Clone, Deserialize)]
pub struct RulesetEvent {
    #[serde(default)]
    pub repository: Option<RepositoryRef>,
    #[serde(default)]
    pub installation: Option<IdOnly>,
    #[serde(default)]
    pub sender: Option<User>,
    #[serde(default)]
    pub repository_ruleset: Option<RulesetRef>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RulesetRef {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub source_type: Option<String>,
}

/// A pull request's number and head, as a review event carries it.
#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestHead {
    pub number: i64,
    pub head: ShaOnly,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ShaOnly {
    pub sha: String,
}

/// `check_run` and `check_suite` events: the check (`check_run` or
/// `check_suite` in the payload).
#[derive(Debug, Clone, Deserialize)]
pub struct CheckEvent {
    #[serde(alias = "check_suite")]
    pub check_run: CheckRef,
    pub repository: RepositoryRef,
    #[serde(default)]
    pub installation: Option<IdOnly>,
    #[serde(default)]
    pub sender: Option<User>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CheckRef {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub head_sha: Option<String>,
    #[serde(default)]
    pub app: Option<AppRef>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AppRef {
    #[serde(default)]
    pub slug: Option<String>,
}

/// `installation` and `installation_repositories` events: the
/// repositories the App was installed on or added to.
#[derive(Debug, Clone, Deserialize)]
pub struct InstallationEvent {
    #[serde(default)]
    pub installation: Option<IdOnly>,
    #[serde(default)]
    pub sender: Option<User>,
    #[serde(default)]
    pub repositories: Option<Vec<RepositoryRef>>,
    #[serde(default)]
    pub repositories_added: Option<Vec<RepositoryRef>>,
}

/// `deployment_protection_rule` events: a deployment waiting for shipgate.
#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentProtectionRuleEvent {
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub deployment_callback_url: Option<String>,
    #[serde(default)]
    pub deployment: Option<ProtectedDeployment>,
    /// The full ref (`refs/heads/main`, `refs/tags/v1`), when GitHub sends it.
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    #[serde(default)]
    pub pull_requests: Vec<PullRequestHead>,
    pub repository: RepositoryRef,
    #[serde(default)]
    pub installation: Option<IdOnly>,
    #[serde(default)]
    pub sender: Option<User>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProtectedDeployment {
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub sha: String,
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
}

/// A delivery's webhook, decoded once for every handler: the typed payload
/// of the events shipgate reads, and in one place the fields every handler
/// asks of any event (installation, repository, default branch, sender).
#[derive(Debug, Clone)]
pub enum Event {
    IssueComment(Box<IssueCommentEvent>),
    PullRequest(Box<PullRequestEvent>),
    PullRequestReview(Box<RepositoryEvent>),
    Push(Box<PushEvent>),
    DeploymentStatus(Box<DeploymentStatusEvent>),
    DeploymentProtectionRule(Box<DeploymentProtectionRuleEvent>),
    CheckRun(Box<CheckEvent>),
    CheckSuite(Box<CheckEvent>),
    Installation(Box<InstallationEvent>),
    InstallationRepositories(Box<InstallationEvent>),
    BranchProtectionRule(Box<RepositoryEvent>),
    RepositoryRuleset(Box<RulesetEvent>),
    Repository(Box<RepositoryEvent>),
    /// One of shipgate's own jobs (`shipgate_*`): the handler that stored it
    /// reads its payload.
    Internal,
    /// An event no handler reads.
    Other,
}

/// The prefix of shipgate's own events, which GitHub never sends.
pub const INTERNAL_PREFIX: &str = "shipgate_";

impl Event {
    /// Decodes `payload` as the webhook `event`. A payload that does not
    /// have its event's shape is an error, and the delivery fails for good.
    pub fn decode(event: &str, payload: &str) -> Result<Event, serde_json::Error> {
        fn boxed<T: serde::de::DeserializeOwned>(p: &str) -> Result<Box<T>, serde_json::Error> {
            serde_json::from_str(p).map(Box::new)
        }
        Ok(match event {
            "issue_comment" => Event::IssueComment(boxed(payload)?),
            "pull_request" => Event::PullRequest(boxed(payload)?),
            "pull_request_review" => Event::PullRequestReview(boxed(payload)?),
            "push" => Event::Push(boxed(payload)?),
            "deployment_status" => Event::DeploymentStatus(boxed(payload)?),
            "deployment_protection_rule" => Event::DeploymentProtectionRule(boxed(payload)?),
            "check_run" => Event::CheckRun(boxed(payload)?),
            "check_suite" => Event::CheckSuite(boxed(payload)?),
            "installation" => Event::Installation(boxed(payload)?),
            "installation_repositories" => Event::InstallationRepositories(boxed(payload)?),
            "branch_protection_rule" => Event::BranchProtectionRule(boxed(payload)?),
            "repository" => Event::Repository(boxed(payload)?),
            "repository_ruleset" => Event::RepositoryRuleset(boxed(payload)?),
            e if e.starts_with(INTERNAL_PREFIX) => Event::Internal,
            _ => Event::Other,
        })
    }

    /// The fields every event carries, whatever its type: the repository,
    /// the installation and the sender. One match, so a new event cannot
    /// answer one of them and forget another.
    fn common(&self) -> Option<(Option<&RepositoryRef>, &Option<IdOnly>, &Option<User>)> {
        Some(match self {
            Event::IssueComment(e) => (Some(&e.repository), &e.installation, &e.sender),
            Event::PullRequest(e) => (Some(&e.repository), &e.installation, &e.sender),
            Event::PullRequestReview(e) | Event::BranchProtectionRule(e) | Event::Repository(e) => {
                (Some(&e.repository), &e.installation, &e.sender)
            }
            Event::Push(e) => (Some(&e.repository), &e.installation, &e.sender),
            Event::DeploymentStatus(e) => (Some(&e.repository), &e.installation, &e.sender),
            Event::DeploymentProtectionRule(e) => (Some(&e.repository), &e.installation, &e.sender),
            Event::CheckRun(e) | Event::CheckSuite(e) => {
                (Some(&e.repository), &e.installation, &e.sender)
            }
            Event::Installation(e) | Event::InstallationRepositories(e) => {
                (None, &e.installation, &e.sender)
            }
            Event::RepositoryRuleset(e) => (e.repository.as_ref(), &e.installation, &e.sender),
            Event::Internal | Event::Other => return None,
        })
    }

    /// The repository the event is about.
    pub fn repository(&self) -> Option<&RepositoryRef> {
        self.common()?.0
    }

    /// The repository's full name (`owner/name`).
    pub fn repo(&self) -> Option<&str> {
        self.repository().map(|r| r.full_name.as_str())
    }

    /// The repository's default branch; `main` when the payload omits it.
    pub fn default_branch(&self) -> &str {
        self.repository()
            .and_then(|r| r.default_branch.as_deref())
            .unwrap_or("main")
    }

    /// The installation the event was sent for (GitHub App mode).
    pub fn installation_id(&self) -> Option<i64> {
        self.common()?.1.as_ref().map(|i| i.id)
    }

    /// Who caused the event.
    pub fn sender(&self) -> Option<&str> {
        self.common()?.2.as_ref().map(|u| u.login.as_str())
    }

    /// Whether shipgate itself (signed in as `bot_login`) caused the event:
    /// its own writes come back as events and must not be acted on again.
    pub fn sent_by(&self, bot_login: &str) -> bool {
        self.sender()
            .is_some_and(|s| s.eq_ignore_ascii_case(bot_login))
    }
}

/// The event file of a workflow run (`GITHUB_EVENT_PATH`), as the Action
/// reads it: decoded once per run, every field lenient (an odd field reads
/// as absent, never as an error).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WorkflowEvent {
    #[serde(default, deserialize_with = "lenient")]
    pub pull_request: Option<WorkflowPullRequest>,
    #[serde(default, deserialize_with = "lenient")]
    pub deployment: Option<WorkflowDeployment>,
    #[serde(default, deserialize_with = "lenient")]
    pub repository: Option<RepositoryRef>,
}

/// A `deployment` event's deployment, as the Action reads it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WorkflowDeployment {
    pub id: i64,
    #[serde(default, deserialize_with = "lenient")]
    pub sha: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub environment: Option<String>,
}

/// A workflow event's pull request: whatever of it is there.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WorkflowPullRequest {
    #[serde(default, deserialize_with = "lenient")]
    pub number: Option<i64>,
    #[serde(default, deserialize_with = "lenient")]
    pub state: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub draft: Option<bool>,
    #[serde(default, deserialize_with = "lenient")]
    pub base: Option<WorkflowRef>,
    #[serde(default, deserialize_with = "lenient")]
    pub head: Option<WorkflowRef>,
    #[serde(default, deserialize_with = "lenient")]
    pub user: Option<User>,
    #[serde(default, deserialize_with = "lenient")]
    pub labels: Option<Vec<LabelRef>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct WorkflowRef {
    #[serde(default, rename = "ref", deserialize_with = "lenient")]
    pub git_ref: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub sha: Option<String>,
    /// The repository the branch lives in; absent when it was deleted.
    #[serde(default, deserialize_with = "lenient")]
    pub repo: Option<RepositoryRef>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LabelRef {
    pub name: String,
}

impl WorkflowEvent {
    /// Reads an event file's text; one that is not a JSON object reads as
    /// an event with nothing in it.
    pub fn parse(text: &[u8]) -> WorkflowEvent {
        serde_json::from_slice(text).unwrap_or_default()
    }

    /// The default branch of the repository, as the event names it.
    pub fn default_branch(&self) -> Option<&str> {
        self.repository.as_ref()?.default_branch.as_deref()
    }
}

impl WorkflowPullRequest {
    pub fn base_sha(&self) -> Option<&str> {
        self.base.as_ref()?.sha.as_deref()
    }
    pub fn base_ref(&self) -> Option<&str> {
        self.base.as_ref()?.git_ref.as_deref()
    }
    pub fn head_sha(&self) -> Option<&str> {
        self.head.as_ref()?.sha.as_deref()
    }
    /// The repository the head branch lives in (`owner/name`).
    pub fn head_repo(&self) -> Option<&str> {
        Some(self.head.as_ref()?.repo.as_ref()?.full_name.as_str())
    }
    pub fn author(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.login.as_str())
    }
    pub fn has_label(&self, name: &str) -> bool {
        self.labels.iter().flatten().any(|l| l.name == name)
    }
}

#[cfg(test)]
mod event_tests {
    use super::*;

    #[test]
    fn common_fields_are_read_in_one_place_for_every_event() {
        let comment = r#"{"action":"created","issue":{"number":3},"comment":{"id":9,"user":{"login":"alice"}},
            "sender":{"login":"Shipgate[bot]"},"repository":{"full_name":"o/r","default_branch":"trunk"},
            "installation":{"id":42}}"#;
        let e = Event::decode("issue_comment", comment).unwrap();
        assert_eq!(e.repo(), Some("o/r"));
        assert_eq!(e.default_branch(), "trunk");
        assert_eq!(e.installation_id(), Some(42));
        assert!(e.sent_by("shipgate[bot]"));
        let check = r#"{"action":"completed","check_suite":{"head_sha":"abc","app":{"slug":"ci"}},
            "repository":{"full_name":"o/r"}}"#;
        let e = Event::decode("check_suite", check).unwrap();
        assert_eq!(e.default_branch(), "main");
        assert!(
            matches!(&e, Event::CheckSuite(c) if c.check_run.head_sha.as_deref() == Some("abc"))
        );
        assert!(matches!(
            Event::decode("shipgate_smoke", "{}").unwrap(),
            Event::Internal
        ));
        assert!(matches!(Event::decode("star", "{}").unwrap(), Event::Other));
        // An organization ruleset's event has no repository: it still decodes.
        let org = r#"{"action":"edited","repository_ruleset":{"id":1,"name":"org","source_type":"Organization"},
            "sender":{"login":"admin"}}"#;
        let e = Event::decode("repository_ruleset", org).unwrap();
        assert_eq!((e.repo(), e.sender()), (None, Some("admin")));
        assert!(Event::decode("pull_request", r#"{"action":"opened"}"#).is_err());
    }

    #[test]
    fn a_workflow_event_reads_what_is_there_and_nothing_else() {
        let e = WorkflowEvent::parse(
            br#"{"pull_request":{"number":7,"base":{"ref":"main","sha":"abc"},"head":{"sha":"def"},
                "user":{"login":"alice"},"labels":[{"name":"freeze-override"}]},
                "repository":{"full_name":"o/r","default_branch":"trunk"}}"#,
        );
        let pr = e.pull_request.as_ref().unwrap();
        assert_eq!(
            (pr.number, pr.base_ref(), pr.base_sha(), pr.head_sha()),
            (Some(7), Some("main"), Some("abc"), Some("def"))
        );
        assert_eq!(pr.author(), Some("alice"));
        assert!(pr.has_label("freeze-override") && !pr.has_label("x"));
        assert_eq!(e.default_branch(), Some("trunk"));
        let odd = WorkflowEvent::parse(
            br#"{"pull_request":{"number":"7","base":5},"deployment":{"id":3}}"#,
        );
        let pr = odd.pull_request.as_ref().unwrap();
        assert_eq!((pr.number, pr.base_sha()), (None, None));
        assert_eq!(odd.deployment.map(|d| d.id), Some(3));
        assert!(WorkflowEvent::parse(b"[1]").pull_request.is_none());
    }
}
