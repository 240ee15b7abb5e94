//! Durable storage behind one trait, with an SQLite backend (the default, one
//! process) and a PostgreSQL backend (several replicas share one database and
//! claim work with `FOR UPDATE SKIP LOCKED`).
//!
//! Timestamps are milliseconds since the Unix epoch, passed in by the caller,
//! so both backends store the same thing and tests control the clock.

mod delivery;
mod postgres;
mod records;
mod sql;
mod sqlite;
mod wake;
mod writer;

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

pub use delivery::{
    ClaimedDelivery, DeliveryFilter, DeliveryRecord, DeliveryState, DeliveryStatus, InsertOutcome,
    NewDelivery, Payload, PendingStats, RetryOutcome,
};
pub use postgres::PostgresStore;
pub use records::{
    CommandRun, Lock, LockKind, LockOutcome, PolicyLogEntry, ProtectionRequest, QueuedDeploy,
};
pub use sqlite::SqliteStore;
pub use wake::{Held, Wake};
pub use writer::{DeliveryWriter, WriteError};

/// GitHub caps webhook payloads at 25 MB: ingress refuses larger bodies, so
/// no stored payload is larger.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// The database URL; kept apart so a password in it never reaches a log.
#[derive(Clone)]
pub struct DatabaseUrl(pub SecretString);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseUrl(SecretString::from(url.into()))
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
    pub fn is_postgres(&self) -> bool {
        let u = self.expose();
        u.starts_with("postgres://") || u.starts_with("postgresql://")
    }
    /// The URL with any password replaced, for logs.
    pub fn redacted(&self) -> String {
        match url::Url::parse(self.expose()) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("****"));
                u.to_string()
            }
            Ok(u) => u.to_string(),
            Err(_) => "<unparsable>".into(),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("invalid stored value: {0}")]
    Corrupt(String),
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Applies this backend's migrations.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Closes the connection pool; later calls fail. Called at shutdown.
    async fn close(&self);

    /// A cheap round trip, for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Stores a delivery unless its delivery id is already stored.
    async fn insert_delivery(
        &self,
        d: &NewDelivery,
        now: i64,
    ) -> Result<InsertOutcome, StoreError> {
        let outcomes = self.insert_deliveries(std::slice::from_ref(d), now).await?;
        Ok(outcomes[0])
    }

    /// Stores a delivery that arrives now but must not be claimed before
    /// `due` (work a handler schedules for later), unless its id is stored.
    async fn insert_delivery_due(
        &self,
        d: &NewDelivery,
        now: i64,
        due: i64,
    ) -> Result<InsertOutcome, StoreError>;

    /// Stores several deliveries in one statement (one commit), each unless
    /// its delivery id is already stored; the outcomes are in the batch's
    /// order. Of two entries with the same id only the first can be
    /// `Inserted`.
    async fn insert_deliveries(
        &self,
        batch: &[NewDelivery],
        now: i64,
    ) -> Result<Vec<InsertOutcome>, StoreError>;

    /// Claims the oldest delivery that is due, whose repository has no earlier
    /// unfinished delivery, that no live claim holds, and whose installation
    /// is not in `excluded_installations` (deliveries without an
    /// installation are never excluded), together with up to `max_behind`
    /// deliveries right behind it in its repository's queue, each due and
    /// of the head's installation, in order (the first one that is not ends
    /// the batch). All are claimed
    /// by `worker` and returned in order; the claims last `lease_ms`, and a
    /// delivery whose claim ran out is claimable again. An excluded
    /// installation's deliveries stay where they are: its repositories'
    /// later deliveries still wait behind them.
    async fn claim_batch(
        &self,
        worker: &str,
        now: i64,
        lease_ms: i64,
        excluded_installations: &[i64],
        max_behind: usize,
    ) -> Result<Vec<ClaimedDelivery>, StoreError>;

    /// [`Store::claim_batch`] of one delivery.
    async fn claim_next(
        &self,
        worker: &str,
        now: i64,
        lease_ms: i64,
        excluded_installations: &[i64],
    ) -> Result<Option<ClaimedDelivery>, StoreError> {
        Ok(self
            .claim_batch(worker, now, lease_ms, excluded_installations, 0)
            .await?
            .into_iter()
            .next())
    }

    /// Marks claimed deliveries done in one statement, each only while its
    /// claim still holds it (see `mark_done`). Returns how many it marked.
    async fn mark_done_many(&self, claims: &[ClaimedDelivery], now: i64)
        -> Result<u64, StoreError>;

    /// Gives claimed deliveries back unprocessed: `received` again, the
    /// claim's attempt not counted, each only while its claim still holds
    /// it. Returns how many it gave back.
    async fn release_claims(&self, claims: &[ClaimedDelivery]) -> Result<u64, StoreError>;

    /// Marks a claimed delivery done. Like `mark_retry` and `mark_failed`, it
    /// applies only while `claim` still holds the delivery (same worker, same
    /// attempt): once its lease ran out and another worker claimed the
    /// delivery again, the newer attempt's state is kept. Returns whether it
    /// applied.
    async fn mark_done(&self, claim: &ClaimedDelivery, now: i64) -> Result<bool, StoreError> {
        Ok(self
            .mark_done_many(std::slice::from_ref(claim), now)
            .await?
            == 1)
    }

    /// Puts a claimed delivery back to be tried again at `next_attempt_at`;
    /// `false` when `claim` no longer holds it (see `mark_done`).
    async fn mark_retry(
        &self,
        claim: &ClaimedDelivery,
        error: &str,
        next_attempt_at: i64,
    ) -> Result<bool, StoreError>;

    /// Marks a claimed delivery failed for good (dead); `false` when `claim`
    /// no longer holds it (see `mark_done`).
    async fn mark_failed(
        &self,
        claim: &ClaimedDelivery,
        error: &str,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Recovery at start. SQLite (one process per file) returns every
    /// `processing` delivery to `received`, since it belonged to a run that is
    /// gone; PostgreSQL returns 0 and relies on leases, because other replicas
    /// may hold live claims.
    async fn requeue_processing(&self) -> Result<u64, StoreError>;

    /// Deliveries not yet done or failed.
    async fn queue_depth(&self) -> Result<i64, StoreError>;

    /// Deletes done and failed deliveries finished before `before`.
    async fn prune_finished(&self, before: i64) -> Result<u64, StoreError>;

    async fn delivery_status(
        &self,
        delivery_id: &str,
    ) -> Result<Option<DeliveryStatus>, StoreError>;

    // ---- environment locks

    /// Takes the lock unless someone holds it. An expired lock is taken over;
    /// a deploy lock of the same PR is replaced by its new deploy, or turned
    /// sticky by its `/lock`. Atomic: of many concurrent callers, one wins.
    async fn acquire_lock(&self, lock: &Lock, now: i64) -> Result<LockOutcome, StoreError>;

    /// The live lock of an environment.
    async fn get_lock(
        &self,
        repository: &str,
        environment: &str,
        now: i64,
    ) -> Result<Option<Lock>, StoreError>;

    /// Live locks of a repository.
    async fn list_locks(&self, repository: &str, now: i64) -> Result<Vec<Lock>, StoreError>;

    /// Records the deployment a deploy lock belongs to.
    async fn set_lock_deployment(
        &self,
        repository: &str,
        environment: &str,
        owner_token: &str,
        deployment_id: i64,
    ) -> Result<bool, StoreError>;

    /// Compare-and-delete: releases the lock only if `owner_token` holds it.
    async fn release_lock(
        &self,
        repository: &str,
        environment: &str,
        owner_token: &str,
    ) -> Result<bool, StoreError>;

    /// Releases the deploy lock that belongs to `deployment_id`; returns its environment.
    async fn release_deployment_lock(
        &self,
        repository: &str,
        deployment_id: i64,
    ) -> Result<Option<String>, StoreError>;

    /// Releases every lock taken from `pr`; returns the environments freed.
    async fn release_pr_locks(&self, repository: &str, pr: i64) -> Result<Vec<String>, StoreError>;

    /// Removes and returns the locks whose TTL ran out by `now`.
    async fn take_expired_locks(&self, now: i64) -> Result<Vec<Lock>, StoreError>;

    /// The first queued deploy of each environment whose lock is free at `now`.
    async fn stalled_queues(&self, now: i64) -> Result<Vec<QueuedDeploy>, StoreError>;

    // ---- command runs

    /// Records a command line; if it was recorded before, returns that record.
    async fn begin_run(&self, run: &CommandRun) -> Result<Option<CommandRun>, StoreError>;

    /// Records the one reply to a comment on all of its runs.
    async fn set_comment_reply(
        &self,
        repository: &str,
        comment_id: i64,
        reply_comment_id: i64,
    ) -> Result<(), StoreError>;

    /// The runs of a comment, in the order of its lines.
    async fn runs_of_comment(
        &self,
        repository: &str,
        comment_id: i64,
    ) -> Result<Vec<CommandRun>, StoreError>;

    /// Command lines `actor` ran in a repository since `since`.
    async fn count_runs_since(
        &self,
        repository: &str,
        actor: &str,
        since: i64,
    ) -> Result<i64, StoreError>;

    /// Records the deployment a command line created, and in the same
    /// transaction takes that command off the deploy queue.
    async fn set_run_deployment(
        &self,
        repository: &str,
        comment_id: i64,
        line: i64,
        deployment_id: i64,
        model: &str,
    ) -> Result<(), StoreError>;

    async fn run_for_deployment(
        &self,
        repository: &str,
        deployment_id: i64,
    ) -> Result<Option<CommandRun>, StoreError>;

    async fn update_run_model(
        &self,
        repository: &str,
        comment_id: i64,
        line: i64,
        model: &str,
    ) -> Result<(), StoreError>;

    // ---- deploy queue

    /// Adds a request; a request already queued (same comment line) is kept once.
    async fn enqueue_deploy(&self, q: &QueuedDeploy) -> Result<(), StoreError>;

    async fn queued_deploys(
        &self,
        repository: &str,
        environment: &str,
    ) -> Result<Vec<QueuedDeploy>, StoreError>;

    /// Removes and returns the oldest request for the environment.
    /// The first deploy waiting in an environment's queue (it stays there).
    async fn next_queued_deploy(
        &self,
        repository: &str,
        environment: &str,
    ) -> Result<Option<QueuedDeploy>, StoreError>;

    /// Takes a command's deploy off the queue (it was refused).
    async fn dequeue_deploy(
        &self,
        repository: &str,
        comment_id: i64,
        line: i64,
    ) -> Result<bool, StoreError>;

    /// Drops the requests of a closed PR.
    async fn drop_pr_queue(&self, repository: &str, pr: i64) -> Result<u64, StoreError>;

    // ---- preview comments

    /// The preview comment of a PR, if one was recorded.
    async fn preview_comment(&self, repository: &str, pr: i64) -> Result<Option<i64>, StoreError>;

    /// Records the preview comment of a PR; if another was recorded first, returns that one.
    async fn set_preview_comment(
        &self,
        repository: &str,
        pr: i64,
        comment_id: i64,
    ) -> Result<i64, StoreError>;

    /// Replaces one environment's row of a PR's preview comment.
    async fn upsert_preview_row(
        &self,
        repository: &str,
        pr: i64,
        environment: &str,
        data: &str,
        now: i64,
    ) -> Result<(), StoreError>;

    /// The rows of a PR's preview comment: (environment, data, updated_at), by environment.
    async fn preview_rows(
        &self,
        repository: &str,
        pr: i64,
    ) -> Result<Vec<(String, String, i64)>, StoreError>;

    /// Marks a PR's previews closed (`Some(now)`; the first time is kept) or
    /// open again (`None`, when the PR is reopened).
    async fn set_previews_closed(
        &self,
        repository: &str,
        pr: i64,
        closed_at: Option<i64>,
    ) -> Result<(), StoreError>;

    /// Whether a PR's previews were closed (and it was not reopened since).
    async fn previews_closed(&self, repository: &str, pr: i64) -> Result<bool, StoreError>;

    // ---- branch protection policy

    /// Records drift found, a restore, or a failed restore.
    async fn log_policy(&self, entry: &PolicyLogEntry<'_>, now: i64) -> Result<(), StoreError>;

    /// Number of policy log entries of a repository.
    async fn policy_log_count(&self, repository: &str) -> Result<i64, StoreError>;

    /// Whether a problem was reported before.
    async fn problem_reported(&self, repository: &str, problem: &str) -> Result<bool, StoreError>;

    /// Marks a problem reported (after the report was posted).
    async fn record_problem(
        &self,
        repository: &str,
        problem: &str,
        now: i64,
    ) -> Result<(), StoreError>;

    /// The repository's config generation: how many pushes to it were
    /// processed (0 before the first).
    async fn config_generation(&self, repository: &str) -> Result<i64, StoreError>;

    /// Counts a push to the repository; returns the new generation.
    async fn bump_config_generation(&self, repository: &str) -> Result<i64, StoreError>;

    /// The epoch of a commit's policy evaluations: the job an event stores
    /// now is the one for this epoch (0 when none ran yet).
    async fn policy_epoch(&self, repository: &str, sha: &str) -> Result<i64, StoreError>;

    /// A policy job starts: events from now on store the next epoch's job.
    async fn bump_policy_epoch(&self, repository: &str, sha: &str) -> Result<i64, StoreError>;

    /// The check run shipgate keeps for a commit and name: its id and the
    /// digest of what it last said.
    async fn posted_check_run(
        &self,
        repository: &str,
        sha: &str,
        name: &str,
    ) -> Result<Option<(i64, String)>, StoreError>;

    async fn set_posted_check_run(
        &self,
        repository: &str,
        sha: &str,
        name: &str,
        check_run_id: i64,
        digest: &str,
    ) -> Result<(), StoreError>;

    /// The last config of the repository's default branch that loaded: its
    /// blob sha and the config as JSON.
    async fn valid_config(&self, repository: &str) -> Result<Option<(String, String)>, StoreError>;

    /// Keeps `config` (JSON) as the repository's last valid config.
    async fn save_valid_config(
        &self,
        repository: &str,
        blob_sha: &str,
        config: &str,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Records whether the smoke run of `deployment_id` in `environment`
    /// passed, and returns whether the environment's previous deployment's
    /// run passed (`None`: no earlier run). Recording the same deployment
    /// again (a retried job) returns the same answer.
    async fn record_smoke_outcome(
        &self,
        repository: &str,
        environment: &str,
        deployment_id: i64,
        passed: bool,
        now: i64,
    ) -> Result<Option<bool>, StoreError>;

    /// A sticky comment (or issue, with `pr` 0) of a kind.
    async fn sticky(
        &self,
        repository: &str,
        pr: i64,
        kind: &str,
    ) -> Result<Option<i64>, StoreError>;

    async fn set_sticky(
        &self,
        repository: &str,
        pr: i64,
        kind: &str,
        id: i64,
    ) -> Result<(), StoreError>;

    // ---- deployment protection rule requests

    /// Records a request; returns it (the one stored before, for a redelivery).
    async fn save_protection_request(
        &self,
        r: &ProtectionRequest,
    ) -> Result<ProtectionRequest, StoreError>;

    /// Pending requests of a repository.
    async fn pending_protection_requests(
        &self,
        repository: &str,
    ) -> Result<Vec<ProtectionRequest>, StoreError>;

    /// Pending requests due for a re-check (freeze end, deadline) at `now`.
    async fn due_protection_requests(&self, now: i64)
        -> Result<Vec<ProtectionRequest>, StoreError>;

    /// Records progress: the comment posted, when to look again, the deadline.
    async fn protection_progress(
        &self,
        id: i64,
        posts: i64,
        comment: &str,
        next_check_at: i64,
        deadline: i64,
    ) -> Result<(), StoreError>;

    /// Marks a request answered (`approved` or `rejected`); `false` if it was not pending.
    async fn answer_protection_request(&self, id: i64, state: &str) -> Result<bool, StoreError>;
    // ---- operators (`shipgate deliveries|locks|requests`, `/metrics`)

    /// Deliveries matching `filter`, newest first.
    async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// One delivery, and its payload (decompressed).
    async fn delivery_record(
        &self,
        delivery_id: &str,
    ) -> Result<Option<(DeliveryRecord, String)>, StoreError>;

    /// Puts a failed delivery back to `received`, due at `now`, with its
    /// attempts reset, so a worker of any replica takes it again (in its
    /// repository's order: its `seq` is kept, so it goes before the
    /// repository's later pending deliveries).
    async fn retry_delivery(&self, delivery_id: &str, now: i64)
        -> Result<RetryOutcome, StoreError>;

    /// Whether any delivery of `repository` is stored, and if so the
    /// installation of its newest delivery that names one.
    async fn repository_installation(
        &self,
        repository: &str,
    ) -> Result<Option<Option<i64>>, StoreError>;

    /// Queue depth and the arrival time of the oldest pending delivery (the
    /// earliest of each repository's first pending delivery, and of those
    /// without a repository).
    async fn pending_stats(&self) -> Result<PendingStats, StoreError>;

    /// Live locks of every repository, by repository and environment.
    async fn all_locks(&self, now: i64) -> Result<Vec<Lock>, StoreError>;

    /// Pending protection rule requests of every repository, oldest first.
    async fn all_pending_protection_requests(&self) -> Result<Vec<ProtectionRequest>, StoreError>;
}

pub type DynStore = Arc<dyn Store>;

/// Opens (and for SQLite, creates) the database named by `url`.
pub async fn connect(url: &DatabaseUrl) -> Result<DynStore, StoreError> {
    if url.is_postgres() {
        Ok(Arc::new(PostgresStore::connect(url.expose()).await?))
    } else {
        Ok(Arc::new(SqliteStore::connect(url.expose()).await?))
    }
}
