//! Secret scanner benchmark: throughput and recall.
//!
//! `cargo bench --bench secrets [-- CORPUS_DIR [ROUNDS]]`
//!
//! 1. Scans CORPUS_DIR (default `$CARGO_HOME/registry/src`, else
//!    `~/.cargo/registry/src`) ROUNDS times (default 3) with
//!    `shipgate::secrets::scan_tree` and prints files, MiB, seconds and MiB/s
//!    per round, and the best round.
//! 2. Copies up to ~50 MiB of that tree's text files to a temporary directory,
//!    plants 200 fake secrets of every content rule at known lines (generated
//!    at runtime), scans it and reports throughput and recall: planted
//!    secrets found at the right path, line and rule / planted.
//!
//! `SHIPGATE_BENCH_SHOW=1` lists the findings on the first corpus (redacted).
//! `SHIPGATE_BENCH_PLANTED_DIR=DIR` keeps the planted corpus in DIR (which
//! must not exist yet) instead of a temporary directory, and writes the
//! planted places to `DIR.planted.tsv` (path, line, rule; outside the corpus),
//! so another scanner can be run on the same files (bench/secrets-compare.sh).
//! Each corpus also gets one `RESULT ...` line for scripts.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use shipgate::secrets::{scan_tree, ScanOptions, ScanReport};

const PLANTS: usize = 200;
const COPY_BUDGET: u64 = 50 * 1024 * 1024;

fn default_corpus() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"));
    home.join("registry/src")
}

fn round(label: &str, root: &Path, opts: &ScanOptions, i: usize) -> (ScanReport, f64) {
    let t = Instant::now();
    let r = scan_tree(root, opts).expect("scan");
    let secs = t.elapsed().as_secs_f64();
    let mib = r.bytes_scanned as f64 / (1024.0 * 1024.0);
    println!(
        "{label} round {i}: {} files, {mib:.1} MiB, {secs:.3} s, {:.1} MiB/s ({} findings, {} binary, {} large skipped)",
        r.files_scanned,
        mib / secs,
        r.findings.len(),
        r.skipped_binary,
        r.skipped_large
    );
    (r, mib / secs)
}

fn rounds(label: &str, root: &Path, n: usize) -> ScanReport {
    let opts = ScanOptions::default();
    let mut speeds = Vec::new();
    let mut last = ScanReport::default();
    for i in 1..=n {
        let (r, speed) = round(label, root, &opts, i);
        speeds.push(speed);
        last = r;
    }
    let first = speeds[0];
    speeds.sort_by(|a, b| a.total_cmp(b));
    let best = speeds[speeds.len() - 1];
    let median = speeds[speeds.len() / 2];
    println!("{label} best: {best:.1} MiB/s");
    println!(
        "RESULT corpus={label} rounds={n} files={} bytes={} first_mibs={first:.1} median_mibs={median:.1} best_mibs={best:.1} findings={}",
        last.files_scanned,
        last.bytes_scanned,
        last.findings.len()
    );
    last
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }
    fn alnum(&mut self, n: usize) -> String {
        self.pick(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            n,
        )
    }
    fn upper(&mut self, n: usize) -> String {
        self.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", n)
    }
    fn hex(&mut self, n: usize) -> String {
        self.pick(b"0123456789abcdef", n)
    }
}

/// One planted secret: the rule expected and the text of the inserted line(s).
fn plant(kind: usize, rng: &mut Rng) -> (&'static str, String) {
    match kind % 16 {
        0 => (
            "github-token",
            format!("let t = \"ghp_{}\";", rng.alnum(36)),
        ),
        1 => (
            "aws-access-key-id",
            format!("key_id = \"AKIA{}\"", rng.upper(16)),
        ),
        2 => (
            "aws-secret-access-key",
            format!("AWS_SECRET_ACCESS_KEY={}/{}", rng.alnum(20), rng.alnum(19)),
        ),
        3 => ("gitlab-token", format!("GL=glpat-{}", rng.alnum(20))),
        4 => (
            "slack-token",
            format!(
                "slack: xoxb-{}-{}",
                1_000_000_000 + rng.next() % 1_000_000_000,
                rng.alnum(24)
            ),
        ),
        5 => (
            "slack-webhook",
            format!(
                "hook = \"https://hooks.slack.com/services/T{}/B{}/{}\"",
                rng.upper(10),
                rng.upper(10),
                rng.alnum(24)
            ),
        ),
        6 => (
            "stripe-live-key",
            format!("stripe = 'sk_{}_{}'", "live", rng.alnum(24)),
        ),
        7 => (
            "google-api-key",
            format!("const K = \"AIza{}\";", rng.alnum(35)),
        ),
        8 => ("twilio-api-key", format!("twilio = \"SK{}\"", rng.hex(32))),
        9 => (
            "sendgrid-api-key",
            format!("sg = \"SG.{}.{}\"", rng.alnum(22), rng.alnum(43)),
        ),
        10 => ("npm-token", format!("NPM=npm_{}", rng.alnum(36))),
        11 => (
            "pypi-token",
            format!("TWINE=pypi-AgEIcHlwaS5vcmc{}", rng.alnum(60)),
        ),
        12 => (
            "jwt",
            format!(
                "Bearer eyJ{}.eyJ{}.{}",
                rng.alnum(30),
                rng.alnum(40),
                rng.alnum(43)
            ),
        ),
        13 => (
            "private-key",
            format!(
                "-----BEGIN RSA PRIVATE {}-----\n{}\n{}\n-----END RSA PRIVATE KEY-----",
                "KEY",
                rng.alnum(64),
                rng.alnum(64)
            ),
        ),
        14 => (
            "database-url",
            format!(
                "DATABASE_URL=postgres://app:{}@db.internal/prod",
                rng.alnum(16)
            ),
        ),
        _ => (
            "generic-secret",
            format!("client_secret = \"{}\"", rng.alnum(32)),
        ),
    }
}

/// Copy up to COPY_BUDGET bytes of text files from `src` to `dst`; returns
/// the copied relative paths.
fn copy_corpus(src: &Path, dst: &Path) -> Vec<PathBuf> {
    let mut copied = Vec::new();
    let mut total = 0u64;
    let walk = ignore::WalkBuilder::new(src)
        .hidden(true)
        .git_ignore(true)
        .require_git(false)
        .build();
    for entry in walk.flatten() {
        if total >= COPY_BUDGET {
            break;
        }
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Ok(bytes) = fs::read(entry.path()) else {
            continue;
        };
        if bytes.len() > 512 * 1024 || bytes[..bytes.len().min(8192)].contains(&0) {
            continue;
        }
        let rel = entry.path().strip_prefix(src).unwrap().to_path_buf();
        let name = rel.file_name().unwrap().to_string_lossy().to_string();
        // Files the path rules would flag, or ignore files that would hide
        // planted files, are not copied.
        if name.starts_with(".env") || name.starts_with('.') || !name.contains('.') {
            continue;
        }
        let target = dst.join(&rel);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::write(&target, &bytes).unwrap();
        total += bytes.len() as u64;
        copied.push(rel);
    }
    println!(
        "planted corpus: {} files, {:.1} MiB copied",
        copied.len(),
        total as f64 / 1048576.0
    );
    copied
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let corpus = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(default_corpus);
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    println!(
        "corpus: {} ({} threads available)",
        corpus.display(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let report = rounds("registry", &corpus, n);
    let mut by_rule: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &report.findings {
        *by_rule.entry(f.rule.as_str()).or_default() += 1;
    }
    println!("registry findings by rule: {by_rule:?}");
    if std::env::var_os("SHIPGATE_BENCH_SHOW").is_some() {
        for f in &report.findings {
            println!(
                "  {}:{}:{} {} {}",
                f.path, f.line, f.column, f.rule, f.redacted
            );
        }
    }

    // Second corpus: a copy with planted secrets at known places.
    let keep = std::env::var_os("SHIPGATE_BENCH_PLANTED_DIR").map(PathBuf::from);
    let tmp = tempfile::tempdir().expect("tempdir");
    let planted_root = match &keep {
        Some(d) => {
            assert!(!d.exists(), "{} already exists", d.display());
            fs::create_dir_all(d).expect("create SHIPGATE_BENCH_PLANTED_DIR");
            d.clone()
        }
        None => tmp.path().to_path_buf(),
    };
    let dir = planted_root.as_path();
    let files = copy_corpus(&corpus, dir);
    assert!(
        files.len() >= PLANTS,
        "corpus too small to plant {PLANTS} secrets"
    );
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut planted: Vec<(String, u32, &'static str)> = Vec::new();
    let step = files.len() / PLANTS;
    for k in 0..PLANTS {
        let rel = &files[k * step];
        let path = dir.join(rel);
        let text = String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned();
        let mut lines: Vec<&str> = text.lines().collect();
        let at = lines.len() / 2;
        let (rule, line) = plant(k, &mut rng);
        lines.insert(at, &line);
        fs::write(&path, lines.join("\n") + "\n").unwrap();
        planted.push((
            rel.to_string_lossy().replace('\\', "/"),
            at as u32 + 1,
            rule,
        ));
    }
    if let Some(d) = &keep {
        let mut tsv = String::from("path\tline\trule\n");
        for (path, line, rule) in &planted {
            tsv.push_str(&format!("{path}\t{line}\t{rule}\n"));
        }
        let mut manifest = d.clone().into_os_string();
        manifest.push(".planted.tsv");
        fs::write(&manifest, tsv).expect("write the planted manifest");
        println!("planted corpus kept in {}", d.display());
    }
    let report = rounds("planted", dir, n);
    let found: HashSet<(&str, u32, &str)> = report
        .findings
        .iter()
        .map(|f| (f.path.as_str(), f.line, f.rule.as_str()))
        .collect();
    let mut missed = Vec::new();
    for (path, line, rule) in &planted {
        if !found.contains(&(path.as_str(), *line, *rule)) {
            missed.push(format!("{rule} at {path}:{line}"));
        }
    }
    let hits = planted.len() - missed.len();
    println!(
        "recall: {hits}/{} = {:.1}%",
        planted.len(),
        100.0 * hits as f64 / planted.len() as f64
    );
    println!("RESULT recall hits={hits} planted={}", planted.len());
    for m in missed.iter().take(20) {
        println!("  missed: {m}");
    }
}
