//! The delivery worker: claims stored deliveries, runs the handlers, and
//! records the outcome. received → processing → done | failed (dead after
//! `max_attempts`, with exponential backoff and jitter between attempts).
//!
//! Ingress wakes an idle worker through [`Wake`]; idle workers also poll,
//! so work stored by another replica (PostgreSQL) or due for retry is found.
//! On shutdown, workers stop claiming and finish what they hold.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::handlers::{Context, HandlerError, Handlers};
use crate::metrics::Metrics;
use crate::settings::WorkerSettings;
use crate::store::{ClaimedDelivery, DynStore, StoreError};

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
        let _turn = self.wake.claiming.lock().await;
        let excluded = self
            .wake
            .installations_at_share(finishing.and_then(|h| h.installation));
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
        let e = match result {
            Ok(()) => {
                tracing::info!(delivery = %d.delivery_id, event = %d.event, attempts = d.attempts, "delivery processed");
                return Processed::Done(d);
            }
            Err(e) => e,
        };
        let (outcome, recorded) = match e {
            HandlerError::Transient(_) | HandlerError::RateLimited(..)
                if (d.attempts as u32) < self.settings.max_attempts =>
            {
                tracing::warn!(delivery = %d.delivery_id, event = %d.event, attempts = d.attempts, error = %e, "delivery will be retried");
                let mut delay = self.retry_backoff().delay(d.attempts as u32).as_millis() as i64;
                // A rate limit is not over before GitHub's reset time.
                if let HandlerError::RateLimited(_, wait) = &e {
                    delay = delay.max(wait.as_millis() as i64);
                }
                let recorded = self.store.mark_retry(&d, &e.to_string(), now + delay).await;
                (Outcome::Retry, recorded)
            }
            e => {
                tracing::error!(delivery = %d.delivery_id, event = %d.event, attempts = d.attempts, error = %e, "delivery failed");
                let recorded = self.store.mark_failed(&d, &e.to_string(), now).await;
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

/// Wakes idle worker loops when work is stored, and keeps each
/// installation to its share of this process's loops.
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
///
/// Likewise for installations: while an installation (tenant) has its share
/// of deliveries in processing here, claims pass over its deliveries and a
/// delivery stored for it wakes no one; when one of its slots frees while
/// something of it was passed over, a loop is woken for it.
#[derive(Clone, Default)]
pub struct Wake {
    notify: Arc<Notify>,
    /// Repositories with a delivery being processed here.
    held: Arc<Mutex<HashMap<String, Holds>>>,
    /// Deliveries being processed here, per installation.
    shares: Arc<Mutex<Shares>>,
    /// Claims of this process take turns (see `Worker::claim`).
    claiming: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Default)]
struct Holds {
    count: usize,
    /// A delivery of the repository was stored and woke no one.
    skipped: bool,
}

struct Shares {
    /// Deliveries of one installation in processing here, at most.
    share: usize,
    by_installation: HashMap<i64, Share>,
}

impl Default for Shares {
    /// No share until a worker runs (see `Worker::run`).
    fn default() -> Self {
        Shares {
            share: usize::MAX,
            by_installation: HashMap::new(),
        }
    }
}

#[derive(Default)]
struct Share {
    processing: usize,
    /// While the installation was at its share, a claim passed it over or a
    /// delivery of it was stored and woke no one.
    passed_over: bool,
}

impl Wake {
    /// A delivery of `repository` and `installation` was committed: wake a
    /// loop unless one of this process's loops holds that repository or the
    /// installation holds its share of the loops.
    pub fn stored(&self, repository: Option<&str>, installation: Option<i64>) {
        if let Some(repository) = repository {
            if let Some(holds) = self.held.lock().expect("poisoned").get_mut(repository) {
                holds.skipped = true;
                return;
            }
        }
        if let Some(installation) = installation {
            let mut shares = self.shares.lock().expect("poisoned");
            let share = shares.share;
            if let Some(s) = shares.by_installation.get_mut(&installation) {
                if s.processing >= share {
                    s.passed_over = true;
                    return;
                }
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

    /// Sets how many deliveries of one installation may be in processing here.
    fn set_installation_share(&self, share: usize) {
        self.shares.lock().expect("poisoned").share = share.max(1);
    }

    /// The installations a claim must pass over: those holding their share,
    /// not counting the slot of `finishing` (the claiming loop's last
    /// delivery, done with). Each is marked passed over, so that its next
    /// free slot wakes a loop.
    fn installations_at_share(&self, finishing: Option<i64>) -> Vec<i64> {
        let mut shares = self.shares.lock().expect("poisoned");
        let share = shares.share;
        shares
            .by_installation
            .iter_mut()
            .filter(|(id, s)| {
                s.processing
                    .saturating_sub(usize::from(finishing == Some(**id)))
                    >= share
            })
            .map(|(id, s)| {
                s.passed_over = true;
                *id
            })
            .collect()
    }

    /// Marks `repository` as being processed, and takes a slot of
    /// `installation`, until the guard is dropped.
    fn hold(&self, repository: Option<&str>, installation: Option<i64>) -> Held {
        let repository = repository.map(str::to_string);
        if let Some(r) = &repository {
            let mut held = self.held.lock().expect("poisoned");
            held.entry(r.clone()).or_default().count += 1;
        }
        if let Some(i) = installation {
            let mut shares = self.shares.lock().expect("poisoned");
            shares.by_installation.entry(i).or_default().processing += 1;
        }
        Held {
            wake: self.clone(),
            repository,
            installation,
        }
    }
}

/// A repository and an installation's slot held by a worker loop; see
/// [`Wake::hold`].
struct Held {
    wake: Wake,
    repository: Option<String>,
    installation: Option<i64>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(r) = &self.repository {
            let mut held = self.wake.held.lock().expect("poisoned");
            if let Some(holds) = held.get_mut(r) {
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
        if let Some(i) = self.installation {
            let mut shares = self.wake.shares.lock().expect("poisoned");
            let share = shares.share;
            if let Some(s) = shares.by_installation.get_mut(&i) {
                s.processing -= 1;
                if s.processing < share && s.passed_over {
                    s.passed_over = false;
                    self.wake.notify.notify_one();
                }
                if s.processing == 0 {
                    shares.by_installation.remove(&i);
                }
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
        wake.stored(Some("o/a"), None);
        assert!(woken(&wake));
        assert!(!woken(&wake), "one delivery, one wake-up");

        let held = wake.hold(Some("o/a"), None);
        wake.stored(Some("o/a"), None);
        assert!(!woken(&wake), "o/a waits for the loop that holds it");
        wake.stored(Some("o/b"), None);
        assert!(woken(&wake), "another repository is claimable");
        wake.stored(None, None);
        assert!(woken(&wake), "a delivery without a repository is claimable");
        wake.notify_one();
        assert!(woken(&wake), "follow-up work always wakes");

        drop(held);
        assert!(
            woken(&wake),
            "the hold's end wakes a loop for what it skipped"
        );
        wake.stored(Some("o/a"), None);
        assert!(woken(&wake), "released: o/a wakes again");
    }

    #[test]
    fn a_hold_that_skipped_nothing_ends_without_a_wake_up() {
        let wake = Wake::default();
        drop(wake.hold(Some("o/a"), None));
        assert!(!woken(&wake));
    }

    #[test]
    fn a_repository_stays_held_until_its_last_holder_lets_go() {
        let wake = Wake::default();
        let first = wake.hold(Some("o/a"), None);
        let second = wake.hold(Some("o/a"), None);
        let none = wake.hold(None, None);
        drop(first);
        wake.stored(Some("o/a"), None);
        assert!(!woken(&wake));
        drop(second);
        assert!(
            woken(&wake),
            "the last holder wakes a loop for what was skipped"
        );
        drop(none);
        assert!(wake.held.lock().unwrap().is_empty());
    }

    #[test]
    fn an_installation_at_its_share_is_passed_over_and_woken_for_when_a_slot_frees() {
        let wake = Wake::default();
        wake.set_installation_share(2);
        let first = wake.hold(Some("a/1"), Some(1));
        assert!(wake.installations_at_share(None).is_empty());
        let second = wake.hold(Some("a/2"), Some(1));
        let other = wake.hold(Some("b/1"), Some(2));
        assert_eq!(wake.installations_at_share(None), [1]);
        // The loop that finished `first` claims as if its slot were free.
        assert!(wake.installations_at_share(Some(1)).is_empty());

        wake.stored(Some("a/3"), Some(1));
        assert!(!woken(&wake), "installation 1 holds its share");
        wake.stored(Some("b/2"), Some(2));
        assert!(woken(&wake), "installation 2 has room");
        wake.stored(Some("c/1"), None);
        assert!(
            woken(&wake),
            "a delivery without an installation is never held back"
        );

        drop(other);
        assert!(!woken(&wake), "nothing of installation 2 was passed over");
        drop(first);
        assert!(
            woken(&wake),
            "a slot of installation 1 freed: wake a loop for what was passed over"
        );
        drop(second);
        assert!(!woken(&wake), "one wake-up per passing over");
        assert!(wake.shares.lock().unwrap().by_installation.is_empty());
    }

    #[test]
    fn without_a_running_worker_no_installation_is_held_back() {
        let wake = Wake::default();
        let _held: Vec<_> = (0..100).map(|_| wake.hold(None, Some(1))).collect();
        assert!(wake.installations_at_share(None).is_empty());
        wake.stored(None, Some(1));
        assert!(woken(&wake));
    }
}
