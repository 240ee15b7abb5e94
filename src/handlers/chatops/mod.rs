//! ChatOps: `/deploy`, `/rollback`, `/lock`, `/unlock`, `/status`, `/help`
//! in issue and pull request comments, plus the events that move their
//! replies and locks along (`deployment_status`, pull requests closing).
//!
//! Every command line is recorded in the store before it acts (a command
//! run), so reprocessing a delivery after a crash never posts a second reply
//! or creates a second deployment.

pub(crate) mod deploy;
mod locks;

use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::{Context, Handler, HandlerError};
use crate::commands::{self, Command, CommandLine};
use crate::events::{DeploymentStatusEvent, IssueCommentEvent, PullRequestEvent};
use crate::github::repos::Reaction;
use crate::github::Api;
use crate::render::{render_message, run_marker};
use crate::repo_config::{EnvironmentConfig, RepoConfig};
use crate::store::CommandRun;

pub struct ChatOps;

#[async_trait]
impl Handler for ChatOps {
    fn name(&self) -> &'static str {
        "chatops"
    }

    fn wants(&self, event: &str, action: Option<&str>) -> bool {
        match event {
            "issue_comment" => matches!(action, Some("created" | "edited")),
            "deployment_status" => true,
            "pull_request" => action == Some("closed"),
            _ => false,
        }
    }

    fn decode(&self, event: &str, payload: &str) -> Result<(), HandlerError> {
        decode(event, payload).map(drop)
    }

    async fn handle(
        &self,
        cx: &Context,
        d: &crate::store::ClaimedDelivery,
    ) -> Result<(), HandlerError> {
        match decode(&d.event, &d.payload)? {
            Input::Comment(ev, lines) => on_comment(cx, ev, lines).await,
            Input::DeploymentStatus(ev) => deploy::on_deployment_status(cx, ev).await,
            Input::PullRequest(ev) => locks::on_pull_request_closed(cx, ev).await,
            Input::Other => Ok(()),
        }
    }
}

/// A delivery as ChatOps reads it.
enum Input {
    /// The comment and its command lines to run.
    Comment(IssueCommentEvent, Vec<(i64, CommandLine)>),
    DeploymentStatus(DeploymentStatusEvent),
    PullRequest(PullRequestEvent),
    Other,
}

fn decode(event: &str, payload: &str) -> Result<Input, HandlerError> {
    Ok(match event {
        "issue_comment" => {
            let ev: IssueCommentEvent = serde_json::from_str(payload)?;
            let lines = new_lines(&ev);
            Input::Comment(ev, lines)
        }
        "deployment_status" => Input::DeploymentStatus(serde_json::from_str(payload)?),
        "pull_request" => Input::PullRequest(serde_json::from_str(payload)?),
        _ => Input::Other,
    })
}

/// One repository's view for a command: API client, config, where to reply.
pub(crate) struct Session<'a> {
    pub cx: &'a Context,
    pub api: Api,
    pub repo: String,
    pub installation: Option<i64>,
    pub config: Arc<RepoConfig>,
    /// The issue or pull request the command was typed in.
    pub issue: i64,
    pub is_pr: bool,
    pub comment_id: i64,
    pub actor: String,
}

/// One command line being run.
pub(crate) struct Run<'a> {
    pub line: i64,
    /// What the store knew of this line before (a reprocessed delivery, or a
    /// queued deploy being resumed).
    pub prior: Option<CommandRun>,
    pub command: &'a Command,
}

impl Session<'_> {
    pub fn marker(&self, line: i64) -> String {
        run_marker(self.comment_id, line)
    }

    /// Posts the reply for `run`, or updates the one it already has. When a
    /// run was seen before but has no reply recorded, the reply may have been
    /// posted just before a crash: look for its marker first.
    pub async fn reply(&self, run: &Run<'_>, body: &str, model: &str) -> Result<i64, HandlerError> {
        let known = match &run.prior {
            Some(p) if p.reply_comment_id.is_some() => p.reply_comment_id,
            Some(_) => {
                let marker = self.marker(run.line);
                let comments = self
                    .api
                    .list_comments(
                        &self.repo,
                        self.issue,
                        crate::github::repos::MARKER_SEARCH_PAGES,
                    )
                    .await?;
                comments
                    .iter()
                    .rev()
                    .find(|c| c.body.as_deref().is_some_and(|b| b.contains(&marker)))
                    .map(|c| c.id)
            }
            None => None,
        };
        let id = match known {
            Some(id) => {
                self.api.update_comment(&self.repo, id, body).await?;
                id
            }
            None => {
                self.api
                    .create_comment(&self.repo, self.issue, body)
                    .await?
                    .id
            }
        };
        self.cx
            .store
            .set_run_reply(&self.repo, self.comment_id, run.line, id, model)
            .await?;
        Ok(id)
    }

    /// A short reply that needs no re-rendering later.
    pub async fn say(&self, run: &Run<'_>, icon: &str, text: &str) -> Result<(), HandlerError> {
        let body = render_message(icon, text, &self.marker(run.line));
        self.reply(run, &body, "{}").await.map(|_| ())
    }

    pub async fn react(&self, reaction: Reaction) -> Result<(), HandlerError> {
        self.api
            .react(&self.repo, self.comment_id, reaction)
            .await?;
        Ok(())
    }

    /// The named environment, or a reply that says what is wrong.
    pub async fn environment(
        &self,
        run: &Run<'_>,
        name: Option<&str>,
    ) -> Result<Option<(String, EnvironmentConfig)>, HandlerError> {
        let envs = &self.config.environments;
        let names: Vec<&str> = envs.keys().map(String::as_str).collect();
        let wanted = match name.or_else(|| self.config.default_environment()) {
            Some(n) => n,
            None if envs.is_empty() => {
                self.refuse(
                    run,
                    "no environments are configured in `.github/shipgate.yml`",
                )
                .await?;
                return Ok(None);
            }
            None => {
                let msg =
                    format!(
                    "name an environment: there is no `default_environment` and several exist ({})",
                    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                );
                self.refuse(run, &msg).await?;
                return Ok(None);
            }
        };
        match envs.get(wanted) {
            Some(env) => Ok(Some((wanted.to_string(), env.clone()))),
            None => {
                let hint = commands::did_you_mean(wanted, names.iter().copied())
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                let list = names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                self.refuse(
                    run,
                    &format!("unknown environment `{wanted}`{hint} (environments: {list})"),
                )
                .await?;
                Ok(None)
            }
        }
    }

    /// Replies with a refusal and reacts 😕.
    pub async fn refuse(&self, run: &Run<'_>, text: &str) -> Result<(), HandlerError> {
        self.say(run, "⚠️", text).await?;
        self.react(Reaction::Confused).await
    }
}

/// A stable key for a command line within a comment: its text and which
/// occurrence of that text it is, so an edited comment keeps the keys of the
/// lines it kept.
fn line_key(text: &str, occurrence: usize) -> i64 {
    let digest = Sha256::digest(format!("{text}#{occurrence}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) & i64::MAX
}

fn keyed_lines(body: &str) -> Vec<(i64, CommandLine)> {
    let lines = commands::parse_comment(body);
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for l in &lines {
        let n = seen.iter().filter(|t| **t == l.text).count();
        seen.push(&l.text);
        out.push((line_key(&l.text, n), l.clone()));
    }
    out
}

/// The command lines of a comment that run: all of them, or for an edited
/// comment only those that were not in the previous body.
fn new_lines(ev: &IssueCommentEvent) -> Vec<(i64, CommandLine)> {
    let mut lines = keyed_lines(ev.comment.body.as_deref().unwrap_or_default());
    if ev.action == "edited" {
        let before: Vec<i64> = ev
            .changes
            .as_ref()
            .and_then(|c| c.body.as_ref())
            .map(|b| keyed_lines(&b.from).into_iter().map(|(k, _)| k).collect())
            .unwrap_or_default();
        lines.retain(|(k, _)| !before.contains(k));
    }
    lines
}

async fn on_comment(
    cx: &Context,
    ev: IssueCommentEvent,
    lines: Vec<(i64, CommandLine)>,
) -> Result<(), HandlerError> {
    if lines.is_empty() {
        return Ok(());
    }
    // The bot's own comments (its replies quote usage) are never commands.
    if cx.github.bot_login().await? == ev.comment.user.login {
        return Ok(());
    }

    let installation = ev.installation.map(|i| i.id);
    let api = cx.github.api(installation)?;
    let repo = ev.repository.full_name.clone();
    api.react(&repo, ev.comment.id, Reaction::Eyes).await?;

    let default_branch = ev
        .repository
        .default_branch
        .clone()
        .unwrap_or_else(|| "main".into());
    let loaded = cx.config(&api, &repo, &default_branch).await?;
    let session = |config: Arc<RepoConfig>| Session {
        cx,
        api: api.clone(),
        repo: repo.clone(),
        installation,
        config,
        issue: ev.issue.number,
        is_pr: ev.issue.pull_request.is_some(),
        comment_id: ev.comment.id,
        actor: ev.comment.user.login.clone(),
    };
    let config = match loaded.config {
        Ok(c) => c,
        Err(e) => {
            let s = session(Arc::new(RepoConfig::default()));
            let (key, _) = &lines[0];
            let run = Run {
                line: *key,
                prior: begin(&s, *key, "config-error", None).await?,
                command: &Command::Help,
            };
            if run
                .prior
                .as_ref()
                .is_some_and(|p| p.reply_comment_id.is_some())
            {
                return Ok(());
            }
            return s
                .refuse(&run, &format!("commands cannot run: `.github/shipgate.yml` on `{default_branch}` is invalid: {e}"))
                .await;
        }
    };
    let s = session(config);
    for (key, line) in &lines {
        match &line.parsed {
            Err(e) => {
                let prior = begin(&s, *key, "invalid", None).await?;
                let run = Run {
                    line: *key,
                    prior,
                    command: &Command::Help,
                };
                if done(&run) {
                    continue;
                }
                s.refuse(&run, &e.message).await?;
            }
            Ok(cmd) => {
                let prior = begin(&s, *key, cmd.name(), cmd.env()).await?;
                let run = Run {
                    line: *key,
                    prior,
                    command: cmd,
                };
                if done(&run) {
                    continue;
                }
                run_command(&s, &run).await?;
            }
        }
    }
    Ok(())
}

/// Whether a command line was fully handled before.
fn done(run: &Run<'_>) -> bool {
    run.prior
        .as_ref()
        .is_some_and(|p| p.reply_comment_id.is_some())
}

async fn begin(
    s: &Session<'_>,
    line: i64,
    command: &str,
    env: Option<&str>,
) -> Result<Option<CommandRun>, HandlerError> {
    let run = CommandRun {
        repository: s.repo.clone(),
        comment_id: s.comment_id,
        line,
        command: command.to_string(),
        environment: env.map(str::to_string),
        actor: s.actor.clone(),
        pr: Some(s.issue),
        reply_comment_id: None,
        deployment_id: None,
        model: None,
        created_at: crate::now_ms(),
    };
    Ok(s.cx.store.begin_run(&run).await?)
}

async fn run_command(s: &Session<'_>, run: &Run<'_>) -> Result<(), HandlerError> {
    match run.command {
        Command::Deploy { .. } | Command::Rollback { .. } => deploy::run(s, run).await,
        Command::Lock { .. } => locks::lock(s, run).await,
        Command::Unlock { .. } => locks::unlock(s, run).await,
        Command::Status { .. } => locks::status(s, run).await,
        Command::Help => locks::help(s, run).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_keys_survive_edits_around_them() {
        let a = keyed_lines("/deploy staging\n/status");
        let b = keyed_lines("please\n/deploy staging\n/lock production\n/status");
        assert_eq!(a[0].0, b[0].0);
        assert_eq!(a[1].0, b[2].0);
        let twice = keyed_lines("/status\n/status");
        assert_ne!(twice[0].0, twice[1].0, "repeated lines are distinct runs");
    }
}
