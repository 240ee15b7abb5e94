//! Durable storage behind one trait, with an SQLite backend (the default, one
//! process) and a PostgreSQL backend (several replicas share one database and
//! claim work with `FOR UPDATE SKIP LOCKED`).
//!
//! Timestamps are milliseconds since the Unix epoch, passed in by the caller,
//! so both backends store the same thing and tests control the clock.

mod postgres;
mod sql;
mod sqlite;
mod wake;
mod writer;

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

pub use postgres::PostgresStore;
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

/// A delivery as it arrives, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub delivery_id: String,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<i64>,
    /// `owner/name`; deliveries of one repository are processed in order.
    pub repository: Option<String>,
    /// The JSON payload (for form-encoded deliveries, the decoded `payload` field).
    pub payload: Payload,
}

/// A payload as stored: compressed with lz4. GitHub's JSON compresses about
/// six-fold (16–28 KB to 3.5–4.5 KB), so a stored delivery writes one or two
/// database pages instead of five to seven, once to the WAL and once more to
/// the database file. It is compressed where the delivery is built (on the
/// request's task, so both CPUs share the work), not in the one writer.
#[derive(Clone, PartialEq, Eq)]
pub struct Payload(Vec<u8>);

impl Payload {
    /// The text, compressed.
    pub fn compress(text: &str) -> Payload {
        // A 4-byte little-endian length, then one lz4 block.
        Payload(lz4_flex::block::compress_prepend_size(text.as_bytes()))
    }

    /// The stored bytes.
    pub fn as_stored(&self) -> &[u8] {
        &self.0
    }

    /// The text back from stored bytes; a length beyond what ingress accepts
    /// is refused before anything is allocated.
    pub fn decompress(stored: &[u8]) -> Result<String, StoreError> {
        let corrupt = |why: &str| StoreError::Corrupt(format!("compressed payload: {why}"));
        let (len, block) = stored
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("shorter than its length prefix"))?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > MAX_BODY_BYTES {
            return Err(corrupt("length beyond the body limit"));
        }
        let bytes = lz4_flex::block::decompress(block, len).map_err(|e| corrupt(&e.to_string()))?;
        String::from_utf8(bytes).map_err(|_| corrupt("not UTF-8"))
    }
}

impl From<&str> for Payload {
    fn from(text: &str) -> Payload {
        Payload::compress(text)
    }
}

impl From<String> for Payload {
    fn from(text: String) -> Payload {
        Payload::compress(&text)
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Payload({} bytes compressed)", self.0.len())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    Inserted,
    Duplicate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Received,
    Processing,
    Done,
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Received => "received",
            DeliveryState::Processing => "processing",
            DeliveryState::Done => "done",
            DeliveryState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "received" => DeliveryState::Received,
            "processing" => DeliveryState::Processing,
            "done" => DeliveryState::Done,
            "failed" => DeliveryState::Failed,
            other => return Err(StoreError::Corrupt(format!("delivery state `{other}`"))),
        })
    }
}

/// A delivery claimed by a worker.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub seq: i64,
    pub delivery_id: String,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<i64>,
    pub repository: Option<String>,
    pub payload: String,
    /// Attempts so far, including this one.
    pub attempts: i32,
    /// The worker that holds this claim. With `attempts`, it names the claim:
    /// an outcome is recorded only while this claim still holds the row.
    pub claimed_by: String,
}

/// What the store knows about one delivery, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryStatus {
    pub delivery_id: String,
    pub event: String,
    pub state: DeliveryState,
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// Everything the store keeps about a delivery but its payload, for
/// operators (`shipgate deliveries`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub seq: i64,
    pub delivery_id: String,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<i64>,
    pub repository: Option<String>,
    pub state: DeliveryState,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub received_at: i64,
    pub next_attempt_at: i64,
    pub locked_by: Option<String>,
    pub locked_until: Option<i64>,
    pub finished_at: Option<i64>,
}

/// Which deliveries [`Store::list_deliveries`] returns: newest first, at
/// most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub state: Option<DeliveryState>,
    pub repository: Option<String>,
    pub limit: i64,
}

/// What [`Store::retry_delivery`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOutcome {
    /// It was failed and is `received` again, with no attempts.
    Retried,
    /// No delivery has that id.
    NotFound,
    /// It is not failed (only failed deliveries are retried); its state.
    NotFailed(DeliveryState),
}

/// Deliveries not yet done or failed: how many, and when the oldest arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PendingStats {
    pub depth: i64,
    pub oldest_received_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// Taken by a deploy; released when its deployment reaches a final state.
    Deploy,
    /// Taken by `/lock`; stays until `/unlock`, its TTL, or the PR closing.
    Sticky,
}

impl LockKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LockKind::Deploy => "deploy",
            LockKind::Sticky => "sticky",
        }
    }
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "deploy" => Ok(LockKind::Deploy),
            "sticky" => Ok(LockKind::Sticky),
            other => Err(StoreError::Corrupt(format!("lock kind `{other}`"))),
        }
    }
}

/// An environment lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub repository: String,
    pub environment: String,
    pub kind: LockKind,
    /// Login of the user who took it.
    pub holder: String,
    /// The pull request (or issue) it was taken from.
    pub pr: Option<i64>,
    /// Identifies the taker; release is compare-and-delete on it.
    pub owner_token: String,
    pub deployment_id: Option<i64>,
    pub reason: Option<String>,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    Acquired,
    /// Someone holds it (possibly this same PR, in a way that was kept).
    HeldBy(Lock),
}

/// What was done for one command line of one comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRun {
    pub repository: String,
    pub comment_id: i64,
    pub line: i64,
    pub command: String,
    pub environment: Option<String>,
    pub actor: String,
    pub pr: Option<i64>,
    pub reply_comment_id: Option<i64>,
    pub deployment_id: Option<i64>,
    /// The reply's data (JSON), so it can be re-rendered as the deployment progresses.
    pub model: Option<String>,
    pub created_at: i64,
    /// The line's place among the comment's command lines.
    pub position: i64,
}

/// A `/deploy ENV queue` request waiting for the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedDeploy {
    pub seq: i64,
    pub repository: String,
    pub environment: String,
    pub pr: i64,
    pub comment_id: i64,
    pub line: i64,
    pub actor: String,
    pub git_ref: Option<String>,
    pub installation_id: Option<i64>,
    pub created_at: i64,
}

/// One branch protection event: drift found, restored or failed.
#[derive(Debug, Clone)]
pub struct PolicyLogEntry<'a> {
    pub repository: &'a str,
    pub branch: &'a str,
    pub trigger: &'a str,
    pub actor: Option<&'a str>,
    /// `restored`, `audited` or `failed`.
    pub action: &'a str,
    /// The differences, as JSON.
    pub detail: &'a str,
}

/// A deployment protection rule request (see `handlers::protection_rules`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectionRequest {
    pub id: i64,
    pub repository: String,
    pub environment: String,
    pub deployment_id: i64,
    pub callback_url: String,
    pub sha: String,
    pub git_ref: String,
    pub pr: Option<i64>,
    /// The pull request head a foreign deployment's workflow ran for.
    pub reviewed_sha: Option<String>,
    pub installation_id: Option<i64>,
    pub state: String,
    pub deadline: i64,
    pub next_check_at: i64,
    pub progress_posts: i64,
    pub last_comment: Option<String>,
    pub created_at: i64,
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

#[cfg(test)]
mod tests {
    #[test]
    fn payloads_are_stored_compressed_and_read_back() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/webhooks-examples/pull_request.12.json"
        ))
        .unwrap();
        let stored = super::Payload::from(text.as_str());
        // A real payload shrinks to well under a quarter.
        assert!(stored.as_stored().len() * 4 < text.len(), "{stored:?}");
        assert_eq!(
            super::Payload::decompress(stored.as_stored()).unwrap(),
            text
        );
        assert_eq!(
            super::Payload::decompress(super::Payload::from("").as_stored()).unwrap(),
            ""
        );
    }

    #[test]
    fn damaged_stored_payloads_are_refused_not_trusted() {
        let good = super::Payload::from("{\"action\":\"opened\"}");
        let refused = |bytes: &[u8]| super::Payload::decompress(bytes).unwrap_err().to_string();
        assert!(refused(&[1, 0]).contains("shorter than its length prefix"));
        // A length prefix far beyond the body limit allocates nothing.
        let mut huge = good.as_stored().to_vec();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(refused(&huge).contains("beyond the body limit"));
        // A block that does not decode to the declared length.
        let mut truncated = good.as_stored().to_vec();
        truncated.truncate(truncated.len() - 3);
        assert!(refused(&truncated).starts_with("invalid stored value: compressed payload"));
        let not_utf8 = lz4_flex::block::compress_prepend_size(&[0xff, 0xfe]);
        assert!(refused(&not_utf8).contains("not UTF-8"));
    }
}
