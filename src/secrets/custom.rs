//! A repository's own content rules, `secrets.rules` in
//! `.github/shipgate.yml`: an id, a regex, the keywords that prefilter it,
//! an optional minimum entropy and the paths it applies to.
//!
//! The file comes from whoever can push, so a rule is bounded before it is
//! used: its regex is compiled with small size and nesting limits (the
//! `regex` crate matches in time linear in the line, times the size of the
//! compiled program), it runs only on lines holding one of its keywords (at
//! least three characters each), and there are at most
//! [`MAX_CUSTOM_RULES`] of them. The rules are compiled into their own
//! keyword automaton ([`CustomRules`]), scanned after the built-in rules,
//! and their findings are reported like the built-in ones.

use std::borrow::Cow;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ignores::Excludes;
use super::rule::{Check, Rule};
use super::rules::{Ruleset, MAX_RULES, RULESET};
use super::Severity;

/// The most rules one configuration file may add. A pull request's rules
/// are added to its base's, and one automaton serves at most 64 rules.
pub const MAX_CUSTOM_RULES: usize = MAX_RULES / 2;
/// The longest regex accepted, in characters.
pub const MAX_REGEX_CHARS: usize = 1024;
/// The largest compiled regex accepted, in bytes (the `regex` crate's
/// `size_limit`; the built-in rules need less than a tenth of it).
pub const MAX_REGEX_BYTES: usize = 512 * 1024;
/// The deepest nesting of groups and repetitions accepted.
const MAX_REGEX_NESTING: u32 = 32;
const MAX_KEYWORDS: usize = 16;
const MIN_KEYWORD_CHARS: usize = 3;
const MAX_KEYWORD_CHARS: usize = 64;
const MAX_PATHS: usize = 32;
const MAX_DESCRIPTION_CHARS: usize = 200;

/// One rule of `secrets.rules`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomRule {
    /// The rule's id in findings, annotations, SARIF and fingerprints:
    /// lower-case letters, digits and `-`, not the id of a built-in rule.
    pub id: RuleId,
    /// What the rule finds, as shown in the summary and SARIF (default: the id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The pattern (Rust `regex` syntax). The secret is the group named
    /// `secret`, else the whole match.
    pub regex: RuleRegex,
    /// The regex runs only on lines holding one of these (any case, three
    /// characters or more).
    pub keywords: Keywords,
    /// The least Shannon entropy (bits per character, 0 to 8) the secret
    /// must have (default 0: any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entropy: Option<f64>,
    /// Only files these paths match (gitignore syntax; default: every file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

/// A custom rule's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct RuleId(String);

impl TryFrom<String> for RuleId {
    type Error = String;
    fn try_from(id: String) -> Result<Self, String> {
        let shape = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !id.starts_with('-');
        if !shape {
            return Err(format!(
                "id: {id:?} is not an id: lower-case letters, digits and `-` (64 at most), not starting with `-`"
            ));
        }
        // The content rules' ids, and those of the path and file-name rules.
        const OTHERS: &[&str] = &[
            "supabase-service-role-key",
            "env-file",
            "private-key-file",
            "registry-credentials",
            "credentials-file",
        ];
        let builtin =
            RULESET.rules.iter().any(|r| r.id == id.as_str()) || OTHERS.contains(&id.as_str());
        if builtin {
            return Err(format!(
                "id: `{id}` is a built-in rule's; name your rule differently"
            ));
        }
        Ok(RuleId(id))
    }
}

impl From<RuleId> for String {
    fn from(id: RuleId) -> String {
        id.0
    }
}

impl RuleId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A custom rule's regex, compiled when the configuration is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct RuleRegex(String);

impl TryFrom<String> for RuleRegex {
    type Error = String;
    fn try_from(re: String) -> Result<Self, String> {
        compile(&re)?;
        Ok(RuleRegex(re))
    }
}

impl From<RuleRegex> for String {
    fn from(re: RuleRegex) -> String {
        re.0
    }
}

impl RuleRegex {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The regex of a custom rule, within the limits.
fn compile(re: &str) -> Result<regex::Regex, String> {
    let chars = re.chars().count();
    if chars > MAX_REGEX_CHARS {
        return Err(format!(
            "regex: {chars} characters; the limit is {MAX_REGEX_CHARS}"
        ));
    }
    let compiled = regex::RegexBuilder::new(re)
        .size_limit(MAX_REGEX_BYTES)
        .dfa_size_limit(2 * MAX_REGEX_BYTES)
        .nest_limit(MAX_REGEX_NESTING)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => format!(
                "regex: compiles to more than {} KiB; the limit keeps scans fast (use fewer or smaller repetitions)",
                MAX_REGEX_BYTES / 1024
            ),
            e => format!("regex: {}", syntax_error(&e.to_string())),
        })?;
    // A pattern that matches nothing at all would "find" an empty secret
    // on every line holding a keyword.
    if compiled.is_match("") {
        return Err("regex: matches the empty string; a rule must match the secret itself".into());
    }
    Ok(compiled)
}

/// The `regex` crate's syntax error on one line. Its text spans lines:
/// `regex parse error:`, the pattern, a caret under the place, `error: …`.
fn syntax_error(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let what = lines
        .iter()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or_else(|| lines.last().copied().unwrap_or("invalid").trim());
    let at = match (lines.get(1), lines.get(2)) {
        (Some(pattern), Some(caret)) if caret.trim_start().starts_with('^') => {
            let indent = pattern.len() - pattern.trim_start().len();
            caret
                .find('^')
                .map(|c| format!(" (at character {})", c.saturating_sub(indent) + 1))
        }
        _ => None,
    };
    format!("{what}{}", at.unwrap_or_default())
}

/// A custom rule's keywords.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct Keywords(Vec<String>);

impl TryFrom<Vec<String>> for Keywords {
    type Error = String;
    fn try_from(keywords: Vec<String>) -> Result<Self, String> {
        if keywords.is_empty() || keywords.len() > MAX_KEYWORDS {
            return Err(format!(
                "keywords: name 1 to {MAX_KEYWORDS} words; the regex runs only on lines holding one"
            ));
        }
        for k in &keywords {
            let n = k.chars().count();
            if !(MIN_KEYWORD_CHARS..=MAX_KEYWORD_CHARS).contains(&n) {
                return Err(format!(
                    "keywords: {k:?} is {n} characters; a keyword has {MIN_KEYWORD_CHARS} to {MAX_KEYWORD_CHARS}"
                ));
            }
        }
        Ok(Keywords(keywords))
    }
}

impl From<Keywords> for Vec<String> {
    fn from(k: Keywords) -> Vec<String> {
        k.0
    }
}

/// Checks the parts a field alone cannot: the number of rules, ids named
/// twice, the entropy's range, descriptions and paths. `at` names the list
/// (`secrets.rules`).
pub fn validate(rules: &[CustomRule], at: &str) -> Result<(), String> {
    if rules.len() > MAX_CUSTOM_RULES {
        return Err(format!(
            "{at}: {} rules; the limit is {MAX_CUSTOM_RULES}",
            rules.len()
        ));
    }
    for (i, r) in rules.iter().enumerate() {
        let here = format!("{at}[{i}] ({})", r.id.as_str());
        if rules[..i].iter().any(|o| o.id == r.id) {
            return Err(format!("{here}: the id is used by an earlier rule"));
        }
        if let Some(e) = r.entropy {
            if !(0.0..=8.0).contains(&e) {
                return Err(format!(
                    "{here}.entropy: {e} is not between 0 and 8 bits per character"
                ));
            }
        }
        if r.description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS || d.contains('\n'))
        {
            return Err(format!(
                "{here}.description: one line of {MAX_DESCRIPTION_CHARS} characters at most"
            ));
        }
        if r.paths.len() > MAX_PATHS {
            return Err(format!(
                "{here}.paths: {} patterns; the limit is {MAX_PATHS}",
                r.paths.len()
            ));
        }
        Excludes::globs(&r.paths, "paths").map_err(|e| format!("{here}.paths: {e}"))?;
    }
    Ok(())
}

/// Custom rules compiled for a scan: their own keyword automaton.
pub struct CustomRules(Ruleset);

impl fmt::Debug for CustomRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.0.rules.iter().map(|r| r.id.as_ref()).collect();
        f.debug_tuple("CustomRules").field(&ids).finish()
    }
}

impl CustomRules {
    /// Compiles `rules` (already validated when the configuration was read;
    /// checked again here, since they may come from two files).
    pub fn compile(rules: &[CustomRule]) -> Result<CustomRules, String> {
        let mut compiled = Vec::with_capacity(rules.len());
        for r in rules {
            let paths = if r.paths.is_empty() {
                None
            } else {
                Some(Excludes::globs(&r.paths, "paths")?)
            };
            let id = r.id.as_str().to_string();
            compiled.push(Rule {
                description: Cow::Owned(r.description.clone().unwrap_or_else(|| id.clone())),
                id: Cow::Owned(id),
                severity: Severity::Error,
                regex: compile(r.regex.as_str())?,
                keywords: r.keywords.0.iter().cloned().map(Cow::Owned).collect(),
                case_sensitive: false,
                min_entropy: r.entropy.unwrap_or(0.0),
                allowlist: &[],
                extensions: &[],
                only_in: None,
                paths,
                check: Check::None,
            });
        }
        Ruleset::new(compiled).map(CustomRules)
    }

    pub(super) fn ruleset(&self) -> &Ruleset {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.rules.is_empty()
    }
}
