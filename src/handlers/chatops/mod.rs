//! ChatOps: `/deploy`, `/rollback`, `/lock`, `/unlock`, `/status`, `/help`
//! in issue and pull request comments, plus the events that move their
//! replies and locks along (`deployment_status`, pull requests closing).
//!
//! Every command line is recorded in the store before it acts (a command
//! run), so reprocessing a delivery after a crash never posts a second reply
//! or creates a second deployment. One comment gets one reply, with a
//! section per command line; a comment runs at most
//! [`MAX_COMMANDS_PER_COMMENT`] lines, and users without write access get
//! few replies (see [`REPLY_WINDOW_MS`]).

pub(crate) mod deploy;
mod locks;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Context, Handler, HandlerError};
use crate::config::repo::{EnvironmentConfig, RepoConfig, Role};
use crate::deploy::commands::{self, Command, CommandLine};
use crate::deploy::refusal::Refusal;
use crate::github::events::{Event, IssueCommentEvent};
use crate::github::repos::Reaction;
use crate::github::Api;
use crate::render::{render_deploy_reply, render_message, run_marker, DeployReply};
use crate::store::CommandRun;

/// Command lines one comment runs at most; the rest get one line in the reply.
pub const MAX_COMMANDS_PER_COMMENT: usize = 10;
/// Within this window, a user without write access gets replies to at most
/// [`REPLIES_PER_WINDOW`] command lines per repository; later comments get
/// no reaction and no reply.
pub const REPLY_WINDOW_MS: i64 = 10 * 60 * 1000;
pub const REPLIES_PER_WINDOW: i64 = 10;

/// Internal event: an environment's lock was released (its TTL ran out):
/// run its queue and re-check protection rule requests, in the repository's order.
pub const LOCK_RELEASED_EVENT: &str = "shipgate_lock_released";

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
            LOCK_RELEASED_EVENT => true,
            _ => false,
        }
    }

    fn decode_internal(&self, event: &str, payload: &str) -> Result<(), HandlerError> {
        if event == LOCK_RELEASED_EVENT {
            serde_json::from_str::<LockReleased>(payload)?;
        }
        Ok(())
    }

    async fn handle(
        &self,
        cx: &Context,
        d: &crate::store::ClaimedDelivery,
        event: &Event,
    ) -> Result<(), HandlerError> {
        match event {
            Event::IssueComment(ev) => on_comment(cx, event, ev, new_lines(ev)).await,
            Event::DeploymentStatus(ev) => deploy::on_deployment_status(cx, event, ev).await,
            Event::PullRequest(ev) => locks::on_pull_request_closed(cx, event, ev).await,
            Event::Internal if d.event == LOCK_RELEASED_EVENT => {
                let ev: LockReleased = serde_json::from_str(&d.payload)?;
                super::lock_released(cx, &ev.repository, &ev.environment, ev.installation).await
            }
            _ => Ok(()),
        }
    }
}

/// The payload of [`LOCK_RELEASED_EVENT`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockReleased {
    pub repository: String,
    pub environment: String,
    pub installation: Option<i64>,
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
    /// Who wrote the command's text: the comment's author, or for an edited
    /// comment the editor.
    pub actor: String,
    /// The comment was processed before (a retry after a crash, or a queued
    /// deploy resuming): a reply may exist that the store does not know of.
    pub seen_before: std::sync::atomic::AtomicBool,
}

/// One command line being run.
pub(crate) struct Run<'a> {
    pub line: i64,
    /// What the store knew of this line before (a reprocessed delivery, or a
    /// queued deploy being resumed).
    pub prior: Option<CommandRun>,
    pub command: &'a Command,
    /// A queued deploy started by the queue (which goes on by itself after it).
    pub from_queue: bool,
}

/// A command line's part of the comment's reply, stored with its run so the
/// reply can be drawn again when any part changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "section", rename_all = "snake_case")]
pub(crate) enum Section {
    Deploy(Box<DeployReply>),
    Message { icon: String, text: String },
    Markdown { body: String },
}

impl Section {
    /// A run's stored section; runs stored by earlier versions hold a bare
    /// deploy reply model.
    fn read(model: Option<&str>) -> Option<Section> {
        let model = model?;
        serde_json::from_str(model).ok().or_else(|| {
            serde_json::from_str(model)
                .ok()
                .map(|m| Section::Deploy(Box::new(m)))
        })
    }

    fn render(&self, comment_id: i64, line: i64) -> String {
        let marker = run_marker(comment_id, line);
        match self {
            Section::Deploy(model) => render_deploy_reply(model, &marker),
            Section::Message { icon, text } => render_message(icon, text, &marker),
            Section::Markdown { body } => format!("{body}\n{marker}"),
        }
    }
}

/// The marker of the one reply to a comment.
pub(crate) fn reply_marker(comment_id: i64) -> String {
    format!("<!-- shipgate:reply {comment_id} -->")
}

/// The whole reply to comment `comment_id` from its runs' sections, in the
/// order of their lines.
pub(crate) fn render_reply(comment_id: i64, runs: &[CommandRun]) -> String {
    let parts: Vec<String> = runs
        .iter()
        .filter_map(|r| Section::read(r.model.as_deref()).map(|s| s.render(comment_id, r.line)))
        .collect();
    format!(
        "{}\n\n{}",
        parts.join("\n\n---\n\n"),
        reply_marker(comment_id)
    )
}

impl Session<'_> {
    /// Stores `section` as `run`'s part of the comment's reply, and posts the
    /// reply or updates it. When the comment was seen before but no reply is
    /// recorded, the reply may have been posted just before a crash: look
    /// for its marker among shipgate's own comments first.
    pub async fn reply(&self, run: &Run<'_>, section: Section) -> Result<i64, HandlerError> {
        let model = serde_json::to_string(&section).expect("sections serialize");
        self.cx
            .store
            .update_run_model(&self.repo, self.comment_id, run.line, &model)
            .await?;
        self.post_reply().await
    }

    /// Draws the comment's reply from its runs and posts or updates it.
    async fn post_reply(&self) -> Result<i64, HandlerError> {
        let runs = self
            .cx
            .store
            .runs_of_comment(&self.repo, self.comment_id)
            .await?;
        let body = render_reply(self.comment_id, &runs);
        let seen_before = self.seen_before.load(std::sync::atomic::Ordering::Relaxed);
        let known = match runs.iter().find_map(|r| r.reply_comment_id) {
            Some(id) => Some(id),
            None if !seen_before => None,
            None => {
                let me = self.cx.github.bot_login().await?;
                let marker = reply_marker(self.comment_id);
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
                    .find(|c| {
                        c.user.as_ref().is_some_and(|u| u.login == me)
                            && c.body.as_deref().is_some_and(|b| b.contains(&marker))
                    })
                    .map(|c| c.id)
            }
        };
        let id = match known {
            Some(id) => {
                self.api.update_comment(&self.repo, id, &body).await?;
                id
            }
            None => {
                self.api
                    .create_comment(&self.repo, self.issue, &body)
                    .await?
                    .id
            }
        };
        self.cx
            .store
            .set_comment_reply(&self.repo, self.comment_id, id)
            .await?;
        Ok(id)
    }

    /// Notes that `run` was recorded before this processing.
    fn saw(&self, run: &Run<'_>) {
        if run.prior.is_some() {
            self.seen_before
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// A short reply that needs no re-rendering later.
    pub async fn say(&self, run: &Run<'_>, icon: &str, text: &str) -> Result<(), HandlerError> {
        self.reply(
            run,
            Section::Message {
                icon: icon.into(),
                text: text.into(),
            },
        )
        .await
        .map(|_| ())
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
                self.refuse(run, Refusal::NoEnvironments).await?;
                return Ok(None);
            }
            None => {
                let environments = names.iter().map(|n| n.to_string()).collect();
                self.refuse(run, Refusal::NameAnEnvironment { environments })
                    .await?;
                return Ok(None);
            }
        };
        match envs.get(wanted) {
            Some(env) => Ok(Some((wanted.to_string(), env.clone()))),
            None => {
                let refusal = Refusal::UnknownEnvironment {
                    wanted: wanted.to_string(),
                    suggestion: commands::did_you_mean(wanted, names.iter().copied())
                        .map(str::to_string),
                    environments: names.iter().map(|n| n.to_string()).collect(),
                };
                self.refuse(run, refusal).await?;
                Ok(None)
            }
        }
    }

    /// Replies with a refusal and reacts 😕.
    pub async fn refuse(&self, run: &Run<'_>, refusal: Refusal) -> Result<(), HandlerError> {
        self.say(
            run,
            crate::render::commands::REFUSED,
            &crate::render::commands::refusal(&refusal),
        )
        .await?;
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
    event: &Event,
    ev: &IssueCommentEvent,
    mut lines: Vec<(i64, CommandLine)>,
) -> Result<(), HandlerError> {
    if lines.is_empty() {
        return Ok(());
    }
    // The command runs with the rights of whoever wrote its text: for an
    // edited comment that is the editor (`sender`), not the author.
    let actor = event.sender().unwrap_or(&ev.comment.user.login).to_string();
    // The bot's own comments (its replies quote usage) are never commands.
    let me = cx.github.bot_login().await?;
    if event.sent_by(&me) || me.eq_ignore_ascii_case(&ev.comment.user.login) {
        return Ok(());
    }
    let skipped = lines.len().saturating_sub(MAX_COMMANDS_PER_COMMENT);
    lines.truncate(MAX_COMMANDS_PER_COMMENT);

    let installation = event.installation_id();
    let api = cx.github.api(installation)?;
    let repo = ev.repository.full_name.clone();
    if !may_get_replies(cx, &api, &repo, &actor).await? {
        tracing::info!(repo = %repo, actor = %actor, comment = ev.comment.id, "command comment ignored: reply limit for users without write access");
        return Ok(());
    }
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
        actor: actor.clone(),
        seen_before: Default::default(),
    };
    let config = match loaded.config {
        Ok(c) => c,
        Err(e) => {
            let s = session(Arc::new(RepoConfig::default()));
            let (key, _) = &lines[0];
            let run = Run {
                line: *key,
                prior: begin(&s, *key, 0, "config-error", None).await?,
                command: &Command::Help,
                from_queue: false,
            };
            s.saw(&run);
            if done(&run) {
                return Ok(());
            }
            return s
                .refuse(
                    &run,
                    Refusal::ConfigInvalid {
                        default_branch,
                        error: e.to_string(),
                    },
                )
                .await;
        }
    };
    let s = session(config);
    run_lines(&s, &lines, skipped).await?;
    // Processed before (a retry after a crash): a section stored just before
    // the crash may be missing from the posted reply.
    if s.seen_before.load(std::sync::atomic::Ordering::Relaxed) {
        s.post_reply().await?;
    }
    Ok(())
}

/// Runs a comment's command lines in order (each once, however often the
/// delivery is processed), and notes the lines past the limit.
async fn run_lines(
    s: &Session<'_>,
    lines: &[(i64, CommandLine)],
    skipped: usize,
) -> Result<(), HandlerError> {
    for (position, (key, line)) in lines.iter().enumerate() {
        match &line.parsed {
            Err(e) => {
                let prior = begin(s, *key, position, "invalid", None).await?;
                let run = Run {
                    line: *key,
                    prior,
                    command: &Command::Help,
                    from_queue: false,
                };
                s.saw(&run);
                if done(&run) {
                    continue;
                }
                let message = e.message.clone();
                s.refuse(&run, Refusal::BadCommand { message }).await?;
            }
            Ok(cmd) => {
                let prior = begin(s, *key, position, cmd.name(), cmd.env()).await?;
                let run = Run {
                    line: *key,
                    prior,
                    command: cmd,
                    from_queue: false,
                };
                s.saw(&run);
                if done(&run) {
                    continue;
                }
                run_command(s, &run).await?;
            }
        }
    }
    if skipped > 0 {
        let key = line_key("(command lines over the limit)", 0);
        let run = Run {
            line: key,
            prior: begin(s, key, MAX_COMMANDS_PER_COMMENT, "skipped", None).await?,
            command: &Command::Help,
            from_queue: false,
        };
        s.saw(&run);
        if !done(&run) {
            let text = crate::render::commands::lines_not_run(skipped, MAX_COMMANDS_PER_COMMENT);
            s.say(&run, crate::render::commands::NOTE, &text).await?;
        }
    }
    Ok(())
}

/// Whether `actor` gets replies now: anyone within the window's allowance;
/// past it, only users with write access (one role lookup).
async fn may_get_replies(
    cx: &Context,
    api: &Api,
    repo: &str,
    actor: &str,
) -> Result<bool, HandlerError> {
    let since = crate::now_ms() - REPLY_WINDOW_MS;
    if cx.store.count_runs_since(repo, actor, since).await? < REPLIES_PER_WINDOW {
        return Ok(true);
    }
    let role = crate::deploy::role_of(api, repo, actor).await?;
    Ok(role.is_some_and(|r| r >= Role::Write))
}

/// Whether a command line was fully handled before.
fn done(run: &Run<'_>) -> bool {
    run.prior.as_ref().is_some_and(|p| p.model.is_some())
}

async fn begin(
    s: &Session<'_>,
    line: i64,
    position: usize,
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
        position: position as i64,
    };
    Ok(s.cx.store.begin_run(&run).await?)
}

async fn run_command(s: &Session<'_>, run: &Run<'_>) -> Result<(), HandlerError> {
    match run.command {
        Command::Deploy { .. } | Command::Rollback { .. } => deploy::run(s, run).await.map(drop),
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

    #[test]
    fn old_deploy_models_are_read_as_deploy_sections() {
        let old = r#"{"kind":"deploy","environment":"staging","requested":"x","actor":"a","gates":[],"outcome":{"outcome":"refused"}}"#;
        assert!(matches!(Section::read(Some(old)), Some(Section::Deploy(_))));
        let new = serde_json::to_string(&Section::Message {
            icon: "🔒".into(),
            text: "locked".into(),
        })
        .unwrap();
        assert!(matches!(
            Section::read(Some(&new)),
            Some(Section::Message { .. })
        ));
        assert_eq!(Section::read(Some("{}")), None);
        assert_eq!(Section::read(None), None);
    }
}
