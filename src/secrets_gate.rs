//! The `secrets` gate: runs the scanner over the working tree, the lines a
//! pull request adds (`scan: diff`), or the whole history (`scan: history`),
//! and turns findings into annotations, masks, SARIF and a summary — with the
//! secret redacted everywhere.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::action::{Annotation, Level, Runner};
use crate::check::{CheckError, CheckRequest, GateResult};
use crate::repo_config::RepoConfig;
use crate::secrets::{self, Finding, ScanOptions, ScanReport, Severity};
use crate::smoke::Outcome;

fn git(ws: &Path, args: &[&str]) -> Result<String, CheckError> {
    let out = Command::new("git")
        .arg("-c")
        .arg("safe.directory=*")
        .args(args)
        .current_dir(ws)
        .output()
        .map_err(|e| CheckError::Input(format!("cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(CheckError::Input(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Added lines of a unified diff (`-U0`), per file: line number → text.
fn added_lines(diff: &str) -> BTreeMap<String, BTreeMap<u32, String>> {
    let mut files: BTreeMap<String, BTreeMap<u32, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut next_line = 0u32;
    for line in diff.lines() {
        if let Some(path) = line.strip_prefix("+++ ") {
            current = path.strip_prefix("b/").map(str::to_string);
        } else if let Some(hunk) = line.strip_prefix("@@ ") {
            // @@ -a,b +c,d @@
            next_line = hunk
                .split_whitespace()
                .find_map(|p| p.strip_prefix('+'))
                .and_then(|p| p.split(',').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        } else if let (Some(text), Some(path)) = (line.strip_prefix('+'), &current) {
            files
                .entry(path.clone())
                .or_default()
                .insert(next_line, text.to_string());
            next_line += 1;
        }
    }
    files
}

/// Scans added lines, keeping their line numbers (other lines are blank).
fn scan_added(
    files: &BTreeMap<String, BTreeMap<u32, String>>,
    opts: &ScanOptions,
    report: &mut ScanReport,
) {
    for (path, lines) in files {
        let last = lines.keys().max().copied().unwrap_or(0) as usize;
        let mut text = vec![String::new(); last];
        for (n, l) in lines {
            if *n >= 1 {
                text[*n as usize - 1] = l.clone();
            }
        }
        let joined = text.join("\n");
        report.files_scanned += 1;
        report.bytes_scanned += joined.len() as u64;
        report.findings.extend(secrets::path_findings(path));
        report
            .findings
            .extend(secrets::scan_text(path, &joined, opts));
    }
}

pub fn run(
    runner: &Runner,
    req: &CheckRequest,
    config: &RepoConfig,
) -> Result<GateResult, CheckError> {
    let ws = runner.workspace();
    let opts = ScanOptions {
        exclude: config.secrets.exclude.clone(),
        debug_leftovers: config.secrets.debug_leftovers.unwrap_or(true),
        ..ScanOptions::default()
    };
    let started = std::time::Instant::now();
    let mut report = match req.scan.as_str() {
        "diff" => {
            let event = runner.event();
            let base = req.base.clone().or_else(|| {
                event.as_ref().and_then(|e| {
                    e["pull_request"]["base"]["sha"]
                        .as_str()
                        .map(str::to_string)
                })
            });
            let head = req
                .head
                .clone()
                .or_else(|| {
                    event.as_ref().and_then(|e| {
                        e["pull_request"]["head"]["sha"]
                            .as_str()
                            .map(str::to_string)
                    })
                })
                .unwrap_or_else(|| "HEAD".into());
            let base = base.ok_or_else(|| {
                CheckError::Input("scan: diff needs `base` (or a pull_request event)".into())
            })?;
            let diff = git(
                &ws,
                &[
                    "diff",
                    "-U0",
                    "--no-color",
                    "--no-ext-diff",
                    &format!("{base}...{head}"),
                ],
            )?;
            let mut r = ScanReport::default();
            scan_added(&added_lines(&diff), &opts, &mut r);
            r
        }
        "history" => {
            if git(&ws, &["rev-parse", "--is-shallow-repository"])?.trim() == "true" {
                return Err(CheckError::Input(
                    "scan: history needs the whole history, but this clone is shallow: set `fetch-depth: 0` on actions/checkout".into(),
                ));
            }
            let log = git(
                &ws,
                &[
                    "log",
                    "-p",
                    "-U0",
                    "--no-color",
                    "--no-ext-diff",
                    "--format=",
                    "HEAD",
                ],
            )?;
            let mut r = ScanReport::default();
            scan_added(&added_lines(&log), &opts, &mut r);
            r
        }
        _ => secrets::scan_tree(&ws, &opts).map_err(|e| CheckError::Input(e.to_string()))?,
    };
    if req.scan != "tree" {
        let ignored = secrets::load_ignore_file(&ws);
        let before = report.findings.len();
        report
            .findings
            .retain(|f| !ignored.contains(&f.fingerprint));
        report.suppressed += (before - report.findings.len()) as u64;
        report
            .findings
            .sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));
        report
            .findings
            .dedup_by(|a, b| a.fingerprint == b.fingerprint && a.line == b.line);
        report.duration_ms = started.elapsed().as_millis() as u64;
    }

    let errors = report.errors();
    let warnings = report.warnings();
    let outcome = if errors > 0 {
        Outcome::Fail
    } else if warnings > 0 {
        Outcome::Warn
    } else {
        Outcome::Pass
    };
    let stats = format!(
        "{} files, {:.1} MiB in {} ms ({:.0} MiB/s); skipped {} binary and {} large files; {} suppressed",
        report.files_scanned,
        report.bytes_scanned as f64 / (1024.0 * 1024.0),
        report.duration_ms,
        report.mib_per_s(),
        report.skipped_binary,
        report.skipped_large,
        report.suppressed
    );
    let mut md = format!("Scanned ({}): {stats}.\n\n", req.scan);
    if !report.findings.is_empty() {
        md.push_str("| Rule | Where | Finding |\n|---|---|---|\n");
        for f in &report.findings {
            let icon = if f.severity == Severity::Error {
                "❌"
            } else {
                "⚠️"
            };
            md.push_str(&format!(
                "| {icon} `{}` | `{}:{}` | {} {} |\n",
                f.rule, f.path, f.line, f.description, f.redacted
            ));
        }
    }
    let headline = format!("{errors} secret(s), {warnings} warning(s); {stats}");
    let mut r = GateResult::new("secrets", outcome, headline, md);
    r.errors = errors;
    r.warnings = warnings;
    r.masks = report
        .findings
        .iter()
        .map(|f| f.secret.clone())
        .filter(|s| !s.is_empty())
        .collect();
    // At most 10 annotations per severity; the summary lists them all.
    let mut shown = (0, 0);
    for f in &report.findings {
        let slot = if f.severity == Severity::Error {
            &mut shown.0
        } else {
            &mut shown.1
        };
        if *slot >= 10 {
            continue;
        }
        *slot += 1;
        r.annotations.push(annotation(f));
    }
    if let Some(path) = &req.sarif {
        let sarif = secrets::sarif(&report, env!("CARGO_PKG_VERSION"));
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
        title: format!("shipgate secrets: {}", f.rule),
        message: format!("{} {}", f.description, f.redacted)
            .trim()
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn added_lines_keep_their_numbers() {
        let diff = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,0 +2,2 @@\n+two\n+three\n@@ -9 +10 @@\n-old\n+ten\n";
        let files = super::added_lines(diff);
        let x = &files["x"];
        assert_eq!(
            x.iter().map(|(n, t)| (*n, t.as_str())).collect::<Vec<_>>(),
            [(2, "two"), (3, "three"), (10, "ten")]
        );
    }
}
