//! Committed-secret and repository hygiene scanner.
//!
//! [`scan_tree`] walks a working tree (respecting `.gitignore`/`.ignore`, hidden
//! files included, `.git` skipped) in parallel and applies three kinds of rule:
//!
//! * path rules ([`path_findings`]): committed `.env` files, private key files;
//! * content rules ([`scan_text`]): tokens and keys of known shapes, database
//!   URLs with a password, generic high-entropy secret assignments, and
//!   (as warnings) debug leftovers such as `console.log` or `dbg!`;
//! * file-name content rules: `.npmrc`/`.pypirc` with credentials, cloud
//!   credentials JSON with a private key.
//!
//! Content rules use a keyword prefilter: one Aho-Corasick automaton over all
//! rules' keywords; regexes run only on lines holding a keyword of their rule.
//!
//! A line containing `shipgate:allow` yields no findings; a finding whose
//! fingerprint is listed in `.shipgateignore` at the root is dropped. Secrets
//! are never serialized: [`Finding::secret`] is `#[serde(skip)]` and exists
//! only so the caller can emit `::add-mask::`.

mod paths;
mod rules;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub use paths::path_findings;
pub use rules::{is_placeholder, shannon_entropy};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// What to scan and how.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Larger files are skipped (and counted in `skipped_large`).
    pub max_file_bytes: u64,
    /// Report debug leftovers (`console.log`, `dbg!`, …) as warnings.
    pub debug_leftovers: bool,
    /// Gitignore-style globs of paths never scanned.
    pub exclude: Vec<String>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            max_file_bytes: 1024 * 1024,
            debug_leftovers: true,
            exclude: Vec::new(),
        }
    }
}

/// One thing found. `secret` is never serialized.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    /// Rule id, e.g. `github-token`, `env-file`, `debug-leftover`.
    pub rule: String,
    /// One line, human readable.
    pub description: String,
    pub severity: Severity,
    /// Relative to the scan root, forward slashes.
    pub path: String,
    /// 1-based; 0 for path rules.
    pub line: u32,
    /// 1-based, in characters.
    pub column: u32,
    /// At most a 4-character prefix and the length, e.g. `ghp_…(40 chars)`;
    /// empty for path rules.
    pub redacted: String,
    /// The matched value, only for `::add-mask::`. Never serialized or logged.
    #[serde(skip)]
    pub secret: String,
    /// `rule:path:linehash` (first 12 hex of sha256 of the trimmed line), or
    /// `rule:path:-` for path rules. Stable when unrelated lines move.
    pub fingerprint: String,
}

/// The result of a scan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanReport {
    /// Sorted by path, line, column.
    pub findings: Vec<Finding>,
    pub files_scanned: u64,
    pub bytes_scanned: u64,
    pub skipped_binary: u64,
    pub skipped_large: u64,
    pub suppressed: u64,
    pub duration_ms: u64,
}

impl ScanReport {
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    pub fn warnings(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count()
    }

    /// Throughput of the content scan (bytes of scanned text files).
    pub fn mib_per_s(&self) -> f64 {
        let secs = self.duration_ms.max(1) as f64 / 1000.0;
        self.bytes_scanned as f64 / (1024.0 * 1024.0) / secs
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
}

/// Files larger than this many bytes at the start are checked for NUL bytes.
const BINARY_SNIFF: usize = 8 * 1024;

/// The redacted form of a secret: at most a 4-character prefix (less for
/// short secrets), an ellipsis and the length.
pub(crate) fn redact(secret: &str) -> String {
    let n = secret.chars().count();
    let shown = (n / 4).min(4);
    let prefix: String = secret.chars().take(shown).collect();
    format!("{prefix}…({n} chars)")
}

pub(crate) fn fingerprint_line(rule: &str, path: &str, line: &str) -> String {
    let digest = Sha256::digest(line.trim().as_bytes());
    let hex = hex::encode(&digest[..6]);
    format!("{rule}:{path}:{hex}")
}

pub(crate) fn path_fingerprint(rule: &str, path: &str) -> String {
    format!("{rule}:{path}:-")
}

fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (&a.path, a.line, a.column, &a.rule).cmp(&(&b.path, b.line, b.column, &b.rule))
    });
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

/// Fingerprints listed in `.shipgateignore` at `root`: one per line, `#`
/// comments and blank lines ignored. A missing file is an empty list.
pub fn load_ignore_file(root: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(root.join(".shipgateignore")) else {
        return Vec::new();
    };
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Per-thread tallies, merged into the shared report when the thread's
/// visitor is dropped.
struct Tally {
    local: ScanReport,
    shared: Arc<Mutex<ScanReport>>,
}

impl Drop for Tally {
    fn drop(&mut self) {
        let mut s = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let l = std::mem::take(&mut self.local);
        s.findings.extend(l.findings);
        s.files_scanned += l.files_scanned;
        s.bytes_scanned += l.bytes_scanned;
        s.skipped_binary += l.skipped_binary;
        s.skipped_large += l.skipped_large;
        s.suppressed += l.suppressed;
    }
}

fn relative(root: &Path, path: &Path) -> String {
    let rel = match path.strip_prefix(root) {
        // The root itself is a file: name it by its file name.
        Ok(r) if r.as_os_str().is_empty() => Path::new(path.file_name().unwrap_or_default()),
        Ok(r) => r,
        Err(_) => path,
    };
    let s = rel.to_string_lossy();
    if std::path::MAIN_SEPARATOR == '/' {
        s.into_owned()
    } else {
        s.replace(std::path::MAIN_SEPARATOR, "/")
    }
}

/// Scan one file found by the walk into `t`.
fn scan_file(root: &Path, path: &Path, opts: &ScanOptions, buf: &mut Vec<u8>, t: &mut ScanReport) {
    use std::io::Read;

    let rel = relative(root, path);
    if rel == ".shipgateignore" || rel.ends_with("/.shipgateignore") {
        return;
    }
    t.findings.extend(path_findings(&rel));
    let Ok(mut file) = std::fs::File::open(path) else {
        return;
    };
    let len = match file.metadata() {
        Ok(m) => m.len(),
        Err(_) => return,
    };
    if len > opts.max_file_bytes {
        t.skipped_large += 1;
        return;
    }
    buf.clear();
    if file
        .by_ref()
        .take(opts.max_file_bytes + 1)
        .read_to_end(buf)
        .is_err()
    {
        return;
    }
    if buf.len() as u64 > opts.max_file_bytes {
        t.skipped_large += 1;
        return;
    }
    if buf[..buf.len().min(BINARY_SNIFF)].contains(&0) {
        t.skipped_binary += 1;
        return;
    }
    t.files_scanned += 1;
    t.bytes_scanned += buf.len() as u64;
    t.suppressed += scan_content(&rel, buf, opts, &mut t.findings);
}

/// Scan a working tree. See the module documentation for what is reported.
pub fn scan_tree(root: &Path, opts: &ScanOptions) -> Result<ScanReport, ScanError> {
    let started = Instant::now();
    let io_err = |e: std::io::Error| ScanError::Io {
        path: root.display().to_string(),
        message: e.to_string(),
    };
    std::fs::metadata(root).map_err(io_err)?;

    let mut excludes = ignore::gitignore::GitignoreBuilder::new(root);
    for pattern in &opts.exclude {
        excludes
            .add_line(None, pattern)
            .map_err(|e| ScanError::Io {
                path: root.display().to_string(),
                message: format!("bad exclude pattern {pattern:?}: {e}"),
            })?;
    }
    let excludes = Arc::new(excludes.build().map_err(|e| ScanError::Io {
        path: root.display().to_string(),
        message: format!("bad exclude patterns: {e}"),
    })?);

    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut builder = ignore::WalkBuilder::new(root);
    builder
        .hidden(false)
        .parents(false)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(false)
        .ignore(true)
        .require_git(false)
        .follow_links(false)
        .threads(threads)
        .filter_entry(move |e| {
            if e.file_name() == ".git" {
                return false;
            }
            let is_dir = e.file_type().is_some_and(|t| t.is_dir());
            !excludes
                .matched_path_or_any_parents(e.path(), is_dir)
                .is_ignore()
        });

    let shared = Arc::new(Mutex::new(ScanReport::default()));
    let root_buf = root.to_path_buf();
    builder.build_parallel().run(|| {
        let mut tally = Tally {
            local: ScanReport::default(),
            shared: Arc::clone(&shared),
        };
        let root = root_buf.clone();
        let mut buf = Vec::with_capacity(64 * 1024);
        Box::new(move |entry| {
            if let Ok(entry) = entry {
                if entry.file_type().is_some_and(|t| t.is_file()) {
                    scan_file(&root, entry.path(), opts, &mut buf, &mut tally.local);
                }
            }
            ignore::WalkState::Continue
        })
    });

    let mut report = std::mem::take(&mut *shared.lock().unwrap_or_else(|e| e.into_inner()));
    let ignored = load_ignore_file(root);
    if !ignored.is_empty() {
        let before = report.findings.len();
        report
            .findings
            .retain(|f| !ignored.iter().any(|fp| fp == &f.fingerprint));
        report.suppressed += (before - report.findings.len()) as u64;
    }
    sort_findings(&mut report.findings);
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

fn level(s: Severity) -> &'static str {
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
                "defaultConfiguration": { "level": level(f.severity) },
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
                "level": level(f.severity),
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

    #[test]
    fn redaction_shows_at_most_four_chars() {
        let tok = format!("ghp_{}", "a1B2".repeat(9));
        assert_eq!(redact(&tok), "ghp_…(40 chars)");
        assert_eq!(redact("hunter2x"), "hu…(8 chars)");
        assert_eq!(redact("abc"), "…(3 chars)");
    }

    #[test]
    fn fingerprint_ignores_indentation() {
        assert_eq!(
            fingerprint_line("r", "p", "  x = 1  "),
            fingerprint_line("r", "p", "x = 1")
        );
        let fp = fingerprint_line("r", "a/b", "x");
        assert!(fp.starts_with("r:a/b:"));
        assert_eq!(fp.len(), "r:a/b:".len() + 12);
    }

    #[test]
    fn report_counts() {
        let mut r = ScanReport {
            findings: scan_text("a.js", "console.log(1)\n", &ScanOptions::default()),
            ..ScanReport::default()
        };
        assert_eq!((r.errors(), r.warnings()), (0, 1));
        r.bytes_scanned = 10 * 1024 * 1024;
        r.duration_ms = 1000;
        assert!((r.mib_per_s() - 10.0).abs() < 1e-9);
    }

    #[test]
    fn severity_serde() {
        assert_eq!(
            serde_json::to_string(&Severity::Error).unwrap(),
            "\"error\""
        );
        let w: Severity = serde_json::from_str("\"warning\"").unwrap();
        assert_eq!(w, Severity::Warning);
    }
}
