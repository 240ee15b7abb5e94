//! PostgreSQL backend: several `shipgate serve` replicas share one database.
//! A claim locks its row with `FOR UPDATE SKIP LOCKED`, so each delivery goes
//! to exactly one replica and replicas never wait on each other's claims.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::sqlite::{claimed_from_row, status_from_row};
use super::*;

pub struct PostgresStore {
    pool: PgPool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl PostgresStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        Ok(PostgresStore { pool })
    }

    /// The pool, for tests that need to reset a schema.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

// Rows of one repository are claimed in order: a later delivery waits while an
// earlier one is unfinished. A row another replica is claiming right now is
// skipped, and its later siblings stay excluded by the NOT EXISTS because the
// locked row is still `received` in this transaction's snapshot.
const CLAIM_SQL: &str = "
UPDATE deliveries
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
        LIMIT 1
        FOR UPDATE SKIP LOCKED)
RETURNING seq, delivery_id, event, action, installation_id, repository, payload, attempts";

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
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
        sqlx::query("UPDATE deliveries SET state = 'done', finished_at = $2, locked_by = NULL, locked_until = NULL, last_error = NULL WHERE seq = $1")
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
        // Other replicas may hold live claims; expired ones are reclaimed by
        // `claim_next` through their lease instead.
        Ok(0)
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
            "DELETE FROM deliveries WHERE state IN ('done', 'failed') AND finished_at < $1",
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
        let row = sqlx::query("SELECT delivery_id, event, state, attempts, last_error FROM deliveries WHERE delivery_id = $1")
            .bind(delivery_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| status_from_row(&r)).transpose()
    }
}
