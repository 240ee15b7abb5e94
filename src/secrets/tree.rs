//! The working-tree scan ([`scan_tree`]): which files (what git lists, or
//! a walk outside git), read on every CPU within a memory budget for large
//! files. Apart from the diff and history scans, which read patches, not files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use super::{
    blank_fingerprints, git, load_ignore_file, path_findings, scan_content, Excludes, ScanError,
    ScanOptions, ScanReport,
};

/// Files up to this size are read without asking the memory budget.
const SMALL_FILE: u64 = 1024 * 1024;

/// Larger files being scanned at once hold at most this much memory (or
/// `max_file_bytes`, if that is larger).
const LARGE_FILE_BUDGET: u64 = 64 * 1024 * 1024;

/// Files larger than this many bytes at the start are checked for NUL bytes.
const BINARY_SNIFF: usize = 8 * 1024;

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
