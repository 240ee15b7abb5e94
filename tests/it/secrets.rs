//! The committed-secret scanner: every rule with a true positive and a false
//! positive, the tree walk, suppression, fingerprints, serialization, SARIF.
//!
//! Fake secrets are assembled at runtime so this file holds no realistic
//! literal tokens.

use std::fs;
use std::path::Path;

use shipgate::render::secrets::sarif;
use shipgate::secrets::{
    load_ignore_file, path_findings, scan_text, scan_tree, Finding, ScanOptions, Severity,
};

fn opts() -> ScanOptions {
    ScanOptions::default()
}

fn rules_in(path: &str, text: &str) -> Vec<String> {
    scan_text(path, text, &opts())
        .into_iter()
        .map(|f| f.rule)
        .collect()
}

/// Asserts exactly one finding of `rule` whose secret is `secret`.
fn flags(path: &str, text: &str, rule: &str, secret: &str) -> Finding {
    let found = scan_text(path, text, &opts());
    let hits: Vec<&Finding> = found.iter().filter(|f| f.rule == rule).collect();
    assert_eq!(hits.len(), 1, "{rule} in {text:?}: {found:?}");
    assert_eq!(hits[0].secret, secret, "{rule}");
    assert_eq!(hits[0].severity, Severity::Error);
    assert!(
        !hits[0].redacted.contains(&secret[secret.len().min(5)..]) || secret.len() <= 5,
        "redaction leaks: {}",
        hits[0].redacted
    );
    hits[0].clone()
}

fn clean(path: &str, text: &str) {
    let found = scan_text(path, text, &opts());
    assert!(found.is_empty(), "expected nothing in {text:?}: {found:?}");
}

/// A mixed-case alphanumeric string of length `n` with high entropy.
fn rand_alnum(n: usize, seed: u64) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            A[(x % A.len() as u64) as usize] as char
        })
        .collect()
}

fn rand_hex(n: usize, seed: u64) -> String {
    rand_alnum(n * 3, seed)
        .bytes()
        .map(|b| char::from(b"0123456789abcdef"[(b % 16) as usize]))
        .take(n)
        .collect()
}

fn upper_digits(n: usize, seed: u64) -> String {
    rand_alnum(n * 3, seed)
        .chars()
        .filter(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        .take(n)
        .collect()
}

// ---------------------------------------------------------------- content rules

#[test]
fn aws_access_key_id() {
    let key = format!("AKIA{}", upper_digits(16, 1));
    let f = flags(
        "config.py",
        &format!("KEY_ID = '{key}'\n"),
        "aws-access-key-id",
        &key,
    );
    assert_eq!((f.line, f.column), (1, 11));
    assert_eq!(f.redacted, "AKIA…(20 chars)");
    // The documentation example is allowlisted.
    let example = format!("AKIA{}", "IOSFODNN7EXAMPLE");
    clean("config.py", &format!("KEY_ID = '{example}'\n"));
    // Too short, lowercase: not a key id.
    clean("a.txt", &format!("AKIA{}\n", upper_digits(10, 2)));
}

#[test]
fn aws_secret_access_key() {
    let secret = format!(
        "{}/{}+{}",
        rand_alnum(20, 3),
        rand_alnum(10, 4),
        rand_alnum(8, 5)
    );
    assert_eq!(secret.len(), 40);
    flags(
        "deploy.sh",
        &format!("export AWS_SECRET_ACCESS_KEY={secret}\n"),
        "aws-secret-access-key",
        &secret,
    );
    flags(
        "c.yml",
        &format!("aws_secret_key: \"{secret}\"\n"),
        "aws-secret-access-key",
        &secret,
    );
    let example = format!("wJalrXUtnFEMI/K7MDENG/bPxRfi{}", "CYEXAMPLEKEY");
    clean(
        "deploy.sh",
        &format!("export AWS_SECRET_ACCESS_KEY={example}\n"),
    );
    // Not assigned to an aws+secret key.
    let f = scan_text("a.txt", &format!("checksum = {secret}\n"), &opts());
    assert!(f.iter().all(|f| f.rule != "aws-secret-access-key"));
}

#[test]
fn github_tokens() {
    for prefix in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
        let tok = format!("{prefix}{}", rand_alnum(36, 6));
        let f = flags("ci.yml", &format!("token: {tok}\n"), "github-token", &tok);
        assert_eq!(f.redacted, format!("{prefix}…(40 chars)"));
    }
    let pat = format!("github_{}{}", "pat_", rand_alnum(82, 7));
    flags("a.sh", &format!("GH={pat}\n"), "github-token", &pat);
    // Wrong length, wrong prefix.
    clean("a.txt", &format!("ghp_{}\n", rand_alnum(20, 8)));
    clean("a.txt", &format!("ghx_{}\n", rand_alnum(36, 9)));
}

#[test]
fn gitlab_token() {
    let tok = format!("glpat-{}", rand_alnum(20, 10));
    flags("a.sh", &format!("CI_TOKEN={tok}\n"), "gitlab-token", &tok);
    clean("a.sh", &format!("x = glpat-{}\n", rand_alnum(12, 11)));
}

#[test]
fn slack_token_and_webhook() {
    let tok = format!("xoxb-{}-{}", "2345678901", rand_alnum(24, 12));
    flags("a.js", &format!("const s = '{tok}'\n"), "slack-token", &tok);
    clean("README.md", "set SLACK_BOT=xoxb-your-token-here\n");

    let path = format!(
        "T{}/B{}/{}",
        upper_digits(10, 13),
        upper_digits(10, 14),
        rand_alnum(24, 15)
    );
    let url = format!("https://hooks.slack.com/services/{path}");
    flags(
        "a.yml",
        &format!("webhook: {url}\n"),
        "slack-webhook",
        &path,
    );
    // The documentation placeholder has no entropy.
    let doc = format!(
        "https://hooks.slack.com/services/T{}/B{}/{}",
        "0".repeat(8),
        "0".repeat(8),
        "X".repeat(24)
    );
    clean("README.md", &format!("webhook: {doc}\n"));
}

#[test]
fn stripe_live_key_only() {
    let live = format!("sk_{}_{}", "live", rand_alnum(24, 16));
    flags(
        "pay.rb",
        &format!("Stripe.api_key = \"{live}\"\n"),
        "stripe-live-key",
        &live,
    );
    let restricted = format!("rk_{}_{}", "live", rand_alnum(30, 17));
    flags(
        "pay.rb",
        &format!("KEY = \"{restricted}\"\n"),
        "stripe-live-key",
        &restricted,
    );
    let test_key = format!("sk_{}_{}", "test", rand_alnum(24, 18));
    assert!(!rules_in("pay.rb", &format!("KEY = \"{test_key}\"\n"))
        .contains(&"stripe-live-key".to_string()));
}

#[test]
fn google_api_key() {
    let key = format!("AIza{}", rand_alnum(35, 19));
    flags(
        "maps.js",
        &format!("const k = \"{key}\";\n"),
        "google-api-key",
        &key,
    );
    clean(
        "maps.js",
        &format!("const k = \"AIza{}\";\n", rand_alnum(20, 20)),
    );
}

#[test]
fn twilio_api_key() {
    let key = format!("SK{}", rand_hex(32, 21));
    flags(
        "sms.py",
        &format!("TWILIO = \"{key}\"\n"),
        "twilio-api-key",
        &key,
    );
    // Lowercase prefix or non-hex body: no.
    clean("sms.py", &format!("x = \"sk{}\"\n", rand_hex(32, 22)));
    clean("sms.py", &format!("x = \"SK{}\"\n", "z".repeat(32)));
}

#[test]
fn sendgrid_api_key() {
    let key = format!("SG.{}.{}", rand_alnum(22, 23), rand_alnum(43, 24));
    flags(
        "mail.py",
        &format!("KEY = \"{key}\"\n"),
        "sendgrid-api-key",
        &key,
    );
    clean("mail.py", &format!("KEY = \"SG.{}\"\n", rand_alnum(22, 25)));
}

#[test]
fn npm_token() {
    let tok = format!("npm_{}", rand_alnum(36, 26));
    flags(
        "publish.sh",
        &format!("NODE_AUTH={tok}\n"),
        "npm-token",
        &tok,
    );
    clean(
        "publish.sh",
        "echo $npm_config_cache_directory_for_builds\n",
    );
}

#[test]
fn pypi_token() {
    let tok = format!("pypi-{}{}", "AgEIcHlwaS5vcmc", rand_alnum(60, 27));
    flags("release.sh", &format!("TWINE={tok}\n"), "pypi-token", &tok);
    clean("release.sh", "pip install pypi-simple\n");
}

#[test]
fn jwt() {
    let tok = format!(
        "eyJ{}.eyJ{}.{}",
        rand_alnum(30, 28),
        rand_alnum(40, 29),
        rand_alnum(43, 30)
    );
    flags(
        "api.http",
        &format!("Authorization: Bearer {tok}\n"),
        "jwt",
        &tok,
    );
    clean("api.http", "prefix eyJhbGci.short\n");
}

#[test]
fn private_key_blocks() {
    for kind in ["", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED "] {
        let body = rand_alnum(64, 31);
        let text = format!(
            "-----BEGIN {kind}PRIVATE {}-----\n{body}\n{body}\n-----END {kind}PRIVATE KEY-----\n",
            "KEY"
        );
        let f = flags("keys/a.txt", &text, "private-key", &body);
        assert_eq!(f.redacted, format!("-----BEGIN {kind}PRIVATE KEY-----"));
        assert_eq!(f.line, 1);
    }
    // A public key or a bare header in code is not a private key.
    clean(
        "a.txt",
        &format!("-----BEGIN PUBLIC {}-----\n{}\n", "KEY", rand_alnum(64, 32)),
    );
    clean(
        "pem.rs",
        &format!("const TAG: &str = \"-----BEGIN PRIVATE {}-----\";\n", "KEY"),
    );
}

#[test]
fn database_urls() {
    for scheme in [
        "postgres",
        "postgresql",
        "mysql",
        "mongodb+srv",
        "redis",
        "amqp",
    ] {
        let pw = format!("Q{}", rand_alnum(11, 33));
        let url = format!("{scheme}://app:{pw}@db.internal:5432/prod");
        flags(
            "config.toml",
            &format!("url = \"{url}\"\n"),
            "database-url",
            &pw,
        );
    }
    for placeholder in [
        "password",
        "changeme",
        "${DB_PASSWORD}",
        "$DB_PASS",
        "<password>",
        "xxx",
        "pass",
    ] {
        clean(
            "config.toml",
            &format!("url = \"postgres://app:{placeholder}@localhost/db\"\n"),
        );
    }
    // An unencoded `@` in the password is not a URL with password "p".
    clean(
        "parse.rs",
        "let url = \"mysql://username:p@ssw0rd@hostname:3306/database\";\n",
    );
    // No password at all.
    clean("config.toml", "url = \"postgres://app@localhost/db\"\n");
}

#[test]
fn generic_secret_assignments() {
    let v = rand_alnum(24, 34);
    flags(
        "settings.py",
        &format!("SECRET_KEY = \"{v}\"\n"),
        "generic-secret",
        &v,
    );
    flags(
        "app.yml",
        &format!("client_secret: {v}\n"),
        "generic-secret",
        &v,
    );
    flags(
        "a.json",
        &format!("{{\"apiKey\": \"{v}\"}}\n"),
        "generic-secret",
        &v,
    );
    flags(
        "a.rb",
        &format!("password => '{v}'\n"),
        "generic-secret",
        &v,
    );
    // Placeholders, variable references, low entropy, short values, code.
    clean("app.yml", "password: ${DB_PASSWORD}\n");
    clean("a.py", "token = \"aaaaaaaaaaaaaaaaaaaa\"\n");
    clean("a.py", "token = os.environ[\"GITHUB_TOKEN\"]\n");
    clean("a.py", "token = \"short1\"\n");
    clean(
        "a.rs",
        "let token_stream = proc_macro2::TokenStream::new();\n",
    );
    clean(
        "a.rs",
        "fn check(token: &str) -> bool { token == expected }\n",
    );
    clean("a.yml", "api_key: <your-api-key-goes-here>\n");
    // Identifiers are code, not secrets.
    clean(
        "a.rs",
        "let be_private_key_buffer: Curve25519SeedBin = k.as_be_bytes()?;\n",
    );
    clean(
        "a.rs",
        "    check_private_key_bytes: x25519_check_private_key_bytes,\n",
    );
    clean("a.rs", "let secret = \"my_webhook_secret_value\";\n");
    clean(
        "CHANGELOG.md",
        "- Rename `ToPrivateKey` => `DecodePrivateKey`/`EncodePrivateKey`\n",
    );
    clean("a.yml", "token: {{ secrets.DEPLOY_TOKEN_VALUE }}\n");
    clean("a.env", "GITHUB_TOKEN=GITHUB_TOKEN_FROM_SECRETS\n");
}

#[test]
fn debug_leftovers_by_file_type() {
    let warn = |path: &str, text: &str| {
        let f = scan_text(path, text, &opts());
        assert_eq!(f.len(), 1, "{path}: {f:?}");
        assert_eq!(f[0].rule, "debug-leftover");
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(f[0].secret.is_empty());
    };
    warn("web/app.js", "function f() {\n  console.log(x);\n}\n");
    warn("web/app.tsx", "debugger;\n");
    warn("a.mjs", "  console.log ('x')\n");
    warn("src/lib.rs", "let y = dbg!(x);\n");
    warn("app/a.rb", "  binding.pry\n");
    warn("app/a.rb", "  byebug\n");
    warn("a.py", "import pdb; pdb.set_trace()\n");
    warn("a.py", "    breakpoint()\n");
    // Wrong file type, or just words.
    clean(
        "README.md",
        "Use console.log( and dbg!( and binding.pry to debug.\n",
    );
    clean("a.py", "console.log(x)\n");
    clean("a.rs", "console.log(x); // a string in rust\n");
    clean("a.js", "const debuggerEnabled = false;\n");
    clean("a.py", "self.breakpoint(1)\n");
    // Disabled by option.
    let off = ScanOptions {
        debug_leftovers: false,
        ..ScanOptions::default()
    };
    assert!(scan_text("a.js", "console.log(1)\n", &off).is_empty());
}

#[test]
fn inline_allow_suppresses() {
    let tok = format!("ghp_{}", rand_alnum(36, 35));
    clean("a.sh", &format!("T={tok} # shipgate:allow\n"));
}

// ---------------------------------------------------------------- file-name rules

#[test]
fn registry_credentials() {
    let tok = format!("npm_{}", rand_alnum(36, 36));
    let f = scan_text(
        ".npmrc",
        &format!("registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken={tok}\n"),
        &opts(),
    );
    assert!(
        f.iter()
            .any(|f| f.rule == "registry-credentials" && f.line == 2 && f.secret == tok),
        "{f:?}"
    );
    clean(".npmrc", "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n");

    let pw = rand_alnum(18, 37);
    let f = scan_text(
        "sub/.pypirc",
        &format!("[pypi]\nusername = __token__\npassword = {pw}\n"),
        &opts(),
    );
    assert!(
        f.iter()
            .any(|f| f.rule == "registry-credentials" && f.secret == pw),
        "{f:?}"
    );
    clean(
        ".pypirc",
        "[pypi]\nusername = me\npassword = $PYPI_PASSWORD\n",
    );
    // Same content under another name: not a registry file.
    assert!(
        !rules_in("notes.txt", &format!("password = {}\n", "hunter2"))
            .contains(&"registry-credentials".to_string())
    );
}

#[test]
fn credentials_json() {
    let text = format!(
        "{{\n  \"type\": \"service_account\",\n  \"private_key\": \"-----BEGIN PRIVATE {}-----\\n{}\\n-----END PRIVATE KEY-----\\n\"\n}}\n",
        "KEY",
        rand_alnum(64, 38)
    );
    for name in ["credentials.json", "gcp/service-account-prod.json"] {
        let rules = rules_in(name, &text);
        assert!(
            rules.contains(&"credentials-file".to_string()),
            "{name}: {rules:?}"
        );
    }
    assert!(!rules_in("data.json", &text).contains(&"credentials-file".to_string()));
    clean(
        "credentials.json",
        "{\"installed\": {\"client_id\": \"abc\"}}\n",
    );
}

// ---------------------------------------------------------------- path rules

#[test]
fn path_rules() {
    let rules = |p: &str| {
        path_findings(p)
            .into_iter()
            .map(|f| f.rule)
            .collect::<Vec<_>>()
    };
    for p in [".env", "svc/.env.local", ".env.production"] {
        assert_eq!(rules(p), ["env-file"], "{p}");
    }
    for p in [
        ".env.example",
        "a/.env.sample",
        ".env.template",
        ".env.dist",
        ".env.defaults",
        "src/env.rs",
    ] {
        assert!(rules(p).is_empty(), "{p}");
    }
    for p in ["id_rsa", ".ssh/id_ed25519", "a.p12", "b.pfx"] {
        assert_eq!(rules(p), ["private-key-file"], "{p}");
    }
    // Certificates are not keys; a .pem holding a key is caught by its content.
    for p in [
        "id_rsa.pub",
        "keyboard.rs",
        "docs/keys.md",
        "certs/tls.pem",
        "server.key",
    ] {
        assert!(rules(p).is_empty(), "{p}");
    }
    let f = &path_findings("a/.env")[0];
    assert_eq!((f.line, f.redacted.as_str()), (0, ""));
    assert_eq!(f.fingerprint, "env-file:a/.env:-");
}

// ---------------------------------------------------------------- the tree

fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

#[test]
fn scan_tree_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let tok = format!("ghp_{}", rand_alnum(36, 40));
    let gl = format!("glpat-{}", rand_alnum(20, 41));

    write(root, ".gitignore", "ignored/\n*.log\n");
    write(root, "ignored/leak.txt", format!("t={tok}\n"));
    write(root, "debug.log", format!("t={tok}\n"));
    write(
        root,
        "src/main.rs",
        format!("fn main() {{\n    let t = \"{tok}\";\n    dbg!(t);\n}}\n"),
    );
    write(root, "web/app.js", "console.log('hi');\n");
    write(root, "web/notes.md", "console.log('in docs is fine');\n");
    write(root, ".env", "DATABASE=1\n");
    write(root, ".env.example", "TOKEN=\n");
    let mut binary = format!("t={tok}\n").into_bytes();
    binary.insert(3, 0);
    write(root, "assets/blob.bin", binary);
    write(root, "big.txt", format!("t={tok}\n").repeat(200_000));
    write(root, "allowed.sh", format!("T={tok} # shipgate:allow\n"));
    write(root, "vendor/lib/x.txt", format!("t={gl}\n"));
    write(root, "keep/x.txt", format!("t={gl}\n"));
    write(root, ".git/config", format!("t={tok}\n"));

    let mut o = opts();
    o.exclude = vec!["vendor/".to_string()];
    o.max_file_bytes = 1024 * 1024;
    let report = scan_tree(root, &o).unwrap();
    let got: Vec<(&str, &str, u32)> = report
        .findings
        .iter()
        .map(|f| (f.path.as_str(), f.rule.as_str(), f.line))
        .collect();
    assert_eq!(
        got,
        [
            (".env", "env-file", 0),
            ("keep/x.txt", "gitlab-token", 1),
            ("src/main.rs", "github-token", 2),
            ("src/main.rs", "debug-leftover", 3),
            ("web/app.js", "debug-leftover", 1),
        ],
        "{:#?}",
        report.findings
    );
    assert_eq!(report.errors(), 3);
    assert_eq!(report.warnings(), 2);
    assert_eq!(report.skipped_binary, 1);
    assert_eq!(report.skipped_large, 1);
    assert_eq!(report.too_large, ["big.txt"]);
    assert_eq!(report.suppressed, 1);
    // .gitignore, src/main.rs, web/app.js, web/notes.md, .env, .env.example,
    // allowed.sh, keep/x.txt
    assert_eq!(report.files_scanned, 8);
    assert!(report.bytes_scanned > 0);
    let gh = report
        .findings
        .iter()
        .find(|f| f.rule == "github-token")
        .unwrap();
    assert_eq!(gh.secret, tok);
    assert_eq!(gh.column, 14);

    // Nothing serialized carries a secret.
    let json = serde_json::to_string(&report).unwrap();
    let sarif_text = sarif(&report, "0.1.0").to_string();
    for out in [&json, &sarif_text] {
        assert!(!out.contains(&tok), "secret leaked");
        assert!(!out.contains(&gl), "secret leaked");
        assert!(!out.contains(&tok[4..]), "secret body leaked");
    }
    assert!(!json.contains("\"secret\""));
}

#[test]
fn shipgateignore_and_stable_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let tok = format!("ghp_{}", rand_alnum(36, 50));
    write(root, "a.sh", format!("echo start\nT={tok}\n"));
    write(root, ".env.production", "X=1\n");

    let first = scan_tree(root, &opts()).unwrap();
    assert_eq!(first.findings.len(), 2, "{:?}", first.findings);
    let fp = first
        .findings
        .iter()
        .find(|f| f.rule == "github-token")
        .unwrap()
        .fingerprint
        .clone();
    assert!(fp.starts_with("github-token:a.sh:"));

    // Lines inserted above: the line number moves, the fingerprint does not.
    write(
        root,
        "a.sh",
        format!("#!/bin/sh\nset -e\necho start\n  T={tok}\n"),
    );
    let moved = scan_tree(root, &opts()).unwrap();
    let f = moved
        .findings
        .iter()
        .find(|f| f.rule == "github-token")
        .unwrap();
    assert_eq!(f.line, 4);
    assert_eq!(f.fingerprint, fp);

    // Listing both fingerprints silences both; the ignore file itself is not flagged
    // even though it names a .env file and a rule.
    write(
        root,
        ".shipgateignore",
        format!("# reviewed\n\n{fp}\nenv-file:.env.production:-  # test fixture\n"),
    );
    assert_eq!(load_ignore_file(root).len(), 2);
    let quiet = scan_tree(root, &opts()).unwrap();
    assert!(quiet.findings.is_empty(), "{:?}", quiet.findings);
    assert_eq!(quiet.suppressed, 2);
}

#[test]
fn scan_tree_on_a_single_file() {
    let dir = tempfile::tempdir().unwrap();
    let tok = format!("glpat-{}", rand_alnum(20, 70));
    write(dir.path(), "one.txt", format!("x\nt={tok}\n"));
    let report = scan_tree(&dir.path().join("one.txt"), &opts()).unwrap();
    assert_eq!(report.files_scanned, 1);
    assert_eq!(report.findings.len(), 1);
    assert_eq!(
        (report.findings[0].path.as_str(), report.findings[0].line),
        ("one.txt", 2)
    );
}

#[test]
fn scan_tree_errors_on_missing_root() {
    let dir = tempfile::tempdir().unwrap();
    let err = scan_tree(&dir.path().join("nope"), &opts()).unwrap_err();
    assert!(err.to_string().starts_with("cannot read "), "{err}");
}

#[test]
fn fixture_tree() {
    // fixtures/secrets holds only harmless look-alikes: no findings at all.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/secrets");
    let report = scan_tree(&root, &opts()).unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.files_scanned, 6);
}

// ---------------------------------------------------------------- SARIF

#[test]
fn sarif_structure() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let key = format!("AIza{}", rand_alnum(35, 60));
    write(
        root,
        "maps.js",
        format!("const k = \"{key}\";\nconsole.log(k);\n"),
    );
    write(root, ".env", "");
    let report = scan_tree(root, &opts()).unwrap();
    let s = sarif(&report, "9.9.9");
    assert_eq!(s["version"], "2.1.0");
    assert!(s["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let driver = &s["runs"][0]["tool"]["driver"];
    assert_eq!(driver["name"], "shipgate");
    assert_eq!(driver["version"], "9.9.9");
    assert_eq!(
        driver["informationUri"],
        "https://github.com/shipgate/shipgate"
    );
    let ids: Vec<&str> = driver["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["env-file", "google-api-key", "debug-leftover"]);
    assert_eq!(driver["rules"][1]["defaultConfiguration"]["level"], "error");
    assert_eq!(
        driver["rules"][2]["defaultConfiguration"]["level"],
        "warning"
    );
    assert_eq!(
        driver["rules"][1]["shortDescription"]["text"],
        "Google API key"
    );

    let results = s["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    let env = &results[0];
    assert_eq!(env["ruleId"], "env-file");
    assert!(env["locations"][0]["physicalLocation"]
        .get("region")
        .is_none());
    assert_eq!(env["partialFingerprints"]["shipgate/v1"], "env-file:.env:-");
    let g = &results[1];
    assert_eq!(g["ruleId"], "google-api-key");
    assert_eq!(g["level"], "error");
    assert_eq!(g["message"]["text"], "Google API key (AIza…(39 chars))");
    let loc = &g["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "maps.js");
    assert_eq!(loc["region"]["startLine"], 1);
    assert_eq!(loc["region"]["startColumn"], 12);
    assert!(g["partialFingerprints"]["shipgate/v1"]
        .as_str()
        .unwrap()
        .starts_with("google-api-key:maps.js:"));
    assert_eq!(results[2]["level"], "warning");
    assert!(!s.to_string().contains(&key));
}

#[test]
fn a_pem_file_is_flagged_for_a_key_inside_not_for_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let begin = format!("-----BEGIN {}-----", "PRIVATE KEY");
    std::fs::write(
        dir.path().join("cert.pem"),
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("key.pem"),
        format!("{begin}\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----\n"),
    )
    .unwrap();
    let report =
        shipgate::secrets::scan_tree(dir.path(), &shipgate::secrets::ScanOptions::default())
            .unwrap();
    let found: Vec<(&str, &str)> = report
        .findings
        .iter()
        .map(|f| (f.path.as_str(), f.rule.as_str()))
        .collect();
    assert_eq!(found, [("key.pem", "private-key")], "{found:?}");
}

// ---------------------------------------------------------------- git work trees

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "commit.gpgSign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A pull request controls `.gitignore` and `.ignore`: in a git work tree
/// they must not hide committed files (a committed-but-ignored `.env` is the
/// classic leak). Untracked files count unless git ignores them; only
/// `secrets.exclude` removes committed paths.
#[test]
fn a_git_work_tree_is_scanned_by_what_is_committed_not_by_ignore_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let tok = format!("ghp_{}", rand_alnum(36, 80));
    let gl = format!("glpat-{}", rand_alnum(20, 81));
    let npm = format!("npm_{}", rand_alnum(36, 82));
    let ignored = format!("ghp_{}", rand_alnum(36, 83));
    let excluded = format!("ghp_{}", rand_alnum(36, 84));
    git(root, &["init", "-q", "-b", "main"]);
    write(root, ".gitignore", ".env\nconfig/\nbuild/\n");
    write(root, ".ignore", "src/\n");
    write(root, ".env", "DATABASE=1\n");
    write(root, "config/prod.yml", format!("gitlab: {gl}\n"));
    write(root, "src/app.js", format!("const t = \"{tok}\";\n"));
    write(root, "docs/example.md", format!("t={excluded}\n"));
    git(root, &["add", "-f", "."]);
    git(root, &["commit", "-q", "-m", "hide and seek"]);
    write(root, "untracked.txt", format!("t={npm}\n"));
    write(root, "build/out.txt", format!("t={ignored}\n"));

    let mut o = opts();
    o.exclude = vec!["docs/".to_string()];
    let report = scan_tree(root, &o).unwrap();
    let got: Vec<(&str, &str)> = report
        .findings
        .iter()
        .map(|f| (f.path.as_str(), f.rule.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (".env", "env-file"),
            ("config/prod.yml", "gitlab-token"),
            ("src/app.js", "github-token"),
            ("untracked.txt", "npm-token"),
        ],
        "{:#?}",
        report.findings
    );
}

/// Minified bundles are where browser keys leak, and they are large.
#[test]
fn files_over_one_mib_are_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let key = format!("AIza{}", rand_alnum(35, 90));
    let mut bundle = "var a=function(b){return b+1};".repeat(100_000);
    bundle.push_str(&format!("var k=\"{key}\";\n"));
    assert!(bundle.len() > 2 * 1024 * 1024);
    write(dir.path(), "dist/app.min.js", &bundle);
    let report = scan_tree(dir.path(), &opts()).unwrap();
    let found: Vec<(&str, &str, u32)> = report
        .findings
        .iter()
        .map(|f| (f.path.as_str(), f.rule.as_str(), f.line))
        .collect();
    assert_eq!(found, [("dist/app.min.js", "google-api-key", 1)]);
    assert_eq!(report.skipped_large, 0);
    assert_eq!(report.findings[0].secret, key);
}

/// `.shipgateignore` lists fingerprints, which are not secrets; anything
/// else written in it is scanned like any other file.
#[test]
fn shipgateignore_is_not_a_hiding_place() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let tok = format!("ghp_{}", rand_alnum(36, 95));
    write(
        root,
        ".shipgateignore",
        format!(
            "generic-secret:config/settings.py:0123456789ab\n# old token {tok}\naws-secret-access-key:a/b.txt:-  # reviewed\n"
        ),
    );
    let report = scan_tree(root, &opts()).unwrap();
    let found: Vec<(&str, &str, u32)> = report
        .findings
        .iter()
        .map(|f| (f.path.as_str(), f.rule.as_str(), f.line))
        .collect();
    assert_eq!(found, [(".shipgateignore", "github-token", 2)]);
}

// ------------------------------------------- keyed assignments: recall shapes

/// A 20-character password with upper and lower case, digits and symbols,
/// holding the symbols that placeholders are made of (`$`, `<`, `{`, `%`,
/// `[`) but not as a placeholder.
fn symbol_password(seed: u64) -> String {
    let a = rand_alnum(14, seed);
    format!("{}$<{}%[{}!", &a[..5], &a[5..10], &a[10..])
        .chars()
        .take(20)
        .collect::<String>()
        + "9Qz"
}

#[test]
fn typed_constants_are_found() {
    let v = rand_alnum(40, 200);
    flags(
        "src/sign.rs",
        &format!("const SIGNING_KEY: &str = \"{v}\";\n"),
        "generic-secret",
        &v,
    );
    flags(
        "src/lib.rs",
        &format!("pub static CLIENT_SECRET: &'static str = \"{v}\";\n"),
        "generic-secret",
        &v,
    );
    flags(
        "src/api.ts",
        &format!("export const apiSecret: string = \"{v}\";\n"),
        "generic-secret",
        &v,
    );
    flags(
        "settings.py",
        &format!("SECRET_KEY: str = \"{v}\"\n"),
        "generic-secret",
        &v,
    );
    // The same declarations without a secret value.
    clean(
        "src/sign.rs",
        "const SIGNING_KEY: &str = \"SHIPGATE_SIGNING_KEY\";\n",
    );
    clean(
        "src/sign.rs",
        "pub const TOKEN_HEADER: &str = \"x-shipgate-token-header\";\n",
    );
    clean(
        "src/api.ts",
        "export const apiSecret: string = process.env.API_SECRET_VALUE!;\n",
    );
    clean(
        "src/api.ts",
        "const apiSecret: string = \"<your-api-secret-here>\";\n",
    );
    clean(
        "src/sign.rs",
        "fn sign(signing_key: &str, body: &[u8]) -> String { todo!() }\n",
    );
}

#[test]
fn hex_keys_in_keyed_assignments_are_found() {
    for (i, n) in [32usize, 64].into_iter().enumerate() {
        let hex = rand_hex(n, 210 + i as u64);
        flags(
            "src/client.rs",
            &format!("    let api_key = \"{hex}\";\n"),
            "generic-secret",
            &hex,
        );
        flags(
            "src/client.rs",
            &format!("    let private_key = \"{hex}\";\n"),
            "generic-secret",
            &hex,
        );
        flags(
            "src/config.js",
            &format!("  apiKey: \"{hex}\",\n"),
            "generic-secret",
            &hex,
        );
        flags(
            "src/config.js",
            &format!("const SECRET_KEY = \"{hex}\";\n"),
            "generic-secret",
            &hex,
        );
        let upper = hex.to_ascii_uppercase();
        flags(
            "settings.py",
            &format!("API_KEY = \"{upper}\"\n"),
            "generic-secret",
            &upper,
        );
    }
    // Hex that is not random: repeated or counting digits, too short.
    clean(
        "src/client.rs",
        &format!("let api_key = \"{}\";\n", "0".repeat(32)),
    );
    clean(
        "src/client.rs",
        &format!("let api_key = \"{}\";\n", "ab12".repeat(8)),
    );
    clean(
        "src/client.rs",
        &format!("let api_key = \"{}\";\n", rand_hex(12, 212)),
    );
}

#[test]
fn passwords_with_symbols_are_found() {
    let pw = symbol_password(220);
    assert_eq!(pw.len(), 22);
    flags(
        "src/db.rs",
        &format!("    let password = \"{pw}\";\n"),
        "generic-secret",
        &pw,
    );
    flags(
        "src/db.js",
        &format!("  password: \"{pw}\",\n"),
        "generic-secret",
        &pw,
    );
    flags(
        "settings.py",
        &format!("SECRET_KEY = \"{pw}\"\n"),
        "generic-secret",
        &pw,
    );
    flags(
        "settings.py",
        &format!("DB_PASSWORD = '{pw}'\n"),
        "generic-secret",
        &pw,
    );
    // A password that starts with a symbol of a placeholder.
    for lead in ["$", "<", "%", "{"] {
        let v = format!("{lead}{pw}");
        flags(
            "src/db.rs",
            &format!("let db_password = \"{v}\";\n"),
            "generic-secret",
            &v,
        );
    }
}

#[test]
fn unquoted_values_in_env_and_yaml_files_are_found() {
    let pw = symbol_password(230);
    for (path, text) in [
        (".env", format!("DB_PASSWORD={pw}\n")),
        (".env.production", format!("export API_SECRET={pw}\n")),
        ("deploy/app.env", format!("SECRET_KEY = {pw}  # rotated\n")),
        ("config/db.yml", format!("database:\n  password: {pw}\n")),
        ("config/db.yaml", format!("- token: {pw}\n")),
    ] {
        flags(path, &text, "generic-secret", &pw);
    }
    // YAML syntax, references and code-like values are not secrets.
    for text in [
        "password: ${DB_PASSWORD}\n",
        "password: $DB_PASSWORD_VALUE\n",
        "password: !vault |\n",
        "token: &default_token_anchor\n",
        "secret_name: my-app-secret-name-v2\n",
        "api_key: your-api-key-goes-here\n",
        "password: xxxxxxxxxxxxxxxxxxxxxxxx\n",
        "client_secret: CLIENT_SECRET_FROM_VAULT\n",
        "password_file: /run/secrets/db_password\n",
    ] {
        clean("config/app.yml", text);
    }
    // Outside `.env` and YAML, an unquoted value is code, not a password.
    clean(
        "src/db.rs",
        "    password: cfg.database.pw_value.clone(),\n",
    );
    clean("src/db.rs", &format!("    password: {pw}\n"));
}

/// A committed `.env` that `.gitignore` lists: a scan of the git work tree
/// reports the file and the secret in it.
#[test]
fn a_committed_env_file_listed_in_gitignore_is_found_with_its_secret() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pw = symbol_password(240);
    git(root, &["init", "-q", "-b", "main"]);
    write(root, ".gitignore", ".env\n");
    write(
        root,
        "api/.env",
        format!("PORT=8080\nDB_PASSWORD={pw}\nLOG_LEVEL=debug\n"),
    );
    write(root, "api/main.rs", "fn main() {}\n");
    git(root, &["add", "."]);
    git(root, &["add", "-f", "api/.env"]);
    git(root, &["commit", "-q", "-m", "oops"]);
    let report = scan_tree(root, &opts()).unwrap();
    let got: Vec<(&str, &str, u32)> = report
        .findings
        .iter()
        .map(|f| (f.path.as_str(), f.rule.as_str(), f.line))
        .collect();
    assert_eq!(
        got,
        [
            ("api/.env", "env-file", 0),
            ("api/.env", "generic-secret", 2)
        ],
        "{:#?}",
        report.findings
    );
    assert_eq!(report.findings[1].secret, pw);
}

// ------------------------------------------------ placeholders are not secrets

#[test]
fn placeholders_in_urls_pass_and_real_values_are_found() {
    for placeholder in [
        "[pwd]",
        "[password]",
        "<password>",
        "<db-password>",
        "${DB_PASSWORD}",
        "$DB_PASSWORD",
        "{{password}}",
        "{password}",
        "%(password)s",
        "changeme",
        "xxxxxxxx",
        "your-password-here",
        "example",
    ] {
        for scheme in ["postgresql", "mysql", "redis"] {
            clean(
                "plan.md",
                &format!("DATABASE_URL={scheme}://postgres:{placeholder}@host/db\n"),
            );
        }
    }
    // `{{ password }}` has spaces: no URL at all.
    clean(
        "plan.md",
        "postgresql://postgres:{{ password }}@host:5432/db\n",
    );
    // Real values in the same places, also ones holding placeholder symbols.
    let a = rand_alnum(12, 250);
    for pw in [
        a.clone(),
        format!("{}[{}]", &a[..6], &a[6..]),
        format!("${}", &a[..1].to_ascii_lowercase()) + "!" + &a[1..],
        format!("<{}", &a),
        format!("{}%s", &a).replace("%s", "%5"),
    ] {
        flags(
            "plan.md",
            &format!("postgresql://postgres:{pw}@host/db\n"),
            "database-url",
            &pw,
        );
    }
}

#[test]
fn placeholders_in_assignments_pass_and_real_values_are_found() {
    for placeholder in [
        "[pwd]",
        "<password>",
        "<your-api-token>",
        "${DB_PASSWORD}",
        "$DB_PASSWORD",
        "{{ password }}",
        "{{password}}",
        "%(db_password)s",
        "%DB_PASSWORD%",
        "#{db_password}",
        "changeme",
        "changeme-changeme-changeme",
        "xxxxxxxxxxxxxxxxxxxxxxxx",
        "your-password-here",
        "example-secret-value-1234",
    ] {
        clean("config.py", &format!("DB_PASSWORD = \"{placeholder}\"\n"));
        clean("app.js", &format!("  password: '{placeholder}',\n"));
        clean("src/a.rs", &format!("let api_key = \"{placeholder}\";\n"));
        clean("config/app.yml", &format!("password: {placeholder}\n"));
        clean(".env", &format!("SECRET_KEY={placeholder}\n"));
    }
    // A placeholder's symbols inside a real value do not make it one.
    let a = rand_alnum(18, 260);
    for v in [
        format!("{}${{{}", &a[..9], &a[9..]),
        format!("{}<{}", &a[..9], &a[9..]),
        format!("{}{{{{{}", &a[..9], &a[9..]),
        format!("[{}", a),
    ] {
        flags(
            "config.py",
            &format!("DB_PASSWORD = \"{v}\"\n"),
            "generic-secret",
            &v,
        );
    }
}
