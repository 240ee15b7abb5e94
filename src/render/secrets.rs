//! A secrets scan as people see it: the `secrets` gate's headline, its job
//! summary (what was scanned, what was not, a table of findings), the
//! titles and messages of its annotations, and SARIF for GitHub code
//! scanning. A secret itself never appears: findings carry its redacted
//! form only.

use serde_json::{json, Value};

use crate::secrets::{Finding, ScanReport, Severity};
use crate::text::inline_text;

/// Files named in the summary as not scanned, at most.
const TOO_LARGE_LISTED: usize = 50;

/// What the scan covered: `3 files, 0.1 MiB in 12 ms (8 MiB/s); skipped 1
/// binary and 0 large files; 0 suppressed`.
pub fn scan_stats(report: &ScanReport) -> String {
    format!(
        "{} files, {:.1} MiB in {} ms ({:.0} MiB/s); skipped {} binary and {} large files; {} suppressed",
        report.files_scanned,
        report.bytes_scanned as f64 / (1024.0 * 1024.0),
        report.duration_ms,
        report.mib_per_s(),
        report.skipped_binary,
        report.skipped_large,
        report.suppressed
    )
}

/// The gate's headline: the counts as the gate judges them, and the stats.
pub fn secrets_headline(errors: usize, warnings: usize, report: &ScanReport) -> String {
    format!(
        "{errors} secret(s), {warnings} warning(s); {}",
        scan_stats(report)
    )
}

/// The job summary's part: how (`tree`, `diff`, `history`) and how much
/// was scanned, the files too large to scan (over `max_file_bytes`), and
/// every finding.
pub fn secrets_markdown(scan: &str, report: &ScanReport, max_file_bytes: u64) -> String {
    let mut out = format!("Scanned ({scan}): {}.\n\n", scan_stats(report));
    out.push_str(&not_scanned(&report.too_large, max_file_bytes));
    out.push_str(&findings_table(&report.findings));
    out
}

/// The files not scanned for their size, the first 50 by name; empty when
/// there are none.
pub fn not_scanned(too_large: &[String], max_file_bytes: u64) -> String {
    if too_large.is_empty() {
        return String::new();
    }
    let listed: Vec<String> = too_large
        .iter()
        .take(TOO_LARGE_LISTED)
        .map(|p| format!("`{}`", inline_text(p)))
        .collect();
    let more = match too_large.len().saturating_sub(TOO_LARGE_LISTED) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    format!(
        "⚠️ Not scanned, larger than {} MiB: {}{more}.\n\n",
        max_file_bytes / (1024 * 1024),
        listed.join(", ")
    )
}

/// The findings as a table: rule, file and line (only the file for a path
/// rule, which has no line), description and the redacted value; empty
/// when there are none.
pub fn findings_table(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return String::new();
    }
    let mut out = "| Rule | Where | Finding |\n|---|---|---|\n".to_string();
    for f in findings {
        let icon = if f.severity == Severity::Error {
            "❌"
        } else {
            "⚠️"
        };
        let place = match f.line {
            0 => inline_text(&f.path),
            line => format!("{}:{line}", inline_text(&f.path)),
        };
        // A custom rule's description is the configuration's text.
        let finding = format!(
            "{} {}",
            inline_text(&f.description),
            inline_text(&f.redacted)
        );
        out.push_str(&format!(
            "| {icon} `{}` | `{place}` | {} |\n",
            f.rule,
            finding.trim_end()
        ));
    }
    out
}

/// The title of a finding's annotation.
pub fn finding_title(f: &Finding) -> String {
    format!("shipgate secrets: {}", f.rule)
}

/// The message of a finding's annotation: the description and the redacted
/// value.
pub fn finding_message(f: &Finding) -> String {
    format!("{} {}", f.description, f.redacted)
        .trim()
        .to_string()
}

/// The title of a file's annotation when it was too large to scan.
pub fn not_scanned_title() -> String {
    "shipgate secrets: not scanned".to_string()
}

/// The message of a file's annotation when it was too large to scan.
pub fn not_scanned_message(max_file_bytes: u64) -> String {
    format!(
        "larger than {} MiB, so not scanned for secrets",
        max_file_bytes / (1024 * 1024)
    )
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// The report as SARIF 2.1.0 (for GitHub code scanning). Never contains a
/// secret: messages carry the redacted form only.
pub fn sarif(report: &ScanReport, tool_version: &str) -> Value {
    let mut rules: Vec<Value> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for f in &report.findings {
        if !seen.contains(&f.rule.as_str()) {
            seen.push(&f.rule);
            rules.push(json!({
                "id": f.rule,
                "shortDescription": { "text": f.description },
                "defaultConfiguration": { "level": sarif_level(f.severity) },
            }));
        }
    }
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let text = if f.redacted.is_empty() {
                f.description.clone()
            } else {
                format!("{} ({})", f.description, f.redacted)
            };
            let mut physical = json!({ "artifactLocation": { "uri": f.path } });
            if f.line > 0 {
                physical["region"] = json!({ "startLine": f.line, "startColumn": f.column });
            }
            json!({
                "ruleId": f.rule,
                "level": sarif_level(f.severity),
                "message": { "text": text },
                "locations": [{ "physicalLocation": physical }],
                "partialFingerprints": { "shipgate/v1": f.fingerprint },
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "shipgate",
                "version": tool_version,
                "informationUri": "https://github.com/shipgate/shipgate",
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(rule: &str, severity: Severity, path: &str, line: u32, redacted: &str) -> Finding {
        Finding {
            rule: rule.into(),
            description: match rule {
                "env-file" => "Environment file committed",
                "debug-leftover" => "Debug leftover",
                _ => "GitHub token",
            }
            .into(),
            severity,
            path: path.into(),
            line,
            column: u32::from(line > 0) * 11,
            redacted: redacted.into(),
            secret: "never shown".into(),
            fingerprint: format!("{rule}:{path}:-"),
        }
    }

    fn report() -> ScanReport {
        ScanReport {
            findings: vec![
                finding("env-file", Severity::Error, ".env", 0, ""),
                // A path may mention people or break a table.
                finding(
                    "github-token",
                    Severity::Error,
                    "ci/@acme | x.yml",
                    3,
                    "ghp_…(40 chars)",
                ),
                finding("debug-leftover", Severity::Warning, "src/app.js", 12, ""),
            ],
            files_scanned: 3,
            bytes_scanned: 3 * 1024 * 1024 / 2,
            skipped_binary: 1,
            skipped_large: 2,
            too_large: vec!["dist/bundle.js".into(), "data/<b>@big</b>.json".into()],
            suppressed: 1,
            duration_ms: 250,
        }
    }

    #[test]
    fn secrets_summary() {
        let r = report();
        insta::assert_snapshot!(format!(
            "{}\n\n{}",
            secrets_headline(r.errors(), r.warnings() + r.too_large.len(), &r),
            secrets_markdown("diff", &r, 32 * 1024 * 1024)
        ));
    }

    #[test]
    fn a_clean_scan_is_one_line() {
        let r = ScanReport::default();
        insta::assert_snapshot!(format!(
            "{}\n\n{}",
            secrets_headline(0, 0, &r),
            secrets_markdown("tree", &r, 32 * 1024 * 1024)
        ));
    }

    #[test]
    fn at_most_50_files_are_listed_as_not_scanned() {
        let many: Vec<String> = (0..53).map(|i| format!("f{i}.bin")).collect();
        let md = not_scanned(&many, 32 * 1024 * 1024);
        assert!(md.contains("`f49.bin` and 3 more."), "{md}");
        assert!(!md.contains("f50.bin"), "{md}");
    }

    #[test]
    fn annotations() {
        let r = report();
        let lines: Vec<String> = r
            .findings
            .iter()
            .map(|f| format!("{} — {}", finding_title(f), finding_message(f)))
            .chain([format!(
                "{} — {}",
                not_scanned_title(),
                not_scanned_message(32 * 1024 * 1024)
            )])
            .collect();
        insta::assert_snapshot!(lines.join("\n"));
    }

    #[test]
    fn sarif() {
        let s = super::sarif(&report(), "9.9.9");
        assert!(!s.to_string().contains("never shown"));
        insta::assert_json_snapshot!(s);
    }
}
