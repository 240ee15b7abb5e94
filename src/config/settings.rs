//! Server settings, read from the environment with envy.
//!
//! Every variable is read as text first and then checked here, so a bad value
//! produces one line that names the variable and says what is wrong (the CLI
//! prints it and exits with status 2). Secrets are held in `SecretString`,
//! whose `Debug` prints `[REDACTED]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://shipgate.db";
pub const DEFAULT_LISTEN: &str = "0.0.0.0:3000";
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";

/// A setting that is missing or malformed. `Display` is the one line the CLI prints.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct SettingsError {
    pub var: &'static str,
    pub problem: String,
}

fn bad(var: &'static str, problem: impl Into<String>) -> SettingsError {
    SettingsError {
        var,
        problem: problem.into(),
    }
}

pub use crate::github::GitHubAuth;

pub use crate::telemetry::LogFormat;

/// Tuning of the delivery worker.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Deliveries processed at once by this process; 0 runs ingress only.
    pub concurrency: usize,
    /// Attempts before a delivery is marked failed (dead).
    pub max_attempts: u32,
    /// How long a claimed delivery stays reserved for the claiming process; a
    /// replica that dies mid-delivery loses its claim after this.
    pub lease: Duration,
    /// Upper bound for one delivery's handlers.
    pub handler_timeout: Duration,
    /// Base of the exponential retry backoff.
    pub backoff_base: Duration,
    /// How often idle workers look for work that another replica stored.
    pub poll_interval: Duration,
    /// How long a stored `shipgate/policy` job waits before it runs
    /// (`SHIPGATE_POLICY_DELAY_MS`): the check runs, reviews and pushes of a
    /// commit that arrive meanwhile share its one evaluation.
    pub policy_delay: Duration,
    /// Done and failed deliveries are deleted after this long.
    pub retention: Duration,
    /// How often pending deployment protection rule requests are looked at
    /// for freeze ends and deadlines.
    pub protection_sweep: Duration,
    // ---- fair share of the workers per installation
    /// Deliveries of one installation (tenant) in processing in this process
    /// at once, at most (`SHIPGATE_WORKER_PER_INSTALLATION`); `None` for the
    /// default, see [`WorkerSettings::installation_share`].
    pub per_installation: Option<usize>,
}

impl WorkerSettings {
    /// How many of this process's workers one installation may hold at once:
    /// `per_installation`, or by default half of `concurrency`, at least 1, so
    /// one tenant's slow work cannot hold every worker while others wait.
    pub fn installation_share(&self) -> usize {
        self.per_installation.unwrap_or(self.concurrency / 2).max(1)
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            concurrency: 4,
            max_attempts: 6,
            lease: Duration::from_secs(300),
            handler_timeout: Duration::from_secs(120),
            backoff_base: Duration::from_secs(2),
            poll_interval: Duration::from_secs(1),
            policy_delay: Duration::from_secs(2),
            retention: Duration::from_secs(7 * 24 * 3600),
            protection_sweep: Duration::from_secs(30),
            per_installation: None,
        }
    }
}

/// Limits that keep slow or hostile HTTP clients from pinning the server.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// A connection must deliver a request's headers within this long
    /// (also closes idle keep-alive connections).
    pub header_timeout: Duration,
    /// A webhook body must arrive in full within this long (GitHub itself
    /// gives up on a delivery after 10 s).
    pub body_timeout: Duration,
    /// Open connections at most; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// Webhook requests handled at once; beyond that the answer is an
    /// immediate 503 (the redelivery sweeper brings such deliveries back).
    pub max_in_flight: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_in_flight: 256,
        }
    }
}

/// The redelivery sweeper (GitHub App mode only): GitHub never retries a
/// failed delivery by itself, so shipgate asks for the ones it never stored.
#[derive(Debug, Clone)]
pub struct RedeliverSettings {
    pub enabled: bool,
    /// Time between sweeps.
    pub interval: Duration,
    /// How far back to look (GitHub keeps deliveries for redelivery 3 days).
    pub window: Duration,
    /// Redelivery requests per sweep at most.
    pub max_per_sweep: usize,
    /// Deliveries listed per sweep at most (100 per page).
    pub max_listed: usize,
}

impl Default for RedeliverSettings {
    fn default() -> Self {
        RedeliverSettings {
            enabled: true,
            interval: Duration::from_secs(300),
            // A little under 3 days, so a request is never for a delivery
            // GitHub no longer redelivers.
            window: Duration::from_secs(3 * 24 * 3600 - 3600),
            max_per_sweep: 100,
            // 100 pages; only the first sweep of a process goes that deep.
            max_listed: 10_000,
        }
    }
}

// ---- Smoke probes: what a repository's smoke suite may do from the server.

pub use crate::smoke::limits::SmokeSettings;

// ---- Limits that keep a stranger or a config file from stalling the server.

/// How `/webhook` reads bodies. Bodies are read before a request takes one
/// of the in-flight permits, so unauthenticated slow bodies cannot hold the
/// capacity signed deliveries need; these limits bound what reading costs.
#[derive(Debug, Clone)]
pub struct BodyLimits {
    /// After the first second, a body must keep arriving at this average
    /// rate (bytes per second), or the answer is 408; 0 turns the rule off.
    pub min_bytes_per_sec: u64,
    /// Unfinished bodies one client address (an IPv4 address, or an IPv6
    /// /64) may have at once; the next gets 429.
    pub max_per_client: usize,
    /// Bytes of webhook bodies held in memory at once, over all requests;
    /// a body that would go over gets 503.
    pub buffer_bytes: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            min_bytes_per_sec: 16 * 1024,
            max_per_client: 32,
            buffer_bytes: 256 << 20,
        }
    }
}

fn smoke_settings(raw: &RawEnv) -> Result<SmokeSettings, SettingsError> {
    let d = SmokeSettings::default();
    Ok(SmokeSettings {
        max_checks: positive(
            "SHIPGATE_SMOKE_MAX_CHECKS",
            &raw.shipgate_smoke_max_checks,
            d.max_checks as u64,
        )? as usize,
        max_samples: positive_u32(
            "SHIPGATE_SMOKE_MAX_SAMPLES",
            &raw.shipgate_smoke_max_samples,
            d.max_samples,
        )?,
        max_burst: positive_u32(
            "SHIPGATE_SMOKE_MAX_BURST",
            &raw.shipgate_smoke_max_burst,
            d.max_burst,
        )?,
        max_requests: positive_u32(
            "SHIPGATE_SMOKE_MAX_REQUESTS",
            &raw.shipgate_smoke_max_requests,
            d.max_requests,
        )?,
        concurrency: positive(
            "SHIPGATE_SMOKE_CONCURRENCY",
            &raw.shipgate_smoke_concurrency,
            d.concurrency as u64,
        )? as usize,
        hourly_budget: positive_u32(
            "SHIPGATE_SMOKE_HOURLY_BUDGET",
            &raw.shipgate_smoke_hourly_budget,
            d.hourly_budget,
        )?,
        allow_private: boolean(
            "SHIPGATE_ALLOW_PRIVATE_PROBES",
            &raw.shipgate_allow_private_probes,
            d.allow_private,
        )?,
    })
}

/// A number that must be at least 1 and fit in 32 bits.
fn positive_u32(
    var: &'static str,
    value: &Option<String>,
    default: u32,
) -> Result<u32, SettingsError> {
    let n = positive(var, value, default as u64)?;
    u32::try_from(n).map_err(|_| bad(var, format!("must be at most {}, got {n}", u32::MAX)))
}

/// The server's cache of parsed `.github/shipgate.yml` files.
#[derive(Debug, Clone)]
pub struct ConfigCacheSettings {
    /// Parsed configs kept, and as many ref resolutions; the least recently
    /// used go first.
    pub entries: usize,
    /// Bytes of config text whose parses are kept (a parse takes a few
    /// times its text).
    pub text_bytes: usize,
}

impl Default for ConfigCacheSettings {
    fn default() -> Self {
        ConfigCacheSettings {
            entries: 10_000,
            text_bytes: 32 << 20,
        }
    }
}

/// The largest webhook body (25 MiB) must fit in the body buffer.
const MIN_BODY_BUFFER_MIB: u64 = 25;

fn body_limits(raw: &RawEnv) -> Result<BodyLimits, SettingsError> {
    let d = BodyLimits::default();
    let buffer_mib = positive(
        "SHIPGATE_BODY_BUFFER_MIB",
        &raw.shipgate_body_buffer_mib,
        (d.buffer_bytes >> 20) as u64,
    )?;
    if !(MIN_BODY_BUFFER_MIB..=1 << 20).contains(&buffer_mib) {
        return Err(bad(
            "SHIPGATE_BODY_BUFFER_MIB",
            format!("must be between {MIN_BODY_BUFFER_MIB} (the largest webhook body) and 1048576, got {buffer_mib}"),
        ));
    }
    Ok(BodyLimits {
        min_bytes_per_sec: parse_number(
            "SHIPGATE_BODY_MIN_BYTES_PER_SEC",
            raw.shipgate_body_min_bytes_per_sec.clone(),
            d.min_bytes_per_sec,
        )?,
        max_per_client: positive(
            "SHIPGATE_MAX_BODIES_PER_CLIENT",
            &raw.shipgate_max_bodies_per_client,
            d.max_per_client as u64,
        )? as usize,
        buffer_bytes: (buffer_mib << 20) as usize,
    })
}

fn config_cache_settings(raw: &RawEnv) -> Result<ConfigCacheSettings, SettingsError> {
    let d = ConfigCacheSettings::default();
    let mib = positive(
        "SHIPGATE_CONFIG_CACHE_MIB",
        &raw.shipgate_config_cache_mib,
        (d.text_bytes >> 20) as u64,
    )?;
    if mib > 1 << 20 {
        return Err(bad(
            "SHIPGATE_CONFIG_CACHE_MIB",
            format!("must be at most 1048576, got {mib}"),
        ));
    }
    Ok(ConfigCacheSettings {
        entries: positive(
            "SHIPGATE_CONFIG_CACHE_ENTRIES",
            &raw.shipgate_config_cache_entries,
            d.entries as u64,
        )? as usize,
        text_bytes: (mib << 20) as usize,
    })
}

// ---- end of the stall limits.

/// Everything `shipgate serve` needs.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub webhook_secrets: Vec<SecretString>,
    pub github_auth: GitHubAuth,
    pub github_api_url: url::Url,
    pub database_url: DatabaseUrl,
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    pub worker: WorkerSettings,
    pub http: HttpSettings,
    pub redeliver: RedeliverSettings,
    pub bodies: BodyLimits,
    pub config_cache: ConfigCacheSettings,
    /// Slack-compatible incoming webhook for deploy and smoke notifications.
    pub slack_webhook_url: Option<SecretString>,
    pub smoke: SmokeSettings,
}

pub use crate::store::DatabaseUrl;

/// The raw environment as envy reads it: every value as text, checked below.
#[derive(Deserialize, Default)]
struct RawEnv {
    shipgate_webhook_secret: Option<String>,
    github_token: Option<String>,
    github_app_id: Option<String>,
    github_app_private_key: Option<String>,
    github_app_private_key_path: Option<PathBuf>,
    github_api_url: Option<String>,
    database_url: Option<String>,
    shipgate_listen: Option<String>,
    shipgate_log_format: Option<String>,
    shipgate_worker_concurrency: Option<String>,
    shipgate_max_attempts: Option<String>,
    shipgate_handler_timeout_secs: Option<String>,
    shipgate_lease_secs: Option<String>,
    shipgate_retry_base_ms: Option<String>,
    shipgate_policy_delay_ms: Option<String>,
    shipgate_retention_days: Option<String>,
    shipgate_slack_webhook_url: Option<String>,
    shipgate_protection_sweep_ms: Option<String>,
    shipgate_header_timeout_secs: Option<String>,
    shipgate_body_timeout_secs: Option<String>,
    shipgate_max_connections: Option<String>,
    shipgate_max_in_flight: Option<String>,
    shipgate_redeliver: Option<String>,
    shipgate_redeliver_interval_secs: Option<String>,
    shipgate_redeliver_max: Option<String>,
    shipgate_worker_per_installation: Option<String>,
    shipgate_smoke_max_checks: Option<String>,
    shipgate_smoke_max_samples: Option<String>,
    shipgate_smoke_max_burst: Option<String>,
    shipgate_smoke_max_requests: Option<String>,
    shipgate_smoke_concurrency: Option<String>,
    shipgate_smoke_hourly_budget: Option<String>,
    shipgate_allow_private_probes: Option<String>,
    // The stall limits.
    shipgate_body_min_bytes_per_sec: Option<String>,
    shipgate_max_bodies_per_client: Option<String>,
    shipgate_body_buffer_mib: Option<String>,
    shipgate_config_cache_entries: Option<String>,
    shipgate_config_cache_mib: Option<String>,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

fn parse_number<T: std::str::FromStr>(
    var: &'static str,
    value: Option<String>,
    default: T,
) -> Result<T, SettingsError> {
    match non_empty(value) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| {
            bad(
                var,
                format!("expected a non-negative whole number, got `{v}`"),
            )
        }),
    }
}

/// `DATABASE_URL`, defaulting to the embedded SQLite file.
pub fn database_url_from_env() -> Result<DatabaseUrl, SettingsError> {
    let raw: RawEnv = envy::from_env().unwrap_or_default();
    database_url(raw.database_url)
}

fn database_url(value: Option<String>) -> Result<DatabaseUrl, SettingsError> {
    let url = non_empty(value).unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
    let url = DatabaseUrl::new(url.trim());
    let u = url.expose();
    if u.starts_with("sqlite:") || url.is_postgres() {
        Ok(url)
    } else {
        Err(bad(
            "DATABASE_URL",
            "expected sqlite://PATH or postgres://USER@HOST/DB",
        ))
    }
}

/// `SHIPGATE_LOG_FORMAT`, or `default` when unset.
pub fn log_format_from_env(default: LogFormat) -> Result<LogFormat, SettingsError> {
    match non_empty(std::env::var("SHIPGATE_LOG_FORMAT").ok()) {
        None => Ok(default),
        Some(v) => LogFormat::parse(&v).map_err(|e| bad("SHIPGATE_LOG_FORMAT", e)),
    }
}

/// Comma-separated webhook secrets; empty entries are ignored.
pub fn parse_secret_list(value: &str) -> Vec<SecretString> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| SecretString::from(s.to_string()))
        .collect()
}

impl ServerSettings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads settings from `vars` (the environment, or a test's map).
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let raw: RawEnv = envy::from_iter(vars).map_err(|e| bad("environment", e.to_string()))?;
        let http = http_settings(&raw)?;
        let redeliver = redeliver_settings(&raw)?;
        let per_installation = per_installation(&raw)?;
        let smoke = smoke_settings(&raw)?;
        let bodies = body_limits(&raw)?;
        let config_cache = config_cache_settings(&raw)?;

        let webhook_secrets = match non_empty(raw.shipgate_webhook_secret) {
            None => return Err(bad("SHIPGATE_WEBHOOK_SECRET", "required but not set (the secret configured on the GitHub App's webhook; a comma-separated list rotates secrets)")),
            Some(v) => parse_secret_list(&v),
        };
        if webhook_secrets.is_empty() {
            return Err(bad(
                "SHIPGATE_WEBHOOK_SECRET",
                "holds no secret (only commas and spaces)",
            ));
        }

        let github_auth = github_auth(
            raw.github_token,
            raw.github_app_id,
            raw.github_app_private_key,
            raw.github_app_private_key_path,
        )?;

        let api = non_empty(raw.github_api_url).unwrap_or_else(|| DEFAULT_GITHUB_API_URL.into());
        let github_api_url = url::Url::parse(api.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                bad(
                    "GITHUB_API_URL",
                    format!("expected an http(s) URL, got `{api}`"),
                )
            })?;

        let listen_text = non_empty(raw.shipgate_listen).unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen = listen_text.trim().parse().map_err(|_| {
            bad(
                "SHIPGATE_LISTEN",
                format!("expected HOST:PORT such as 0.0.0.0:3000, got `{listen_text}`"),
            )
        })?;

        let log_format = match non_empty(raw.shipgate_log_format) {
            None => LogFormat::Json,
            Some(v) => LogFormat::parse(&v).map_err(|e| bad("SHIPGATE_LOG_FORMAT", e))?,
        };

        let defaults = WorkerSettings::default();
        let max_attempts: u32 = parse_number(
            "SHIPGATE_MAX_ATTEMPTS",
            raw.shipgate_max_attempts,
            defaults.max_attempts,
        )?;
        if max_attempts == 0 {
            return Err(bad("SHIPGATE_MAX_ATTEMPTS", "must be at least 1"));
        }
        let worker = WorkerSettings {
            concurrency: parse_number(
                "SHIPGATE_WORKER_CONCURRENCY",
                raw.shipgate_worker_concurrency,
                defaults.concurrency,
            )?,
            max_attempts,
            handler_timeout: Duration::from_secs(parse_number(
                "SHIPGATE_HANDLER_TIMEOUT_SECS",
                raw.shipgate_handler_timeout_secs,
                defaults.handler_timeout.as_secs(),
            )?),
            lease: Duration::from_secs(parse_number(
                "SHIPGATE_LEASE_SECS",
                raw.shipgate_lease_secs,
                defaults.lease.as_secs(),
            )?),
            backoff_base: Duration::from_millis(parse_number(
                "SHIPGATE_RETRY_BASE_MS",
                raw.shipgate_retry_base_ms,
                defaults.backoff_base.as_millis() as u64,
            )?),
            poll_interval: defaults.poll_interval,
            policy_delay: Duration::from_millis(parse_number(
                "SHIPGATE_POLICY_DELAY_MS",
                raw.shipgate_policy_delay_ms,
                defaults.policy_delay.as_millis() as u64,
            )?),
            protection_sweep: Duration::from_millis(
                parse_number(
                    "SHIPGATE_PROTECTION_SWEEP_MS",
                    raw.shipgate_protection_sweep_ms,
                    defaults.protection_sweep.as_millis() as u64,
                )?
                .max(10),
            ),
            retention: retention(raw.shipgate_retention_days)?,
            per_installation,
        };
        if worker.lease <= worker.handler_timeout {
            return Err(bad(
                "SHIPGATE_LEASE_SECS",
                format!(
                    "must be longer than the handler timeout ({}s), or a slow delivery could be claimed twice",
                    worker.handler_timeout.as_secs()
                ),
            ));
        }

        Ok(ServerSettings {
            webhook_secrets,
            github_auth,
            github_api_url,
            database_url: database_url(raw.database_url)?,
            listen,
            log_format,
            worker,
            http,
            redeliver,
            bodies,
            config_cache,
            slack_webhook_url: slack_url(raw.shipgate_slack_webhook_url)?,
            smoke,
        })
    }
}

/// A number that must be at least 1.
fn positive(var: &'static str, value: &Option<String>, default: u64) -> Result<u64, SettingsError> {
    let n: u64 = parse_number(var, value.clone(), default)?;
    if n == 0 {
        return Err(bad(var, "must be at least 1"));
    }
    Ok(n)
}

fn http_settings(raw: &RawEnv) -> Result<HttpSettings, SettingsError> {
    let d = HttpSettings::default();
    Ok(HttpSettings {
        header_timeout: Duration::from_secs(positive(
            "SHIPGATE_HEADER_TIMEOUT_SECS",
            &raw.shipgate_header_timeout_secs,
            d.header_timeout.as_secs(),
        )?),
        body_timeout: Duration::from_secs(positive(
            "SHIPGATE_BODY_TIMEOUT_SECS",
            &raw.shipgate_body_timeout_secs,
            d.body_timeout.as_secs(),
        )?),
        max_connections: positive(
            "SHIPGATE_MAX_CONNECTIONS",
            &raw.shipgate_max_connections,
            d.max_connections as u64,
        )? as usize,
        max_in_flight: positive(
            "SHIPGATE_MAX_IN_FLIGHT",
            &raw.shipgate_max_in_flight,
            d.max_in_flight as u64,
        )? as usize,
    })
}

/// `SHIPGATE_WORKER_PER_INSTALLATION`: unset for the default share.
fn per_installation(raw: &RawEnv) -> Result<Option<usize>, SettingsError> {
    const VAR: &str = "SHIPGATE_WORKER_PER_INSTALLATION";
    match non_empty(raw.shipgate_worker_per_installation.clone()) {
        None => Ok(None),
        Some(_) => Ok(Some(
            positive(VAR, &raw.shipgate_worker_per_installation, 1)? as usize,
        )),
    }
}

/// `true`/`false` (also 1/0, yes/no, on/off).
fn boolean(
    var: &'static str,
    value: &Option<String>,
    default: bool,
) -> Result<bool, SettingsError> {
    match non_empty(value.clone()) {
        None => Ok(default),
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            other => Err(bad(
                var,
                format!("expected `true` or `false`, got `{other}`"),
            )),
        },
    }
}

fn redeliver_settings(raw: &RawEnv) -> Result<RedeliverSettings, SettingsError> {
    let d = RedeliverSettings::default();
    let enabled = boolean("SHIPGATE_REDELIVER", &raw.shipgate_redeliver, d.enabled)?;
    Ok(RedeliverSettings {
        enabled,
        interval: Duration::from_secs(positive(
            "SHIPGATE_REDELIVER_INTERVAL_SECS",
            &raw.shipgate_redeliver_interval_secs,
            d.interval.as_secs(),
        )?),
        max_per_sweep: positive(
            "SHIPGATE_REDELIVER_MAX",
            &raw.shipgate_redeliver_max,
            d.max_per_sweep as u64,
        )? as usize,
        ..d
    })
}

fn slack_url(value: Option<String>) -> Result<Option<SecretString>, SettingsError> {
    match non_empty(value) {
        None => Ok(None),
        Some(v) => match url::Url::parse(v.trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {
                Ok(Some(SecretString::from(v.trim().to_string())))
            }
            // The value is a secret: do not echo it.
            _ => Err(bad(
                "SHIPGATE_SLACK_WEBHOOK_URL",
                "expected an https:// incoming-webhook URL",
            )),
        },
    }
}

fn retention(value: Option<String>) -> Result<Duration, SettingsError> {
    const VAR: &str = "SHIPGATE_RETENTION_DAYS";
    let days: u64 = parse_number(VAR, value, 7)?;
    // A redelivered id must still be recognised: GitHub redelivers for 3 days.
    if !(3..=3650).contains(&days) {
        return Err(bad(
            VAR,
            format!("must be between 3 (GitHub's redelivery window) and 3650 days, got {days}"),
        ));
    }
    Ok(Duration::from_secs(days * 24 * 3600))
}

fn github_auth(
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

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<ServerSettings, SettingsError> {
        ServerSettings::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn minimal_environment_gets_documented_defaults() {
        let s = env(&[("SHIPGATE_WEBHOOK_SECRET", "s1"), ("GITHUB_TOKEN", "ghp_x")]).unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:3000");
        assert_eq!(s.database_url.expose(), "sqlite://shipgate.db");
        assert_eq!(s.github_api_url.as_str(), "https://api.github.com/");
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.webhook_secrets.len(), 1);
        assert_eq!(s.bodies.min_bytes_per_sec, 16_384);
        assert_eq!(s.bodies.max_per_client, 32);
        assert_eq!(s.bodies.buffer_bytes, 256 << 20);
        assert_eq!(s.config_cache.entries, 10_000);
        assert_eq!(s.config_cache.text_bytes, 32 << 20);
    }

    #[test]
    fn stall_limits_are_read_and_checked() {
        let s = env(&[
            ("SHIPGATE_WEBHOOK_SECRET", "s"),
            ("GITHUB_TOKEN", "t"),
            ("SHIPGATE_BODY_MIN_BYTES_PER_SEC", "0"),
            ("SHIPGATE_MAX_BODIES_PER_CLIENT", "4"),
            ("SHIPGATE_BODY_BUFFER_MIB", "25"),
            ("SHIPGATE_CONFIG_CACHE_ENTRIES", "3"),
            ("SHIPGATE_CONFIG_CACHE_MIB", "1"),
        ])
        .unwrap();
        assert_eq!(s.bodies.min_bytes_per_sec, 0, "0 turns the rate rule off");
        assert_eq!(s.bodies.max_per_client, 4);
        assert_eq!(s.bodies.buffer_bytes, 25 << 20);
        assert_eq!(s.config_cache.entries, 3);
        assert_eq!(s.config_cache.text_bytes, 1 << 20);
        for (var, value, want) in [
            ("SHIPGATE_BODY_BUFFER_MIB", "24", "SHIPGATE_BODY_BUFFER_MIB: must be between 25 (the largest webhook body) and 1048576, got 24"),
            ("SHIPGATE_BODY_BUFFER_MIB", "99999999999", "SHIPGATE_BODY_BUFFER_MIB: must be between 25"),
            ("SHIPGATE_MAX_BODIES_PER_CLIENT", "0", "SHIPGATE_MAX_BODIES_PER_CLIENT: must be at least 1"),
            ("SHIPGATE_BODY_MIN_BYTES_PER_SEC", "fast", "SHIPGATE_BODY_MIN_BYTES_PER_SEC: expected a non-negative whole number"),
            ("SHIPGATE_CONFIG_CACHE_ENTRIES", "0", "SHIPGATE_CONFIG_CACHE_ENTRIES: must be at least 1"),
            ("SHIPGATE_CONFIG_CACHE_MIB", "99999999999", "SHIPGATE_CONFIG_CACHE_MIB: must be at most 1048576"),
        ] {
            let err = env(&[
                ("SHIPGATE_WEBHOOK_SECRET", "s"),
                ("GITHUB_TOKEN", "t"),
                (var, value),
            ])
            .unwrap_err()
            .to_string();
            assert!(err.starts_with(want), "{var}={value}: got `{err}`");
        }
    }

    #[test]
    fn secret_list_rotates() {
        let s = env(&[
            ("SHIPGATE_WEBHOOK_SECRET", "new, old ,"),
            ("GITHUB_TOKEN", "t"),
        ])
        .unwrap();
        let v: Vec<_> = s
            .webhook_secrets
            .iter()
            .map(|s| s.expose_secret().to_string())
            .collect();
        assert_eq!(v, ["new", "old"]);
    }

    #[test]
    fn errors_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("GITHUB_TOKEN", "t")],
                "SHIPGATE_WEBHOOK_SECRET: required",
            ),
            (
                &[("SHIPGATE_WEBHOOK_SECRET", " , ")],
                "SHIPGATE_WEBHOOK_SECRET: holds no secret",
            ),
            (
                &[("SHIPGATE_WEBHOOK_SECRET", "s")],
                "GITHUB_TOKEN: no GitHub credentials",
            ),
            (
                &[("SHIPGATE_WEBHOOK_SECRET", "s"), ("GITHUB_APP_ID", "abc")],
                "GITHUB_APP_ID: expected the App's numeric id",
            ),
            (
                &[("SHIPGATE_WEBHOOK_SECRET", "s"), ("GITHUB_APP_ID", "12")],
                "GITHUB_APP_PRIVATE_KEY: GITHUB_APP_ID is set",
            ),
            (
                &[
                    ("SHIPGATE_WEBHOOK_SECRET", "s"),
                    ("GITHUB_APP_ID", "12"),
                    ("GITHUB_APP_PRIVATE_KEY", "nope"),
                ],
                "GITHUB_APP_PRIVATE_KEY: not an RSA private key",
            ),
            (
                &[
                    ("SHIPGATE_WEBHOOK_SECRET", "s"),
                    ("GITHUB_TOKEN", "t"),
                    ("SHIPGATE_LISTEN", "3000"),
                ],
                "SHIPGATE_LISTEN: expected HOST:PORT",
            ),
            (
                &[
                    ("SHIPGATE_WEBHOOK_SECRET", "s"),
                    ("GITHUB_TOKEN", "t"),
                    ("DATABASE_URL", "mysql://x"),
                ],
                "DATABASE_URL: expected sqlite",
            ),
            (
                &[
                    ("SHIPGATE_WEBHOOK_SECRET", "s"),
                    ("GITHUB_TOKEN", "t"),
                    ("GITHUB_API_URL", "not a url"),
                ],
                "GITHUB_API_URL: expected an http(s) URL",
            ),
            (
                &[
                    ("SHIPGATE_WEBHOOK_SECRET", "s"),
                    ("GITHUB_TOKEN", "t"),
                    ("SHIPGATE_LOG_FORMAT", "xml"),
                ],
                "SHIPGATE_LOG_FORMAT: expected `json` or `pretty`",
            ),
            (
                &[
                    ("SHIPGATE_WEBHOOK_SECRET", "s"),
                    ("GITHUB_TOKEN", "t"),
                    ("SHIPGATE_WORKER_CONCURRENCY", "-1"),
                ],
                "SHIPGATE_WORKER_CONCURRENCY: expected a non-negative",
            ),
            (
                &[
                    ("SHIPGATE_WEBHOOK_SECRET", "s"),
                    ("GITHUB_TOKEN", "t"),
                    ("SHIPGATE_RETENTION_DAYS", "1"),
                ],
                "SHIPGATE_RETENTION_DAYS: must be between 3",
            ),
            (
                &[
                    ("SHIPGATE_WEBHOOK_SECRET", "s"),
                    ("GITHUB_TOKEN", "t"),
                    ("SHIPGATE_RETENTION_DAYS", "99999999999999999"),
                ],
                "SHIPGATE_RETENTION_DAYS: must be between 3",
            ),
            (
                &[
                    ("SHIPGATE_WEBHOOK_SECRET", "s"),
                    ("GITHUB_APP_ID", "1"),
                    ("GITHUB_APP_PRIVATE_KEY_PATH", ""),
                ],
                "GITHUB_APP_PRIVATE_KEY: GITHUB_APP_ID is set",
            ),
            (
                &[
                    ("SHIPGATE_WEBHOOK_SECRET", "s"),
                    ("GITHUB_APP_ID", "1"),
                    ("GITHUB_APP_PRIVATE_KEY_PATH", "/nonexistent/key.pem"),
                ],
                "GITHUB_APP_PRIVATE_KEY_PATH: cannot read /nonexistent/key.pem",
            ),
        ];
        for (vars, want) in cases {
            let err = env(vars).unwrap_err().to_string();
            assert!(
                err.starts_with(want),
                "{vars:?}: got `{err}`, want prefix `{want}`"
            );
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let s = env(&[
            ("SHIPGATE_WEBHOOK_SECRET", "hunter2-webhook"),
            ("GITHUB_TOKEN", "ghp_supersecrettoken"),
            ("DATABASE_URL", "postgres://app:pa55word@db/shipgate"),
        ])
        .unwrap();
        let dbg = format!("{s:?}");
        for secret in ["hunter2-webhook", "ghp_supersecrettoken", "pa55word"] {
            assert!(!dbg.contains(secret), "{secret} leaked into {dbg}");
        }
        assert!(dbg.contains("postgres://app:****@db/shipgate"), "{dbg}");
    }

    #[test]
    fn an_installation_gets_half_the_workers_by_default_or_as_set() {
        let share = |vars: &[(&str, &str)]| {
            let mut all = vec![("SHIPGATE_WEBHOOK_SECRET", "s"), ("GITHUB_TOKEN", "t")];
            all.extend_from_slice(vars);
            env(&all).map(|s| s.worker.installation_share())
        };
        assert_eq!(share(&[]).unwrap(), 2, "half of the default 4");
        assert_eq!(share(&[("SHIPGATE_WORKER_CONCURRENCY", "9")]).unwrap(), 4);
        assert_eq!(share(&[("SHIPGATE_WORKER_CONCURRENCY", "1")]).unwrap(), 1);
        assert_eq!(share(&[("SHIPGATE_WORKER_CONCURRENCY", "0")]).unwrap(), 1);
        assert_eq!(
            share(&[("SHIPGATE_WORKER_PER_INSTALLATION", "3")]).unwrap(),
            3
        );
        assert_eq!(
            share(&[("SHIPGATE_WORKER_PER_INSTALLATION", " ")]).unwrap(),
            2
        );
        for bad in ["0", "-1", "half"] {
            let err = share(&[("SHIPGATE_WORKER_PER_INSTALLATION", bad)])
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("SHIPGATE_WORKER_PER_INSTALLATION: "),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn smoke_limits_have_defaults_and_name_bad_values() {
        let s = env(&[("SHIPGATE_WEBHOOK_SECRET", "s"), ("GITHUB_TOKEN", "t")]).unwrap();
        assert_eq!(s.smoke, SmokeSettings::default());
        assert!(!s.smoke.allow_private);
        let s = env(&[
            ("SHIPGATE_WEBHOOK_SECRET", "s"),
            ("GITHUB_TOKEN", "t"),
            ("SHIPGATE_SMOKE_MAX_REQUESTS", "50"),
            ("SHIPGATE_SMOKE_HOURLY_BUDGET", "1000"),
            ("SHIPGATE_ALLOW_PRIVATE_PROBES", "true"),
        ])
        .unwrap();
        assert_eq!(
            (
                s.smoke.max_requests,
                s.smoke.hourly_budget,
                s.smoke.allow_private
            ),
            (50, 1000, true)
        );
        for (var, value, want) in [
            (
                "SHIPGATE_SMOKE_MAX_REQUESTS",
                "0",
                "SHIPGATE_SMOKE_MAX_REQUESTS: must be at least 1",
            ),
            (
                "SHIPGATE_SMOKE_CONCURRENCY",
                "-4",
                "SHIPGATE_SMOKE_CONCURRENCY: expected a non-negative whole number, got `-4`",
            ),
            (
                "SHIPGATE_SMOKE_HOURLY_BUDGET",
                "5000000000",
                "SHIPGATE_SMOKE_HOURLY_BUDGET: must be at most 4294967295, got 5000000000",
            ),
            (
                "SHIPGATE_ALLOW_PRIVATE_PROBES",
                "maybe",
                "SHIPGATE_ALLOW_PRIVATE_PROBES: expected `true` or `false`, got `maybe`",
            ),
        ] {
            let err = env(&[
                ("SHIPGATE_WEBHOOK_SECRET", "s"),
                ("GITHUB_TOKEN", "t"),
                (var, value),
            ])
            .unwrap_err()
            .to_string();
            assert_eq!(err, want);
        }
    }
}
