//! SQLite backend: the embedded default, for one process. WAL mode lets
//! ingress write while the worker reads; the busy timeout absorbs short write
//! contention.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::sql::{claim_sql, sql_store};
use super::*;

pub struct SqliteStore {
    pool: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqliteStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a commit survives a crash of the process
            // (kill -9); only a power loss can take the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Ok(SqliteStore { pool })
    }
}

// SQLite writes are serialised, so the claim needs no row locking. The file
// belongs to one process: whatever is `processing` at start was left by a run
// that is gone.
sql_store!(
    SqliteStore,
    "sqlite",
    MIGRATOR,
    claim_sql!(""),
    Some("UPDATE deliveries SET state = 'received', locked_by = NULL, locked_until = NULL WHERE state = 'processing'")
);
