//! The delivery worker's settings (`SHIPGATE_WORKER_*`, attempts, lease,
//! backoff, retention), read and checked together because they constrain
//! each other (the lease must outlast the handler timeout).

use std::time::Duration;

use super::env::{non_empty, parse_number, positive, RawEnv};
use super::{bad, SettingsError};

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

/// The worker's settings. `per_installation` is read by the caller among
/// the first groups, so the order in which bad values are reported stays
/// that of [`ServerSettings::from_vars`](super::ServerSettings::from_vars).
pub(super) fn worker_settings(
    raw: &RawEnv,
    per_installation: Option<usize>,
) -> Result<WorkerSettings, SettingsError> {
    let defaults = WorkerSettings::default();
    let max_attempts: u32 = parse_number(
        "SHIPGATE_MAX_ATTEMPTS",
        raw.shipgate_max_attempts.clone(),
        defaults.max_attempts,
    )?;
    if max_attempts == 0 {
        return Err(bad("SHIPGATE_MAX_ATTEMPTS", "must be at least 1"));
    }
    let worker = WorkerSettings {
        concurrency: parse_number(
            "SHIPGATE_WORKER_CONCURRENCY",
            raw.shipgate_worker_concurrency.clone(),
            defaults.concurrency,
        )?,
        max_attempts,
        handler_timeout: Duration::from_secs(parse_number(
            "SHIPGATE_HANDLER_TIMEOUT_SECS",
            raw.shipgate_handler_timeout_secs.clone(),
            defaults.handler_timeout.as_secs(),
        )?),
        lease: Duration::from_secs(parse_number(
            "SHIPGATE_LEASE_SECS",
            raw.shipgate_lease_secs.clone(),
            defaults.lease.as_secs(),
        )?),
        backoff_base: Duration::from_millis(parse_number(
            "SHIPGATE_RETRY_BASE_MS",
            raw.shipgate_retry_base_ms.clone(),
            defaults.backoff_base.as_millis() as u64,
        )?),
        poll_interval: defaults.poll_interval,
        policy_delay: Duration::from_millis(parse_number(
            "SHIPGATE_POLICY_DELAY_MS",
            raw.shipgate_policy_delay_ms.clone(),
            defaults.policy_delay.as_millis() as u64,
        )?),
        protection_sweep: Duration::from_millis(
            parse_number(
                "SHIPGATE_PROTECTION_SWEEP_MS",
                raw.shipgate_protection_sweep_ms.clone(),
                defaults.protection_sweep.as_millis() as u64,
            )?
            .max(10),
        ),
        retention: retention(raw.shipgate_retention_days.clone())?,
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
    Ok(worker)
}

/// `SHIPGATE_WORKER_PER_INSTALLATION`: unset for the default share.
pub(super) fn per_installation(raw: &RawEnv) -> Result<Option<usize>, SettingsError> {
    const VAR: &str = "SHIPGATE_WORKER_PER_INSTALLATION";
    match non_empty(raw.shipgate_worker_per_installation.clone()) {
        None => Ok(None),
        Some(_) => Ok(Some(
            positive(VAR, &raw.shipgate_worker_per_installation, 1)? as usize,
        )),
    }
}

pub(super) fn retention(value: Option<String>) -> Result<Duration, SettingsError> {
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
