//! The HTTP face's settings: connection and request limits against slow or
//! hostile clients, and the redelivery sweeper that asks GitHub for the
//! deliveries the server never stored.

use std::time::Duration;

use super::env::{boolean, positive, RawEnv};
use super::SettingsError;

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

pub(super) fn http_settings(raw: &RawEnv) -> Result<HttpSettings, SettingsError> {
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

pub(super) fn redeliver_settings(raw: &RawEnv) -> Result<RedeliverSettings, SettingsError> {
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
