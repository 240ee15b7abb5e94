//! Secret scanner benchmark: throughput and recall.
//!
//! `cargo bench --bench secrets [-- CORPUS_DIR [ROUNDS]]`
//!
//! 1. Scans CORPUS_DIR (default `$CARGO_HOME/registry/src`, else
//!    `~/.cargo/registry/src`) ROUNDS times (default 3) with
//!    `shipgate::secrets::scan_tree` and prints files, MiB, seconds and MiB/s
//!    per round, and the best round.
//! 2. Copies up to ~50 MiB of that tree's text files to a temporary directory,
//!    plants fake secrets (generated at runtime) at known lines: 8 of each of
//!    the 16 content-rule kinds and 8 of each of the shapes the generic rule
//!    must find (typed constants in Rust and TypeScript, 32- and 64-char hex
//!    keys and 20-char passwords with symbols in keyed assignments in Rust,
//!    JavaScript, Python and YAML, and committed `.env` files that
//!    `.gitignore` lists), commits the copy to a git repository (so the scan
//!    is of a git work tree, as in CI), scans it and reports throughput and
//!    recall: planted secrets found at the right path, line and rule /
//!    planted, overall and per shape, and the findings that are not planted.
//!
//! `SHIPGATE_BENCH_SHOW=1` lists the findings on the first corpus (redacted).
//! `SHIPGATE_BENCH_PLANTED_DIR=DIR` keeps the planted corpus in DIR (which
//! must not exist yet) instead of a temporary directory, and writes the
//! planted places to `DIR.planted.tsv` (path, line, rule, shape; outside the
//! corpus; an `env-file` plant is at line 0, a path finding),
//! so another scanner can be run on the same files (bench/secrets-compare.sh).
//! Each corpus also gets one `RESULT ...` line for scripts.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use shipgate::secrets::{scan_tree, ScanOptions, ScanReport};

/// Plants of each shape (kind).
const PER_SHAPE: usize = 8;
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
        "RESULT corpus={label} rounds={n} files={} bytes={} first_mibs={first:.1} median_mibs={median:.1} best_mibs={best:.1} findings={} errors={}",
        last.files_scanned,
        last.bytes_scanned,
        last.findings.len(),
        last.errors()
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
    /// A password of `n` characters with upper and lower case letters,
    /// digits and symbols from `symbols` (at least one of each class).
    fn password(&mut self, n: usize, symbols: &[u8]) -> String {
        loop {
            let mut alphabet =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".to_vec();
            alphabet.extend_from_slice(symbols);
            let pw = self.pick(&alphabet, n);
            let has = |f: fn(&u8) -> bool| pw.as_bytes().iter().any(f);
            if has(u8::is_ascii_uppercase)
                && has(u8::is_ascii_lowercase)
                && has(u8::is_ascii_digit)
                && pw.bytes().any(|b| symbols.contains(&b))
                && pw.as_bytes()[0].is_ascii_alphanumeric()
            {
                return pw;
            }
        }
    }
}

/// Symbols in passwords inside quoted string literals (no quotes, no
/// backslash).
const SYMBOLS_QUOTED: &[u8] = b"!@#$%^&*()-_=+[]{};:,.<>/?~|";
/// Symbols in unquoted `.env` and YAML values (no `#`, `$`, quotes, spaces).
const SYMBOLS_BARE: &[u8] = b"!@%^&*()-_=+[]{};,.<>/?~|";

/// Where a shape is planted.
#[derive(Clone, Copy, PartialEq)]
enum Host {
    /// Inserted into the middle of any copied file (today's 16 kinds).
    Any,
    /// Inserted into a copied file with one of these extensions, or a new
    /// small file of the first extension if none is left.
    Lang(&'static [&'static str]),
    /// A new `.env` in a directory of the copy, git-tracked although
    /// `.gitignore` lists it: the line's finding and the file's `env-file`.
    DotEnv,
}

/// The 16 content-rule kinds, then the shapes of keyed assignments.
const SHAPES: &[(&str, Host)] = &[
    ("github-token", Host::Any),
    ("aws-access-key-id", Host::Any),
    ("aws-secret-access-key", Host::Any),
    ("gitlab-token", Host::Any),
    ("slack-token", Host::Any),
    ("slack-webhook", Host::Any),
    ("stripe-live-key", Host::Any),
    ("google-api-key", Host::Any),
    ("twilio-api-key", Host::Any),
    ("sendgrid-api-key", Host::Any),
    ("npm-token", Host::Any),
    ("pypi-token", Host::Any),
    ("jwt", Host::Any),
    ("private-key", Host::Any),
    ("database-url", Host::Any),
    ("generic-secret", Host::Any),
    ("rust-const-str", Host::Lang(&["rs"])),
    ("rust-static-str", Host::Lang(&["rs"])),
    ("ts-const-string", Host::Lang(&["ts", "tsx"])),
    ("rust-hex32", Host::Lang(&["rs"])),
    ("rust-hex64", Host::Lang(&["rs"])),
    ("js-hex32", Host::Lang(&["js", "mjs", "cjs"])),
    ("js-hex64", Host::Lang(&["js", "mjs", "cjs"])),
    ("rust-password-symbols", Host::Lang(&["rs"])),
    ("js-password-symbols", Host::Lang(&["js", "mjs", "cjs"])),
    ("py-secret-key-symbols", Host::Lang(&["py"])),
    ("yaml-password-symbols", Host::Lang(&["yml", "yaml"])),
    ("dotenv-committed", Host::DotEnv),
];

/// One planted secret of shape `kind` (an index into `SHAPES`): the rule
/// expected and the text of the inserted line(s).
fn plant(kind: usize, rng: &mut Rng) -> (&'static str, String) {
    const G: &str = "generic-secret";
    match kind {
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
        15 => (G, format!("client_secret = \"{}\"", rng.alnum(32))),
        16 => (
            G,
            format!("const SIGNING_KEY: &str = \"{}\";", rng.alnum(40)),
        ),
        17 => (
            G,
            format!(
                "pub static CLIENT_SECRET: &'static str = \"{}\";",
                rng.alnum(32)
            ),
        ),
        18 => (
            G,
            format!("export const apiSecret: string = \"{}\";", rng.alnum(40)),
        ),
        19 => (G, format!("    let api_key = \"{}\";", rng.hex(32))),
        20 => (G, format!("    let private_key = \"{}\";", rng.hex(64))),
        21 => (G, format!("  apiKey: \"{}\",", rng.hex(32))),
        22 => (G, format!("const SECRET_KEY = \"{}\";", rng.hex(64))),
        23 => (
            G,
            format!(
                "    let password = \"{}\";",
                rng.password(20, SYMBOLS_QUOTED)
            ),
        ),
        24 => (
            G,
            format!("  password: \"{}\",", rng.password(20, SYMBOLS_QUOTED)),
        ),
        25 => (
            G,
            format!("SECRET_KEY = \"{}\"", rng.password(20, SYMBOLS_QUOTED)),
        ),
        26 => (G, format!("  password: {}", rng.password(20, SYMBOLS_BARE))),
        _ => (G, format!("DB_PASSWORD={}", rng.password(20, SYMBOLS_BARE))),
    }
}

/// A small new file of extension `ext` holding `line` (its line number is
/// returned with the text), for languages the corpus lacks.
fn new_file(ext: &str, line: &str) -> (String, u32) {
    let (head, tail) = match ext {
        "ts" | "tsx" => (
            "import { Client } from \"./client\";\n\nexport interface Options {\n  endpoint: string;\n}\n",
            "\nexport function connect(opts: Options): Client {\n  return new Client(opts.endpoint);\n}\n",
        ),
        "js" | "mjs" | "cjs" => (
            "'use strict';\n\nconst config = {\n  host: \"db.internal\",\n  port: 5432,\n",
            "  pool: 4,\n};\n\nmodule.exports = config;\n",
        ),
        "py" => (
            "import os\n\nDEBUG = False\nALLOWED_HOSTS = [\"localhost\"]\n",
            "TIME_ZONE = \"UTC\"\n",
        ),
        "yml" | "yaml" => (
            "service: api\ndatabase:\n  host: db.internal\n  user: app\n",
            "  pool: 4\n",
        ),
        _ => ("// generated\n", ""),
    };
    let at = head.lines().count() as u32 + 1;
    (format!("{head}{line}\n{tail}"), at)
}

/// A new `.env` holding `line`, and the line's number.
fn new_env_file(line: &str) -> (String, u32) {
    let head = "# local settings\nPORT=8080\nLOG_LEVEL=debug\n";
    (
        format!("{head}{line}\nAPP_NAME=demo\n"),
        head.lines().count() as u32 + 1,
    )
}

fn extension(path: &Path) -> &str {
    path.extension().and_then(|e| e.to_str()).unwrap_or("")
}

/// Runs git in `dir` (for the planted copy's repository).
fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
            "-c",
            "commit.gpgSign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One planted secret: where, and what the scan should say.
struct Planted {
    path: String,
    line: u32,
    rule: &'static str,
    shape: &'static str,
}

/// Plants `PER_SHAPE` secrets of every shape in the copy at `dir` whose
/// files are `files`, spread evenly over them; commits the copy to a new
/// git repository whose `.gitignore` lists `.env` (force-added).
fn plant_all(dir: &Path, files: &[PathBuf]) -> Vec<Planted> {
    let total = SHAPES.len() * PER_SHAPE;
    assert!(
        files.len() >= total,
        "corpus too small to plant {total} secrets"
    );
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut planted = Vec::new();
    let mut used: HashSet<usize> = HashSet::new();
    let mut env_dirs: HashSet<PathBuf> = HashSet::new();
    let step = files.len() / total;
    let name = |p: &Path| p.to_string_lossy().replace('\\', "/");
    for k in 0..total {
        let kind = k % SHAPES.len();
        let (shape, host) = SHAPES[kind];
        let (rule, line) = plant(kind, &mut rng);
        let base = k * step;
        match host {
            Host::Any | Host::Lang(_) => {
                let wanted = |i: usize| match host {
                    Host::Lang(exts) => exts.contains(&extension(&files[i])),
                    _ => true,
                };
                let pick = (base..files.len())
                    .chain(0..base)
                    .find(|&i| !used.contains(&i) && wanted(i));
                let (rel, at) = match (pick, host) {
                    (Some(i), _) => {
                        used.insert(i);
                        let rel = files[i].clone();
                        let path = dir.join(&rel);
                        let text = String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned();
                        let mut lines: Vec<&str> = text.lines().collect();
                        let at = lines.len() / 2;
                        lines.insert(at, &line);
                        fs::write(&path, lines.join("\n") + "\n").unwrap();
                        (rel, at as u32 + 1)
                    }
                    (None, Host::Lang(exts)) => {
                        let parent = files[base].parent().unwrap_or(Path::new(""));
                        let rel = parent.join(format!("planted_{k}.{}", exts[0]));
                        let (text, at) = new_file(exts[0], &line);
                        fs::write(dir.join(&rel), text).unwrap();
                        (rel, at)
                    }
                    (None, _) => panic!("no file left to plant in"),
                };
                planted.push(Planted {
                    path: name(&rel),
                    line: at,
                    rule,
                    shape,
                });
            }
            Host::DotEnv => {
                let mut parent = files[base].parent().unwrap_or(Path::new("")).to_path_buf();
                while env_dirs.contains(&parent) {
                    parent = parent.join("config");
                }
                fs::create_dir_all(dir.join(&parent)).unwrap();
                env_dirs.insert(parent.clone());
                let rel = parent.join(".env");
                let (text, at) = new_env_file(&line);
                fs::write(dir.join(&rel), text).unwrap();
                for (line, rule) in [(at, rule), (0, "env-file")] {
                    planted.push(Planted {
                        path: name(&rel),
                        line,
                        rule,
                        shape,
                    });
                }
            }
        }
    }
    fs::write(dir.join(".gitignore"), ".env\n").unwrap();
    git(dir, &["init", "-q"]);
    git(dir, &["add", "-A", "."]);
    let envs: Vec<String> = env_dirs.iter().map(|d| name(&d.join(".env"))).collect();
    for chunk in envs.chunks(64) {
        let mut args = vec!["add", "-f", "--"];
        args.extend(chunk.iter().map(String::as_str));
        git(dir, &args);
    }
    git(dir, &["commit", "-q", "-m", "planted corpus"]);
    planted
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
    let planted = plant_all(dir, &files);
    if let Some(d) = &keep {
        let mut tsv = String::from("path\tline\trule\tshape\n");
        for p in &planted {
            tsv.push_str(&format!(
                "{}\t{}\t{}\t{}\n",
                p.path, p.line, p.rule, p.shape
            ));
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
    // shape -> (hits, planted), in SHAPES order.
    let mut per_shape: Vec<(&str, usize, usize)> = SHAPES.iter().map(|(s, _)| (*s, 0, 0)).collect();
    for p in &planted {
        let hit = found.contains(&(p.path.as_str(), p.line, p.rule));
        let e = per_shape.iter_mut().find(|e| e.0 == p.shape).unwrap();
        e.2 += 1;
        if hit {
            e.1 += 1;
        } else {
            missed.push(format!("{} ({}) at {}:{}", p.rule, p.shape, p.path, p.line));
        }
    }
    let planted_at: HashSet<(&str, u32, &str)> = planted
        .iter()
        .map(|p| (p.path.as_str(), p.line, p.rule))
        .collect();
    let others: Vec<_> = report
        .findings
        .iter()
        .filter(|f| !planted_at.contains(&(f.path.as_str(), f.line, f.rule.as_str())))
        .collect();
    let other_errors = others
        .iter()
        .filter(|f| f.severity == shipgate::secrets::Severity::Error)
        .count();
    let hits = planted.len() - missed.len();
    println!("recall per shape (hits / planted):");
    for (shape, h, p) in &per_shape {
        println!("  {shape:<24} {h} / {p}");
        println!("RESULT shape name={shape} hits={h} planted={p}");
    }
    println!(
        "recall: {hits}/{} = {:.1}%",
        planted.len(),
        100.0 * hits as f64 / planted.len() as f64
    );
    println!("RESULT recall hits={hits} planted={}", planted.len());
    println!(
        "planted copy: {} findings not planted ({other_errors} errors, {} warnings)",
        others.len(),
        others.len() - other_errors
    );
    println!(
        "RESULT others findings={} errors={other_errors}",
        others.len()
    );
    for m in missed.iter().take(40) {
        println!("  missed: {m}");
    }
    if std::env::var_os("SHIPGATE_BENCH_SHOW").is_some() {
        for f in &others {
            println!(
                "  other: {}:{}:{} {} {}",
                f.path, f.line, f.column, f.rule, f.redacted
            );
        }
    }
}
