//! The `freeze` gate: the freeze windows of the environment, and the
//! override label when a maintainer added it.

use crate::action::config::GateConfig;
use crate::action::request::{client, environment_name, CheckError, CheckRequest, GateResult};
use crate::action::Runner;
use crate::deploy::gates::Verdict;
use crate::render::freeze::{
    freeze_headline, freeze_markdown, no_freeze_headline, no_freeze_markdown, FreezeInForce,
    Override,
};

/// The pull request's issue events are read this many pages of 100 deep
/// to find who added the override label.
const LABEL_EVENT_PAGES: u32 = 50;

/// Who added the override label, if it counts: the latest `labeled` event
/// for it names the actor, whose role must be maintain or admin. `Err`
/// says why it does not count.
async fn override_added_by(
    runner: &Runner,
    req: &CheckRequest,
    number: i64,
    label: &str,
) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct IssueEvent {
        event: String,
        #[serde(default)]
        actor: Option<crate::github::repos::UserRef>,
        #[serde(default)]
        label: Option<Label>,
    }
    #[derive(serde::Deserialize)]
    struct Label {
        name: String,
    }
    if req.token.is_none() {
        return Err("there is no token to check who added it".into());
    }
    let (_, api, repo) = client(runner, req, "freeze").map_err(|e| e.to_string())?;
    let events: Vec<IssueEvent> = api
        .all_pages(
            &format!("/repos/{repo}/issues/{number}/events"),
            LABEL_EVENT_PAGES,
        )
        .await
        .map_err(|e| format!("GitHub did not say who added it ({e})"))?;
    if events.len() >= 100 * LABEL_EVENT_PAGES as usize {
        return Err("the pull request has too many events to find who added it".into());
    }
    let actor = events
        .iter()
        .rfind(|e| e.event == "labeled" && e.label.as_ref().is_some_and(|l| l.name == label))
        .and_then(|e| e.actor.as_ref().map(|a| a.login.clone()));
    let actor = actor.ok_or("GitHub lists no `labeled` event for it")?;
    let permission = api
        .permission(&repo, &actor)
        .await
        .map_err(|e| format!("the role of {actor}, who added it, is unknown ({e})"))?;
    let role = permission
        .role_name
        .unwrap_or_else(|| permission.permission.clone());
    if matches!(role.as_str(), "maintain" | "admin") {
        Ok(actor)
    } else {
        Err(format!(
            "added by {actor}, whose role ({role}) is below maintain"
        ))
    }
}

pub async fn run(
    runner: &Runner,
    req: &CheckRequest,
    gc: &GateConfig,
) -> Result<GateResult, CheckError> {
    let config = &gc.config;
    let env_name = environment_name(req, config);
    let env = env_name.as_ref().and_then(|e| config.environments.get(e));
    let mut windows: Vec<_> = match env {
        Some(e) => config.freeze_windows(e).cloned().collect(),
        None => config.freeze.windows.clone(),
    };
    if let Some(added) = env_name.as_ref().and_then(|e| gc.added_freezes.get(e)) {
        windows.extend(added.iter().cloned());
    }
    let now = chrono::Utc::now();
    let label = config
        .freeze
        .override_label
        .clone()
        .unwrap_or_else(|| "freeze-override".into());
    let pull_request = runner.pull_request();
    let labelled = pull_request.is_some_and(|pr| pr.has_label(&label));
    let r = match crate::freeze::active_freeze(&windows, now) {
        Some(f) => {
            let overridden = if labelled {
                let number = pull_request.and_then(|pr| pr.number).unwrap_or_default();
                Some(override_added_by(runner, req, number, &label).await)
            } else {
                None
            };
            let (verdict, override_) = match &overridden {
                Some(Ok(by)) => (Verdict::Warn, Override::By(by)),
                Some(Err(why)) => (Verdict::Fail, Override::Refused(why)),
                None => (Verdict::Fail, Override::Absent),
            };
            let shown = FreezeInForce {
                environment: env_name.as_deref(),
                freeze: &f,
                label: &label,
                override_,
            };
            GateResult::new(
                "freeze",
                verdict,
                freeze_headline(&shown),
                freeze_markdown(&shown),
            )
        }
        None => {
            // The next window, looking two weeks ahead in 15-minute steps.
            let next = (1..=14 * 96)
                .map(|i| now + chrono::Duration::minutes(15 * i))
                .find_map(|t| crate::freeze::active_freeze(&windows, t).map(|f| (t, f)));
            let next = next.as_ref().map(|(t, f)| (*t, f));
            GateResult::new(
                "freeze",
                Verdict::Pass,
                no_freeze_headline(next),
                no_freeze_markdown(env_name.as_deref(), next),
            )
        }
    };
    Ok(r)
}
