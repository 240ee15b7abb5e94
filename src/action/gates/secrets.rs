//! The `secrets` gate: runs the scanner over the working tree, the lines a
//! pull request adds (`scan: diff`), or the whole history (`scan: history`),
//! and turns findings into annotations, masks, SARIF and a summary — with the
//! secret redacted everywhere. Excludes and `.shipgateignore` come from the
//! gate configuration (in a pull request, its base's).

use crate::action::config::GateConfig;
use crate::action::request::{CheckError, CheckRequest, GateResult};
use crate::action::{Annotation, Level, Runner};
use crate::deploy::gates::Verdict;
use crate::render::secrets as render;
use crate::secrets::{self, git, Finding, ScanOptions, Severity};

/// Annotations per severity at most; the summary lists everything.
const ANNOTATIONS_PER_LEVEL: usize = 10;

fn scan_error(e: secrets::ScanError) -> CheckError {
    CheckError::Input(format!("secrets: {e}"))
}

pub fn run(
    runner: &Runner,
    req: &CheckRequest,
    gate_config: &GateConfig,
) -> Result<GateResult, CheckError> {
    let ws = runner.workspace();
    let config = &gate_config.config;
    let opts = ScanOptions {
        exclude: config.secrets.exclude.clone(),
        debug_leftovers: config.secrets.debug_leftovers.unwrap_or(true),
        ignored: Some(gate_config.ignored.clone()),
        ..ScanOptions::default()
    }
    .with_rules(&config.secrets.rules)
    .map_err(scan_error)?;
    let report = match req.scan.as_str() {
        "diff" => {
            let pr = runner.pull_request();
            let base = req
                .base
                .clone()
                .or_else(|| pr.and_then(|pr| pr.base_sha()).map(str::to_string))
                .ok_or_else(|| {
                    CheckError::Input("scan: diff needs `base` (or a pull_request event)".into())
                })?;
            let head = req
                .head
                .clone()
                .or_else(|| pr.and_then(|pr| pr.head_sha()).map(str::to_string))
                .unwrap_or_else(|| "HEAD".into());
            secrets::scan_diff(&ws, &base, &head, &opts).map_err(scan_error)?
        }
        "history" => {
            let shallow = git::text(&ws, &["rev-parse", "--is-shallow-repository"])
                .map_err(|e| scan_error(e.into()))?;
            if shallow == "true" {
                return Err(CheckError::Input(
                    "scan: history needs the whole history, but this clone is shallow: set `fetch-depth: 0` on actions/checkout".into(),
                ));
            }
            secrets::scan_history(&ws, &opts).map_err(scan_error)?
        }
        _ => secrets::scan_tree(&ws, &opts).map_err(scan_error)?,
    };

    let errors = report.errors();
    let warnings = report.warnings() + report.too_large.len();
    let outcome = if errors > 0 {
        Verdict::Fail
    } else if warnings > 0 {
        Verdict::Warn
    } else {
        Verdict::Pass
    };
    let headline = render::secrets_headline(errors, warnings, &report);
    let md = render::secrets_markdown(&req.scan, &report, opts.max_file_bytes);
    let mut r = GateResult::new("secrets", outcome, headline, md);
    r.errors = errors;
    r.warnings = warnings;
    r.masks = report
        .findings
        .iter()
        .map(|f| f.secret.clone())
        .filter(|s| !s.is_empty())
        .collect();
    let mut shown = (0, 0);
    for f in &report.findings {
        let slot = if f.severity == Severity::Error {
            &mut shown.0
        } else {
            &mut shown.1
        };
        if *slot >= ANNOTATIONS_PER_LEVEL {
            continue;
        }
        *slot += 1;
        r.annotations.push(annotation(f));
    }
    for path in &report.too_large {
        if shown.1 >= ANNOTATIONS_PER_LEVEL {
            break;
        }
        shown.1 += 1;
        r.annotations.push(Annotation {
            level: Level::Warning,
            file: Some(path.clone()),
            line: None,
            column: None,
            title: render::not_scanned_title(),
            message: render::not_scanned_message(opts.max_file_bytes),
        });
    }
    if let Some(path) = &req.sarif {
        crate::action::config::check_output_path(&ws, path, "sarif")?;
        let sarif = render::sarif(&report, env!("CARGO_PKG_VERSION"));
        std::fs::write(
            path,
            serde_json::to_vec_pretty(&sarif).expect("SARIF serializes"),
        )
        .map_err(|e| CheckError::Input(format!("cannot write {}: {e}", path.display())))?;
    }
    r.data = serde_json::to_value(&report).unwrap_or_default();
    Ok(r)
}

fn annotation(f: &Finding) -> Annotation {
    Annotation {
        level: if f.severity == Severity::Error {
            Level::Error
        } else {
            Level::Warning
        },
        file: Some(f.path.clone()),
        line: Some(f.line),
        column: Some(f.column),
        title: render::finding_title(f),
        message: render::finding_message(f),
    }
}
