//! One content rule: its pattern, keywords, and the checks its value must
//! pass. The tables are in `rules.rs` (and `providers.rs`); the repository's
//! own rules are built in `custom.rs`.

use std::borrow::Cow;

use regex::Regex;

use super::ignores::Excludes;
use super::Severity;

/// Extra validation a rule applies to its captured value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    None,
    /// The value must not be a placeholder or a variable reference.
    Placeholder,
    /// Generic assignment: placeholder check plus shape checks.
    Generic,
    /// Generic assignment of an unquoted value in a `.env` or YAML file:
    /// the value must look random (see [`bare_value_ok`]).
    GenericBare,
    /// A PEM header must be followed by key material.
    PemBody,
    /// A JSON Web Token: one whose payload says `"role":"anon"` is a
    /// public key (Supabase's anon key) and is not reported; one that says
    /// `"role":"service_role"` is reported as a Supabase service-role key.
    Jwt,
    /// A `private_key` field of a Google service-account JSON: the file must
    /// say `"type": "service_account"`.
    ServiceAccount,
}

pub(crate) struct Rule {
    pub id: Cow<'static, str>,
    pub description: Cow<'static, str>,
    pub severity: Severity,
    pub(super) regex: Regex,
    pub(super) keywords: Vec<Cow<'static, str>>,
    /// Keywords must occur with exactly this case (the regex is case-sensitive).
    pub(super) case_sensitive: bool,
    pub(super) min_entropy: f64,
    pub(super) allowlist: &'static [&'static str],
    /// Only for files with one of these extensions (debug leftovers).
    pub(super) extensions: &'static [&'static str],
    /// Only for the files this says yes to.
    pub(super) only_in: Option<fn(&str) -> bool>,
    /// Only for the paths these globs match (a custom rule's `paths`).
    pub(super) paths: Option<Excludes>,
    pub(super) check: Check,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn rule(
    id: &'static str,
    description: &'static str,
    re: &str,
    keywords: &'static [&'static str],
    case_sensitive: bool,
    min_entropy: f64,
    allowlist: &'static [&'static str],
    check: Check,
) -> Rule {
    Rule {
        id: id.into(),
        description: description.into(),
        severity: Severity::Error,
        regex: Regex::new(re).expect("secret rule regex"),
        keywords: keywords.iter().map(|k| Cow::Borrowed(*k)).collect(),
        case_sensitive,
        min_entropy,
        allowlist,
        extensions: &[],
        only_in: None,
        paths: None,
        check,
    }
}
