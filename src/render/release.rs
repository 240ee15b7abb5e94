//! A pushed tag as the Action's `release` gate reports it: the checks it
//! passed and those it failed.

use crate::text::inline_text;

/// The gate's details when the step was not started by a tag push.
pub fn not_a_tag_push() -> String {
    "⏭️ release: not a tag push.\n".to_string()
}

/// The release checks as a list: those passed (✅), then those failed (❌).
/// Each is a sentence naming the tag, the pattern, the branch or the
/// changelog, all from outside shipgate.
pub fn release_checks(passed: &[String], problems: &[String]) -> String {
    let mut out = String::new();
    for p in passed {
        out.push_str(&format!("- ✅ {}\n", inline_text(p)));
    }
    for p in problems {
        out.push_str(&format!("- ❌ {}\n", inline_text(p)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_checks() {
        let passed = vec![
            "`v1.2.0` matches `^v\\d+\\.\\d+\\.\\d+$`".to_string(),
            "the tag is annotated".to_string(),
        ];
        let problems = vec![
            "the tagged commit is not on `main` (fetch it with `fetch-depth: 0`)".to_string(),
            "`CHANGES | @acme.md` has no section for 1.2.0".to_string(),
        ];
        insta::assert_snapshot!(format!(
            "{}{}",
            not_a_tag_push(),
            super::release_checks(&passed, &problems)
        ));
    }
}
