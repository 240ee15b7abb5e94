//! SQLite backend: the embedded default. WAL mode lets ingress write while the
//! worker reads; the busy timeout absorbs short write contention.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;

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

const CLAIM_SQL: &str = "
UPDATE deliveries
   SET state = 'processing', attempts = attempts + 1, locked_by = ?1, locked_until = ?2
 WHERE seq = (
       SELECT d.seq FROM deliveries d
        WHERE ((d.state = 'received' AND d.next_attempt_at <= ?3)
            OR (d.state = 'processing' AND d.locked_until < ?3))
          AND NOT EXISTS (
              SELECT 1 FROM deliveries e
               WHERE e.repository = d.repository AND e.seq < d.seq
                 AND e.state IN ('received', 'processing'))
        ORDER BY d.seq
        LIMIT 1)
RETURNING seq, delivery_id, event, action, installation_id, repository, payload, attempts";

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_delivery(
        &self,
        d: &NewDelivery,
        now: i64,
    ) -> Result<InsertOutcome, StoreError> {
        let done = sqlx::query(
            "INSERT INTO deliveries (delivery_id, event, action, installation_id, repository, payload, received_at, next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
             ON CONFLICT (delivery_id) DO NOTHING",
        )
        .bind(&d.delivery_id)
        .bind(&d.event)
        .bind(&d.action)
        .bind(d.installation_id)
        .bind(&d.repository)
        .bind(&d.payload)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(if done.rows_affected() == 1 {
            InsertOutcome::Inserted
        } else {
            InsertOutcome::Duplicate
        })
    }

    async fn claim_next(
        &self,
        worker: &str,
        now: i64,
        lease_ms: i64,
    ) -> Result<Option<ClaimedDelivery>, StoreError> {
        let row = sqlx::query(CLAIM_SQL)
            .bind(worker)
            .bind(now + lease_ms)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| claimed_from_row(&r)).transpose()
    }

    async fn mark_done(&self, seq: i64, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE deliveries SET state = 'done', finished_at = ?2, locked_by = NULL, locked_until = NULL, last_error = NULL WHERE seq = ?1")
            .bind(seq)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn mark_retry(
        &self,
        seq: i64,
        error: &str,
        next_attempt_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE deliveries SET state = 'received', next_attempt_at = ?2, last_error = ?3, locked_by = NULL, locked_until = NULL WHERE seq = ?1")
            .bind(seq)
            .bind(next_attempt_at)
            .bind(error)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn mark_failed(&self, seq: i64, error: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE deliveries SET state = 'failed', finished_at = ?2, last_error = ?3, locked_by = NULL, locked_until = NULL WHERE seq = ?1")
            .bind(seq)
            .bind(now)
            .bind(error)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn requeue_processing(&self) -> Result<u64, StoreError> {
        let done = sqlx::query("UPDATE deliveries SET state = 'received', locked_by = NULL, locked_until = NULL WHERE state = 'processing'")
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn queue_depth(&self) -> Result<i64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries WHERE state IN ('received', 'processing')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    async fn prune_finished(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM deliveries WHERE state IN ('done', 'failed') AND finished_at < ?1",
        )
        .bind(before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn delivery_status(
        &self,
        delivery_id: &str,
    ) -> Result<Option<DeliveryStatus>, StoreError> {
        let row = sqlx::query("SELECT delivery_id, event, state, attempts, last_error FROM deliveries WHERE delivery_id = ?1")
            .bind(delivery_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| status_from_row(&r)).transpose()
    }
}

pub(super) fn claimed_from_row<R>(r: &R) -> Result<ClaimedDelivery, StoreError>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i32: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(ClaimedDelivery {
        seq: r.try_get("seq")?,
        delivery_id: r.try_get("delivery_id")?,
        event: r.try_get("event")?,
        action: r.try_get("action")?,
        installation_id: r.try_get("installation_id")?,
        repository: r.try_get("repository")?,
        payload: r.try_get("payload")?,
        attempts: r.try_get("attempts")?,
    })
}

pub(super) fn status_from_row<R>(r: &R) -> Result<DeliveryStatus, StoreError>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i32: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let state: String = r.try_get("state")?;
    Ok(DeliveryStatus {
        delivery_id: r.try_get("delivery_id")?,
        event: r.try_get("event")?,
        state: DeliveryState::parse(&state)?,
        attempts: r.try_get("attempts")?,
        last_error: r.try_get("last_error")?,
    })
}
