//! The delivery worker: claims stored deliveries, runs the handlers, and
//! records the outcome. received → processing → done | failed (dead after
//! `max_attempts`, with exponential backoff and jitter between attempts).
//!
//! Ingress wakes an idle worker through [`Wake`]; idle workers also poll,
//! so work stored by another replica (PostgreSQL) or due for retry is found.
//! On shutdown, workers stop claiming and finish what they hold.

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::config::settings::WorkerSettings;
use crate::handlers::{Context, HandlerError, Handlers, Retry};
use crate::metrics::Metrics;
use crate::store::{ClaimedDelivery, DynStore, Held, StoreError, Wake};

/// The outcome of one processing attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Retry,
    Failed,
}

/// What [`Worker::process`] did with a delivery.
enum Processed {
    /// Done, not yet recorded (see [`Worker::record_done`]).
    Done(ClaimedDelivery),
    /// A retry or a failure, recorded.
    Recorded(Outcome),
}

/// Deliveries one claim takes at most: the head of a repository's queue and
/// the run behind it. A backlog then costs a claim and a recording per 32
/// deliveries instead of two statements each, and under light load a batch
/// is one delivery, as before.
pub const MAX_BATCH: usize = 32;

/// How long a delivery that is done may wait to be recorded with others of
/// its batch.
const DONE_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

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
    /// The wait before a delivery's next attempt: from
    /// `SHIPGATE_RETRY_BASE_MS`, at most ten minutes, ±50 % so retries of
    /// many deliveries spread out.
    fn retry_backoff(&self) -> Backoff {
        Backoff {
            base: self.settings.backoff_base,
            cap: Duration::from_secs(600),
            jitter: 0.5,
        }
    }

    /// Runs `settings.concurrency` loops until `shutdown` is cancelled and
    /// each loop has finished the delivery it holds.
    pub async fn run(self, shutdown: CancellationToken) {
        self.wake
            .set_installation_share(self.settings.installation_share());
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
        // The repository and the installation's slot of the deliveries
        // processed last stay held until the next claim has answered: that
        // claim sees what was stored for them before, and the hold's end
        // wakes a loop for what came after or was passed over.
        let mut holding = None;
        while !shutdown.is_cancelled() {
            let lease_end = Instant::now() + self.settings.lease;
            match self.claim(&worker, holding.as_ref()).await {
                Ok(Some((batch, held))) => {
                    // The new hold is taken before the old one is dropped.
                    holding = Some(held);
                    self.work_off(batch, lease_end, &shutdown).await;
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

    /// Claims the next delivery and the run of its repository's queue right
    /// behind it (see [`Store::claim_batch`](crate::store::Store::claim_batch)),
    /// passing over installations that hold their share of this process's
    /// loops, and holds its repository and a slot of its installation.
    /// `finishing` is what this loop held for the deliveries it just
    /// finished: its slot counts as free to this claim.
    ///
    /// Claims of this process take turns, so two loops cannot both take an
    /// installation's last free slot. On SQLite they take turns anyway (one
    /// write connection); on PostgreSQL a claim is one short statement.
    async fn claim(
        &self,
        worker: &str,
        finishing: Option<&Held>,
    ) -> Result<Option<(Vec<ClaimedDelivery>, Held)>, StoreError> {
        let _turn = self.wake.claim_turn().await;
        let excluded = self
            .wake
            .installations_at_share(finishing.and_then(Held::installation));
        let batch = self
            .store
            .claim_batch(
                worker,
                crate::now_ms(),
                self.settings.lease.as_millis() as i64,
                &excluded,
                MAX_BATCH - 1,
            )
            .await?;
        let Some(first) = batch.first() else {
            return Ok(None);
        };
        let held = self
            .wake
            .hold(first.repository.as_deref(), first.installation_id);
        Ok(Some((batch, held)))
    }

    /// Processes a claimed batch in order, one delivery after another.
    ///
    /// Deliveries that are done are recorded together, in one statement at
    /// the end of the batch, or sooner once the oldest has waited
    /// `DONE_WAIT` (so under a slow GitHub each is recorded about as it
    /// finishes). A retry ends the batch: the deliveries behind it must wait
    /// for it, so they are given back, as they are when the process is
    /// shutting down or the lease could run out during the next one.
    async fn work_off(
        &self,
        batch: Vec<ClaimedDelivery>,
        lease_end: Instant,
        shutdown: &CancellationToken,
    ) {
        let mut done: Vec<ClaimedDelivery> = Vec::new();
        let mut oldest_done: Option<Instant> = None;
        let mut rest = batch.into_iter().peekable();
        while let Some(d) = rest.next() {
            match self.attempt(d).await {
                Processed::Done(d) => {
                    oldest_done.get_or_insert_with(Instant::now);
                    done.push(d);
                }
                Processed::Recorded(Outcome::Retry) => {
                    self.record_done(&mut done).await;
                    self.give_back(rest.collect()).await;
                    return;
                }
                Processed::Recorded(_) => {}
            }
            if oldest_done.is_some_and(|t| t.elapsed() >= DONE_WAIT) {
                self.record_done(&mut done).await;
                oldest_done = None;
            }
            if rest.peek().is_some()
                && (shutdown.is_cancelled()
                    || Instant::now() + self.settings.handler_timeout >= lease_end)
            {
                self.record_done(&mut done).await;
                self.give_back(rest.collect()).await;
                return;
            }
        }
        self.record_done(&mut done).await;
    }

    /// Records the deliveries in `done` as done, in one statement.
    async fn record_done(&self, done: &mut Vec<ClaimedDelivery>) {
        if done.is_empty() {
            return;
        }
        match self.store.mark_done_many(done, crate::now_ms()).await {
            Ok(n) if n as usize == done.len() => {}
            // Their claim ran out and they were claimed again (see `report_recorded`).
            Ok(n) => tracing::warn!(
                recorded = n,
                done = done.len(),
                first = %done[0].delivery_id,
                "outcomes not all recorded: the claim ran out and some deliveries were claimed again"
            ),
            // The claim runs out and they are processed again; handlers are idempotent.
            Err(e) => {
                tracing::error!(first = %done[0].delivery_id, error = %e, "could not record deliveries as done")
            }
        }
        self.count("done", done.len());
        done.clear();
    }

    /// Gives claimed deliveries back unprocessed, for the next claim.
    async fn give_back(&self, rest: Vec<ClaimedDelivery>) {
        if rest.is_empty() {
            return;
        }
        if let Err(e) = self.store.release_claims(&rest).await {
            // Their lease runs out and they are claimed again.
            tracing::warn!(first = %rest[0].delivery_id, error = %e, "could not give back unprocessed deliveries");
        }
    }

    /// Counts `n` finished attempts with outcome `label`, for metrics and
    /// for whoever waits on [`Worker::finished`].
    fn count(&self, label: &str, n: usize) {
        self.metrics
            .deliveries_processed
            .with_label_values(&[label])
            .inc_by(n as u64);
        self.finished.send_modify(|f| *f += n as u64);
    }

    /// Processes one claimed delivery on its own and records the outcome.
    pub async fn process(&self, d: ClaimedDelivery) -> Outcome {
        match self.attempt(d).await {
            Processed::Done(d) => {
                self.record_done(&mut vec![d]).await;
                Outcome::Done
            }
            Processed::Recorded(outcome) => outcome,
        }
    }

    /// Runs the handlers on one claimed delivery. A panicking handler is
    /// contained (it runs in its own task) and counts as a failure. A retry
    /// or a failure is recorded here; a delivery that is done is handed back
    /// for [`Worker::record_done`].
    async fn attempt(&self, d: ClaimedDelivery) -> Processed {
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
            self.count("failed", 1);
            return Processed::Recorded(Outcome::Failed);
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
        let run_seconds = self.metrics.handler_run_seconds.clone();
        let observe = move |handler: &'static str, took: std::time::Duration| {
            run_seconds
                .with_label_values(&[handler])
                .observe(took.as_secs_f64());
        };
        let result = tokio::spawn(async move {
            match tokio::time::timeout(timeout, handlers.dispatch_timed(&cx, &delivery, observe))
                .await
            {
                Ok(r) => r,
                Err(_) => Err(HandlerError::transient(format!(
                    "handlers did not finish within {timeout:?}"
                ))),
            }
        })
        .await
        .unwrap_or_else(|join| Err(HandlerError::permanent(format!("handler panicked: {join}"))));
        self.metrics
            .handler_seconds
            .with_label_values(&[d.event.as_str()])
            .observe(started.elapsed().as_secs_f64());

        let now = crate::now_ms();
        let e = match result {
            Ok(()) => {
                tracing::info!(delivery = %d.delivery_id, event = %d.event, attempts = d.attempts, "delivery processed");
                return Processed::Done(d);
            }
            Err(e) => e,
        };
        let report = e.report();
        let (outcome, recorded) = match e.retry {
            Retry::Transient | Retry::RateLimited(_)
                if (d.attempts as u32) < self.settings.max_attempts =>
            {
                tracing::warn!(delivery = %d.delivery_id, event = %d.event, attempts = d.attempts, error = %report, "delivery will be retried");
                let mut delay = self.retry_backoff().delay(d.attempts as u32).as_millis() as i64;
                // A rate limit is not over before GitHub's reset time.
                if let Retry::RateLimited(wait) = e.retry {
                    delay = delay.max(wait.as_millis() as i64);
                }
                let recorded = self.store.mark_retry(&d, &report, now + delay).await;
                (Outcome::Retry, recorded)
            }
            _ => {
                tracing::error!(delivery = %d.delivery_id, event = %d.event, attempts = d.attempts, error = %report, "delivery failed");
                let recorded = self.store.mark_failed(&d, &report, now).await;
                (Outcome::Failed, recorded)
            }
        };
        report_recorded(&d, recorded);
        let label = match outcome {
            Outcome::Retry => "retry",
            _ => "failed",
        };
        self.count(label, 1);
        Processed::Recorded(outcome)
    }

    /// Re-checks pending deployment protection rule requests whose freeze
    /// ended or whose deadline passed (the other triggers are events), and
    /// starts queues whose lock expired or was given back.
    async fn protection_sweeper(&self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            if let Err(e) = crate::handlers::protection_rules::sweep(&self.context).await {
                tracing::warn!(error = %e, "protection rule sweep failed");
            }
            if let Err(e) = crate::handlers::sweep_locks(&self.context).await {
                tracing::warn!(error = %e, "lock sweep failed");
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
