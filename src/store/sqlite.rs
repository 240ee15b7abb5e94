//! SQLite backend: the embedded default, for one process.
//!
//! WAL mode lets readers run while a write is in progress. SQLite admits one
//! writer at a time, so every write goes through one connection (`writes`):
//! writers then queue in order for that connection, instead of each taking a
//! connection of its own and retrying in SQLite's busy handler, which sleeps
//! 1, 2, 5, 10… ms between tries.
//! Checkpoints (copying the WAL back into the database file, with an fsync)
//! run in the background instead of inside whichever commit crosses the
//! threshold, where every delivery queued behind that commit would wait
//! for them.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::sql::{claim_sql, sql_store};
use super::*;

pub struct SqliteStore {
    /// Reads.
    pool: SqlitePool,
    /// Writes: one connection.
    writes: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How often the background checkpoint runs.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);
/// A WAL longer than this many frames (pages; 4 KiB each: 256 MiB) is started
/// over. Each start-over holds the writer for the RESTART's copying and
/// fsyncs (19–27 ms in all under strace, on a disk whose fsyncs took from
/// under 0.1 to 24 ms), so it should be rare. With the worker on, a
/// delivery cost about 13.5 frames (its insert, claim and finish, one commit
/// each at 1,000/s; measured before `deliveries_pending` was dropped), so
/// 16,384 frames meant a start-over every second; at 65,536 the same run
/// (`bench/ingress/run.sh`, 1,000 deliveries/s for 30 s) had a p99 of 10.0 ms
/// against 15.2 ms.
const RESTART_FRAMES: i64 = 65536;
/// ... once a PASSIVE pass leaves at most this many frames uncopied.
const RESTART_LEFT: i64 = 256;
/// PASSIVE passes per round.
const PASSES: usize = 8;
/// A WAL file larger than this is truncated back to it when it starts over.
/// It is well above what `RESTART_FRAMES` lets the WAL reach, so under
/// steady load the file keeps its size and later cycles overwrite blocks it
/// already has instead of allocating them again (this and `RESTART_FRAMES`
/// were changed together and measured together).
const WAL_SIZE_LIMIT: u64 = 512 << 20;

impl SqliteStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a commit survives a crash of the process
            // (kill -9); only a power loss can take the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("wal_autocheckpoint", "0")
            .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string());
        // A local file needs no liveness check before each use; that check
        // is a round trip to the connection's thread per statement.
        let writes = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        tokio::spawn(checkpoints(pool.clone(), writes.clone()));
        Ok(SqliteStore { pool, writes })
    }
}

/// Checkpoints the WAL every `CHECKPOINT_INTERVAL` until the pools close.
async fn checkpoints(reads: SqlitePool, writes: SqlitePool) {
    let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if reads.is_closed() || writes.is_closed() {
            return;
        }
        if let Err(e) = checkpoint(&reads, &writes).await {
            if reads.is_closed() || writes.is_closed() {
                return;
            }
            tracing::warn!(error = %e, "WAL checkpoint failed; the next one will try again");
        }
    }
}

/// One round of checkpointing.
///
/// The copying is done by PASSIVE checkpoints on a reading connection: they
/// copy what they can without waiting for readers or the writer. Several
/// passes run back to back, each copying what arrived during the one before
/// (measured at 1,000 deliveries/s with the worker on: p99 3–4 ms with 8
/// passes per round against 30 ms with one; most likely because each fsync
/// then has less to flush, which is not measured).
///
/// But the WAL only starts over from its beginning once all of it is
/// copied, which never happens while deliveries keep arriving, so under
/// steady load it would grow without end. When it is longer than
/// `RESTART_FRAMES` and a pass left little behind, a RESTART checkpoint on
/// the writing connection finishes the job: it waits only for the write in
/// progress (its turn in the writers' queue), copies the few frames left,
/// and the next write starts the WAL over. (RESTART without the passes first
/// held the writer for about 20 ms at 1,000 deliveries/s, and about 8 ms
/// after them, on a machine where the worker was mostly idle; with the
/// worker busy, 19–27 ms after them, most of it fsyncs.)
async fn checkpoint(reads: &SqlitePool, writes: &SqlitePool) -> Result<(), sqlx::Error> {
    for _ in 0..PASSES {
        // (busy, frames in the WAL, frames copied). Read to the end, so the
        // statement is finished and its connection holds no read snapshot
        // that the RESTART below would have to wait for.
        let (_, frames, copied) =
            sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_all(reads)
                .await?
                .first()
                .copied()
                .unwrap_or_default();
        if frames > RESTART_FRAMES && frames - copied <= RESTART_LEFT {
            // It may wait briefly, in SQLite's busy handler, for a reader
            // still on an older snapshot.
            sqlx::query("PRAGMA wal_checkpoint(RESTART)")
                .execute(writes)
                .await?;
            return Ok(());
        }
    }
    Ok(())
}

/// Installation ids as a JSON array, for the claim's `json_each($4)`.
fn json_array(ids: &[i64]) -> String {
    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!("[{}]", ids.join(","))
}

// SQLite writes are serialised, so the claim needs no row locking. The file
// belongs to one process: whatever is `processing` at start was left by a run
// that is gone.
sql_store!(
    SqliteStore,
    "sqlite",
    MIGRATOR,
    claim_sql!("", "d.installation_id NOT IN (SELECT value FROM json_each($4))"),
    json_array,
    Some("UPDATE deliveries SET state = 'received', locked_by = NULL, locked_until = NULL WHERE state = 'processing'"),
    true
);
