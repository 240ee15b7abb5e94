//! The `freeze` gate: the freeze windows of the environment, and the
//! override label when a maintainer added it.

use crate::action::config::GateConfig;
use crate::action::request::{client, environment_name, CheckError, CheckRequest, GateResult};
use crate::action::Runner;
use crate::deploy::gates::Verdict;
use crate::render::inline_text;

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
    let pull_request = runner
        .event()
        .map(|e| e["pull_request"].clone())
        .filter(|pr| pr.is_object());
    let labelled = pull_request.as_ref().is_some_and(|pr| {
        pr["labels"].as_array().is_some_and(|labels| {
            labels
                .iter()
                .any(|l| l["name"].as_str() == Some(label.as_str()))
        })
    });
    let what = env_name
        .as_deref()
        .map(|e| format!("`{}`", inline_text(e)))
        .unwrap_or_else(|| "all environments".into());
    let shown_label = inline_text(&label);
    let r = match crate::freeze::active_freeze(&windows, now) {
        Some(f) => {
            let until = f.ends_at.format("%Y-%m-%d %H:%M UTC");
            let description = inline_text(&f.description);
            let overridden = if labelled {
                let number = pull_request
                    .as_ref()
                    .and_then(|pr| pr["number"].as_i64())
                    .unwrap_or_default();
                Some(override_added_by(runner, req, number, &label).await)
            } else {
                None
            };
            match overridden {
                Some(Ok(by)) => GateResult::new(
                    "freeze",
                    Verdict::Warn,
                    format!(
                        "{} — overridden by the `{label}` label (added by {by})",
                        f.description
                    ),
                    format!(
                        "⚠️ Deploy freeze on {what}: {description} until {until}, overridden by the `{shown_label}` label (added by {}).\n",
                        inline_text(&by)
                    ),
                ),
                Some(Err(why)) => GateResult::new(
                    "freeze",
                    Verdict::Fail,
                    format!(
                        "{} until {until}; the `{label}` label does not count: {why}",
                        f.description
                    ),
                    format!(
                        "❌ Deploy freeze on {what}: {description} until {until}. The `{shown_label}` label does not count: {}. Only a maintainer or an admin can override a freeze.\n",
                        inline_text(&why)
                    ),
                ),
                None => GateResult::new(
                    "freeze",
                    Verdict::Fail,
                    format!("{} until {until}", f.description),
                    format!(
                        "❌ Deploy freeze on {what}: {description} until {until}. A maintainer or an admin can add the `{shown_label}` label to override.\n"
                    ),
                ),
            }
        }
        None => {
            // The next window, looking two weeks ahead in 15-minute steps.
            let next = (1..=14 * 96)
                .map(|i| now + chrono::Duration::minutes(15 * i))
                .find_map(|t| crate::freeze::active_freeze(&windows, t).map(|f| (t, f)));
            let text = match next {
                Some((t, f)) => format!(
                    "no freeze now; next: {} from about {}",
                    f.description,
                    t.format("%Y-%m-%d %H:%M UTC")
                ),
                None => "no freeze now or in the next 14 days".to_string(),
            };
            GateResult::new(
                "freeze",
                Verdict::Pass,
                text.clone(),
                format!("✅ {what}: {}\n", inline_text(&text)),
            )
        }
    };
    Ok(r)
}
