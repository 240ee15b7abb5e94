//! Committed-secret and repository hygiene scanner.
//!
//! [`scan_tree`] scans a working tree in parallel. In a git work tree it
//! scans what git tracks (`git ls-files`) and the untracked files git does
//! not ignore: ignore files never hide a committed file, because whoever
//! commits a secret also controls `.gitignore`. Outside one (a plain
//! directory) it walks the tree, respecting `.gitignore`/`.ignore`, hidden
//! files included, `.git` skipped. [`scan_diff`] and [`scan_history`] scan
//! the lines a range of commits, or every commit, adds. Three kinds of rule
//! apply:
//!
//! * path rules ([`path_findings`]): committed `.env` files, private key files;
//! * content rules ([`scan_text`]): tokens and keys of known shapes (the
//!   providers' in `providers.rs`), the repository's own rules
//!   (`secrets.rules`, [`CustomRule`]), database
//!   URLs with a password, generic high-entropy secret assignments, and
//!   (as warnings) debug leftovers such as `console.log` or `dbg!`;
//! * file-name content rules: `.npmrc`/`.pypirc` with credentials, cloud
//!   credentials JSON with a private key.
//!
//! Content rules use a keyword prefilter: one Aho-Corasick automaton over all
//! rules' keywords; regexes run only on lines holding a keyword of their rule.
//!
//! The only ways to leave something out: `secrets.exclude` globs
//! ([`ScanOptions::exclude`]), a line containing `shipgate:allow`, and a
//! fingerprint listed in `.shipgateignore` ([`ScanOptions::ignored`]; by
//! default the file at the root). Files over [`ScanOptions::max_file_bytes`]
//! are not scanned and are listed in [`ScanReport::too_large`]; files with a
//! NUL byte in their first 8 KiB are counted as binary. Secrets are never
//! serialized: [`Finding::secret`] is `#[serde(skip)]` and exists only so
//! the caller can emit `::add-mask::`.

mod custom;
mod diff;
mod findings;
pub mod git;
mod ignores;
mod paths;
mod providers;
mod rule;
mod rules;
mod tree;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

pub use custom::{CustomRule, CustomRules, Keywords, RuleId, RuleRegex, MAX_CUSTOM_RULES};

pub use diff::scan_patch;
use findings::sort_findings;
pub(crate) use findings::{fingerprint_line, path_fingerprint, redact};
pub use findings::{Finding, ScanReport, Severity};
use ignores::blank_fingerprints;
pub use ignores::{load_ignore_file, parse_ignore_file, Excludes};
pub use paths::path_findings;
pub use rules::{is_placeholder, shannon_entropy};
pub use tree::scan_tree;

/// What to scan and how.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Larger files are not scanned: counted in `skipped_large` and listed
    /// in `too_large`. Default 32 MiB (minified bundles are scanned).
    pub max_file_bytes: u64,
    /// Report debug leftovers (`console.log`, `dbg!`, …) as warnings.
    pub debug_leftovers: bool,
    /// Gitignore-style globs of paths never scanned.
    pub exclude: Vec<String>,
    /// Fingerprints whose findings are dropped. `None`: those listed in
    /// `.shipgateignore` at the scan root.
    pub ignored: Option<Vec<String>>,
    /// The repository's own rules (`secrets.rules`), compiled.
    pub rules: Option<Arc<CustomRules>>,
}

impl ScanOptions {
    /// These options with `rules` compiled in (none: the built-in rules only).
    pub fn with_rules(mut self, rules: &[CustomRule]) -> Result<Self, ScanError> {
        self.rules = if rules.is_empty() {
            None
        } else {
            Some(Arc::new(
                CustomRules::compile(rules).map_err(ScanError::Rules)?,
            ))
        };
        Ok(self)
    }
}

/// Checks `secrets.rules` as a whole (`at` names the list): what one field
/// alone cannot say.
pub fn validate_rules(rules: &[CustomRule], at: &str) -> Result<(), String> {
    custom::validate(rules, at)
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            max_file_bytes: 32 * 1024 * 1024,
            debug_leftovers: true,
            exclude: Vec::new(),
            ignored: None,
            rules: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
    #[error("secrets.exclude: {0}")]
    Exclude(String),
    #[error("secrets.rules: {0}")]
    Rules(String),
    #[error("{0}")]
    Git(#[from] git::GitError),
}

/// Content rules (and the file-name content rules) over one file's bytes.
/// Returns the inline-suppressed count.
fn scan_content(path: &str, data: &[u8], opts: &ScanOptions, out: &mut Vec<Finding>) -> u64 {
    let mut suppressed = rules::scan_bytes(path, data, opts, out);
    if paths::wants_file_rules(path) {
        let text = String::from_utf8_lossy(data);
        suppressed += paths::file_rule_findings(path, &text, out);
    }
    suppressed
}

/// Scan one file's content (e.g. the added lines of a diff): content rules and
/// inline suppression only. `path` decides which rules apply (debug leftovers
/// by extension, `.npmrc`/`.pypirc`/credentials JSON by name).
pub fn scan_text(path: &str, text: &str, opts: &ScanOptions) -> Vec<Finding> {
    let mut out = Vec::new();
    scan_content(path, text.as_bytes(), opts, &mut out);
    sort_findings(&mut out);
    out
}

/// Scans the lines added between `base` and `head` (`git diff base...head`:
/// since their merge base) in the repository at `root`.
pub fn scan_diff(
    root: &Path,
    base: &str,
    head: &str,
    opts: &ScanOptions,
) -> Result<ScanReport, ScanError> {
    for rev in [base, head] {
        if rev.starts_with('-') || rev.is_empty() {
            return Err(ScanError::Io {
                path: rev.to_string(),
                message: "not a revision".into(),
            });
        }
    }
    let range = format!("{base}...{head}");
    scan_patches(root, &["diff"], &[range.as_str()], opts)
}

/// Scans the lines every commit reachable from `HEAD` added (a merge: what
/// it adds to its first parent, so a change made in the merge itself is
/// seen). A secret is reported once, where it was added last, however many
/// commits carried it; different secrets on the same line are all reported.
pub fn scan_history(root: &Path, opts: &ScanOptions) -> Result<ScanReport, ScanError> {
    scan_patches(
        root,
        &["log", "--format=", "--diff-merges=first-parent"],
        &["HEAD"],
        opts,
    )
}

/// Runs `git <command> -p … <revs>` for the patches and `git <command>
/// --name-only -z … <revs>` for the paths the path rules look at.
fn scan_patches(
    root: &Path,
    command: &[&str],
    revs: &[&str],
    opts: &ScanOptions,
) -> Result<ScanReport, ScanError> {
    let started = Instant::now();
    let excludes = Excludes::new(&opts.exclude)?;
    // Every file as text, whatever `.gitattributes` (which the commits
    // themselves control) says: `-diff` or `binary` would hide the lines.
    let common = [
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--text",
        "--diff-filter=d",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        command
            .iter()
            .chain(extra)
            .chain(common.iter())
            .chain(revs)
            .chain(["--"].iter())
            .map(|s| s.to_string())
            .collect()
    };
    let patch_args = with(&["-p", "-U0"]);
    let patch_args: Vec<&str> = patch_args.iter().map(String::as_str).collect();
    let mut report = ScanReport::default();
    git::stream(root, &patch_args, |out| {
        scan_patch(out, opts, &excludes, &mut report)
    })?;
    // History names the same paths over and over: keep each once, as read.
    let name_args = with(&["--name-only", "-z"]);
    let name_args: Vec<&str> = name_args.iter().map(String::as_str).collect();
    let paths = git::stream(root, &name_args, |out| {
        let mut paths = std::collections::BTreeSet::new();
        let mut path = Vec::new();
        loop {
            path.clear();
            if out.read_until(0, &mut path)? == 0 {
                return Ok(paths);
            }
            if path.last() == Some(&0) {
                path.pop();
            }
            if !path.is_empty() {
                paths.insert(String::from_utf8_lossy(&path).into_owned());
            }
        }
    })?;
    for p in paths.iter().filter(|p| !excludes.excludes(p)) {
        report.findings.extend(path_findings(p));
    }
    // One finding per secret: the same rule, path, line text and value.
    let mut seen = std::collections::HashSet::new();
    report
        .findings
        .retain(|f| seen.insert((f.fingerprint.clone(), f.secret.clone())));
    let ignored = match &opts.ignored {
        Some(list) => list.clone(),
        None => load_ignore_file(root),
    };
    report.finish(&ignored, started);
    Ok(report)
}
