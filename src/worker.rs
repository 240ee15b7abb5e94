//! The delivery worker: claims stored deliveries, runs the handlers, and
//! records the outcome. received → processing → done | failed (dead after
//! `max_attempts`, with exponential backoff and jitter between attempts).
//!
//! Ingress wakes an idle worker through [`Wake`]; idle workers also poll,
//! so work stored by another replica (PostgreSQL) or due for retry is found.
//! On shutdown, workers stop claiming and finish what they hold.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::handlers::{Context, HandlerError, Handlers};
use crate::metrics::Metrics;
use crate::settings::WorkerSettings;
use crate::store::{backoff_ms, ClaimedDelivery, DynStore, StoreError};

/// The outcome of one processing attempt, published for tests and operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Retry,
    Failed,
}

#[derive(Clone)]
pub struct Worker {
    pub store: DynStore,
    pub handlers: Handlers,
    pub context: Context,
    pub settings: WorkerSettings,
    pub metrics: Metrics,
    pub wake: Wake,
    /// A name unique to this process, recorded on claims.
    pub id: String,
    /// Count of attempts finished by this process, for waiting in tests.
    pub finished: watch::Sender<u64>,
}

impl Worker {
    /// Runs `settings.concurrency` loops until `shutdown` is cancelled and
    /// each loop has finished the delivery it holds.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..self.settings.concurrency {
            let me = self.clone();
            let stop = shutdown.clone();
            tasks.spawn(async move { me.run_loop(n, stop).await });
        }
        if self.settings.concurrency > 0 {
            let me = self.clone();
            let stop = shutdown.clone();
            tasks.spawn(async move { me.housekeeping(stop).await });
            let me = self.clone();
            let stop = shutdown.clone();
            tasks.spawn(async move { me.protection_sweeper(stop).await });
        }
        while tasks.join_next().await.is_some() {}
    }

    async fn run_loop(&self, n: usize, shutdown: CancellationToken) {
        let worker = format!("{}/{n}", self.id);
        // The repository of the delivery processed last stays held until the
        // next claim has answered: that claim sees what was stored for it
        // before, and the hold's end wakes a loop for what came after.
        let mut holding = None;
        while !shutdown.is_cancelled() {
            match self
                .store
                .claim_next(
                    &worker,
                    crate::now_ms(),
                    self.settings.lease.as_millis() as i64,
                )
                .await
            {
                Ok(Some(delivery)) => {
                    // The new hold is taken before the old one is dropped.
                    holding = Some(self.wake.hold(delivery.repository.as_deref()));
                    self.process(delivery).await;
                }
                Ok(None) => {
                    holding = None;
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(self.settings.poll_interval) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
                Err(e) => {
                    holding = None;
                    tracing::error!(error = %e, "could not claim a delivery; the store is unavailable");
                    tokio::select! {
                        _ = tokio::time::sleep(self.settings.poll_interval) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
        drop(holding);
    }

    /// Processes one claimed delivery and records the outcome. A panicking
    /// handler is contained (it runs in its own task) and counts as a failure.
    pub async fn process(&self, d: ClaimedDelivery) -> Outcome {
        // Claimed more often than allowed: earlier attempts never reported
        // back (the process died during them), so this delivery may be what
        // kills it. Give up instead of looping.
        if d.attempts as u32 > self.settings.max_attempts {
            let error = format!(
                "gave up after {} attempts; the process stopped during earlier ones",
                d.attempts - 1
            );
            tracing::error!(delivery = %d.delivery_id, event = %d.event, %error, "delivery failed");
            let recorded = self.store.mark_failed(&d, &error, crate::now_ms()).await;
            report_recorded(&d, recorded);
            self.metrics
                .deliveries_processed
                .with_label_values(&["failed"])
                .inc();
            self.finished.send_modify(|n| *n += 1);
            return Outcome::Failed;
        }
        let started = Instant::now();
        let handlers = self.handlers.clone();
        // A fresh per-delivery memo: the shared caches stay, this one is per delivery.
        let cx = Context {
            read_this_delivery: Default::default(),
            ..self.context.clone()
        };
        let timeout = self.settings.handler_timeout;
        let delivery = d.clone();
        let result = tokio::spawn(async move {
            match tokio::time::timeout(timeout, handlers.dispatch(&cx, &delivery)).await {
                Ok(r) => r,
                Err(_) => Err(HandlerError::Transient(format!(
                    "handlers did not finish within {timeout:?}"
                ))),
            }
        })
        .await
        .unwrap_or_else(|join| Err(HandlerError::Permanent(format!("handler panicked: {join}"))));
        self.metrics
            .handler_seconds
            .with_label_values(&[d.event.as_str()])
            .observe(started.elapsed().as_secs_f64());

        let now = crate::now_ms();
        let outcome = match result {
            Ok(()) => {
                tracing::info!(delivery = %d.delivery_id, event = %d.event, attempts = d.attempts, "delivery processed");
                Outcome::Done
            }
            Err(HandlerError::Transient(ref msg))
                if (d.attempts as u32) < self.settings.max_attempts =>
            {
                tracing::warn!(delivery = %d.delivery_id, event = %d.event, attempts = d.attempts, error = %msg, "delivery will be retried");
                Outcome::Retry
            }
            Err(ref e) => {
                tracing::error!(delivery = %d.delivery_id, event = %d.event, attempts = d.attempts, error = %e, "delivery failed");
                Outcome::Failed
            }
        };
        let recorded = match (&outcome, &result) {
            (Outcome::Done, _) => self.store.mark_done(&d, now).await,
            (Outcome::Retry, Err(e)) => {
                let mut delay = backoff_ms(
                    self.settings.backoff_base.as_millis() as u64,
                    d.attempts as u32,
                );
                // A rate limit is not over before GitHub's reset time.
                if let HandlerError::RateLimited(_, wait) = e {
                    delay = delay.max(wait.as_millis() as i64);
                }
                self.store.mark_retry(&d, &e.to_string(), now + delay).await
            }
            (_, Err(e)) => self.store.mark_failed(&d, &e.to_string(), now).await,
            (_, Ok(())) => unreachable!("only Done has Ok"),
        };
        report_recorded(&d, recorded);
        let label = match outcome {
            Outcome::Done => "done",
            Outcome::Retry => "retry",
            Outcome::Failed => "failed",
        };
        self.metrics
            .deliveries_processed
            .with_label_values(&[label])
            .inc();
        self.finished.send_modify(|n| *n += 1);
        outcome
    }

    /// Re-checks pending deployment protection rule requests whose freeze
    /// ended or whose deadline passed (the other triggers are events).
    async fn protection_sweeper(&self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            if let Err(e) = crate::handlers::protection_rules::sweep(&self.context).await {
                tracing::warn!(error = %e, "protection rule sweep failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.protection_sweep) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }

    /// Deletes finished deliveries older than the retention, hourly. The
    /// retention must outlast GitHub's redelivery window (3 days) so a
    /// redelivered id is still recognised as a duplicate.
    async fn housekeeping(&self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let before = crate::now_ms() - self.settings.retention.as_millis() as i64;
            match self.store.prune_finished(before).await {
                Ok(n) if n > 0 => tracing::info!(deleted = n, "pruned finished deliveries"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not prune finished deliveries"),
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }
}

/// Logs an outcome that was not recorded.
fn report_recorded(d: &ClaimedDelivery, recorded: Result<bool, StoreError>) {
    match recorded {
        Ok(true) => {}
        // This attempt outlived its lease and the delivery was claimed again
        // (by another replica, or here after a stall): the newer attempt
        // owns the row now, and its outcome is the one that counts.
        Ok(false) => tracing::warn!(
            delivery = %d.delivery_id,
            attempts = d.attempts,
            "outcome not recorded: this attempt's claim ran out and the delivery was claimed again"
        ),
        // The claim runs out and the delivery is processed again; handlers are idempotent.
        Err(e) => {
            tracing::error!(delivery = %d.delivery_id, error = %e, "could not record the outcome")
        }
    }
}

/// Wakes idle worker loops when work is stored.
///
/// A delivery whose repository a loop of this process is processing is not
/// claimable until that one finishes (deliveries of a repository run in
/// order), and the loop that finishes it claims again at once. Waking for it
/// would only make an idle loop run a claim that finds nothing, and on SQLite
/// every claim is a turn of the one write connection that ingress commits
/// through too. Under a burst for one repository that was one empty claim
/// per delivery (bench/BENCHMARKS.md, "Empty claims"). So such a delivery
/// wakes no one; if the hold ends without the holder claiming again, the end
/// of the hold wakes a loop for it.
#[derive(Clone, Default)]
pub struct Wake {
    notify: Arc<Notify>,
    /// Repositories with a delivery being processed here.
    held: Arc<Mutex<HashMap<String, Holds>>>,
}

#[derive(Default)]
struct Holds {
    count: usize,
    /// A delivery of the repository was stored and woke no one.
    skipped: bool,
}

impl Wake {
    /// A delivery of `repository` was committed: wake a loop unless one of
    /// this process's loops holds that repository.
    pub fn stored(&self, repository: Option<&str>) {
        if let Some(repository) = repository {
            if let Some(holds) = self.held.lock().expect("poisoned").get_mut(repository) {
                holds.skipped = true;
                return;
            }
        }
        self.notify.notify_one();
    }

    /// Wakes a loop whatever was stored (follow-up work from handlers).
    pub fn notify_one(&self) {
        self.notify.notify_one();
    }

    async fn notified(&self) {
        self.notify.notified().await
    }

    /// Marks `repository` as being processed until the guard is dropped.
    fn hold(&self, repository: Option<&str>) -> Held {
        let repository = repository.map(str::to_string);
        if let Some(r) = &repository {
            let mut held = self.held.lock().expect("poisoned");
            held.entry(r.clone()).or_default().count += 1;
        }
        Held {
            wake: self.clone(),
            repository,
        }
    }
}

/// A repository held by a worker loop; see [`Wake::hold`].
struct Held {
    wake: Wake,
    repository: Option<String>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(r) = &self.repository else { return };
        let mut held = self.wake.held.lock().expect("poisoned");
        let Some(holds) = held.get_mut(r) else { return };
        holds.count -= 1;
        if holds.count == 0 {
            let skipped = holds.skipped;
            held.remove(r);
            if skipped {
                self.wake.notify.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    /// Whether a loop waiting now would wake at once (takes the permit).
    fn woken(wake: &Wake) -> bool {
        wake.notified().now_or_never().is_some()
    }

    #[test]
    fn a_stored_delivery_wakes_a_loop_unless_its_repository_is_held_here() {
        let wake = Wake::default();
        wake.stored(Some("o/a"));
        assert!(woken(&wake));
        assert!(!woken(&wake), "one delivery, one wake-up");

        let held = wake.hold(Some("o/a"));
        wake.stored(Some("o/a"));
        assert!(!woken(&wake), "o/a waits for the loop that holds it");
        wake.stored(Some("o/b"));
        assert!(woken(&wake), "another repository is claimable");
        wake.stored(None);
        assert!(woken(&wake), "a delivery without a repository is claimable");
        wake.notify_one();
        assert!(woken(&wake), "follow-up work always wakes");

        drop(held);
        assert!(
            woken(&wake),
            "the hold's end wakes a loop for what it skipped"
        );
        wake.stored(Some("o/a"));
        assert!(woken(&wake), "released: o/a wakes again");
    }

    #[test]
    fn a_hold_that_skipped_nothing_ends_without_a_wake_up() {
        let wake = Wake::default();
        drop(wake.hold(Some("o/a")));
        assert!(!woken(&wake));
    }

    #[test]
    fn a_repository_stays_held_until_its_last_holder_lets_go() {
        let wake = Wake::default();
        let first = wake.hold(Some("o/a"));
        let second = wake.hold(Some("o/a"));
        let none = wake.hold(None);
        drop(first);
        wake.stored(Some("o/a"));
        assert!(!woken(&wake));
        drop(second);
        assert!(
            woken(&wake),
            "the last holder wakes a loop for what was skipped"
        );
        drop(none);
        assert!(wake.held.lock().unwrap().is_empty());
    }
}
