//! Gates as people see them: one icon per verdict and one table, for deploy
//! replies, the `shipgate/policy` check, the Action's summary and comment;
//! and the plain-text comment of a deployment protection rule review.

use crate::deploy::gates::{Gate, Verdict};
use crate::smoke::Outcome;

/// The icon of a gate's verdict, the same wherever gates are shown.
pub fn verdict_icon(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "✅",
        Verdict::Skipped => "⏭️",
        Verdict::Warn => "⚠️",
        Verdict::Wait => "⏳",
        Verdict::Fail => "❌",
    }
}

/// The icon of a smoke check's outcome: a verdict's icon.
pub fn outcome_icon(o: Outcome) -> &'static str {
    verdict_icon(Verdict::from(o))
}

/// Gates as a Markdown table headed `heading` (`Gate`, `Condition`): name,
/// icon, reason. A `|` in a name or reason is escaped, so no cell ends early.
pub fn gate_table(heading: &str, gates: &[Gate]) -> String {
    let mut out = format!("| {heading} | | |\n|---|---|---|\n");
    for g in gates {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            g.name.replace('|', "\\|"),
            verdict_icon(g.verdict),
            g.reason.replace('|', "\\|")
        ));
    }
    out
}

/// The comment of a deployment protection rule review: plain text (GitHub
/// shows it as such), one line per gate, at most 1,024 characters.
/// What the protection rule answers, or that it still waits, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleVerdict {
    Approved,
    Rejected,
    DeadlinePassed,
    FreezeOutlastsWait,
    SoakOutlastsWait,
    Waiting,
}

impl RuleVerdict {
    fn headline(self) -> &'static str {
        match self {
            RuleVerdict::Approved => "approved",
            RuleVerdict::Rejected => "rejected",
            RuleVerdict::DeadlinePassed => "rejected — the deadline passed while waiting",
            RuleVerdict::FreezeOutlastsWait => "rejected — the freeze outlasts the wait limit",
            RuleVerdict::SoakOutlastsWait => "rejected — the soak outlasts the wait limit",
            RuleVerdict::Waiting => "waiting",
        }
    }
}

pub fn protection_rule_comment(verdict: RuleVerdict, gates: &[Gate]) -> String {
    let mut out = format!("shipgate: {}", verdict.headline());
    for g in gates {
        out.push_str(&format!(
            "\n{} {}: {}",
            verdict_icon(g.verdict),
            g.name,
            g.reason
        ));
    }
    if out.chars().count() > 1024 {
        out = out.chars().take(1023).collect::<String>() + "…";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gates() -> Vec<Gate> {
        vec![
            Gate::pass("Permission", "@alice has write"),
            Gate::wait("Checks", "`ci` in progress on `abc1234`"),
            Gate::fail("Approvals", "1 of 2 approvals | by @bob"),
            Gate::warn("Freeze", "overridden with `force` by @alice"),
            Gate::skipped("Fork", "not a pull request"),
        ]
    }

    #[test]
    fn gate_table() {
        insta::assert_snapshot!(super::gate_table("Gate", &gates()));
    }

    #[test]
    fn protection_rule_comment() {
        insta::assert_snapshot!(super::protection_rule_comment(
            RuleVerdict::Rejected,
            &gates()
        ));
    }

    #[test]
    fn a_protection_rule_comment_stops_at_1024_characters() {
        let long = vec![Gate::fail("Checks", "x".repeat(2000))];
        let c = super::protection_rule_comment(RuleVerdict::Rejected, &long);
        assert_eq!(c.chars().count(), 1024);
        assert!(c.ends_with('…'));
    }
}
