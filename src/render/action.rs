//! What `shipgate check` writes for people: a line per gate on the console,
//! the job summary, the sticky pull request comment and the JSON report.

use serde_json::{json, Value};

use super::gates::{gate_table, verdict_icon};
use crate::deploy::gates::Gate;
use crate::text::{inline_text, short};

/// Marks the Action's sticky pull request comment.
pub const CHECK_COMMENT_MARKER: &str = "<!-- shipgate:check -->";

/// One gate's console line: `FAIL    smoke — 1 of 3 checks failed`.
pub fn console_line(gate: &Gate) -> String {
    format!(
        "{:<7} {} — {}",
        gate.verdict.as_str().to_ascii_uppercase(),
        gate.name,
        gate.reason
    )
}

/// The console's last line: `FAIL: 2 error(s), 0 warning(s)`.
pub fn console_totals(label: &str, errors: usize, warnings: usize) -> String {
    format!(
        "{}: {errors} error(s), {warnings} warning(s)",
        label.to_ascii_uppercase()
    )
}

/// One gate's part of the job summary.
pub struct SummarySection<'a> {
    pub gate: &'a Gate,
    /// The gate's own Markdown, built from escaped text.
    pub details: &'a str,
    /// Findings counted but not annotated (annotations are capped).
    pub unannotated: usize,
}

/// The job summary: the verdict, where the configuration came from, and
/// each gate's headline and details.
pub fn job_summary(label: &str, base: Option<&str>, sections: &[SummarySection]) -> String {
    let mut out = format!("## shipgate: {label}\n\n");
    if let Some(base) = base {
        out.push_str(&format!(
            "_Configuration as of the base commit `{}`; this pull request's changes to it count only where they make a gate stricter._\n\n",
            short(base)
        ));
    }
    for s in sections {
        out.push_str(&format!(
            "### {} {} — {}\n\n{}\n",
            verdict_icon(s.gate.verdict),
            s.gate.name,
            inline_text(&s.gate.reason),
            s.details
        ));
        if s.unannotated > 0 {
            out.push_str(&format!(
                "_{} finding(s) are listed here but not annotated (at most 10 annotations per severity)._\n\n",
                s.unannotated
            ));
        }
    }
    out
}

/// The sticky pull request comment (`comment: true`): the verdict and a
/// table of the gates.
pub fn check_comment(label: &str, gates: &[Gate]) -> String {
    let shown: Vec<Gate> = gates
        .iter()
        .map(|g| Gate {
            reason: inline_text(&g.reason),
            ..g.clone()
        })
        .collect();
    format!(
        "### shipgate check: {label}\n\n{}\n{CHECK_COMMENT_MARKER}",
        gate_table("Gate", &shown)
    )
}

/// One gate in the JSON report (`shipgate-report.json`).
pub fn report_entry(
    gate: &Gate,
    annotations: Value,
    errors: usize,
    warnings: usize,
    data: &Value,
) -> Value {
    json!({
        "gate": gate.name,
        "outcome": gate.verdict.as_str(),
        "headline": gate.reason,
        "annotations": annotations,
        "errors": errors,
        "warnings": warnings,
        "data": data,
    })
}

/// The JSON report: the verdict, the totals and every gate.
pub fn report(label: &str, errors: usize, warnings: usize, gates: Vec<Value>) -> Value {
    json!({ "result": label, "errors": errors, "warnings": warnings, "gates": gates })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gates() -> Vec<Gate> {
        vec![
            Gate::pass("freeze", "no freeze now or in the next 14 days"),
            Gate::fail("secrets", "2 finding(s) | @bob's key"),
            Gate::warn("smoke", "2 passed, 1 warned, 0 failed"),
            Gate::skipped("release", "not a tag push"),
        ]
    }

    #[test]
    fn console() {
        let lines: Vec<String> = gates().iter().map(console_line).collect();
        insta::assert_snapshot!(format!(
            "{}\n{}",
            lines.join("\n"),
            console_totals("fail", 2, 1)
        ));
    }

    #[test]
    fn job_summary() {
        let gates = gates();
        let sections: Vec<SummarySection> = gates
            .iter()
            .map(|g| SummarySection {
                gate: g,
                details: "- ✅ details\n",
                unannotated: usize::from(g.name == "secrets") * 3,
            })
            .collect();
        insta::assert_snapshot!(super::job_summary(
            "fail",
            Some("0123456789abcdef0123456789abcdef01234567"),
            &sections
        ));
    }

    #[test]
    fn check_comment() {
        insta::assert_snapshot!(super::check_comment("fail", &gates()));
    }

    #[test]
    fn report() {
        let g = &gates()[1];
        let entry = report_entry(g, json!([]), 2, 0, &json!({"findings": 2}));
        insta::assert_json_snapshot!(super::report("fail", 2, 0, vec![entry]));
    }
}
