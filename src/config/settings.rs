//! Server settings, read from the environment with envy.
//!
//! Every variable is read as text first and then checked here, so a bad value
//! produces one line that names the variable and says what is wrong (the CLI
//! prints it and exits with status 2). Secrets are held in `SecretString`,
//! whose `Debug` prints `[REDACTED]`.

use std::net::SocketAddr;

use secrecy::SecretString;

mod credentials;
mod env;
mod http;
mod limits;
mod notify;
mod worker;

pub use credentials::parse_secret_list;
use credentials::{github_auth, webhook_secrets};
use env::{non_empty, RawEnv};
use http::{http_settings, redeliver_settings};
pub use http::{HttpSettings, RedeliverSettings};
use limits::{body_limits, config_cache_settings, smoke_settings};
pub use limits::{BodyLimits, ConfigCacheSettings};
pub use notify::NotifySettings;
pub use worker::WorkerSettings;
use worker::{per_installation, worker_settings};

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

pub use crate::smoke::limits::SmokeSettings;

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
    /// Notification destinations (`SHIPGATE_NOTIFY`, `SHIPGATE_SLACK_WEBHOOK_URL`).
    pub notify: NotifySettings,
    pub smoke: SmokeSettings,
}

pub use crate::store::DatabaseUrl;

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
        let webhook_secrets = webhook_secrets(&raw)?;
        let github_auth = github_auth(
            raw.github_token.clone(),
            raw.github_app_id.clone(),
            raw.github_app_private_key.clone(),
            raw.github_app_private_key_path.clone(),
        )?;
        let github_api_url = github_api_url(&raw)?;
        let listen = listen_address(&raw)?;
        let log_format = match non_empty(raw.shipgate_log_format.clone()) {
            None => LogFormat::Json,
            Some(v) => LogFormat::parse(&v).map_err(|e| bad("SHIPGATE_LOG_FORMAT", e))?,
        };
        let worker = worker_settings(&raw, per_installation)?;
        let notify = notify::notify_settings(&raw)?;

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
            notify,
            smoke,
        })
    }
}

/// `GITHUB_API_URL`: an http(s) URL with a host.
fn github_api_url(raw: &RawEnv) -> Result<url::Url, SettingsError> {
    let api =
        non_empty(raw.github_api_url.clone()).unwrap_or_else(|| DEFAULT_GITHUB_API_URL.into());
    url::Url::parse(api.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            bad(
                "GITHUB_API_URL",
                format!("expected an http(s) URL, got `{api}`"),
            )
        })
}

/// `SHIPGATE_LISTEN`: the address to listen on.
fn listen_address(raw: &RawEnv) -> Result<SocketAddr, SettingsError> {
    let listen_text =
        non_empty(raw.shipgate_listen.clone()).unwrap_or_else(|| DEFAULT_LISTEN.into());
    listen_text.trim().parse().map_err(|_| {
        bad(
            "SHIPGATE_LISTEN",
            format!("expected HOST:PORT such as 0.0.0.0:3000, got `{listen_text}`"),
        )
    })
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
