//! Path rules (committed files that should not be committed at all) and the
//! file-name-triggered content rules (`.npmrc`, `.pypirc`, credentials JSON).

use std::sync::LazyLock;

use regex::Regex;

use super::rules::is_placeholder;
use super::{fingerprint_line, path_fingerprint, redact, Finding, Severity};

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn path_finding(rule: &str, description: &str, path: &str) -> Finding {
    Finding {
        rule: rule.to_string(),
        description: description.to_string(),
        severity: Severity::Error,
        path: path.to_string(),
        line: 0,
        column: 1,
        redacted: String::new(),
        secret: String::new(),
        fingerprint: path_fingerprint(rule, path),
    }
}

/// `.env`, `.env.local`, `.env.production`, … but not the templates.
fn is_env_file(name: &str) -> bool {
    if name == ".env" {
        return true;
    }
    let Some(rest) = name.strip_prefix(".env.") else {
        return false;
    };
    const TEMPLATES: &[&str] = &["example", "sample", "template", "dist", "defaults"];
    !rest.is_empty()
        && !rest
            .split('.')
            .any(|part| TEMPLATES.contains(&part.to_ascii_lowercase().as_str()))
}

fn is_private_key_file(name: &str) -> bool {
    if matches!(name, "id_rsa" | "id_dsa" | "id_ecdsa" | "id_ed25519") {
        return true;
    }
    // `.pem`/`.key` files are often public certificates: the `private-key`
    // content rule flags the ones that hold a key. Keystores are keys.
    let lower = name.to_ascii_lowercase();
    [".p12", ".pfx"]
        .iter()
        .any(|ext| lower.len() > ext.len() && lower.ends_with(ext))
}

/// The path rules for one relative path (forward slashes).
pub fn path_findings(path: &str) -> Vec<Finding> {
    let name = basename(path);
    let mut out = Vec::new();
    if is_env_file(name) {
        out.push(path_finding(
            "env-file",
            "Environment file committed to the repository",
            path,
        ));
    }
    if is_private_key_file(name) {
        out.push(path_finding(
            "private-key-file",
            "Private key file committed to the repository",
            path,
        ));
    }
    out
}

fn is_credentials_json(name: &str) -> bool {
    name == "credentials.json" || (name.starts_with("service-account") && name.ends_with(".json"))
}

/// Does this file name need the file-name content rules?
pub(crate) fn wants_file_rules(path: &str) -> bool {
    let name = basename(path);
    matches!(name, ".npmrc" | ".pypirc") || is_credentials_json(name)
}

static NPM_AUTH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:_authToken|_auth|_password)\s*=\s*(?P<s>\S+)").expect("npmrc regex")
});
static PYPI_PASSWORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^\s*password\s*[=:]\s*(?P<s>\S+)").expect("pypirc regex"));
static PRIVATE_KEY_FIELD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#""private_key"\s*:\s*"[^"]"#).expect("credentials regex"));

/// `.npmrc`/`.pypirc` holding a token or password, credentials JSON holding a
/// private key. Returns the suppressed count.
pub(crate) fn file_rule_findings(path: &str, text: &str, out: &mut Vec<Finding>) -> u64 {
    let name = basename(path);
    let mut suppressed = 0;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let hit = match name {
            ".npmrc" => NPM_AUTH.captures(line).and_then(|c| c.name("s")).map(|m| {
                (
                    "registry-credentials",
                    "Registry credentials in .npmrc",
                    m.start(),
                    m.as_str(),
                )
            }),
            ".pypirc" => PYPI_PASSWORD
                .captures(line)
                .and_then(|c| c.name("s"))
                .map(|m| {
                    (
                        "registry-credentials",
                        "Registry credentials in .pypirc",
                        m.start(),
                        m.as_str(),
                    )
                }),
            _ => PRIVATE_KEY_FIELD.find(line).map(|m| {
                (
                    "credentials-file",
                    "Cloud credentials file with a private key",
                    m.start(),
                    "",
                )
            }),
        };
        let Some((rule, description, start, value)) = hit else {
            continue;
        };
        let value = value.trim_matches(|c| c == '"' || c == '\'');
        if rule == "registry-credentials" && is_placeholder(value) {
            continue;
        }
        if line.contains("shipgate:allow") {
            suppressed += 1;
            continue;
        }
        out.push(Finding {
            rule: rule.to_string(),
            description: description.to_string(),
            severity: Severity::Error,
            path: path.to_string(),
            line: i as u32 + 1,
            column: line[..start].chars().count() as u32 + 1,
            redacted: if value.is_empty() {
                String::new()
            } else {
                redact(value)
            },
            secret: value.to_string(),
            fingerprint: fingerprint_line(rule, path, line),
        });
    }
    suppressed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files() {
        for p in [
            ".env",
            "app/.env",
            ".env.local",
            "a/b/.env.production",
            ".env.staging",
        ] {
            assert!(is_env_file(basename(p)), "{p}");
        }
        for p in [
            ".env.example",
            ".env.sample",
            ".env.template",
            ".env.dist",
            ".env.defaults",
            ".env.local.example",
            ".envrc",
            "env",
            ".environment",
            ".env.",
        ] {
            assert!(!is_env_file(basename(p)), "{p}");
        }
    }

    #[test]
    fn key_files() {
        for p in ["id_rsa", "home/.ssh/id_ed25519", "c.p12", "c.PFX"] {
            assert!(is_private_key_file(basename(p)), "{p}");
        }
        for p in [
            "id_rsa.pub",
            "id_ed25519.pub",
            "keys.rs",
            ".key",
            "monkey",
            "pem",
            "tls/server.pem",
            "a.key",
        ] {
            assert!(!is_private_key_file(basename(p)), "{p}");
        }
    }
}
