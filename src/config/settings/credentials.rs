//! The settings that hold secrets: the webhook secrets, the GitHub
//! credentials (a token, or an App's id and private key). The notification
//! URLs are checked in `notify.rs`.
//! Apart so every secret-bearing value is checked in one place, and none is
//! echoed in an error.

use std::path::PathBuf;

use secrecy::SecretString;

use super::env::{non_empty, RawEnv};
use super::{bad, GitHubAuth, SettingsError};

/// Comma-separated webhook secrets; empty entries are ignored.
pub fn parse_secret_list(value: &str) -> Vec<SecretString> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| SecretString::from(s.to_string()))
        .collect()
}

/// `SHIPGATE_WEBHOOK_SECRET`: required, one secret or more.
pub(super) fn webhook_secrets(raw: &RawEnv) -> Result<Vec<SecretString>, SettingsError> {
    let webhook_secrets = match non_empty(raw.shipgate_webhook_secret.clone()) {
        None => return Err(bad("SHIPGATE_WEBHOOK_SECRET", "required but not set (the secret configured on the GitHub App's webhook; a comma-separated list rotates secrets)")),
        Some(v) => parse_secret_list(&v),
    };
    if webhook_secrets.is_empty() {
        return Err(bad(
            "SHIPGATE_WEBHOOK_SECRET",
            "holds no secret (only commas and spaces)",
        ));
    }
    Ok(webhook_secrets)
}

pub(super) fn github_auth(
    token: Option<String>,
    app_id: Option<String>,
    key: Option<String>,
    key_path: Option<PathBuf>,
) -> Result<GitHubAuth, SettingsError> {
    let token = non_empty(token);
    let app_id = non_empty(app_id);
    match (token, app_id) {
        (Some(_), Some(_)) => Err(bad(
            "GITHUB_TOKEN",
            "set either GITHUB_TOKEN or GITHUB_APP_ID, not both",
        )),
        (Some(t), None) => Ok(GitHubAuth::Token(SecretString::from(t.trim().to_string()))),
        (None, Some(id)) => {
            let app_id: u64 = id
                .trim()
                .parse()
                .map_err(|_| bad("GITHUB_APP_ID", format!("expected the App's numeric id, got `{id}`")))?;
            let key_path = key_path.filter(|p| !p.as_os_str().is_empty());
            let pem = match (non_empty(key), key_path) {
                (Some(k), _) => k.replace("\\n", "\n"),
                (None, Some(p)) => std::fs::read_to_string(&p).map_err(|e| {
                    bad("GITHUB_APP_PRIVATE_KEY_PATH", format!("cannot read {}: {e}", p.display()))
                })?,
                (None, None) => {
                    return Err(bad(
                        "GITHUB_APP_PRIVATE_KEY",
                        "GITHUB_APP_ID is set, so GITHUB_APP_PRIVATE_KEY (PEM text) or GITHUB_APP_PRIVATE_KEY_PATH is required",
                    ))
                }
            };
            if octocrab::EncodingKey::from_rsa_pem(pem.as_bytes()).is_err() {
                return Err(bad(
                    "GITHUB_APP_PRIVATE_KEY",
                    "not an RSA private key in PEM format (download it from the App's settings page)",
                ));
            }
            Ok(GitHubAuth::App {
                app_id,
                private_key: SecretString::from(pem),
            })
        }
        (None, None) => Err(bad(
            "GITHUB_TOKEN",
            "no GitHub credentials: set GITHUB_TOKEN, or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_PATH",
        )),
    }
}
