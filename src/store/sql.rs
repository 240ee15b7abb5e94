//! The SQL both backends share. Placeholders are `$N`, which PostgreSQL and
//! (through sqlx) SQLite both accept; the backends differ only in how they
//! connect, their migrations, the claim's row locking, and recovery at start.

use sqlx::Row;

use super::{ClaimedDelivery, DeliveryState, DeliveryStatus, StoreError};

/// The claim statement; `$lock` is `FOR UPDATE SKIP LOCKED` on PostgreSQL.
///
/// Rows of one repository are claimed in order: a later delivery waits while
/// an earlier one is unfinished. On PostgreSQL a row another replica is
/// claiming right now is skipped, and its later siblings stay excluded by the
/// NOT EXISTS because the locked row is still `received` in this snapshot.
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE deliveries
                SET state = 'processing', attempts = attempts + 1, locked_by = $1, locked_until = $2
              WHERE seq = (
                    SELECT d.seq FROM deliveries d
                     WHERE ((d.state = 'received' AND d.next_attempt_at <= $3)
                         OR (d.state = 'processing' AND d.locked_until < $3))
                       AND NOT EXISTS (
                           SELECT 1 FROM deliveries e
                            WHERE e.repository = d.repository AND e.seq < d.seq
                              AND e.state IN ('received', 'processing'))
                     ORDER BY d.seq
                     LIMIT 1 ",
            $lock,
            ")
             RETURNING seq, delivery_id, event, action, installation_id, repository, payload, attempts"
        )
    };
}
pub(super) use claim_sql;

/// `impl Store` for a backend struct with a `pool` field.
macro_rules! sql_store {
    ($store:ty, $backend:literal, $migrator:expr, $claim:expr, $requeue:expr) => {
        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn migrate(&self) -> Result<(), StoreError> {
                $migrator.run(&self.pool).await?;
                Ok(())
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn insert_delivery(&self, d: &NewDelivery, now: i64) -> Result<InsertOutcome, StoreError> {
                let done = sqlx::query(
                    "INSERT INTO deliveries (delivery_id, event, action, installation_id, repository, payload, received_at, next_attempt_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
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
                Ok(if done.rows_affected() == 1 { InsertOutcome::Inserted } else { InsertOutcome::Duplicate })
            }

            async fn claim_next(&self, worker: &str, now: i64, lease_ms: i64) -> Result<Option<ClaimedDelivery>, StoreError> {
                let row = sqlx::query($claim)
                    .bind(worker)
                    .bind(now + lease_ms)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| $crate::store::sql::claimed_from_row(&r)).transpose()
            }

            async fn mark_done(&self, seq: i64, now: i64) -> Result<(), StoreError> {
                sqlx::query("UPDATE deliveries SET state = 'done', finished_at = $2, locked_by = NULL, locked_until = NULL, last_error = NULL WHERE seq = $1")
                    .bind(seq)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn mark_retry(&self, seq: i64, error: &str, next_attempt_at: i64) -> Result<(), StoreError> {
                sqlx::query("UPDATE deliveries SET state = 'received', next_attempt_at = $2, last_error = $3, locked_by = NULL, locked_until = NULL WHERE seq = $1")
                    .bind(seq)
                    .bind(next_attempt_at)
                    .bind(error)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn mark_failed(&self, seq: i64, error: &str, now: i64) -> Result<(), StoreError> {
                sqlx::query("UPDATE deliveries SET state = 'failed', finished_at = $2, last_error = $3, locked_by = NULL, locked_until = NULL WHERE seq = $1")
                    .bind(seq)
                    .bind(now)
                    .bind(error)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn requeue_processing(&self) -> Result<u64, StoreError> {
                let sql: Option<&str> = $requeue;
                match sql {
                    Some(sql) => Ok(sqlx::query(sql).execute(&self.pool).await?.rows_affected()),
                    None => Ok(0),
                }
            }

            async fn queue_depth(&self) -> Result<i64, StoreError> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE state IN ('received', 'processing')")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(n)
            }

            async fn prune_finished(&self, before: i64) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM deliveries WHERE state IN ('done', 'failed') AND finished_at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn delivery_status(&self, delivery_id: &str) -> Result<Option<DeliveryStatus>, StoreError> {
                let row = sqlx::query("SELECT delivery_id, event, state, attempts, last_error FROM deliveries WHERE delivery_id = $1")
                    .bind(delivery_id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| $crate::store::sql::status_from_row(&r)).transpose()
            }
        }
    };
}
pub(super) use sql_store;

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
