//! Why a command is refused, as its user is told. Each reason is its own
//! case, carrying the facts the renderer words (`render::chatops::refusal`);
//! gates that close a deploy are not refusals of this kind but the deploy
//! reply's gate table.

use crate::config::repo::Role;
use crate::store::Lock;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The default branch's config does not load: no command runs.
    ConfigInvalid {
        default_branch: String,
        error: String,
    },
    /// The config names no environment.
    NoEnvironments,
    /// No environment named, no default, and several exist.
    NameAnEnvironment {
        environments: Vec<String>,
    },
    UnknownEnvironment {
        wanted: String,
        suggestion: Option<String>,
        environments: Vec<String>,
    },
    /// The command line does not parse (the parser's message).
    BadCommand {
        message: String,
    },
    /// `ref=` or `to=` names nothing in the repository.
    NotARef {
        arg: String,
        value: String,
    },
    /// `/deploy` typed in an issue.
    DeployOutsidePullRequest,
    /// GitHub refused to create the deployment.
    GitHubRefused {
        error: String,
    },
    /// `/rollback to=<id>` names a deployment of another environment.
    DeploymentElsewhere {
        id: u64,
        environment: String,
        wanted: String,
    },
    NoSuchDeployment {
        id: u64,
    },
    /// Nothing earlier succeeded; `current`: the sha deployed now, if any.
    NothingToRollBack {
        environment: String,
        current: Option<String>,
    },
    /// `/lock` by someone who may not deploy there.
    CannotLock {
        reason: String,
    },
    /// `/lock` of an environment another pull request holds.
    LockHeld {
        environment: String,
        lock: Lock,
    },
    /// `/unlock` by someone who neither holds the lock nor maintains.
    NotTheHolder {
        holder: String,
        environment: String,
        actor: String,
        role: Option<Role>,
    },
}
