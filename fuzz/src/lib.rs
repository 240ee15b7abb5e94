//! The fuzz targets' bodies and their seed inputs.
//!
//! One file, used three ways: as the library of the cargo-fuzz crate (each
//! `fuzz_targets/*.rs` calls one body), and included with `#[path]` by the
//! main crate's `tests/fuzz_regressions.rs` (every seed and every saved crash
//! through every body, on stable, in CI) and `examples/fuzz_seeds.rs` (writes
//! the seed corpora). The bodies only call shipgate's public API; each checks
//! properties beyond "does not panic" where they are cheap and certain.

use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use secrecy::SecretString;
use shipgate::config::repo::RepoConfig;
use shipgate::deploy::commands::{did_you_mean, parse_comment, USAGE};
use shipgate::github::signature::{sign, verify, SignatureError};
use shipgate::handlers::{HandlerError, Handlers};

/// The targets, by name (`fuzz/fuzz_targets/<name>.rs`).
pub const TARGETS: &[&str] = &["commands", "repo_config", "signature", "webhook_payload"];

/// Runs target `name`'s body on `data`.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "commands" => commands(data),
        "repo_config" => repo_config(data),
        "signature" => signature(data),
        "webhook_payload" => webhook_payload(data),
        other => panic!("no fuzz target `{other}`"),
    }
}

/// A comment body (lossy UTF-8) through the ChatOps command parser.
pub fn commands(data: &[u8]) {
    let body = String::from_utf8_lossy(data);
    let lines = parse_comment(&body);
    assert!(lines.len() <= body.lines().count());
    for line in &lines {
        assert!(line.text.starts_with('/'), "{line:?}");
        // The normalised text is a command line of its own that reads the
        // same: what tells an edited comment's old lines from new ones.
        assert_eq!(parse_comment(&line.text), vec![line.clone()], "{line:?}");
        if let Ok(command) = &line.parsed {
            let _ = (command.name(), command.env());
        }
    }
    let names = USAGE.iter().map(|(name, _, _)| *name);
    for word in body.split_whitespace().take(16) {
        if let Some(suggestion) = did_you_mean(word, names.clone()) {
            assert!(
                !suggestion.eq_ignore_ascii_case(word),
                "{word:?} suggests itself"
            );
        }
    }
}

/// `.github/shipgate.yml`: the first 4 bytes pick an instant (minutes after
/// 2020-01-01, within 200 years), the rest is the file (lossy UTF-8).
pub fn repo_config(data: &[u8]) {
    let Some((minutes, text)) = data.split_first_chunk::<4>() else {
        return;
    };
    let minutes = i64::from(u32::from_le_bytes(*minutes)) % (200 * 366 * 24 * 60);
    let now: DateTime<Utc> = Utc
        .timestamp_opt(1_577_836_800 + minutes * 60, 0)
        .single()
        .expect("in range");
    let text = String::from_utf8_lossy(text);
    match RepoConfig::parse(&text) {
        Ok(config) => {
            let _ = (config.default_environment(), config.allowed_hosts());
            for (name, env) in &config.environments {
                let _ = config.smoke_suite(name);
                for window in config.freeze_windows(env) {
                    if let Some(freeze) = window.active_at(now) {
                        // An active freeze ends in the future.
                        assert!(
                            freeze.ends_at > now,
                            "{window:?} at {now}: {freeze:?} has already ended"
                        );
                    }
                }
            }
            for window in &config.freeze.windows {
                if let Some(freeze) = window.active_at(now) {
                    assert!(
                        freeze.ends_at > now,
                        "{window:?} at {now}: {freeze:?} has already ended"
                    );
                }
            }
        }
        Err(e) => {
            if let Some((line, column)) = e.location {
                assert!(line >= 1 && column >= 1, "{e:?}");
                assert!(
                    e.to_string()
                        .starts_with(&format!("line {line} column {column}: ")),
                    "{e}"
                );
            }
            // Where YAML itself tells the position of a problem, the error
            // keeps it. (Not every YAML error has one: a second document,
            // `---`, is refused without.)
            if let Err(yaml) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text) {
                if yaml.location().is_some() {
                    assert!(e.location.is_some(), "{e} lost the position of {yaml}");
                }
            }
        }
    }
}

/// `secret 0xFF header 0xFF body` (secret and header lossy UTF-8; without a
/// second part, no header) through `X-Hub-Signature-256` verification.
pub fn signature(data: &[u8]) {
    let mut parts = data.splitn(3, |b| *b == 0xff);
    let secret = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let header = parts
        .next()
        .map(|h| String::from_utf8_lossy(h).into_owned());
    let body = parts.next().unwrap_or_default();
    let secrets = [SecretString::from(secret.clone())];
    let correct = sign(secret.as_bytes(), body);
    let correct_hex = &correct["sha256=".len()..];

    let well_formed = |h: &str| {
        h.trim()
            .strip_prefix("sha256=")
            .is_some_and(|d| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    match (header.as_deref(), verify(&secrets, header.as_deref(), body)) {
        (None, result) => assert_eq!(result, Err(SignatureError::Missing)),
        (Some(h), Ok(())) => {
            // Accepted only when it is the body's signature (hex in any case).
            let digest = h.trim().strip_prefix("sha256=").expect("accepted");
            assert_eq!(digest.to_ascii_lowercase(), correct_hex, "{h:?} accepted");
        }
        (Some(h), Err(SignatureError::Malformed)) => assert!(!well_formed(h), "{h:?}"),
        (Some(h), Err(SignatureError::Mismatch)) => {
            assert!(well_formed(h), "{h:?}");
            let digest = h.trim().strip_prefix("sha256=").expect("well formed");
            assert_ne!(digest.to_ascii_lowercase(), correct_hex, "{h:?} refused");
        }
        (Some(h), Err(SignatureError::Missing)) => panic!("{h:?} reported missing"),
    }

    // The body's own signature verifies, also among other secrets; changing
    // any one hex digit of it, or having no secret at all, does not.
    assert_eq!(verify(&secrets, Some(&correct), body), Ok(()));
    let rotation = [
        SecretString::from(format!("{secret}-old")),
        SecretString::from(secret.clone()),
    ];
    assert_eq!(verify(&rotation, Some(&correct), body), Ok(()));
    let at = "sha256=".len() + body.len() % 64;
    let mut changed = correct.clone().into_bytes();
    changed[at] = if changed[at] == b'0' { b'1' } else { b'0' };
    let changed = String::from_utf8(changed).expect("hex");
    assert_eq!(
        verify(&secrets, Some(&changed), body),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify(&[], Some(&correct), body),
        Err(SignatureError::Mismatch)
    );
}

/// `event name \n body`: a delivery's body decoded as ingress and every
/// handler that wants the event decode it.
pub fn webhook_payload(data: &[u8]) {
    let Some(newline) = data.iter().position(|b| *b == b'\n') else {
        return;
    };
    let (Ok(event), body) = (std::str::from_utf8(&data[..newline]), &data[newline + 1..]) else {
        return;
    };
    let _ = decode_checked(event, body);
}

/// A handler's name and its decoding result, as text.
pub type HandlerResult = (&'static str, Result<(), String>);

/// What decoding `body` as `event` gave: `Err` when the envelope is refused,
/// else each wanting handler's name and result. Checks that a refused
/// envelope is exactly one `Envelope::parse` refuses, and that a payload a
/// handler cannot read is a permanent failure (a retry cannot fix it).
pub fn decode_checked(event: &str, body: &[u8]) -> Result<Vec<HandlerResult>, String> {
    let handlers = Handlers::default();
    let decoded = handlers.decode(event, body);
    let envelope = shipgate::github::events::Envelope::parse(body);
    match &decoded {
        Err(_) if envelope.is_ok() => {
            assert!(std::str::from_utf8(body).is_err(), "{decoded:?}")
        }
        Err(_) => {}
        Ok(results) => {
            let envelope = envelope.expect("decoded");
            assert_eq!(
                results.is_empty(),
                !handlers.wants(event, envelope.action.as_deref())
            );
            for (handler, result) in results {
                assert!(
                    result
                        .as_ref()
                        .map_or_else(HandlerError::is_permanent, |()| true),
                    "{handler}: {result:?}"
                );
            }
        }
    }
    decoded.map(|results| {
        results
            .into_iter()
            .map(|(h, r)| (h, r.map_err(|e| e.to_string())))
            .collect()
    })
}

/// The events shipgate's handlers act on (any action), with the internal
/// follow-up events last.
pub const HANDLED_EVENTS: &[&str] = &[
    "branch_protection_rule",
    "check_run",
    "check_suite",
    "deployment_protection_rule",
    "deployment_status",
    "installation",
    "installation_repositories",
    "issue_comment",
    "pull_request",
    "pull_request_review",
    "push",
    "repository",
    "shipgate_protection_recheck",
    "shipgate_smoke",
];

/// One seed input: target, file name, bytes.
pub type Seed = (&'static str, String, Vec<u8>);

/// Seed inputs for every target, from the repository's fixtures and docs
/// (`root` is the repository).
pub fn seeds(root: &Path) -> Vec<Seed> {
    let mut out = Vec::new();
    let read =
        |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));

    // Webhook payloads: every fixture under its event, plus the payloads
    // the fixtures lack (from the tests' fake GitHub and the handlers).
    let index: serde_json::Value =
        serde_json::from_str(&read("fixtures/webhooks-examples/index.json")).expect("index.json");
    let mut comment_bodies = Vec::new();
    for entry in index.as_array().expect("index is a list") {
        let (Some(event), Some(file)) = (entry["event"].as_str(), entry["file"].as_str()) else {
            panic!("bad index entry {entry}");
        };
        let body = read(&format!("fixtures/webhooks-examples/{file}"));
        if event == "issue_comment" {
            let payload: serde_json::Value = serde_json::from_str(&body).expect("fixture");
            if let Some(text) = payload["comment"]["body"].as_str() {
                comment_bodies.push(text.to_string());
            }
        }
        out.push((
            "webhook_payload",
            file.trim_end_matches(".json").to_string(),
            format!("{event}\n{body}").into_bytes(),
        ));
    }
    for (name, event, body) in EXTRA_PAYLOADS {
        out.push((
            "webhook_payload",
            (*name).to_string(),
            format!("{event}\n{body}").into_bytes(),
        ));
    }

    // Comments: the fixtures' comment bodies, the usage lines, the README's
    // commands, and comments mixing commands with code and quotes.
    let readme = read("README.md");
    for (i, body) in comment_bodies.iter().enumerate() {
        out.push((
            "commands",
            format!("fixture-{i}"),
            body.clone().into_bytes(),
        ));
    }
    for (name, usage, _) in USAGE {
        out.push((
            "commands",
            format!("usage-{name}"),
            usage.as_bytes().to_vec(),
        ));
    }
    let readme_commands: Vec<&str> = readme
        .lines()
        .map(|l| l.trim().trim_matches('`'))
        .filter(|l| l.starts_with('/') && !l.starts_with("//"))
        .collect();
    for (i, chunk) in readme_commands.chunks(4).enumerate() {
        out.push((
            "commands",
            format!("readme-{i}"),
            chunk.join("\n").into_bytes(),
        ));
    }
    for (i, body) in EXTRA_COMMENTS.iter().enumerate() {
        out.push(("commands", format!("comment-{i}"), body.as_bytes().to_vec()));
    }

    // Config files: the README's YAML blocks and the tests' configs, each
    // at a fixed instant (a Friday, 2026-11-20 17:30 UTC).
    let mut configs: Vec<(String, String)> = yaml_blocks(&readme)
        .into_iter()
        .enumerate()
        .map(|(i, y)| (format!("readme-{i}"), y))
        .collect();
    for test in [
        "tests/it/chatops.rs",
        "tests/it/protection.rs",
        "tests/it/protection_rules.rs",
        "tests/it/previews.rs",
    ] {
        let stem = Path::new(test)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("test");
        for (i, y) in raw_strings(&read(test)).into_iter().enumerate() {
            if y.contains("environments:") || y.contains("protection:") || y.contains("freeze:") {
                configs.push((format!("{stem}-{i}"), y));
            }
        }
    }
    let instant = u32::try_from((1_795_195_800 - 1_577_836_800) / 60).expect("fits");
    for (name, yaml) in configs {
        let mut data = instant.to_le_bytes().to_vec();
        data.extend_from_slice(yaml.as_bytes());
        out.push(("repo_config", name, data));
    }

    // Signatures: GitHub's documented example, and fixtures signed correctly,
    // with a wrong signature, and with malformed headers.
    let mut signed = |name: &str, secret: &str, header: Option<String>, body: &[u8]| {
        let mut data = secret.as_bytes().to_vec();
        if let Some(h) = header {
            data.push(0xff);
            data.extend_from_slice(h.as_bytes());
            data.push(0xff);
            data.extend_from_slice(body);
        }
        out.push(("signature", name.to_string(), data));
    };
    signed(
        "github-doc",
        "It's a Secret to Everybody",
        Some("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".into()),
        b"Hello, World!",
    );
    signed("missing", "secret", None, b"");
    for file in ["ping.0.json", "push.0.json", "issue_comment.0.json"] {
        let body = read(&format!("fixtures/webhooks-examples/{file}"));
        let stem = file.trim_end_matches(".json");
        let good = sign(b"webhook secret", body.as_bytes());
        signed(
            &format!("{stem}-good"),
            "webhook secret",
            Some(good.clone()),
            body.as_bytes(),
        );
        signed(
            &format!("{stem}-upper"),
            "webhook secret",
            Some(format!(" sha256={} ", good[7..].to_uppercase())),
            body.as_bytes(),
        );
        signed(
            &format!("{stem}-other-secret"),
            "another secret",
            Some(good.clone()),
            body.as_bytes(),
        );
        signed(
            &format!("{stem}-sha1"),
            "webhook secret",
            Some(format!("sha1={}", &good[7..47])),
            body.as_bytes(),
        );
    }
    out
}

/// Payloads of handled events that `fixtures/webhooks-examples` lacks:
/// (seed name, event, body).
const EXTRA_PAYLOADS: &[(&str, &str, &str)] = &[
    (
        "deployment_protection_rule",
        "deployment_protection_rule",
        r#"{"action":"requested","environment":"production","event":"push","deployment":{"id":7,"sha":"0123456789abcdef0123456789abcdef01234567","ref":"main","creator":{"login":"github-actions[bot]"}},"deployment_callback_url":"https://api.github.com/repos/acme/app/actions/runs/1/deployment_protection_rule","pull_requests":[{"number":3,"head":{"sha":"0123456789abcdef0123456789abcdef01234567"}}],"repository":{"full_name":"acme/app","default_branch":"main"},"installation":{"id":42},"sender":{"login":"alice","type":"User"}}"#,
    ),
    (
        "shipgate_protection_recheck",
        "shipgate_protection_recheck",
        r#"{"repository":{"full_name":"acme/app"},"installation":{"id":42}}"#,
    ),
    (
        "shipgate_smoke",
        "shipgate_smoke",
        r#"{"repository":"acme/app","installation":42,"default_branch":"main","deployment_id":7,"environment":"pr-3","sha":"0123456789abcdef0123456789abcdef01234567","url":"https://pr-3.preview.example.com","prs":[3],"kind":"deploy","deployed_from":3}"#,
    ),
    (
        "deployment_status-vercel",
        "deployment_status",
        r#"{"action":"created","deployment_status":{"state":"success","target_url":"https://app-git-x.vercel.app","environment_url":""},"deployment":{"id":9,"sha":"abc","environment":"Preview","payload":{"kind":"deploy","pr":3}},"repository":{"full_name":"acme/app"},"installation":{"id":42}}"#,
    ),
    (
        "issue_comment-edited",
        "issue_comment",
        r#"{"action":"edited","issue":{"number":3,"pull_request":{}},"comment":{"id":5,"body":"/deploy staging\n/lock production ttl=2h release","user":{"login":"alice"}},"changes":{"body":{"from":"/deploy staging"}},"repository":{"full_name":"acme/app"},"installation":{"id":42}}"#,
    ),
];

/// Comments that mix commands with Markdown.
const EXTRA_COMMENTS: &[&str] = &[
    "/deploy staging ref=v1.2.3 queue force\n/rollback production to=1234 force\n/lock production ttl=2h30m release freeze\n/unlock production\n/status\n/help",
    "Looks good!\n\n```\n/deploy production\n```\n> /deploy production\n    /deploy production\n\t/deploy x\n`/deploy staging` is how\n/deplyo staging\n/DEPLOY Staging\n/cc @team",
    "~~~\n/deploy a\n```\n/deploy b\n~~~\n/deploy c\r\n/lock env ttl=1d reason with  spaces\n/rollback\n/deploy ref= =x",
];

/// The bodies of the ```yaml blocks of a Markdown text.
fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_start().starts_with("```yaml")
                || line.trim_start().starts_with("```yml") =>
            {
                current = Some(String::new())
            }
            Some(_) if line.trim_start().starts_with("```") => out.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    out
}

/// The contents of the `r#"…"#` literals of Rust source.
fn raw_strings(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find("r#\"") {
        let after = &rest[start + 3..];
        let Some(end) = after.find("\"#") else { break };
        out.push(after[..end].to_string());
        rest = &after[end + 2..];
    }
    out
}
