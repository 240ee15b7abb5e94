//! Limits that keep a stranger or a config file from stalling the server:
//! how webhook bodies are read, the config cache's size, and what a
//! repository's smoke suite may do from the server.

use super::env::{boolean, parse_number, positive, positive_u32, RawEnv};
use super::{bad, SettingsError, SmokeSettings};

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

pub(super) fn body_limits(raw: &RawEnv) -> Result<BodyLimits, SettingsError> {
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

pub(super) fn config_cache_settings(raw: &RawEnv) -> Result<ConfigCacheSettings, SettingsError> {
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

pub(super) fn smoke_settings(raw: &RawEnv) -> Result<SmokeSettings, SettingsError> {
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
