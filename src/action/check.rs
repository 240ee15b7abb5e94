//! `shipgate check`: the gates, run from a terminal or as the GitHub Action.
//!
//! Each gate returns data (outcome, Markdown, annotations, counts); the
//! caller reports it through the runner contract (`action`) or as text.
//! The gates reuse the server's pieces: the smoke engine, the freeze
//! windows, the policy evaluator, the secret scanner.
//!
//! The request is read in [`crate::action::request`], the configuration the
//! gates obey in [`crate::action::config`], the gates live in
//! [`crate::action::gates`]; this module runs them and reports.

use std::path::PathBuf;

use crate::action::{self, gates, Runner};
use crate::deploy::gates::{Gate, Verdict};
use crate::github::repos::MARKER_SEARCH_PAGES;
use crate::render::action as render;

pub use crate::action::config::{
    check_output_path, gate_config, judged_config, load_config, GateConfig,
};
use crate::action::request::client;
pub use crate::action::request::{request, CheckError, CheckRequest, FailOn, GateResult, GATES};

/// Runs the requested gates, in order, with the configuration they obey.
pub async fn run(
    runner: &Runner,
    req: &CheckRequest,
) -> Result<(GateConfig, Vec<GateResult>), CheckError> {
    let checked_out = load_config(&runner.workspace(), &req.config)?;
    let gc = gate_config(runner, req, checked_out).await?;
    let config = &gc.config;
    let mut out = Vec::new();
    for gate in &req.gates {
        let r = match gate.as_str() {
            "smoke" => gates::smoke::run(runner, req, config).await?,
            "freeze" => gates::freeze::run(runner, req, &gc).await?,
            "policy" => gates::policy::run(runner, req, config).await?,
            "protection" => gates::protection::run(runner, req, config).await?,
            "release" => gates::release::run(runner, req).await?,
            "secrets" => gates::secrets::run(runner, req, &gc)?,
            _ => unreachable!("gates are checked in `request`"),
        };
        out.push(r);
    }
    Ok((gc, out))
}

/// The overall result and exit status for `fail_on`. The Action cannot
/// wait, so a gate that would (none does today) counts as failed.
pub fn verdict(results: &[GateResult], fail_on: FailOn) -> (&'static str, u8) {
    let worst = results
        .iter()
        .map(|r| r.gate.verdict)
        .filter(|v| *v != Verdict::Skipped)
        .max()
        .unwrap_or(Verdict::Pass);
    let label = match worst {
        Verdict::Fail | Verdict::Wait => "fail",
        Verdict::Warn => "warn",
        Verdict::Pass | Verdict::Skipped => "pass",
    };
    let fails = match fail_on {
        FailOn::Error => label == "fail",
        FailOn::Warning => label != "pass",
        FailOn::Never => false,
    };
    (label, if fails { 1 } else { 0 })
}

/// Reports results through the runner contract (in Actions) or as text, and
/// returns the exit status. Masks go out before anything else.
pub fn report(runner: &Runner, req: &CheckRequest, gc: &GateConfig, results: &[GateResult]) -> u8 {
    let (label, code) = verdict(results, req.fail_on);
    let actions = runner.in_actions();
    if actions {
        for r in results {
            for m in &r.masks {
                crate::outln!("{}", action::mask(m));
            }
        }
    }
    for r in results {
        let line = render::console_line(&r.gate);
        // Headlines can quote configs and responses: one line, never a command.
        if actions {
            crate::outln!("{}", action::untrusted(&action::escape_log(&line)));
            for a in &r.annotations {
                crate::outln!("{}", a.command());
            }
        } else {
            crate::outln!("{line}");
        }
    }
    let errors: usize = results.iter().map(|r| r.errors).sum();
    let warnings: usize = results.iter().map(|r| r.warnings).sum();
    crate::outln!("{}", render::console_totals(label, errors, warnings));
    let wrote_report = write_report(runner, label, errors, warnings, results);
    if actions {
        let sections: Vec<render::SummarySection> = results
            .iter()
            .map(|r| render::SummarySection {
                gate: &r.gate,
                details: &r.markdown,
                unannotated: if r.gate.name == "secrets" {
                    (r.errors + r.warnings).saturating_sub(r.annotations.len())
                } else {
                    0
                },
            })
            .collect();
        let summary = render::job_summary(label, gc.base.as_deref(), &sections);
        let _ = runner.append_summary(&summary);
        let _ = runner.set_output("result", label);
        let _ = runner.set_output("errors", &errors.to_string());
        let _ = runner.set_output("warnings", &warnings.to_string());
        if let Some(path) = wrote_report {
            let _ = runner.set_output("report", &path.display().to_string());
        }
        if let Some(s) = req.sarif.as_ref().filter(|s| s.exists()) {
            let _ = runner.set_output("sarif", &s.display().to_string());
        }
    }
    code
}

/// Writes `shipgate-report.json` to `RUNNER_TEMP` (else the workspace);
/// its path, when written.
fn write_report(
    runner: &Runner,
    label: &str,
    errors: usize,
    warnings: usize,
    results: &[GateResult],
) -> Option<PathBuf> {
    let path = runner
        .var("RUNNER_TEMP")
        .map(PathBuf::from)
        .unwrap_or_else(|| runner.workspace())
        .join("shipgate-report.json");
    let gates = results
        .iter()
        .map(|r| {
            let annotations = serde_json::to_value(&r.annotations).unwrap_or_default();
            render::report_entry(&r.gate, annotations, r.errors, r.warnings, &r.data)
        })
        .collect();
    let json = render::report(label, errors, warnings, gates);
    let wrote = check_output_path(&runner.workspace(), &path, "report").is_ok()
        && std::fs::write(
            &path,
            serde_json::to_vec_pretty(&json).expect("report serializes"),
        )
        .is_ok();
    wrote.then_some(path)
}

pub use render::CHECK_COMMENT_MARKER as COMMENT_MARKER;

/// Who a workflow's `GITHUB_TOKEN` posts as; it cannot read `GET /user`.
const ACTIONS_BOT: &str = "github-actions[bot]";

/// `comment: true`: one sticky PR comment with the results, found again by
/// its marker among the comments the token's own login wrote (another bot
/// that echoes user text could plant the marker), on every page.
pub async fn post_comment(
    runner: &Runner,
    req: &CheckRequest,
    results: &[GateResult],
) -> Result<(), CheckError> {
    let Some(number) = runner.pull_request().and_then(|pr| pr.number) else {
        return Ok(()); // not a pull request: nothing to comment on
    };
    let (gh, api, repo) = client(runner, req, "comment")?;
    let (label, _) = verdict(results, req.fail_on);
    let gates: Vec<Gate> = results.iter().map(|r| r.gate.clone()).collect();
    let body = render::check_comment(label, &gates);
    let login = gh
        .bot_login()
        .await
        .unwrap_or_else(|_| ACTIONS_BOT.to_string());
    let existing = api
        .list_comments(&repo, number, MARKER_SEARCH_PAGES)
        .await
        .map_err(|e| CheckError::Input(format!("comment: {e}")))?;
    let mine = existing.iter().find(|c| {
        c.user
            .as_ref()
            .is_some_and(|u| u.login.eq_ignore_ascii_case(&login))
            && c.body
                .as_deref()
                .is_some_and(|b| b.contains(COMMENT_MARKER))
    });
    let done = match mine {
        Some(c) => api.update_comment(&repo, c.id, &body).await,
        None => api.create_comment(&repo, number, &body).await.map(|_| ()),
    };
    done.map_err(|e| CheckError::Input(format!("comment: {e}")))
}
