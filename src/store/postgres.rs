//! PostgreSQL backend: several `shipgate serve` replicas share one database.
//! A claim locks its row with `FOR UPDATE SKIP LOCKED`, so each delivery goes
//! to exactly one replica and replicas never wait on each other's claims.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

use super::sql::{claim_sql, sql_store};
use super::*;

pub struct PostgresStore {
    pool: PgPool,
    /// The same pool: PostgreSQL runs writers concurrently.
    writes: PgPool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl PostgresStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        Ok(PostgresStore {
            writes: pool.clone(),
            pool,
        })
    }
}

// Other replicas may hold live claims, so nothing is requeued at start:
// a claim whose replica died is reclaimed when its lease runs out.
sql_store!(
    PostgresStore,
    "postgres",
    MIGRATOR,
    claim_sql!(
        "FOR UPDATE SKIP LOCKED",
        "d.installation_id <> ALL($4::bigint[])"
    ),
    <[i64]>::to_vec,
    None,
    false
);
