//! The redelivery sweeper. GitHub never retries a failed webhook delivery by
//! itself: a delivery that found shipgate down, overloaded (503) or
//! unreachable is lost unless someone asks for it again. In GitHub App mode
//! this task periodically lists the App's recent deliveries
//! (`GET /app/hook/deliveries`, paged with `cursor`) and asks GitHub to
//! redeliver (`POST /app/hook/deliveries/{id}/attempts`) each failed one
//! whose delivery id (GUID) shipgate never stored.
//!
//! Bounded: at most `max_listed` deliveries are listed (the first sweep of a
//! process looks back over the whole window, later ones only since the
//! previous sweep) and `max_per_sweep`
//! redeliveries requested per sweep, only within GitHub's 3-day window, and a
//! delivery GitHub already redelivered `MAX_REDELIVERIES` times without
//! success is given up (logged). Idempotent: a redelivery carries the same
//! GUID, which ingress deduplicates, and replicas sharing a store take turns
//! through a lease, so one sweep runs at a time.

use std::collections::HashMap;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::config::settings::RedeliverSettings;
use crate::github::{GitHub, GitHubError};
use crate::handlers::Handlers;
use crate::metrics::Metrics;
use crate::store::{DynStore, Lock, LockKind, LockOutcome};

/// Redeliveries of one delivery GitHub may already show before the sweeper
/// stops asking: a delivery that keeps failing is not a missed one.
pub const MAX_REDELIVERIES: usize = 3;

/// The lease's name in the store's lock table (not a real repository).
const LEASE_REPOSITORY: &str = "shipgate:internal";
const LEASE_NAME: &str = "redelivery-sweep";

/// One entry of `GET /app/hook/deliveries`.
#[derive(Debug, Clone, Deserialize)]
pub struct HookDelivery {
    pub id: i64,
    pub guid: String,
    pub delivered_at: String,
    #[serde(default)]
    pub redelivery: bool,
    pub status_code: i64,
    pub event: String,
    pub action: Option<String>,
}

/// What one sweep saw and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Deliveries listed within the window.
    pub listed: usize,
    /// Deliveries (GUIDs) that never succeeded and that shipgate never stored.
    pub missing: usize,
    /// Redeliveries asked for.
    pub requested: usize,
    /// Redelivery requests GitHub refused.
    pub refused: usize,
    /// Missing deliveries left alone after `MAX_REDELIVERIES` redeliveries.
    pub given_up: usize,
    /// Missing deliveries left for the next sweep (`max_per_sweep` reached).
    pub deferred: usize,
    /// The listing stopped at `max_listed` before the window's start.
    pub truncated: bool,
    /// Another replica held the lease; nothing was done.
    pub skipped: bool,
}

pub struct Sweeper {
    pub github: GitHub,
    pub store: DynStore,
    pub handlers: Handlers,
    pub settings: RedeliverSettings,
    pub metrics: Metrics,
    /// Identifies this process as the lease holder.
    pub owner: String,
    /// GUIDs this process asked for, and when (ms): GitHub redelivers a
    /// little later, so the next sweep may not see the new attempt yet.
    asked: std::sync::Mutex<HashMap<String, i64>>,
    /// When this process's last complete sweep began (ms). Later sweeps
    /// list back to an interval before it, not the whole window: a failure
    /// seen earlier was handled then, and a failed redelivery is a new entry.
    last_sweep: std::sync::Mutex<Option<i64>>,
}

/// Per GUID: the newest attempt (listed first) and what the attempts say.
struct Attempts {
    newest: HookDelivery,
    succeeded: bool,
    redeliveries: usize,
}

impl Sweeper {
    pub fn new(
        github: GitHub,
        store: DynStore,
        handlers: Handlers,
        settings: RedeliverSettings,
        metrics: Metrics,
        owner: String,
    ) -> Self {
        Sweeper {
            github,
            store,
            handlers,
            settings,
            metrics,
            owner,
            asked: Default::default(),
            last_sweep: Default::default(),
        }
    }

    /// Sweeps now, then every `interval`, until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            match self.sweep(crate::now_ms()).await {
                Ok(report) if report.requested > 0 || report.given_up > 0 => {
                    tracing::info!(?report, "redelivery sweep")
                }
                Ok(report) => tracing::debug!(?report, "redelivery sweep"),
                Err(e) => {
                    self.metrics
                        .redelivery_sweeps
                        .with_label_values(&["error"])
                        .inc();
                    tracing::warn!(error = %e, "redelivery sweep failed; trying again next interval")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.interval) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    /// One sweep at `now` (milliseconds since the epoch).
    pub async fn sweep(&self, now: i64) -> Result<SweepReport, SweepError> {
        if !self.take_lease(now).await? {
            self.metrics
                .redelivery_sweeps
                .with_label_values(&["skipped"])
                .inc();
            return Ok(SweepReport {
                skipped: true,
                ..SweepReport::default()
            });
        }
        let window_start = now - self.settings.window.as_millis() as i64;
        let since = match *self.last_sweep.lock().expect("poisoned") {
            Some(last) => window_start.max(last - self.settings.interval.as_millis() as i64),
            None => window_start,
        };
        // Asked within the last three intervals: give GitHub time to act.
        let recent = now - 3 * self.settings.interval.as_millis() as i64;
        self.asked
            .lock()
            .expect("poisoned")
            .retain(|_, at| *at >= recent);
        let (listed, truncated) = self.list_since(since).await?;
        let mut report = SweepReport {
            listed: listed.len(),
            truncated,
            ..SweepReport::default()
        };

        // Newest first, as GitHub lists them; remember GUID order.
        let mut order = Vec::new();
        let mut by_guid: HashMap<String, Attempts> = HashMap::new();
        for d in listed {
            let ok = (200..300).contains(&d.status_code);
            match by_guid.get_mut(&d.guid) {
                Some(a) => {
                    a.succeeded |= ok;
                    a.redeliveries += usize::from(d.redelivery);
                }
                None => {
                    order.push(d.guid.clone());
                    by_guid.insert(
                        d.guid.clone(),
                        Attempts {
                            succeeded: ok,
                            redeliveries: usize::from(d.redelivery),
                            newest: d,
                        },
                    );
                }
            }
        }

        for guid in order {
            let a = &by_guid[&guid];
            if a.succeeded
                || !self
                    .handlers
                    .wants(&a.newest.event, a.newest.action.as_deref())
            {
                continue;
            }
            if self.store.delivery_status(&guid).await?.is_some() {
                // Stored, though GitHub saw no 2xx (e.g. the answer was lost).
                continue;
            }
            report.missing += 1;
            if a.redeliveries >= MAX_REDELIVERIES {
                report.given_up += 1;
                tracing::warn!(delivery = %guid, event = %a.newest.event, redeliveries = a.redeliveries, "delivery keeps failing after redeliveries; not asking again");
                continue;
            }
            if self.asked.lock().expect("poisoned").contains_key(&guid) {
                continue;
            }
            if report.requested + report.refused >= self.settings.max_per_sweep {
                report.deferred += 1;
                continue;
            }
            match self.redeliver(a.newest.id).await {
                Ok(()) => {
                    report.requested += 1;
                    self.asked
                        .lock()
                        .expect("poisoned")
                        .insert(guid.clone(), now);
                    self.metrics
                        .redeliveries
                        .with_label_values(&["requested"])
                        .inc();
                    tracing::info!(delivery = %guid, event = %a.newest.event, "asked GitHub to redeliver a delivery shipgate never stored");
                }
                Err(e) if e.is_transient() => return Err(e.into()),
                Err(e) => {
                    report.refused += 1;
                    self.metrics
                        .redeliveries
                        .with_label_values(&["refused"])
                        .inc();
                    tracing::warn!(delivery = %guid, error = %e, "GitHub refused the redelivery");
                }
            }
        }
        if report.deferred == 0 && !report.truncated {
            // Complete: the next sweep need not look further back than this.
            *self.last_sweep.lock().expect("poisoned") = Some(now);
        }
        self.metrics.redelivery_missing.set(report.missing as i64);
        self.metrics
            .redelivery_sweeps
            .with_label_values(&["done"])
            .inc();
        Ok(report)
    }

    /// One sweep per interval across replicas: the lease is a store lock
    /// that expires a little before the next sweep is due.
    async fn take_lease(&self, now: i64) -> Result<bool, SweepError> {
        let ttl = (self.settings.interval.as_millis() as i64 * 9 / 10).max(1);
        let lease = Lock {
            repository: LEASE_REPOSITORY.into(),
            environment: LEASE_NAME.into(),
            kind: LockKind::Sticky,
            holder: "shipgate".into(),
            pr: None,
            owner_token: format!("{}:{now}", self.owner),
            deployment_id: None,
            reason: Some("redelivery sweep".into()),
            expires_at: Some(now + ttl),
            created_at: now,
        };
        Ok(matches!(
            self.store.acquire_lock(&lease, now).await?,
            LockOutcome::Acquired
        ))
    }

    /// Deliveries delivered at or after `since` (ms), newest first, and
    /// whether the listing stopped at `max_listed` short of `since`.
    async fn list_since(&self, since: i64) -> Result<(Vec<HookDelivery>, bool), SweepError> {
        let api = self.github.app_api();
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                None => "/app/hook/deliveries?per_page=100".to_string(),
                Some(c) => format!(
                    "/app/hook/deliveries?per_page=100&cursor={}",
                    url::form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>()
                ),
            };
            let resp = api
                .send(
                    http::Method::GET,
                    &path,
                    None::<&()>,
                    http::HeaderMap::new(),
                )
                .await?;
            let page: Vec<HookDelivery> = resp.json()?;
            let mut reached_window_end = page.is_empty();
            for d in page {
                match delivered_at_ms(&d.delivered_at) {
                    Some(at) if at >= since => out.push(d),
                    Some(_) => reached_window_end = true,
                    None => {
                        tracing::warn!(delivery = %d.guid, delivered_at = %d.delivered_at, "unreadable delivered_at; skipped")
                    }
                }
                if out.len() >= self.settings.max_listed {
                    return Ok((out, true));
                }
            }
            if reached_window_end {
                return Ok((out, false));
            }
            match resp.header("link").and_then(next_cursor) {
                Some(next) => cursor = Some(next),
                None => return Ok((out, false)),
            }
        }
    }

    async fn redeliver(&self, id: i64) -> Result<(), GitHubError> {
        self.github
            .app_api()
            .send(
                http::Method::POST,
                &format!("/app/hook/deliveries/{id}/attempts"),
                None::<&()>,
                http::HeaderMap::new(),
            )
            .await
            .map(|_| ())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}

fn delivered_at_ms(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The `cursor` of the `rel="next"` link in a `Link` header.
fn next_cursor(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        if !params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"")
        {
            return None;
        }
        let target = target.trim().trim_start_matches('<').trim_end_matches('>');
        let url = url::Url::parse(target).ok()?;
        url.query_pairs()
            .find(|(k, _)| k == "cursor")
            .map(|(_, v)| v.into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_cursor_comes_from_the_next_link_only() {
        let link = r#"<https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_9>; rel="next", <https://api.github.com/app/hook/deliveries?per_page=100>; rel="first""#;
        assert_eq!(next_cursor(link).as_deref(), Some("v1_9"));
        let only_first =
            r#"<https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_1>; rel="first""#;
        assert_eq!(next_cursor(only_first), None);
        assert_eq!(next_cursor("garbage"), None);
    }

    #[test]
    fn delivered_at_is_rfc3339() {
        assert_eq!(
            delivered_at_ms("2019-06-03T00:57:16Z"),
            Some(1_559_523_436_000)
        );
        assert_eq!(delivered_at_ms("yesterday"), None);
    }
}
