//! The repository configuration, `.github/shipgate.yml` (schema v1).
//!
//! Parsed with serde_yaml_ng (a maintained fork of the archived serde_yaml).
//! Unknown keys are rejected so a typo is an error, not a silently ignored
//! rule; errors carry line and column. A missing or empty file means
//! defaults. The JSON Schema (`shipgate config schema`) is generated from
//! these types.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::freeze::FreezeWindow;
use crate::github::content::FileRead;
use crate::github::{Api, GitHubError};

pub const CONFIG_PATH: &str = ".github/shipgate.yml";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    /// Schema version; only 1 exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Environment `/deploy` uses when none is named (default: the only one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_environment: Option<String>,
    /// Deployment environments and their gates.
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentConfig>,
    /// Smoke checks run against deployed URLs.
    #[serde(default)]
    pub smoke: SmokeConfig,
    /// Preview URL comments on pull requests.
    #[serde(default)]
    pub preview: PreviewConfig,
    /// Branch protection policy.
    #[serde(default)]
    pub protection: ProtectionConfig,
    /// Committed-secret scanning.
    #[serde(default)]
    pub secrets: SecretsConfig,
    /// Deploy freeze windows.
    #[serde(default)]
    pub freeze: FreezeConfig,
    /// Release tag rules (the Action's `release` gate).
    #[serde(default)]
    pub release: ReleaseConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseConfig {
    /// Regular expression release tags must match (default: SemVer `v1.2.3`, optional pre-release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_pattern: Option<String>,
    /// The tag must carry a verified signature.
    #[serde(default)]
    pub require_signed: bool,
    /// The changelog that must have a section for the version (default `CHANGELOG.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changelog: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentConfig {
    /// The deployed URL (smoke checks run against it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Minimum role (read | triage | write | maintain | admin) or a list of logins and @org/team names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployers: Option<Deployers>,
    /// Approving reviews the pull request needs.
    #[serde(default)]
    pub required_approvals: u32,
    /// Check-run names or status contexts that must be green on the deployed
    /// commit; `all` means every check. `{ name: ci, app: github-actions }`
    /// accepts only a check run of that app (by its slug).
    #[serde(default)]
    pub required_checks: Vec<RequiredCheck>,
    /// `/deploy` only from pull requests that target these branches (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub base_branches: Vec<String>,
    /// Marks deployments as production (`production_environment`).
    #[serde(default)]
    pub production: bool,
    /// Freeze windows for this environment (the top-level `freeze` applies too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub freeze: Vec<FreezeWindow>,
    /// How long a lock lasts when `/lock` gives no `ttl=`, and how long a
    /// deploy's lock lasts at most if its deployment never reports a final state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_ttl: Option<DurationText>,
    /// Smoke checks for this environment (default: the top-level `smoke`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke: Option<SmokeConfig>,
    /// When a deployment here succeeds but its smoke checks fail, roll back
    /// to the last successful deployment.
    #[serde(default)]
    pub auto_rollback: bool,
    /// Branches (globs such as `main` or `release/*`) and tags
    /// (`refs/tags/v*`) that may deploy here, checked for deployments
    /// shipgate did not create (deployment protection rule); empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refs: Vec<String>,
    /// How long a deployment protection rule request may wait for a gate that
    /// is only temporarily closed before it is rejected (default 1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_timeout: Option<DurationText>,
    /// Approvals of an earlier head commit still count (default false: only
    /// approvals of the commit being deployed count).
    #[serde(default)]
    pub stale_approvals: bool,
    /// Pull requests whose head lives in a fork may deploy here (default
    /// false: a fork's code would run with this environment's secrets).
    #[serde(default)]
    pub allow_forks: bool,
}

/// A required check: a name (any app or status), or a name and the slug of
/// the GitHub App whose check run counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RequiredCheck {
    Name(String),
    FromApp {
        /// The check run's name.
        name: String,
        /// The slug of the App that must report it (e.g. `github-actions`).
        app: String,
    },
}

impl RequiredCheck {
    pub fn name(&self) -> &str {
        match self {
            RequiredCheck::Name(n) | RequiredCheck::FromApp { name: n, .. } => n,
        }
    }

    pub fn app(&self) -> Option<&str> {
        match self {
            RequiredCheck::Name(_) => None,
            RequiredCheck::FromApp { app, .. } => Some(app),
        }
    }

    /// As shown to people: `ci`, or `ci` from `github-actions`.
    pub fn label(&self) -> String {
        match self {
            RequiredCheck::Name(n) => n.clone(),
            RequiredCheck::FromApp { name, app } => format!("{name} (from {app})"),
        }
    }
}

impl From<&str> for RequiredCheck {
    fn from(name: &str) -> Self {
        RequiredCheck::Name(name.to_string())
    }
}

impl EnvironmentConfig {
    /// The minimum role, or the allowed logins and teams.
    pub fn deployers(&self) -> Deployers {
        self.deployers
            .clone()
            .unwrap_or(Deployers::Role(Role::Write))
    }
}

/// A duration such as `90s`, `30m`, `2h`, `1h30m` or `1d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct DurationText(pub std::time::Duration);

impl DurationText {
    pub fn parse(s: &str) -> Result<Self, String> {
        let err = || format!("expected a duration like 30m, 2h or 1h30m, got \"{s}\"");
        let mut total = 0u64;
        let mut number = String::new();
        let mut saw_unit = false;
        for c in s.trim().chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let n: u64 = number.parse().map_err(|_| err())?;
            number.clear();
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 604_800,
                _ => return Err(err()),
            };
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(err)?;
            saw_unit = true;
        }
        if !number.is_empty() || !saw_unit || total == 0 {
            return Err(err());
        }
        Ok(DurationText(std::time::Duration::from_secs(total)))
    }
}

impl TryFrom<String> for DurationText {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        DurationText::parse(&s)
    }
}

impl From<DurationText> for String {
    fn from(d: DurationText) -> String {
        humanize(d.0)
    }
}

/// `1h30m`-style text for a duration.
pub fn humanize(d: std::time::Duration) -> String {
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Deployers {
    Role(Role),
    List(Vec<String>),
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Triage => "triage",
            Role::Write => "write",
            Role::Maintain => "maintain",
            Role::Admin => "admin",
        }
    }
}

pub use crate::smoke::config::SmokeConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewConfig {
    /// Post the preview comment on pull requests.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Hosts (globs) that may be probed; default: the common preview providers
    /// (`*.vercel.app`, `*.netlify.app`, …) and the hosts of `environments.*.url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<Vec<String>>,
    /// Probe URLs that resolve to loopback, private or link-local addresses.
    #[serde(default)]
    pub allow_private: bool,
    /// Smoke checks for previews (default: the top-level `smoke`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke: Option<SmokeConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProtectionConfig {
    /// `enforce` restores drift; `audit` only reports it.
    #[serde(default)]
    pub mode: ProtectionMode,
    /// Desired protection per branch; keys not given are left as GitHub has them.
    #[serde(default)]
    pub branches: BTreeMap<String, BranchProtection>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProtectionMode {
    #[default]
    Enforce,
    Audit,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchProtection {
    pub required_approvals: Option<u32>,
    pub dismiss_stale_reviews: Option<bool>,
    pub require_code_owner_reviews: Option<bool>,
    pub require_last_push_approval: Option<bool>,
    pub required_checks: Option<Vec<String>>,
    pub strict: Option<bool>,
    pub enforce_admins: Option<bool>,
    pub allow_force_pushes: Option<bool>,
    pub allow_deletions: Option<bool>,
    pub required_linear_history: Option<bool>,
    pub required_conversation_resolution: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// Paths (gitignore syntax) never scanned.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Report debug leftovers (`console.log`, `dbg!`, `pdb.set_trace()`, …) as warnings (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug_leftovers: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeConfig {
    /// Freeze windows for every environment.
    #[serde(default)]
    pub windows: Vec<FreezeWindow>,
    /// A pull request label that turns the Action's `freeze` failure into a
    /// warning (default `freeze-override`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_label: Option<String>,
}

impl Default for PreviewConfig {
    fn default() -> Self {
        PreviewConfig {
            enabled: true,
            allowed_hosts: None,
            allow_private: false,
            smoke: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// A config file that does not parse or validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", location.map(|(l, c)| format!("line {l} column {c}: ")).unwrap_or_default())]
pub struct ConfigError {
    /// 1-based line and column, when known.
    pub location: Option<(usize, usize)>,
    pub message: String,
}

impl RepoConfig {
    /// The environment `/deploy` uses when none is named: `default_environment`,
    /// or the only environment.
    pub fn default_environment(&self) -> Option<&str> {
        match &self.default_environment {
            Some(name) => Some(name.as_str()),
            None if self.environments.len() == 1 => {
                self.environments.keys().next().map(String::as_str)
            }
            None => None,
        }
    }

    /// The smoke suite for a deployment to `environment`: the environment's
    /// own, else for a preview (an environment not in the config)
    /// `preview.smoke`, else the top-level `smoke` (empty: the default suite).
    pub fn smoke_suite(&self, environment: &str) -> &SmokeConfig {
        match self.environments.get(environment) {
            Some(env) => env.smoke.as_ref().unwrap_or(&self.smoke),
            None => self.preview.smoke.as_ref().unwrap_or(&self.smoke),
        }
    }

    /// Hosts a deployment URL may have to be probed.
    pub fn allowed_hosts(&self) -> Vec<String> {
        if let Some(hosts) = &self.preview.allowed_hosts {
            return hosts.clone();
        }
        let mut hosts: Vec<String> = crate::smoke::guard::DEFAULT_ALLOWED_HOSTS
            .iter()
            .map(|h| h.to_string())
            .collect();
        hosts.extend(self.environment_hosts());
        hosts
    }

    /// The hosts of `environments.*.url`, as the SSRF guard writes hosts
    /// (lower case, no trailing dot or IPv6 brackets).
    pub fn environment_hosts(&self) -> Vec<String> {
        self.environments
            .values()
            .filter_map(|env| env.url.as_deref())
            .filter_map(|u| url::Url::parse(u).ok())
            .filter_map(|u| crate::smoke::guard::host_of(&u).ok())
            .map(|(host, _)| host)
            .collect()
    }

    /// The freeze windows that apply to `environment`.
    pub fn freeze_windows<'a>(
        &'a self,
        environment: &'a EnvironmentConfig,
    ) -> impl Iterator<Item = &'a FreezeWindow> {
        self.freeze.windows.iter().chain(environment.freeze.iter())
    }

    /// Parses the YAML text of `.github/shipgate.yml`. An empty file is the default config.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        if text.trim().is_empty()
            || text
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            return Ok(RepoConfig::default());
        }
        let located = |e: serde_yaml_ng::Error| {
            let location = e.location().map(|l| (l.line(), l.column()));
            // serde_yaml_ng appends " at line L column C"; we report it separately.
            let message = e.to_string();
            let message = match message.find(" at line ") {
                Some(i) if location.is_some() => message[..i].to_string(),
                _ => message,
            };
            ConfigError { location, message }
        };
        // Maps (environments, branches) keep the last of duplicate keys: an
        // environment named twice would silently lose its first rules.
        serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text).map_err(located)?;
        let config: RepoConfig = serde_yaml_ng::from_str(text).map_err(located)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks that hold across sections.
    fn validate(&self) -> Result<(), ConfigError> {
        let err = |message: String| {
            Err(ConfigError {
                location: None,
                message,
            })
        };
        if let Some(v) = self.version {
            if v != 1 {
                return err(format!("version: only schema version 1 exists, got {v}"));
            }
        }
        for (i, w) in self.freeze.windows.iter().enumerate() {
            w.validate()
                .or_else(|m| err(format!("freeze.windows[{i}]: {m}")))?;
        }
        self.smoke.validate("smoke").or_else(err)?;
        if let Some(p) = &self.release.tag_pattern {
            regex::Regex::new(p).map_err(|e| ConfigError {
                location: None,
                message: format!("release.tag_pattern: {e}"),
            })?;
        }
        if let Some(s) = &self.preview.smoke {
            s.validate("preview.smoke").or_else(err)?;
        }
        for (name, env) in &self.environments {
            if let Some(s) = &env.smoke {
                s.validate(&format!("environments.{name}.smoke"))
                    .or_else(err)?;
            }
            for (i, w) in env.freeze.iter().enumerate() {
                w.validate()
                    .or_else(|m| err(format!("environments.{name}.freeze[{i}]: {m}")))?;
            }
            if let Some(Deployers::List(list)) = &env.deployers {
                if list.is_empty() {
                    return err(format!("environments.{name}.deployers: an empty list lets nobody deploy; name a role or logins"));
                }
            }
        }
        if let Some(env) = &self.default_environment {
            if !self.environments.contains_key(env) {
                return err(format!(
                    "default_environment: `{env}` is not one of the environments ({})",
                    self.environments
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The JSON Schema of the file, generated from these types.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(RepoConfig)).expect("schema serializes")
    }
}

/// Where a loaded config came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// The repository has no `.github/shipgate.yml`: defaults apply.
    Missing,
    /// The file with this blob sha.
    File { sha: String },
}

#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub source: ConfigSource,
    pub config: Result<Arc<RepoConfig>, ConfigError>,
}

/// Parsed configs by blob sha, and what each (repo, ref) last resolved to.
/// A commit sha never changes, so a ref that is one is answered from memory
/// with no request; a branch costs one conditional request (a 304 when the
/// file is unchanged, which does not count against the rate limit) and no
/// parsing. Both maps are bounded.
#[derive(Default)]
pub struct ConfigCache {
    by_sha: Mutex<HashMap<String, Result<Arc<RepoConfig>, ConfigError>>>,
    refs: Mutex<HashMap<(String, String), RefEntry>>,
}

#[derive(Clone)]
struct RefEntry {
    etag: Option<String>,
    /// The blob sha, or `None` when the file was missing.
    blob: Option<String>,
}

const CACHE_CAP: usize = 10_000;

fn is_commit_sha(git_ref: &str) -> bool {
    git_ref.len() == 40 && git_ref.bytes().all(|b| b.is_ascii_hexdigit())
}

fn insert_bounded<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, value: V) {
    if map.len() >= CACHE_CAP {
        map.clear();
    }
    map.insert(key, value);
}

impl ConfigCache {
    /// Loads `.github/shipgate.yml` of `repo` at `git_ref` (a branch or commit sha).
    pub async fn load(
        &self,
        api: &Api,
        repo: &str,
        git_ref: &str,
    ) -> Result<LoadedConfig, GitHubError> {
        let key = (repo.to_string(), git_ref.to_string());
        let known = self.refs.lock().expect("poisoned").get(&key).cloned();
        if let (Some(entry), true) = (&known, is_commit_sha(git_ref)) {
            if let Some(loaded) = self.loaded_from_entry(entry) {
                return Ok(loaded);
            }
        }
        let etag = known.as_ref().and_then(|k| k.etag.as_deref());
        let (blob, text, etag) = match api.get_file(repo, CONFIG_PATH, git_ref, etag).await? {
            FileRead::Missing => {
                let entry = RefEntry {
                    etag: None,
                    blob: None,
                };
                insert_bounded(&mut self.refs.lock().expect("poisoned"), key, entry);
                return Ok(LoadedConfig {
                    source: ConfigSource::Missing,
                    config: Ok(Arc::new(RepoConfig::default())),
                });
            }
            FileRead::NotModified => match known.as_ref().and_then(|k| self.loaded_from_entry(k)) {
                Some(loaded) => return Ok(loaded),
                None => {
                    return Err(GitHubError::Decode(
                        "304 for a file that is not cached".into(),
                    ))
                }
            },
            FileRead::Found(file) => (file.sha, file.text, file.etag),
        };
        let parsed = RepoConfig::parse(&text).map(Arc::new);
        insert_bounded(
            &mut self.by_sha.lock().expect("poisoned"),
            blob.clone(),
            parsed.clone(),
        );
        let entry = RefEntry {
            etag,
            blob: Some(blob.clone()),
        };
        insert_bounded(&mut self.refs.lock().expect("poisoned"), key, entry);
        Ok(LoadedConfig {
            source: ConfigSource::File { sha: blob },
            config: parsed,
        })
    }

    fn loaded_from_entry(&self, entry: &RefEntry) -> Option<LoadedConfig> {
        match &entry.blob {
            None => Some(LoadedConfig {
                source: ConfigSource::Missing,
                config: Ok(Arc::new(RepoConfig::default())),
            }),
            Some(blob) => self
                .by_sha
                .lock()
                .expect("poisoned")
                .get(blob)
                .map(|parsed| LoadedConfig {
                    source: ConfigSource::File { sha: blob.clone() },
                    config: parsed.clone(),
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_comment_only_files_are_defaults() {
        assert_eq!(RepoConfig::parse("").unwrap(), RepoConfig::default());
        assert_eq!(
            RepoConfig::parse("# nothing yet\n\n").unwrap(),
            RepoConfig::default()
        );
    }

    #[test]
    fn a_full_file_parses() {
        let c = RepoConfig::parse(
            "version: 1\ndefault_environment: staging\nenvironments:\n  staging:\n    url: https://staging.example.com\n    deployers: write\n  production:\n    deployers: [alice, '@acme/sre']\n    required_approvals: 2\n    required_checks: [ci]\nprotection:\n  mode: audit\n  branches:\n    main:\n      required_approvals: 2\n      strict: true\n",
        )
        .unwrap();
        assert_eq!(
            c.environments["staging"].deployers,
            Some(Deployers::Role(Role::Write))
        );
        assert_eq!(c.environments["production"].required_approvals, 2);
        assert_eq!(c.protection.mode, ProtectionMode::Audit);
        assert_eq!(c.protection.branches["main"].strict, Some(true));
        assert_eq!(c.protection.branches["main"].enforce_admins, None);
    }

    /// Found by the `repo_config` fuzz target (fuzz/regressions/repo_config/duplicate-environment).
    #[test]
    fn an_environment_named_twice_is_an_error_with_line_and_column() {
        let e = RepoConfig::parse(
            "environments:\n  production:\n    required_approvals: 2\n  production:\n    deployers: write\n",
        )
        .unwrap_err();
        // serde_yaml_ng points at the map that has the duplicate.
        assert_eq!(e.location, Some((2, 3)), "{e}");
        assert!(
            e.message
                .contains("duplicate entry with key \"production\""),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_line_and_column() {
        let e =
            RepoConfig::parse("environments:\n  staging:\n    required_aprovals: 1\n").unwrap_err();
        assert_eq!(e.location, Some((3, 5)), "{e}");
        assert!(
            e.message.contains("unknown field `required_aprovals`"),
            "{e}"
        );
        assert!(e.to_string().starts_with("line 3 column 5: "), "{e}");
        let e = RepoConfig::parse("enviroments: {}\n").unwrap_err();
        assert_eq!(e.location, Some((1, 1)), "{e}");
    }

    #[test]
    fn wrong_types_and_cross_section_mistakes_are_errors() {
        let e =
            RepoConfig::parse("environments:\n  prod:\n    required_approvals: two\n").unwrap_err();
        assert_eq!(e.location.map(|l| l.0), Some(3), "{e}");
        let e = RepoConfig::parse("default_environment: prod\nenvironments:\n  staging: {}\n")
            .unwrap_err();
        assert!(
            e.message
                .contains("`prod` is not one of the environments (staging)"),
            "{e}"
        );
        let e = RepoConfig::parse("version: 2\n").unwrap_err();
        assert!(e.message.contains("only schema version 1"), "{e}");
        assert!(RepoConfig::parse("- a list\n").is_err());
    }

    #[test]
    fn the_issue_example_parses() {
        let c = RepoConfig::parse(
            r#"
default_environment: staging
environments:
  staging:
    deployers: write
    required_approvals: 0
    required_checks: []
  production:
    deployers: maintain
    required_approvals: 2
    required_checks: [ci]
    base_branches: [main]
    production: true
    freeze:
      - { days: [fri, sat, sun], from: "15:00", to: "23:59", timezone: "America/Santiago" }
      - { dates: ["2026-12-24", "2026-12-31"] }
    lock_ttl: 2h
"#,
        )
        .unwrap();
        let prod = &c.environments["production"];
        assert_eq!(
            prod.lock_ttl.unwrap().0,
            std::time::Duration::from_secs(7200)
        );
        assert_eq!(prod.freeze.len(), 2);
        assert!(prod.production);
        assert_eq!(c.default_environment(), Some("staging"));
        assert_eq!(
            c.environments["staging"].deployers(),
            Deployers::Role(Role::Write)
        );
        let e =
            RepoConfig::parse("environments:\n  p:\n    freeze:\n      - { from: \"10:00\" }\n")
                .unwrap_err();
        assert!(
            e.message
                .contains("environments.p.freeze[0]: a freeze window needs"),
            "{e}"
        );
        let e = RepoConfig::parse("environments:\n  p:\n    lock_ttl: forever\n").unwrap_err();
        assert!(e.message.contains("expected a duration"), "{e}");
        assert_eq!(e.location.map(|l| l.0), Some(3));
    }

    #[test]
    fn durations() {
        let d = |s: &str| DurationText::parse(s).map(|d| d.0.as_secs());
        assert_eq!(d("90s"), Ok(90));
        assert_eq!(d("1h30m"), Ok(5400));
        assert_eq!(d("2d"), Ok(172_800));
        for bad in ["", "10", "h", "1x", "0m", "-1h"] {
            assert!(d(bad).is_err(), "{bad}");
        }
        assert_eq!(humanize(std::time::Duration::from_secs(5400)), "1h30m");
    }

    #[test]
    fn schema_names_every_top_level_section() {
        let schema = RepoConfig::json_schema();
        let props = schema["properties"].as_object().unwrap();
        for key in [
            "environments",
            "smoke",
            "preview",
            "protection",
            "secrets",
            "freeze",
        ] {
            assert!(props.contains_key(key), "{key} missing from schema");
        }
        assert_eq!(schema["additionalProperties"], serde_json::json!(false));
    }
}
