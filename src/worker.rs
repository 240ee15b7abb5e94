//! The delivery worker: claims stored deliveries, runs the handlers, and
//! records the outcome. received → processing → done | failed (dead after
//! `max_attempts`, with exponential backoff and jitter between attempts).
//!
//! Ingress wakes an idle worker through a `Notify`; idle workers also poll,
//! so work stored by another replica (PostgreSQL) or due for retry is found.
//! On shutdown, workers stop claiming and finish what they hold.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::handlers::{Context, HandlerError, Handlers};
use crate::metrics::Metrics;
use crate::settings::WorkerSettings;
use crate::store::{backoff_ms, ClaimedDelivery, DynStore};

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
    pub wake: Arc<Notify>,
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
                    self.process(delivery).await;
                }
                Ok(None) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(self.settings.poll_interval) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not claim a delivery; the store is unavailable");
                    tokio::select! {
                        _ = tokio::time::sleep(self.settings.poll_interval) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
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
            if let Err(e) = self.store.mark_failed(d.seq, &error, crate::now_ms()).await {
                tracing::error!(delivery = %d.delivery_id, error = %e, "could not record the outcome");
            }
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
            (Outcome::Done, _) => self.store.mark_done(d.seq, now).await,
            (Outcome::Retry, Err(e)) => {
                let mut delay = backoff_ms(
                    self.settings.backoff_base.as_millis() as u64,
                    d.attempts as u32,
                );
                // A rate limit is not over before GitHub's reset time.
                if let HandlerError::RateLimited(_, wait) = e {
                    delay = delay.max(wait.as_millis() as i64);
                }
                self.store
                    .mark_retry(d.seq, &e.to_string(), now + delay)
                    .await
            }
            (_, Err(e)) => self.store.mark_failed(d.seq, &e.to_string(), now).await,
            (_, Ok(())) => unreachable!("only Done has Ok"),
        };
        if let Err(e) = recorded {
            // The claim runs out and the delivery is processed again; handlers are idempotent.
            tracing::error!(delivery = %d.delivery_id, error = %e, "could not record the outcome");
        }
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
