//! The repository configuration, `.github/shipgate.yml` (schema v1).
//!
//! Parsed with serde_yaml_ng (a maintained fork of the archived serde_yaml).
//! Unknown keys are rejected so a typo is an error, not a silently ignored
//! rule; errors carry line and column. A missing or empty file means
//! defaults. The JSON Schema (`shipgate config schema`) is generated from
//! these types.
//!
//! The file comes from whoever can push a branch or open a pull request, so
//! it is refused before parsing when it is over [`MAX_CONFIG_BYTES`] or nests
//! deeper than [`MAX_CONFIG_DEPTH`]: the YAML scanner does work proportional
//! to the nesting depth for every token, so `[[[[…` costs time quadratic in
//! its length (40 KB took seconds). The CLI, the Action and the server all
//! parse through [`RepoConfig::parse`], so they share these caps; the server
//! also parses off its async threads, a few at a time, within a time budget
//! ([`ConfigCache`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hashlink::LruCache;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::freeze::FreezeWindow;
use crate::github::content::FileRead;
use crate::github::{Api, GitHubError};

pub const CONFIG_PATH: &str = ".github/shipgate.yml";

/// The largest config file accepted (real ones are a few KiB).
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;

/// The deepest nesting of mappings and sequences accepted, the top-level
/// mapping being level 1 (the schema itself needs fewer than 10).
pub const MAX_CONFIG_DEPTH: usize = 32;

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged, deny_unknown_fields)]
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

impl<'de> Deserialize<'de> for RequiredCheck {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RequiredCheck;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a check name, or `{ name: CHECK, app: APP_SLUG }`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RequiredCheck, E> {
                Ok(RequiredCheck::Name(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RequiredCheck, A::Error> {
                use serde::de::Error;
                let (mut name, mut app) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "name" => name = Some(map.next_value::<String>()?),
                        "app" => app = Some(map.next_value::<String>()?),
                        other => return Err(A::Error::unknown_field(other, &["name", "app"])),
                    }
                }
                match (name, app) {
                    (Some(name), Some(app)) => Ok(RequiredCheck::FromApp { name, app }),
                    (None, _) => Err(A::Error::missing_field("name")),
                    (_, None) => Err(A::Error::missing_field("app")),
                }
            }
        }
        d.deserialize_any(Visitor)
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

pub use crate::duration::{humanize, DurationText};

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
    /// Files over [`MAX_CONFIG_BYTES`] or nested deeper than
    /// [`MAX_CONFIG_DEPTH`] are refused before they are parsed.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        if text.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError {
                location: None,
                message: format!(
                    "the file is {} KiB; the limit is {} KiB",
                    text.len().div_ceil(1024),
                    MAX_CONFIG_BYTES / 1024
                ),
            });
        }
        if text.trim().is_empty()
            || text
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            return Ok(RepoConfig::default());
        }
        if let Some(location) = nesting_beyond(text, MAX_CONFIG_DEPTH) {
            return Err(ConfigError {
                location: Some(location),
                message: format!(
                    "nested more than {MAX_CONFIG_DEPTH} levels deep; the limit is {MAX_CONFIG_DEPTH}"
                ),
            });
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

/// Where `text` first nests mappings and sequences (block or flow) more
/// than `limit` deep, as line and column; `None` if it never does, or if
/// the YAML is malformed before that (the full parse reports it, having
/// stopped there too).
///
/// It runs libyaml, the parser serde_yaml_ng uses, event by event and stops
/// at the first collection past the limit, so it sees exactly the nesting
/// the full parse would, and its cost stays small whatever the input: the
/// scanner reads ahead at most about 1,024 characters for a possible key, so
/// it never goes much deeper than the limit.
fn nesting_beyond(text: &str, limit: usize) -> Option<(usize, usize)> {
    use std::mem::MaybeUninit;
    use unsafe_libyaml as unsafe_yaml;

    /// An initialised parser, deleted on every way out. It is boxed because
    /// a parser reading a string points at itself.
    struct Parser(Box<MaybeUninit<unsafe_yaml::yaml_parser_t>>);
    impl Drop for Parser {
        fn drop(&mut self) {
            // SAFETY: a `Parser` is only built around an initialised parser.
            unsafe { unsafe_yaml::yaml_parser_delete(self.0.as_mut_ptr()) }
        }
    }

    let mut boxed = Box::new(MaybeUninit::<unsafe_yaml::yaml_parser_t>::uninit());
    // SAFETY: `boxed` is valid, writable memory for a parser.
    if unsafe { unsafe_yaml::yaml_parser_initialize(boxed.as_mut_ptr()) }.fail {
        return None; // out of memory: the full parse will say so
    }
    let mut parser = Parser(boxed);
    let p = parser.0.as_mut_ptr();
    // SAFETY: `p` is initialised; `text` outlives `parser`, which is
    // dropped at the end of this function.
    unsafe {
        unsafe_yaml::yaml_parser_set_encoding(p, unsafe_yaml::YAML_UTF8_ENCODING);
        unsafe_yaml::yaml_parser_set_input_string(p, text.as_ptr(), text.len() as u64);
    }
    let mut depth = 0usize;
    loop {
        let mut event = MaybeUninit::<unsafe_yaml::yaml_event_t>::uninit();
        // SAFETY: `p` is initialised and its input is alive; a successful
        // call initialises `event`, which is read and then deleted once.
        let (kind, mark) = unsafe {
            if unsafe_yaml::yaml_parser_parse(p, event.as_mut_ptr()).fail {
                return None;
            }
            let e = event.as_mut_ptr();
            let read = ((*e).type_, (*e).start_mark);
            unsafe_yaml::yaml_event_delete(e);
            read
        };
        match kind {
            unsafe_yaml::YAML_SEQUENCE_START_EVENT | unsafe_yaml::YAML_MAPPING_START_EVENT => {
                depth += 1;
                if depth > limit {
                    return Some((mark.line as usize + 1, mark.column as usize + 1));
                }
            }
            unsafe_yaml::YAML_SEQUENCE_END_EVENT | unsafe_yaml::YAML_MAPPING_END_EVENT => {
                depth = depth.saturating_sub(1)
            }
            unsafe_yaml::YAML_STREAM_END_EVENT => return None,
            _ => {}
        }
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

/// Limits of a [`ConfigCache`].
#[derive(Debug, Clone)]
pub struct ConfigCacheLimits {
    /// Parsed configs kept, and as many ref resolutions; the least recently
    /// used go first, so one busy repository cannot empty it for everyone.
    pub entries: usize,
    /// Bytes of config text whose parses are kept: what bounds the memory,
    /// since a parse takes about 2 to 20 times its text (a 64 KiB file of
    /// one-character list items, 1.3 MB).
    pub text_bytes: usize,
    /// Parses running at once, each on a blocking thread, never on the
    /// async runtime's.
    pub parallel_parses: usize,
    /// A parse that takes longer counts as an invalid file. With the size
    /// and depth caps a parse takes milliseconds; this is the backstop.
    pub parse_budget: Duration,
}

impl Default for ConfigCacheLimits {
    fn default() -> Self {
        ConfigCacheLimits {
            entries: 10_000,
            text_bytes: 32 << 20,
            parallel_parses: 2,
            parse_budget: Duration::from_secs(5),
        }
    }
}

/// Parsed configs by blob sha, and what each (repo, ref) last resolved to.
/// A commit sha never changes, so a ref that is one is answered from memory
/// with no request; a branch costs one conditional request (a 304 when the
/// file is unchanged, which does not count against the rate limit) and no
/// parsing. Both maps are least-recently-used caches of bounded size; a
/// blob's parse (or its error) is kept, so the same file is parsed once.
pub struct ConfigCache {
    by_sha: Mutex<ParsedCache>,
    refs: Mutex<LruCache<(String, String), RefEntry>>,
    parses: Arc<tokio::sync::Semaphore>,
    parse_budget: Duration,
}

/// A parsed config, or why the file is invalid.
type Parsed = Result<Arc<RepoConfig>, ConfigError>;

#[derive(Clone)]
struct RefEntry {
    etag: Option<String>,
    /// The blob sha, or `None` when the file was missing.
    blob: Option<String>,
    /// The length of the blob's text.
    text_bytes: usize,
    /// For a missing file: the repository's config generation read before
    /// GitHub said so, and when (see [`ConfigCache::load_at_generation`]).
    missing_since: Option<(i64, std::time::Instant)>,
}

/// How long a branch's missing config is believed without asking GitHub
/// again, while no push to the repository was processed since: a push
/// webhook that is lost delays a new file by at most this long.
pub const MISSING_CONFIG_TTL: Duration = Duration::from_secs(60);

/// Parses by blob sha, least recently used first out, bounded in count and
/// in the bytes of text they were parsed from.
struct ParsedCache {
    lru: LruCache<String, (Parsed, usize)>,
    text_bytes: usize,
    max_entries: usize,
    max_text_bytes: usize,
}

impl ParsedCache {
    fn get(&mut self, blob: &str) -> Option<Parsed> {
        self.lru.get(blob).map(|(parsed, _)| parsed.clone())
    }

    fn insert(&mut self, blob: String, parsed: Parsed, text_bytes: usize) {
        if let Some((_, old)) = self.lru.insert(blob, (parsed, text_bytes)) {
            self.text_bytes -= old;
        }
        self.text_bytes += text_bytes;
        // The entry just added stays, even alone over the byte cap: it is
        // the one in use.
        while self.lru.len() > 1
            && (self.lru.len() > self.max_entries || self.text_bytes > self.max_text_bytes)
        {
            if let Some((_, (_, size))) = self.lru.remove_lru() {
                self.text_bytes -= size;
            }
        }
    }
}

impl Default for ConfigCache {
    fn default() -> Self {
        ConfigCache::with_limits(ConfigCacheLimits::default())
    }
}

fn is_commit_sha(git_ref: &str) -> bool {
    git_ref.len() == 40 && git_ref.bytes().all(|b| b.is_ascii_hexdigit())
}

impl ConfigCache {
    pub fn with_limits(limits: ConfigCacheLimits) -> Self {
        ConfigCache {
            by_sha: Mutex::new(ParsedCache {
                lru: LruCache::new_unbounded(),
                text_bytes: 0,
                max_entries: limits.entries.max(1),
                max_text_bytes: limits.text_bytes,
            }),
            refs: Mutex::new(LruCache::new(limits.entries.max(1))),
            parses: Arc::new(tokio::sync::Semaphore::new(limits.parallel_parses.max(1))),
            parse_budget: limits.parse_budget,
        }
    }

    /// Drops every parsed config but keeps what each ref resolved to (and
    /// its ETag), as eviction under pressure does. For tests.
    pub fn evict_parsed(&self) {
        let mut by_sha = self.by_sha.lock().expect("poisoned");
        by_sha.lru.clear();
        by_sha.text_bytes = 0;
    }

    /// Loads `.github/shipgate.yml` of `repo` at `git_ref` (a branch or commit sha).
    pub async fn load(
        &self,
        api: &Api,
        repo: &str,
        git_ref: &str,
    ) -> Result<LoadedConfig, GitHubError> {
        self.load_at_generation(api, repo, git_ref, None).await
    }

    /// Whether [`ConfigCache::load_at_generation`] of this ref has a use for
    /// the repository's generation: a branch not known to have the file
    /// (a commit's answer never changes, and a known file is asked about
    /// with its ETag anyway).
    pub fn wants_generation(&self, repo: &str, git_ref: &str) -> bool {
        !is_commit_sha(git_ref)
            && self
                .ref_entry(&(repo.to_string(), git_ref.to_string()))
                .is_none_or(|e| e.blob.is_none())
    }

    /// [`ConfigCache::load`], given the repository's config generation read
    /// just before (a counter the store bumps on every push to the
    /// repository, on whichever replica processes it). A branch where the
    /// file was missing at the same generation, less than
    /// [`MISSING_CONFIG_TTL`] ago, is answered "missing" with no request:
    /// most repositories an App is installed on have no config, and without
    /// this every delivery of theirs cost a request (and a 404 counts
    /// against the rate limit). A push bumps the generation first, so the
    /// file it adds is read by the next delivery in the repository's order.
    pub async fn load_at_generation(
        &self,
        api: &Api,
        repo: &str,
        git_ref: &str,
        generation: Option<i64>,
    ) -> Result<LoadedConfig, GitHubError> {
        let key = (repo.to_string(), git_ref.to_string());
        let known = self.ref_entry(&key);
        if let (Some((seen, at)), Some(now)) =
            (known.as_ref().and_then(|k| k.missing_since), generation)
        {
            if seen == now && at.elapsed() < MISSING_CONFIG_TTL {
                return Ok(LoadedConfig {
                    source: ConfigSource::Missing,
                    config: Ok(Arc::new(RepoConfig::default())),
                });
            }
        }
        // Taken now and held through the request, so a 304 can be answered
        // even if the parse is evicted meanwhile.
        let cached = known.as_ref().and_then(|k| self.loaded_from_entry(k));
        if let (Some(loaded), true) = (&cached, is_commit_sha(git_ref)) {
            return Ok(loaded.clone());
        }
        // An ETag is only sent when its 304 can be answered from memory.
        let etag = match &cached {
            Some(_) => known.as_ref().and_then(|k| k.etag.as_deref()),
            None => None,
        };
        let read = match api.get_file(repo, CONFIG_PATH, git_ref, etag).await? {
            FileRead::NotModified => match cached {
                Some(loaded) => {
                    if let (ConfigSource::File { sha }, Some(entry)) = (&loaded.source, known) {
                        let size = entry.text_bytes;
                        self.remember_parsed(sha.clone(), loaded.config.clone(), size);
                        self.remember_ref(key, entry);
                    }
                    return Ok(loaded);
                }
                // A 304 to a request without an ETag: read the file whole.
                None => api.get_file(repo, CONFIG_PATH, git_ref, None).await?,
            },
            read => read,
        };
        let (blob, text, etag) = match read {
            FileRead::Missing => {
                let entry = RefEntry {
                    etag: None,
                    blob: None,
                    text_bytes: 0,
                    missing_since: generation
                        .filter(|_| !is_commit_sha(git_ref))
                        .map(|g| (g, std::time::Instant::now())),
                };
                self.remember_ref(key, entry);
                return Ok(LoadedConfig {
                    source: ConfigSource::Missing,
                    config: Ok(Arc::new(RepoConfig::default())),
                });
            }
            FileRead::NotModified => {
                return Err(GitHubError::Decode(
                    "304 Not Modified to a request without an ETag".into(),
                ))
            }
            FileRead::Found(file) => (file.sha, file.text, file.etag),
        };
        let text_bytes = text.len();
        // The same blob may be known from another ref: it is parsed once.
        let parsed = match self.parsed(&blob) {
            Some(parsed) => parsed,
            None => {
                let parsed = self
                    .parse_bounded(move || RepoConfig::parse(&text).map(Arc::new))
                    .await;
                self.remember_parsed(blob.clone(), parsed.clone(), text_bytes);
                parsed
            }
        };
        let entry = RefEntry {
            etag,
            blob: Some(blob.clone()),
            text_bytes,
            missing_since: None,
        };
        self.remember_ref(key, entry);
        Ok(LoadedConfig {
            source: ConfigSource::File { sha: blob },
            config: parsed,
        })
    }

    /// Runs `parse` on a blocking thread once one of the parse permits is
    /// free. The permit goes with the thread, so a parse that outlives its
    /// budget still counts against the bound until it really ends; the
    /// caller stops waiting at the budget and gets an error instead.
    async fn parse_bounded<F>(&self, parse: F) -> Parsed
    where
        F: FnOnce() -> Parsed + Send + 'static,
    {
        let permit = self
            .parses
            .clone()
            .acquire_owned()
            .await
            .expect("the parse semaphore is never closed");
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            parse()
        });
        let error = |message: String| {
            Err(ConfigError {
                location: None,
                message,
            })
        };
        match tokio::time::timeout(self.parse_budget, task).await {
            Ok(Ok(parsed)) => parsed,
            Ok(Err(failed)) => error(format!("the YAML parser failed on this file ({failed})")),
            Err(_) => error(format!(
                "parsing took longer than {} ms; simplify the file",
                self.parse_budget.as_millis()
            )),
        }
    }

    fn loaded_from_entry(&self, entry: &RefEntry) -> Option<LoadedConfig> {
        match &entry.blob {
            None => Some(LoadedConfig {
                source: ConfigSource::Missing,
                config: Ok(Arc::new(RepoConfig::default())),
            }),
            Some(blob) => self.parsed(blob).map(|parsed| LoadedConfig {
                source: ConfigSource::File { sha: blob.clone() },
                config: parsed,
            }),
        }
    }

    fn parsed(&self, blob: &str) -> Option<Parsed> {
        self.by_sha.lock().expect("poisoned").get(blob)
    }

    fn remember_parsed(&self, blob: String, parsed: Parsed, text_bytes: usize) {
        self.by_sha
            .lock()
            .expect("poisoned")
            .insert(blob, parsed, text_bytes);
    }

    fn ref_entry(&self, key: &(String, String)) -> Option<RefEntry> {
        self.refs.lock().expect("poisoned").get(key).cloned()
    }

    fn remember_ref(&self, key: (String, String), entry: RefEntry) {
        self.refs.lock().expect("poisoned").insert(key, entry);
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
    fn required_checks_are_names_or_names_with_their_app() {
        let c = RepoConfig::parse(
            "environments:\n  p:\n    required_checks: [ci, { name: e2e, app: github-actions }]\n",
        )
        .unwrap();
        assert_eq!(
            c.environments["p"].required_checks,
            [
                RequiredCheck::Name("ci".into()),
                RequiredCheck::FromApp {
                    name: "e2e".into(),
                    app: "github-actions".into()
                }
            ]
        );
        let e = RepoConfig::parse(
            "environments:\n  p:\n    required_checks: [{ name: ci, ap: github-actions }]\n",
        )
        .unwrap_err();
        assert!(
            e.message
                .contains("unknown field `ap`, expected `name` or `app`"),
            "{e}"
        );
        assert_eq!(e.location.map(|l| l.0), Some(3), "{e}");
        let e = RepoConfig::parse("environments:\n  p:\n    required_checks: [{ name: ci }]\n")
            .unwrap_err();
        assert!(e.message.contains("missing field `app`"), "{e}");
        let e = RepoConfig::parse("environments:\n  p:\n    required_checks: [5]\n").unwrap_err();
        assert!(
            e.message
                .contains("expected a check name, or `{ name: CHECK, app: APP_SLUG }`"),
            "{e}"
        );
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

    /// One busy repository filled the cache and it was emptied whole, so
    /// every other repository's config was read and parsed again. Now only
    /// the least recently used entries go.
    #[test]
    fn a_busy_repository_evicts_only_the_least_recently_used_entries() {
        let cache = ConfigCache::with_limits(ConfigCacheLimits {
            entries: 3,
            ..Default::default()
        });
        let parsed = || Ok(Arc::new(RepoConfig::default()));
        let entry = |blob: &str| RefEntry {
            etag: Some(format!("\"{blob}\"")),
            blob: Some(blob.into()),
            text_bytes: 10,
            missing_since: None,
        };
        let key = |repo: &str| (repo.to_string(), "main".to_string());
        cache.remember_parsed("quiet".into(), parsed(), 10);
        cache.remember_ref(key("quiet/app"), entry("quiet"));
        cache.remember_parsed("busy-1".into(), parsed(), 10);
        cache.remember_ref(key("busy/1"), entry("busy-1"));
        // The quiet repository is used again; the busy one goes on.
        assert!(cache.parsed("quiet").is_some());
        assert!(cache.ref_entry(&key("quiet/app")).is_some());
        for n in 2..=3 {
            cache.remember_parsed(format!("busy-{n}"), parsed(), 10);
            cache.remember_ref(key(&format!("busy/{n}")), entry(&format!("busy-{n}")));
        }
        assert!(cache.parsed("quiet").is_some(), "recently used: kept");
        assert!(cache.ref_entry(&key("quiet/app")).is_some());
        assert!(
            cache.parsed("busy-1").is_none(),
            "least recently used: evicted"
        );
        assert!(cache.ref_entry(&key("busy/1")).is_none());
        for n in 2..=3 {
            assert!(cache.parsed(&format!("busy-{n}")).is_some());
        }
    }

    #[test]
    fn parses_are_also_bounded_by_the_bytes_of_text_they_came_from() {
        let cache = ConfigCache::with_limits(ConfigCacheLimits {
            entries: 100,
            text_bytes: 100,
            ..Default::default()
        });
        let parsed = || Ok(Arc::new(RepoConfig::default()));
        cache.remember_parsed("a".into(), parsed(), 40);
        cache.remember_parsed("b".into(), parsed(), 40);
        assert!(cache.parsed("a").is_some());
        cache.remember_parsed("c".into(), parsed(), 40);
        assert!(cache.parsed("b").is_none(), "least recently used goes");
        assert!(cache.parsed("a").is_some() && cache.parsed("c").is_some());
        // One entry larger than the whole budget is kept alone.
        cache.remember_parsed("huge".into(), parsed(), 1_000);
        assert!(cache.parsed("huge").is_some());
        assert!(cache.parsed("a").is_none() && cache.parsed("c").is_none());
        assert_eq!(cache.by_sha.lock().unwrap().text_bytes, 1_000);
    }

    #[test]
    fn a_file_over_the_size_cap_is_refused_before_parsing() {
        // Valid YAML: a config, then comments.
        let at_cap = format!(
            "version: 1\n{}",
            "#".repeat(MAX_CONFIG_BYTES - "version: 1\n".len() - 1) + "\n"
        );
        assert_eq!(at_cap.len(), MAX_CONFIG_BYTES);
        assert!(RepoConfig::parse(&at_cap).is_ok());
        let e = RepoConfig::parse(&format!("{at_cap}#")).unwrap_err();
        assert_eq!(e.to_string(), "the file is 65 KiB; the limit is 64 KiB");
        let e = RepoConfig::parse(&" ".repeat(300 * 1024)).unwrap_err();
        assert_eq!(e.to_string(), "the file is 300 KiB; the limit is 64 KiB");
    }

    /// `environments: [[[[…` took serde_yaml_ng seconds at 40 KB (time
    /// quadratic in the depth), on whichever thread called `parse`.
    #[test]
    fn absurd_nesting_is_refused_quickly_with_its_position() {
        let deep = format!("environments: {}", "[".repeat(MAX_CONFIG_BYTES - 20));
        let started = std::time::Instant::now();
        let e = RepoConfig::parse(&deep).unwrap_err();
        let took = started.elapsed();
        // The top-level mapping is level 1, so the 32nd `[` is level 33.
        assert_eq!(
            e.to_string(),
            "line 1 column 46: nested more than 32 levels deep; the limit is 32"
        );
        // It stops at the limit: milliseconds, where a full parse took
        // seconds at 40 KB. The bound is loose on purpose (a shared CI box).
        assert!(took < std::time::Duration::from_secs(1), "{took:?}");
        let flow_maps = format!("environments: {}", "{a: ".repeat(10_000));
        let e = RepoConfig::parse(&flow_maps).unwrap_err();
        assert!(e.message.starts_with("nested more than 32"), "{e}");
    }

    #[test]
    fn the_depth_limit_counts_block_and_flow_nesting_as_the_parser_sees_it() {
        // 32 levels: no depth error (a type error instead); 33: the depth error.
        let nested = |levels: usize| {
            let mut text = String::from("smoke:\n");
            for i in 1..levels - 1 {
                text.push_str(&" ".repeat(2 * i));
                text.push_str("x:\n");
            }
            text.push_str(&" ".repeat(2 * (levels - 1)));
            text.push_str("[1]\n");
            text
        };
        let e = RepoConfig::parse(&nested(32)).unwrap_err();
        assert!(!e.message.contains("levels deep"), "{e}");
        let e = RepoConfig::parse(&nested(33)).unwrap_err();
        assert_eq!(e.location, Some((33, 65)), "{e}");
        assert!(e.message.contains("nested more than 32 levels deep"), "{e}");
        // Brackets in quoted strings, comments and block scalars are text, not nesting.
        let text = format!(
            "# {open}\nenvironments:\n  prod:\n    required_checks: [\"{open}\", '{open}']\n    url: |\n      {open}\n",
            open = "[".repeat(100)
        );
        let c = RepoConfig::parse(&text).unwrap();
        assert_eq!(
            c.environments["prod"].required_checks[0],
            RequiredCheck::Name("[".repeat(100))
        );
    }

    /// A parse that outlives its budget is abandoned with an error, and its
    /// permit stays taken until the thread really ends, so such parses
    /// cannot pile up beyond the bound.
    #[tokio::test]
    async fn parses_run_off_the_async_threads_within_a_budget_and_a_bound() {
        let cache = Arc::new(ConfigCache::with_limits(ConfigCacheLimits {
            parallel_parses: 1,
            parse_budget: Duration::from_millis(200),
            ..Default::default()
        }));
        let (release, stuck) = std::sync::mpsc::channel::<()>();
        let e = cache
            .parse_bounded(move || {
                let _ = stuck.recv();
                Ok(Arc::new(RepoConfig::default()))
            })
            .await
            .unwrap_err();
        assert_eq!(
            e.message,
            "parsing took longer than 200 ms; simplify the file"
        );
        // The stuck parse still holds the only permit: the next one waits.
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let next = tokio::spawn({
            let cache = cache.clone();
            async move {
                cache
                    .parse_bounded(move || {
                        let _ = started_tx.send(());
                        RepoConfig::parse("version: 1\n").map(Arc::new)
                    })
                    .await
            }
        });
        assert_eq!(cache.parses.available_permits(), 0);
        release.send(()).unwrap();
        started
            .await
            .expect("the next parse runs once the stuck one ends");
        assert!(next.await.unwrap().is_ok());
        assert_eq!(cache.parses.available_permits(), 1);
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
