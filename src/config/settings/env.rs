//! The environment as read: every variable as text ([`RawEnv`]), and the
//! readers that check one value (a number, a positive number, a boolean) and
//! name the variable when it is wrong. Each settings group builds on these.

use std::path::PathBuf;

use serde::Deserialize;

use super::{bad, SettingsError};

/// The raw environment as envy reads it: every value as text, checked below.
#[derive(Deserialize, Default)]
pub(super) struct RawEnv {
    pub(super) shipgate_webhook_secret: Option<String>,
    pub(super) github_token: Option<String>,
    pub(super) github_app_id: Option<String>,
    pub(super) github_app_private_key: Option<String>,
    pub(super) github_app_private_key_path: Option<PathBuf>,
    pub(super) github_api_url: Option<String>,
    pub(super) database_url: Option<String>,
    pub(super) shipgate_listen: Option<String>,
    pub(super) shipgate_log_format: Option<String>,
    pub(super) shipgate_worker_concurrency: Option<String>,
    pub(super) shipgate_max_attempts: Option<String>,
    pub(super) shipgate_handler_timeout_secs: Option<String>,
    pub(super) shipgate_lease_secs: Option<String>,
    pub(super) shipgate_retry_base_ms: Option<String>,
    pub(super) shipgate_policy_delay_ms: Option<String>,
    pub(super) shipgate_retention_days: Option<String>,
    pub(super) shipgate_slack_webhook_url: Option<String>,
    pub(super) shipgate_notify: Option<String>,
    pub(super) shipgate_notify_retry_base_ms: Option<String>,
    pub(super) shipgate_protection_sweep_ms: Option<String>,
    pub(super) shipgate_header_timeout_secs: Option<String>,
    pub(super) shipgate_body_timeout_secs: Option<String>,
    pub(super) shipgate_max_connections: Option<String>,
    pub(super) shipgate_max_in_flight: Option<String>,
    pub(super) shipgate_redeliver: Option<String>,
    pub(super) shipgate_redeliver_interval_secs: Option<String>,
    pub(super) shipgate_redeliver_max: Option<String>,
    pub(super) shipgate_worker_per_installation: Option<String>,
    pub(super) shipgate_smoke_max_checks: Option<String>,
    pub(super) shipgate_smoke_max_samples: Option<String>,
    pub(super) shipgate_smoke_max_burst: Option<String>,
    pub(super) shipgate_smoke_max_requests: Option<String>,
    pub(super) shipgate_smoke_concurrency: Option<String>,
    pub(super) shipgate_smoke_hourly_budget: Option<String>,
    pub(super) shipgate_allow_private_probes: Option<String>,
    // The stall limits.
    pub(super) shipgate_body_min_bytes_per_sec: Option<String>,
    pub(super) shipgate_max_bodies_per_client: Option<String>,
    pub(super) shipgate_body_buffer_mib: Option<String>,
    pub(super) shipgate_config_cache_entries: Option<String>,
    pub(super) shipgate_config_cache_mib: Option<String>,
}

pub(super) fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

pub(super) fn parse_number<T: std::str::FromStr>(
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

/// A number that must be at least 1.
pub(super) fn positive(
    var: &'static str,
    value: &Option<String>,
    default: u64,
) -> Result<u64, SettingsError> {
    let n: u64 = parse_number(var, value.clone(), default)?;
    if n == 0 {
        return Err(bad(var, "must be at least 1"));
    }
    Ok(n)
}

/// A number that must be at least 1 and fit in 32 bits.
pub(super) fn positive_u32(
    var: &'static str,
    value: &Option<String>,
    default: u32,
) -> Result<u32, SettingsError> {
    let n = positive(var, value, default as u64)?;
    u32::try_from(n).map_err(|_| bad(var, format!("must be at most {}, got {n}", u32::MAX)))
}

/// `true`/`false` (also 1/0, yes/no, on/off).
pub(super) fn boolean(
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
