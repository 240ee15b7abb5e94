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
//! * content rules ([`scan_text`]): tokens and keys of known shapes, database
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

mod diff;
pub mod git;
mod paths;
mod rules;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use diff::scan_patch;
pub use paths::path_findings;
pub use rules::{is_placeholder, shannon_entropy};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// Files up to this size are read without asking the memory budget.
const SMALL_FILE: u64 = 1024 * 1024;

/// Larger files being scanned at once hold at most this much memory (or
/// `max_file_bytes`, if that is larger).
const LARGE_FILE_BUDGET: u64 = 64 * 1024 * 1024;

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
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            max_file_bytes: 32 * 1024 * 1024,
            debug_leftovers: true,
            exclude: Vec::new(),
            ignored: None,
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

    fn merge(&mut self, other: ScanReport) {
        self.findings.extend(other.findings);
        self.files_scanned += other.files_scanned;
        self.bytes_scanned += other.bytes_scanned;
        self.skipped_binary += other.skipped_binary;
        self.skipped_large += other.skipped_large;
        self.too_large.extend(other.too_large);
        self.suppressed += other.suppressed;
    }

    /// Drops findings whose fingerprint is listed, sorts, and stamps the time.
    fn finish(&mut self, ignored: &[String], started: Instant) {
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

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
    #[error("secrets.exclude: {0}")]
    Exclude(String),
    #[error("{0}")]
    Git(#[from] git::GitError),
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

/// The fingerprints listed in the text of a `.shipgateignore`: one per
/// line, `#` comments and blank lines ignored.
pub fn parse_ignore_file(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Fingerprints listed in `.shipgateignore` at `root`. A missing file is an
/// empty list.
pub fn load_ignore_file(root: &Path) -> Vec<String> {
    std::fs::read_to_string(root.join(".shipgateignore"))
        .map(|text| parse_ignore_file(&text))
        .unwrap_or_default()
}

/// Whether `s` has the shape of a fingerprint: `rule:path:` and 12 hex
/// digits or `-`.
fn is_fingerprint(s: &str) -> bool {
    let Some((head, tail)) = s.rsplit_once(':') else {
        return false;
    };
    let Some((rule, path)) = head.split_once(':') else {
        return false;
    };
    !rule.is_empty()
        && rule
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !path.is_empty()
        && (tail == "-" || (tail.len() == 12 && tail.bytes().all(|b| b.is_ascii_hexdigit())))
}

/// A `.shipgateignore` is scanned like any file, except the fingerprints it
/// lists (which name rules and paths, not secrets): they are blanked, in
/// place, so lines and columns stay where they are.
fn blank_fingerprints(data: &mut [u8]) {
    let mut start = 0;
    while start < data.len() {
        let end = data[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |p| start + p);
        let line = &data[start..end];
        let code_end = line.iter().position(|&b| b == b'#').unwrap_or(line.len());
        if std::str::from_utf8(&line[..code_end]).is_ok_and(|s| is_fingerprint(s.trim())) {
            data[start..start + code_end].fill(b' ');
        }
        start = end + 1;
    }
}

/// `secrets.exclude`: gitignore-style globs over paths relative to the scan root.
pub struct Excludes(ignore::gitignore::Gitignore);

impl Excludes {
    pub fn new(patterns: &[String]) -> Result<Self, ScanError> {
        let bad = ScanError::Exclude;
        let mut builder = ignore::gitignore::GitignoreBuilder::new("");
        for pattern in patterns {
            builder
                .add_line(None, pattern)
                .map_err(|e| bad(format!("bad exclude pattern {pattern:?}: {e}")))?;
        }
        let matcher = builder
            .build()
            .map_err(|e| bad(format!("bad exclude patterns: {e}")))?;
        Ok(Excludes(matcher))
    }

    /// Whether the file at `path` (relative, forward slashes) is excluded.
    pub fn excludes(&self, path: &str) -> bool {
        self.excludes_entry(Path::new(path), false)
    }

    fn excludes_entry(&self, rel: &Path, is_dir: bool) -> bool {
        !rel.as_os_str().is_empty()
            && !rel.has_root()
            && self.0.matched_path_or_any_parents(rel, is_dir).is_ignore()
    }
}

/// Large files being read at once share a memory budget; a scan thread
/// waits for room. Each thread holds at most one permit, and a permit is
/// never larger than the budget, so waiting always ends.
struct MemoryBudget {
    left: Mutex<u64>,
    freed: Condvar,
}

struct Permit<'a> {
    budget: &'a MemoryBudget,
    bytes: u64,
}

impl MemoryBudget {
    fn new(bytes: u64) -> Self {
        MemoryBudget {
            left: Mutex::new(bytes),
            freed: Condvar::new(),
        }
    }

    fn acquire(&self, bytes: u64) -> Permit<'_> {
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        while *left < bytes {
            left = self.freed.wait(left).unwrap_or_else(|e| e.into_inner());
        }
        *left -= bytes;
        Permit {
            budget: self,
            bytes,
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.budget.left.lock().unwrap_or_else(|e| e.into_inner()) += self.bytes;
        self.budget.freed.notify_all();
    }
}

/// What one scan thread needs.
struct FileScanner<'a> {
    opts: &'a ScanOptions,
    budget: &'a MemoryBudget,
    report: ScanReport,
}

impl FileScanner<'_> {
    /// Scans the file at `path`, named `rel` in findings, reading files up
    /// to `SMALL_FILE` into `small` (reused). Not a regular file (a symlink,
    /// a directory, a submodule, gone): nothing.
    fn scan(&mut self, path: &Path, rel: &str, small: &mut Vec<u8>) {
        use std::io::Read;

        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return;
        };
        if !meta.file_type().is_file() {
            return;
        }
        self.report.findings.extend(path_findings(rel));
        let len = meta.len();
        let max = self.opts.max_file_bytes;
        if len > max {
            self.too_large(rel);
            return;
        }
        let Ok(file) = std::fs::File::open(path) else {
            return;
        };
        // A large file gets its own buffer, freed before its permit is.
        let permit = (len > SMALL_FILE).then(|| self.budget.acquire(len));
        let mut large = Vec::new();
        let buf = if permit.is_some() { &mut large } else { small };
        buf.clear();
        if file.take(max + 1).read_to_end(buf).is_err() {
            return;
        }
        if buf.len() as u64 > max {
            self.too_large(rel);
            return;
        }
        if buf[..buf.len().min(BINARY_SNIFF)].contains(&0) {
            self.report.skipped_binary += 1;
            return;
        }
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if name == ".shipgateignore" {
            blank_fingerprints(buf);
        }
        self.report.files_scanned += 1;
        self.report.bytes_scanned += buf.len() as u64;
        self.report.suppressed += scan_content(rel, buf, self.opts, &mut self.report.findings);
        drop(large);
        drop(permit);
    }

    fn too_large(&mut self, rel: &str) {
        self.report.skipped_large += 1;
        self.report.too_large.push(rel.to_string());
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

fn scan_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// The files to scan in the git work tree at `root`: tracked files and
/// untracked ones git does not ignore, relative to `root`. `None` when
/// `root` is not in a git work tree.
fn git_files(root: &Path) -> Result<Option<Vec<PathBuf>>, ScanError> {
    if !root.is_dir() {
        return Ok(None);
    }
    match git::text(root, &["rev-parse", "--is-inside-work-tree"]) {
        Ok(inside) if inside == "true" => {}
        Ok(_) | Err(git::GitError::Failed { .. }) => return Ok(None),
        // Without git, a tree that has a `.git` cannot be told apart from
        // what its ignore files say: refuse rather than scan less.
        Err(e) => {
            let in_git = root.ancestors().any(|d| d.join(".git").exists());
            return if in_git { Err(e.into()) } else { Ok(None) };
        }
    }
    let out = git::output(
        root,
        &[
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
    )?;
    let mut files: Vec<&[u8]> = out.split(|&b| b == 0).filter(|p| !p.is_empty()).collect();
    // An unmerged path is listed once per stage.
    files.sort_unstable();
    files.dedup();
    Ok(Some(files.into_iter().map(path_from_git).collect()))
}

#[cfg(unix)]
fn path_from_git(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

#[cfg(not(unix))]
fn path_from_git(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}

/// Scan a working tree. See the module documentation for what is reported.
pub fn scan_tree(root: &Path, opts: &ScanOptions) -> Result<ScanReport, ScanError> {
    let started = Instant::now();
    std::fs::metadata(root).map_err(|e| ScanError::Io {
        path: root.display().to_string(),
        message: e.to_string(),
    })?;
    let excludes = Excludes::new(&opts.exclude)?;
    let budget = MemoryBudget::new(LARGE_FILE_BUDGET.max(opts.max_file_bytes));
    let mut report = match git_files(root)? {
        Some(files) => scan_listed(root, &files, opts, &excludes, &budget),
        None => walk(root, opts, excludes, &budget),
    };
    let ignored = match &opts.ignored {
        Some(list) => list.clone(),
        None => load_ignore_file(root),
    };
    report.finish(&ignored, started);
    Ok(report)
}

/// Scans `files` (relative to `root`) on every CPU.
fn scan_listed(
    root: &Path,
    files: &[PathBuf],
    opts: &ScanOptions,
    excludes: &Excludes,
    budget: &MemoryBudget,
) -> ScanReport {
    let next = AtomicUsize::new(0);
    let mut report = ScanReport::default();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..scan_threads())
            .map(|_| {
                s.spawn(|| {
                    let mut scanner = FileScanner {
                        opts,
                        budget,
                        report: ScanReport::default(),
                    };
                    let mut buf = Vec::with_capacity(64 * 1024);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(rel) = files.get(i) else { break };
                        if excludes.excludes_entry(rel, false) {
                            continue;
                        }
                        let name = relative(Path::new(""), rel);
                        scanner.scan(&root.join(rel), &name, &mut buf);
                    }
                    scanner.report
                })
            })
            .collect();
        for w in workers {
            // A scan thread that panicked lost its files' findings: say so
            // by failing loudly rather than reporting a clean scan.
            report.merge(w.join().expect("a scan thread panicked"));
        }
    });
    report
}

/// Walks a directory that is not a git work tree, in parallel.
fn walk(root: &Path, opts: &ScanOptions, excludes: Excludes, budget: &MemoryBudget) -> ScanReport {
    let excludes = Arc::new(excludes);
    let mut builder = ignore::WalkBuilder::new(root);
    let filter_root = root.to_path_buf();
    let filter_excludes = Arc::clone(&excludes);
    builder
        .hidden(false)
        .parents(false)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(false)
        .ignore(true)
        .require_git(false)
        .follow_links(false)
        .threads(scan_threads())
        .filter_entry(move |e| {
            if e.file_name() == ".git" {
                return false;
            }
            let is_dir = e.file_type().is_some_and(|t| t.is_dir());
            let rel = e.path().strip_prefix(&filter_root).unwrap_or(e.path());
            !filter_excludes.excludes_entry(rel, is_dir)
        });

    /// Each walker thread's scanner, merged into the shared report when the
    /// thread's visitor is dropped.
    struct Tally<'a> {
        scanner: FileScanner<'a>,
        shared: Arc<Mutex<ScanReport>>,
    }
    impl Drop for Tally<'_> {
        fn drop(&mut self) {
            let mut s = self.shared.lock().unwrap_or_else(|e| e.into_inner());
            s.merge(std::mem::take(&mut self.scanner.report));
        }
    }

    let shared = Arc::new(Mutex::new(ScanReport::default()));
    builder.build_parallel().run(|| {
        let mut tally = Tally {
            scanner: FileScanner {
                opts,
                budget,
                report: ScanReport::default(),
            },
            shared: Arc::clone(&shared),
        };
        let mut buf = Vec::with_capacity(64 * 1024);
        Box::new(move |entry| {
            if let Ok(entry) = entry {
                if entry.file_type().is_some_and(|t| t.is_file()) {
                    let rel = relative(root, entry.path());
                    tally.scanner.scan(entry.path(), &rel, &mut buf);
                }
            }
            ignore::WalkState::Continue
        })
    });
    let report = std::mem::take(&mut *shared.lock().unwrap_or_else(|e| e.into_inner()));
    report
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
