//! Content rules and the keyword prefilter.
//!
//! Every rule carries keywords. One Aho-Corasick automaton (ASCII
//! case-insensitive) is built over all keywords; a file is searched once, and
//! only the lines holding a keyword occurrence are handed to the regexes of the
//! rules those keywords belong to. Files without any keyword cost one pass of
//! the automaton and nothing else.

use std::borrow::Cow;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::Regex;

use super::providers::{self, JwtKind};
use super::rule::{rule, Check, Rule};
use super::{fingerprint_line, redact, Finding, ScanOptions, Severity};

const JS_EXT: &[&str] = &["js", "ts", "jsx", "tsx", "mjs", "cjs"];

fn debug_rule(
    description: &'static str,
    re: &str,
    keywords: &'static [&'static str],
    extensions: &'static [&'static str],
) -> Rule {
    Rule {
        id: "debug-leftover".into(),
        description: description.into(),
        severity: Severity::Warning,
        regex: Regex::new(re).expect("debug rule regex"),
        keywords: keywords.iter().map(|k| Cow::Borrowed(*k)).collect(),
        case_sensitive: true,
        min_entropy: 0.0,
        allowlist: &[],
        extensions,
        only_in: None,
        paths: None,
        check: Check::None,
    }
}

/// Id of the generic assignment rule: its findings yield to specific rules on
/// the same span.
const GENERIC: &str = "generic-secret";

/// A key that names a secret: `client_secret`, `SIGNING_KEY`, `apiSecret`,
/// `db.password`, `x-api-key`, …
const GENERIC_KEY: &str = r"[a-z0-9_.\-]*(?:secret|token|password|passwd|passphrase|api[_\-]?key|access[_\-]?key|private[_\-]?key|signing[_\-]?key)[a-z0-9_.\-]*";

const GENERIC_KEYWORDS: &[&str] = &[
    "secret",
    "token",
    "password",
    "passwd",
    "passphrase",
    "api_key",
    "api-key",
    "apikey",
    "access_key",
    "access-key",
    "accesskey",
    "private_key",
    "private-key",
    "privatekey",
    "signing_key",
    "signing-key",
    "signingkey",
];

/// Files whose syntax has unquoted values: `.env` files and YAML.
fn bare_values_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    name.starts_with(".env")
        || name.ends_with(".env")
        || name.ends_with(".yml")
        || name.ends_with(".yaml")
}

fn build_rules() -> Vec<Rule> {
    let mut rules = builtin_rules();
    rules.extend(providers::provider_rules());
    rules
}

fn builtin_rules() -> Vec<Rule> {
    // The captured secret is always the named group `s` (or `s2`).
    vec![
        rule(
            "aws-access-key-id",
            "AWS access key id",
            r"\b(?P<s>(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16})\b",
            &["AKIA", "ASIA", "ABIA", "ACCA", "A3T"],
            true,
            3.0,
            &["AKIAIOSFODNN7EXAMPLE"],
            Check::None,
        ),
        rule(
            "aws-secret-access-key",
            "AWS secret access key",
            r#"(?i)[a-z0-9_.\-]*aws[a-z0-9_.\-]*secret[a-z0-9_.\-]*["'`]?\s*(?:=>|:=|=|:)\s*["'`]?(?P<s>[A-Za-z0-9/+=]{40})(?:[^A-Za-z0-9/+=]|$)"#,
            &["aws"],
            false,
            3.5,
            &["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"],
            Check::Placeholder,
        ),
        rule(
            "github-token",
            "GitHub token",
            r"\b(?P<s>gh[pousr]_[A-Za-z0-9]{36})(?:[^A-Za-z0-9_]|$)",
            &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
            true,
            3.0,
            &[],
            Check::None,
        ),
        rule(
            "github-token",
            "GitHub token",
            r"\b(?P<s>github_pat_[A-Za-z0-9_]{82})(?:[^A-Za-z0-9_]|$)",
            &["github_pat_"],
            true,
            3.0,
            &[],
            Check::None,
        ),
        rule(
            "gitlab-token",
            "GitLab personal access token",
            r"\b(?P<s>glpat-[A-Za-z0-9_\-]{20})(?:[^A-Za-z0-9_\-]|$)",
            &["glpat-"],
            true,
            3.0,
            &[],
            Check::None,
        ),
        rule(
            "slack-token",
            "Slack token",
            r"\b(?P<s>xox[baprs]-[0-9]{8,14}-[0-9A-Za-z\-]{10,})",
            &["xoxb-", "xoxa-", "xoxp-", "xoxr-", "xoxs-"],
            true,
            3.0,
            &[],
            Check::None,
        ),
        rule(
            "slack-webhook",
            "Slack incoming webhook URL",
            r"https://hooks\.slack\.com/services/(?P<s>T[A-Z0-9]{8,12}/B[A-Z0-9]{8,12}/[A-Za-z0-9]{20,32})",
            &["hooks.slack.com"],
            false,
            3.5,
            &[],
            Check::None,
        ),
        rule(
            "stripe-live-key",
            "Stripe live secret or restricted key",
            r"\b(?P<s>(?:sk|rk)_live_[0-9A-Za-z]{24,})",
            &["sk_live_", "rk_live_"],
            true,
            3.0,
            &[],
            Check::None,
        ),
        rule(
            "google-api-key",
            "Google API key",
            r"\b(?P<s>AIza[0-9A-Za-z_\-]{35})(?:[^0-9A-Za-z_\-]|$)",
            &["AIza"],
            true,
            3.0,
            &[],
            Check::None,
        ),
        rule(
            "twilio-api-key",
            "Twilio API key",
            r"\b(?P<s>SK[0-9a-fA-F]{32})\b",
            &["SK"],
            true,
            3.0,
            &[],
            Check::None,
        ),
        rule(
            "sendgrid-api-key",
            "SendGrid API key",
            r"\b(?P<s>SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})(?:[^A-Za-z0-9_\-]|$)",
            &["SG."],
            true,
            3.0,
            &[],
            Check::None,
        ),
        rule(
            "npm-token",
            "npm access token",
            r"\b(?P<s>npm_[A-Za-z0-9]{36})(?:[^A-Za-z0-9]|$)",
            &["npm_"],
            true,
            3.0,
            &[],
            Check::None,
        ),
        rule(
            "pypi-token",
            "PyPI upload token",
            r"(?P<s>pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,})",
            &["pypi-AgEIcHlwaS5vcmc"],
            true,
            0.0,
            &[],
            Check::None,
        ),
        rule(
            "jwt",
            "JSON Web Token",
            r"\b(?P<s>eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{16,})",
            &["eyJ"],
            true,
            3.0,
            &[],
            Check::Jwt,
        ),
        rule(
            "private-key",
            "Private key",
            r"(?P<s>-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----)",
            &["PRIVATE KEY"],
            true,
            0.0,
            &[],
            Check::PemBody,
        ),
        rule(
            "database-url",
            "Database URL with a password",
            r#"(?i)\b(?:postgres(?:ql)?|mysql|mongodb(?:\+srv)?|rediss?|amqps?)://[^:/\s@'"`]*:(?P<s>[^@\s/'"`]+)@[A-Za-z0-9.\-_\[\]]+(?::[0-9]+)?(?:[/?#\s'"`,;)]|$)"#,
            &[
                "postgres://",
                "postgresql://",
                "mysql://",
                "mongodb://",
                "mongodb+srv://",
                "redis://",
                "rediss://",
                "amqp://",
                "amqps://",
            ],
            false,
            0.0,
            &[],
            Check::Placeholder,
        ),
        rule(
            GENERIC,
            "Secret assigned in source",
            // A key naming a secret, an optional type (`: &str`, `: &'static
            // str`, `: string`, `: str`), an assignment, and a quoted value
            // or a bare token.
            &format!(
                r#"(?i)(?:^|[^a-z0-9_]){GENERIC_KEY}["'`]?\s*(?::\s*(?:&\s*(?:'static\s+)?)?str(?:ing)?\s*)?(?:=>|:=|=|:)\s*(?:["'`](?P<s>[^"'`\s]{{16,}})["'`]|(?P<s2>[A-Za-z0-9+/=_\-]{{16,}})(?:[\s,;)\]}}]|$))"#
            ),
            GENERIC_KEYWORDS,
            false,
            0.0,
            &[],
            Check::Generic,
        ),
        Rule {
            only_in: Some(bare_values_file),
            ..rule(
                GENERIC,
                "Secret assigned in source",
                // `.env` and YAML: `KEY=value` / `key: value`, unquoted, the
                // whole rest of the line (a trailing ` # comment` aside).
                &format!(
                    r#"(?i)^\s*(?:export\s+|-\s+)?{GENERIC_KEY}\s*[=:]\s*(?P<s>[^\s"'`]{{16,}})\s*(?:\s#.*)?$"#
                ),
                GENERIC_KEYWORDS,
                false,
                0.0,
                &[],
                Check::GenericBare,
            )
        },
        debug_rule(
            "Debug leftover: console.log",
            r"\bconsole\.log\s*\(",
            &["console.log"],
            JS_EXT,
        ),
        debug_rule(
            "Debug leftover: debugger statement",
            r"(?:^|[;{}\s])debugger\s*(?:;|$)",
            &["debugger"],
            JS_EXT,
        ),
        debug_rule("Debug leftover: dbg!", r"\bdbg!\s*\(", &["dbg!"], &["rs"]),
        debug_rule(
            "Debug leftover: binding.pry",
            r"\bbinding\.pry\b",
            &["binding.pry"],
            &["rb"],
        ),
        debug_rule(
            "Debug leftover: byebug",
            r"^\s*byebug\b",
            &["byebug"],
            &["rb"],
        ),
        debug_rule(
            "Debug leftover: pdb.set_trace()",
            r"\bpdb\.set_trace\s*\(",
            &["pdb.set_trace"],
            &["py"],
        ),
        debug_rule(
            "Debug leftover: breakpoint()",
            r"(?:^|[^A-Za-z0-9_.])breakpoint\s*\(\s*\)",
            &["breakpoint("],
            &["py"],
        ),
    ]
}

/// One keyword of the automaton: which rules it enables.
struct Keyword {
    bytes: Vec<u8>,
    /// Rules enabled whatever the case of the occurrence.
    any_case: u64,
    /// Rules enabled only when the occurrence has exactly the keyword's case.
    exact_case: u64,
}

pub(crate) struct Ruleset {
    pub rules: Vec<Rule>,
    ac: AhoCorasick,
    keywords: Vec<Keyword>,
}

/// The most rules one automaton serves (rule masks are `u64`).
pub(super) const MAX_RULES: usize = 64;

impl Ruleset {
    /// One keyword automaton over `rules`. A keyword that contains another
    /// (`sb_secret_` holds `secret`) also enables the other's rules: the
    /// automaton reports the longest keyword at a place, not the ones
    /// inside it.
    pub(super) fn new(rules: Vec<Rule>) -> Result<Ruleset, String> {
        if rules.len() > MAX_RULES {
            return Err(format!(
                "{} rules; one scan holds at most {MAX_RULES}",
                rules.len()
            ));
        }
        let mut keywords: Vec<Keyword> = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            for kw in &r.keywords {
                let bit = 1u64 << i;
                let pos = match keywords.iter().position(|k| k.bytes == kw.as_bytes()) {
                    Some(p) => p,
                    None => {
                        keywords.push(Keyword {
                            bytes: kw.as_bytes().to_vec(),
                            any_case: 0,
                            exact_case: 0,
                        });
                        keywords.len() - 1
                    }
                };
                if r.case_sensitive {
                    keywords[pos].exact_case |= bit;
                } else {
                    keywords[pos].any_case |= bit;
                }
            }
        }
        let inner: Vec<(usize, u64)> = (0..keywords.len())
            .flat_map(|outer| {
                let kws = &keywords;
                (0..kws.len()).filter_map(move |j| {
                    let (o, i) = (&kws[outer].bytes, &kws[j].bytes);
                    let holds = j != outer
                        && i.len() < o.len()
                        && o.windows(i.len()).any(|w| w.eq_ignore_ascii_case(i));
                    // Superset masks only cost a regex run; they never miss.
                    holds.then_some((outer, kws[j].any_case | kws[j].exact_case))
                })
            })
            .collect();
        for (outer, mask) in inner {
            keywords[outer].any_case |= mask;
        }
        let ac = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(keywords.iter().map(|k| &k.bytes))
            .map_err(|e| format!("keyword automaton: {e}"))?;
        Ok(Ruleset {
            rules,
            ac,
            keywords,
        })
    }
}

pub(crate) static RULESET: LazyLock<Ruleset> =
    LazyLock::new(|| Ruleset::new(build_rules()).expect("built-in rules"));

/// Shannon entropy in bits per byte.
pub fn shannon_entropy(s: &str) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in s.as_bytes() {
        counts[b as usize] += 1;
    }
    let len = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / len;
            -p * p.log2()
        })
        .sum()
}

/// `name` is an identifier: a letter or `_`, then letters, digits and `_`.
fn is_identifier(name: &str) -> bool {
    let mut b = name.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// A variable or path after `$`: `DB_PASSWORD`, `config.db.password`,
/// `serde_json::private::Number`.
fn is_reference(name: &str) -> bool {
    name.split("::")
        .flat_map(|part| part.split('.'))
        .all(is_identifier)
}

/// `text` holds a template slot that starts with `open` and ends with
/// `close`, with a name inside (a letter or `_` first, then letters, digits,
/// `_`, `-`, `.`, `|`, `:` and spaces; two characters or more):
/// `<password>`, `${DB_PASSWORD}`, `{{ secrets.TOKEN }}`, `[pwd]`.
fn has_slot(text: &str, open: &str, close: char) -> bool {
    let mut rest = text;
    while let Some(i) = rest.find(open) {
        let after = &rest[i + open.len()..];
        if let Some(j) = after.find(close) {
            let inside = after[..j].trim();
            if inside.len() >= 2
                && inside
                    .bytes()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
                && inside
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"_-. |:".contains(&c))
            {
                return true;
            }
        }
        rest = after;
    }
    false
}

/// Values that are obviously not real secrets: variable references,
/// templates, and the usual stand-ins. A real secret may hold any symbol
/// (`<`, `$`, `%`, `{`), so only whole references and template slots count:
/// `$DB_PASSWORD`, `${DB_PASSWORD}`, `$(cat key)`, `%DB_PASSWORD%`,
/// `%(password)s`, `%s`, `%{password}`, `#{password}`, `<password>`,
/// `{{ password }}`, `[pwd]`, `{pwd}`.
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    let l = v.to_ascii_lowercase();
    if v.is_empty()
        || v.starts_with("$(")
        || v.strip_prefix('$').is_some_and(is_reference)
        || (v.len() > 2
            && v.starts_with('%')
            && v.ends_with('%')
            && is_identifier(&v[1..v.len() - 1]))
        || has_slot(v, "${", '}')
        || has_slot(v, "{{", '}')
        || has_slot(v, "%(", ')')
        || has_slot(v, "%{", '}')
        || has_slot(v, "#{", '}')
        || has_slot(v, "<", '>')
        || v.contains("%s")
        || ((v.starts_with('{') && v.ends_with('}')) || (v.starts_with('[') && v.ends_with(']')))
            && has_slot(v, &v[..1], v.chars().last().unwrap_or(' '))
    {
        return true;
    }
    if l.chars()
        .all(|c| matches!(c, 'x' | '*' | '.' | '-' | '_' | '0'))
    {
        return true;
    }
    const EXACT: &[&str] = &[
        "password", "passwd", "pass", "pwd", "secret", "changeme", "root", "admin", "guest",
        "test", "postgres", "mysql", "redis", "user", "example", "foo", "bar", "none", "null",
    ];
    if EXACT.contains(&l.as_str()) {
        return true;
    }
    const CONTAINS: &[&str] = &[
        "xxx",
        "***",
        "changeme",
        "change_me",
        "change-me",
        "placeholder",
        "example",
        "dummy",
        "redacted",
        "your_",
        "your-",
        "yourtoken",
        "replace_me",
        "replaceme",
        "password",
    ];
    CONTAINS.iter().any(|p| l.contains(p))
}

/// Lowercase (or uppercase) hexadecimal digits only, both digits and
/// letters: a hex-encoded key.
fn is_hex_key(v: &str) -> bool {
    let lower = v
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let upper = v
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b));
    (lower || upper)
        && v.bytes().any(|b| b.is_ascii_digit())
        && v.bytes().any(|b| b.is_ascii_alphabetic())
}

/// Randomness a value must have: Shannon entropy in bits per character.
/// Hex keys draw from 16 characters, so 32 random hex digits average
/// about 3.6 bits and often fall below the 3.5 asked of other values.
fn random_enough(value: &str) -> bool {
    let min = if value.len() >= 32 && is_hex_key(value) {
        3.0
    } else {
        3.5
    };
    shannon_entropy(value) >= min
}

/// An environment variable or constant name (`GITHUB_TOKEN_SECRET`,
/// `TLS13_AES_128_GCM_SHA256`, `APIKEYV2`) rather than an uppercase token
/// (hex digits, base32): words joined by `_`, or mostly letters.
fn looks_like_constant_name(v: &str) -> bool {
    v.bytes()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
        && v.as_bytes()[0].is_ascii_uppercase()
        && (v.contains('_') || v.bytes().filter(u8::is_ascii_digit).count() * 4 < v.len())
}

/// Shape checks for the generic assignment rule.
fn generic_value_ok(value: &str, quoted: bool) -> bool {
    if is_placeholder(value) || !random_enough(value) {
        return false;
    }
    if looks_like_constant_name(value) {
        return false;
    }
    if looks_like_identifier(value) {
        return false;
    }
    // Bare words must look like a token: letters and digits mixed.
    let mixed =
        value.chars().any(|c| c.is_ascii_digit()) && value.chars().any(|c| c.is_ascii_alphabetic());
    if !quoted && !mixed {
        return false;
    }
    // Paths and URLs are not secrets.
    if value.contains("://") || value.starts_with('/') || value.starts_with("./") {
        return false;
    }
    true
}

/// An unquoted value in a `.env` or YAML file: a token (as for quoted
/// values) or a password, with letters, digits and symbols mixed (three of
/// upper case, lower case, digits, symbols). Not YAML syntax (`!tag`,
/// `&anchor`, `*alias`, `|`, `>`, `{`, `[`).
fn bare_value_ok(value: &str) -> bool {
    if value.starts_with(['!', '&', '*', '|', '>', '{', '[', '@', '%']) {
        return false;
    }
    if !generic_value_ok(value, true) {
        return false;
    }
    let b = value.as_bytes();
    let classes = [
        b.iter().any(u8::is_ascii_uppercase),
        b.iter().any(u8::is_ascii_lowercase),
        b.iter().any(u8::is_ascii_digit),
        b.iter().any(|c| !c.is_ascii_alphanumeric()),
    ];
    classes.iter().filter(|&&c| c).count() >= 3
}

/// Code identifiers (`check_private_key_bytes`, `EcPrivateKeyRfc5915Der`,
/// `my.config.value`) rather than random strings.
fn looks_like_identifier(v: &str) -> bool {
    // snake_case / dotted paths: lowercase words, at least half purely alphabetic.
    if v.contains(['_', '.', '-']) {
        let parts: Vec<&str> = v.split(['_', '.', '-']).collect();
        let lower_words = parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
        let alpha = parts
            .iter()
            .filter(|p| p.bytes().all(|b| b.is_ascii_alphabetic()))
            .count();
        if lower_words && alpha * 2 >= parts.len() {
            return true;
        }
    }
    // CamelCase: every uppercase letter starts a word of lowercase letters
    // (digits may follow), e.g. `Curve25519SeedBin`.
    let b = v.as_bytes();
    if b.is_empty() || !b.iter().all(u8::is_ascii_alphanumeric) || !b[0].is_ascii_alphabetic() {
        return false;
    }
    let mut i = 0;
    let mut words = 0;
    while i < b.len() {
        let start = i;
        i += 1;
        let mut lower = 0;
        while i < b.len() && b[i].is_ascii_lowercase() {
            i += 1;
            lower += 1;
        }
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if lower == 0 && !(start == 0 && b[0].is_ascii_lowercase()) {
            return false;
        }
        words += 1;
    }
    words >= 2
}

/// Key material after a PEM header: a base64 run of 40+ characters within the
/// next few hundred bytes.
fn pem_body(after: &[u8]) -> Option<String> {
    let window = &after[..after.len().min(400)];
    let mut run_start = None;
    for (i, &b) in window.iter().enumerate() {
        let b64 = b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=';
        match (b64, run_start) {
            (true, None) => run_start = Some(i),
            (false, Some(s)) => {
                if i - s >= 40 {
                    return Some(String::from_utf8_lossy(&window[s..i]).into_owned());
                }
                run_start = None;
            }
            _ => {}
        }
        if b == b'-' && window[i..].starts_with(b"-----END") {
            return None;
        }
    }
    match run_start {
        Some(s) if window.len() - s >= 40 => {
            Some(String::from_utf8_lossy(&window[s..]).into_owned())
        }
        _ => None,
    }
}

fn extension(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.rfind('.') {
        Some(i) if i > 0 => &name[i + 1..],
        _ => "",
    }
}

/// The mask of `rs`'s rules that apply to a file at `path`.
fn applicable(rs: &Ruleset, path: &str, opts: &ScanOptions) -> u64 {
    let ext = extension(path).to_ascii_lowercase();
    let mut mask = 0u64;
    for (i, r) in rs.rules.iter().enumerate() {
        let ok = if let Some(only_in) = r.only_in {
            only_in(path)
        } else if let Some(paths) = &r.paths {
            paths.excludes(path)
        } else if r.extensions.is_empty() {
            true
        } else {
            opts.debug_leftovers && r.extensions.contains(&ext.as_str())
        };
        if ok {
            mask |= 1 << i;
        }
    }
    mask
}

/// Scan one file's bytes with the content rules, the built-in ones and
/// the configuration's own ([`ScanOptions::rules`]). Findings go to `out`;
/// returns how many were suppressed inline (`shipgate:allow`).
pub(crate) fn scan_bytes(
    path: &str,
    data: &[u8],
    opts: &ScanOptions,
    out: &mut Vec<Finding>,
) -> u64 {
    let Some(custom) = &opts.rules else {
        return scan_with(&RULESET, path, data, opts, out);
    };
    let mut own = Vec::new();
    let mut suppressed = scan_with(custom.ruleset(), path, data, opts, &mut own);
    if own.is_empty() {
        return suppressed + scan_with(&RULESET, path, data, opts, out);
    }
    // The generic rule yields to a custom rule on the same value, as it
    // does to the built-in ones.
    let mut builtin = Vec::new();
    suppressed += scan_with(&RULESET, path, data, opts, &mut builtin);
    let columns = |f: &Finding| (f.column, f.column + f.secret.chars().count() as u32);
    builtin.retain(|f| {
        let (s, e) = columns(f);
        f.rule != GENERIC
            || !own.iter().any(|c| {
                let (cs, ce) = columns(c);
                c.line == f.line && s < ce && cs < e
            })
    });
    out.extend(builtin);
    out.extend(own);
    suppressed
}

fn scan_with(
    rs: &Ruleset,
    path: &str,
    data: &[u8],
    opts: &ScanOptions,
    out: &mut Vec<Finding>,
) -> u64 {
    let allowed = applicable(rs, path, opts);
    if allowed == 0 {
        return 0;
    }
    let mut suppressed = 0u64;
    // The line being collected: [start, end) and the rules to run on it.
    let mut cur: Option<(usize, usize, u64)> = None;
    // Line counting is incremental: newlines in data[..counted_to] = line_no - 1.
    let mut counted_to = 0usize;
    let mut line_no = 1u32;

    for m in rs.ac.find_iter(data) {
        let kw = &rs.keywords[m.pattern().as_usize()];
        let mut mask = kw.any_case;
        if kw.exact_case != 0 && &data[m.start()..m.end()] == kw.bytes.as_slice() {
            mask |= kw.exact_case;
        }
        mask &= allowed;
        if mask == 0 {
            continue;
        }
        if let Some((s, e, mk)) = cur.as_mut() {
            if m.start() >= *s && m.start() < *e {
                *mk |= mask;
                continue;
            }
            let (s, e, mk) = (*s, *e, *mk);
            line_no += count_newlines(&data[counted_to..s]);
            counted_to = s;
            suppressed += scan_line(rs, path, data, s, e, line_no, mk, out);
        }
        let start = data[..m.start()]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        let end = data[m.end()..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |p| m.end() + p);
        cur = Some((start, end, mask));
    }
    if let Some((s, e, mk)) = cur {
        line_no += count_newlines(&data[counted_to..s]);
        suppressed += scan_line(rs, path, data, s, e, line_no, mk, out);
    }
    suppressed
}

fn count_newlines(b: &[u8]) -> u32 {
    b.iter().filter(|&&c| c == b'\n').count() as u32
}

/// Run the rules of `rs` in `mask` on the line data[start..end].
#[allow(clippy::too_many_arguments)]
fn scan_line(
    rs: &Ruleset,
    path: &str,
    data: &[u8],
    start: usize,
    end: usize,
    line_no: u32,
    mask: u64,
    out: &mut Vec<Finding>,
) -> u64 {
    let raw = &data[start..end];
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let line = String::from_utf8_lossy(raw);
    let mut found: Vec<(usize, usize, Finding)> = Vec::new();
    let comment = {
        let t = line.trim_start();
        t.starts_with("//") || t.starts_with('#') || t.starts_with("/*") || t.starts_with('*')
    };
    for (i, r) in rs.rules.iter().enumerate() {
        if mask & (1 << i) == 0 || (comment && r.severity == Severity::Warning) {
            continue;
        }
        for caps in r.regex.captures_iter(&line) {
            // A custom rule names its secret `secret`.
            let named = caps.name("s").or_else(|| caps.name("secret"));
            let (m, quoted) = match (named, caps.name("s2")) {
                (Some(m), _) => (m, true),
                (None, Some(m)) => (m, false),
                _ => match caps.get(0) {
                    Some(m) => (m, true),
                    None => continue,
                },
            };
            let value = m.as_str();
            if value.is_empty() || r.allowlist.contains(&value) {
                continue;
            }
            if r.min_entropy > 0.0 && shannon_entropy(value) < r.min_entropy {
                continue;
            }
            let mut id = r.id.as_ref();
            let mut description = r.description.as_ref();
            let (secret, redacted) = match r.check {
                Check::None if r.severity == Severity::Warning => {
                    (String::new(), caps[0].trim().to_string())
                }
                Check::None => (value.to_string(), redact(value)),
                Check::Placeholder => {
                    if is_placeholder(value) {
                        continue;
                    }
                    (value.to_string(), redact(value))
                }
                Check::Generic => {
                    if !generic_value_ok(value, quoted) {
                        continue;
                    }
                    (value.to_string(), redact(value))
                }
                Check::GenericBare => {
                    if !bare_value_ok(value) {
                        continue;
                    }
                    (value.to_string(), redact(value))
                }
                Check::Jwt => match providers::jwt_kind(value) {
                    JwtKind::Public => continue,
                    JwtKind::ServiceRole => {
                        (id, description) = providers::SUPABASE_SERVICE_ROLE;
                        (value.to_string(), redact(value))
                    }
                    JwtKind::Other => (value.to_string(), redact(value)),
                },
                Check::ServiceAccount => {
                    if !providers::is_service_account(data) {
                        continue;
                    }
                    (value.to_string(), redact(value))
                }
                Check::PemBody => {
                    // Byte offset of the header's end in `data`.
                    let after = start + m.end().min(raw.len());
                    match pem_body(&data[after..]) {
                        Some(body) => (body, value.to_string()),
                        None => continue,
                    }
                }
            };
            let column = line[..m.start()].chars().count() as u32 + 1;
            // A service-account key's span is the whole field, so the
            // `private-key` finding on its header yields to it.
            let span = match r.check {
                Check::ServiceAccount => caps.get(0).unwrap_or(m),
                _ => m,
            };
            found.push((
                span.start(),
                span.end(),
                Finding {
                    rule: id.to_string(),
                    description: description.to_string(),
                    severity: r.severity,
                    path: path.to_string(),
                    line: line_no,
                    column,
                    redacted,
                    secret,
                    fingerprint: fingerprint_line(id, path, &line),
                },
            ));
        }
    }
    // Broad rules yield to a more specific rule that matched the same span:
    // the generic rule to every other, `private-key` to a key with a known
    // home (a service-account JSON).
    let spans: Vec<(usize, usize, String)> =
        found.iter().map(|f| (f.0, f.1, f.2.rule.clone())).collect();
    found.retain(|(s, e, f)| {
        let yields_to = |other: &str| match f.rule.as_str() {
            GENERIC => other != GENERIC,
            "private-key" => other != GENERIC && other != "private-key",
            _ => false,
        };
        !spans
            .iter()
            .any(|(ss, se, r)| yields_to(r) && *s < *se && *ss < *e)
    });
    // The two generic rules (quoted or bare) may both match one value.
    let mut generic: Vec<(usize, usize)> = Vec::new();
    found.retain(|(s, e, f)| {
        if f.rule != GENERIC {
            return true;
        }
        let dup = generic.iter().any(|&(gs, ge)| *s < ge && gs < *e);
        generic.push((*s, *e));
        !dup
    });
    if found.is_empty() {
        return 0;
    }
    if line.contains("shipgate:allow") {
        return found.len() as u64;
    }
    out.extend(found.into_iter().map(|f| f.2));
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(path: &str, text: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        scan_bytes(path, text.as_bytes(), &ScanOptions::default(), &mut out);
        out
    }

    #[test]
    fn entropy() {
        assert_eq!(shannon_entropy(""), 0.0);
        assert_eq!(shannon_entropy("aaaa"), 0.0);
        assert!((shannon_entropy("abcd") - 2.0).abs() < 1e-9);
        assert!((shannon_entropy("0123456789abcdef") - 4.0).abs() < 1e-9);
    }

    #[test]
    fn placeholders() {
        for p in [
            "${DB_PASSWORD}",
            "$DB_PASSWORD",
            "<your-token>",
            "xxxxxxxxxxxxxxxx",
            "changeme",
            "password",
            "{{ secrets.TOKEN }}",
            "%s",
            "[pwd]",
            "{pwd}",
            "<password>",
            "{{ password }}",
            "%(password)s",
            "%DB_PASSWORD%",
            "%{db_pass}",
            "#{db_pass}",
            "$(cat /run/key)",
            "$config.db.password",
            "$serde_json::private::Number",
            "your-password-here",
            "example",
        ] {
            assert!(is_placeholder(p), "{p}");
        }
        // Real values may hold the symbols placeholders are made of.
        for p in [
            "s3cr3t-Vq9xLm2",
            "hunter2",
            "$9xLm!Qz<Tr4",
            "<Qz9!xLm2",
            "Qz9${xLm2",
            "{Qz9xLm2",
            "[Qz9xLm2",
            "%Qz9xLm2",
            "Qz9<a>xLm2",
        ] {
            assert!(!is_placeholder(p), "{p}");
        }
    }

    #[test]
    fn identifiers_are_not_secrets() {
        for v in [
            "x25519_check_private_key_bytes",
            "my_webhook_secret",
            "EcPrivateKeyRfc5915Der",
            "Curve25519SeedBin",
            "DecodePrivateKey",
            "self.config.value.x",
            "camelCaseIdentifierName",
        ] {
            assert!(looks_like_identifier(v), "{v}");
        }
        for v in [
            "q8Zr2LpX7vKw3NmB9tYc",
            "a1b2c3d4e5f6a7b8c9d0",
            "Tr0ub4dor_and_3x9Lz",
        ] {
            assert!(!looks_like_identifier(v), "{v}");
        }
    }

    #[test]
    fn keywords_map_to_rules() {
        let rs = &*RULESET;
        assert!(rs.rules.len() <= MAX_RULES);
        for r in &rs.rules {
            assert!(!r.keywords.is_empty(), "{} has no keywords", r.id);
        }
    }

    #[test]
    fn lines_and_columns() {
        let tok = format!("ghp_{}", "a1B2c3D4e5F6g7H8i9".repeat(2));
        let text = format!("one\ntwo\n  let t = \"{tok}\";\nfour\n");
        let f = scan("src/a.rs", &text);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].line, f[0].column), (3, 12));
        assert_eq!(f[0].secret, tok);
    }

    #[test]
    fn crlf_and_last_line_without_newline() {
        let tok = format!("glpat-{}", "Ab3_xY9-Qz".repeat(2));
        let text = format!("a\r\nb\r\nx = {tok}");
        let f = scan("a.txt", &text);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].line, 3);
    }

    #[test]
    fn case_sensitive_keywords_ignore_other_cases() {
        // "slovakia" holds "akia"; "ask" holds "sk": the prefilter drops them.
        let f = scan("a.txt", "slovakia asia task ask disk\n");
        assert!(f.is_empty());
    }

    #[test]
    fn generic_yields_to_specific_rule() {
        let tok = format!("ghp_{}", "Zx9Qw8Er7Ty6Ui5Op4".repeat(2));
        let f = scan("a.env", &format!("GITHUB_TOKEN={tok}\n"));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].rule, "github-token");
    }

    #[test]
    fn pem_header_without_body_is_not_a_key() {
        let hdr = format!("-----BEGIN {}-----", "PRIVATE KEY");
        assert!(scan("a.rs", &format!("const H: &str = \"{hdr}\";\n")).is_empty());
        let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7".to_string();
        let f = scan(
            "k.txt",
            &format!("{hdr}\n{body}\n-----END PRIVATE KEY-----\n"),
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].redacted, hdr);
        assert_eq!(f[0].secret, body);
    }
}
