//! What a scan reports: findings with their redacted form and stable
//! fingerprint, the report's counts, and its SARIF rendering. Apart from the
//! scanners, which only produce these.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
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
    /// The files not scanned because they are over `max_file_bytes`, sorted.
    pub too_large: Vec<String>,
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

    pub(super) fn merge(&mut self, other: ScanReport) {
        self.findings.extend(other.findings);
        self.files_scanned += other.files_scanned;
        self.bytes_scanned += other.bytes_scanned;
        self.skipped_binary += other.skipped_binary;
        self.skipped_large += other.skipped_large;
        self.too_large.extend(other.too_large);
        self.suppressed += other.suppressed;
    }

    /// Drops findings whose fingerprint is listed, sorts, and stamps the time.
    pub(super) fn finish(&mut self, ignored: &[String], started: Instant) {
        if !ignored.is_empty() {
            let before = self.findings.len();
            self.findings
                .retain(|f| !ignored.iter().any(|fp| fp == &f.fingerprint));
            self.suppressed += (before - self.findings.len()) as u64;
        }
        sort_findings(&mut self.findings);
        self.too_large.sort();
        self.too_large.dedup();
        self.duration_ms = started.elapsed().as_millis() as u64;
    }
}

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

pub(super) fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (&a.path, a.line, a.column, &a.rule).cmp(&(&b.path, b.line, b.column, &b.rule))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{scan_text, ScanOptions};

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
