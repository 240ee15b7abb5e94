//! Environment locks' SQL: taking, reading and releasing the one lock per
//! environment. Apart because lock ownership has its own rules (expiry, the
//! same PR taking its deploy lock over).

/// The environment lock methods of `$store`, as an inherent `impl` that
/// `sql_store!` forwards to.
macro_rules! sql_locks {
    ($store:ty) => {
        impl $store {
            async fn acquire_lock(&self, l: &Lock, now: i64) -> Result<LockOutcome, StoreError> {
                // The upsert's WHERE decides who may take over an existing row:
                // anyone when it expired; the same PR when it is that PR's deploy lock.
                let taken = sqlx::query(
                    "INSERT INTO env_locks (repository, environment, kind, holder, pr, owner_token, deployment_id, reason, expires_at, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8, $9)
                     ON CONFLICT (repository, environment) DO UPDATE
                        SET kind = excluded.kind, holder = excluded.holder, pr = excluded.pr,
                            owner_token = excluded.owner_token, deployment_id = NULL,
                            reason = excluded.reason, expires_at = excluded.expires_at, created_at = excluded.created_at
                      WHERE (env_locks.expires_at IS NOT NULL AND env_locks.expires_at <= $9)
                         OR (env_locks.kind = 'deploy' AND env_locks.pr = excluded.pr)
                     RETURNING owner_token",
                )
                .bind(&l.repository)
                .bind(&l.environment)
                .bind(l.kind.as_str())
                .bind(&l.holder)
                .bind(l.pr)
                .bind(&l.owner_token)
                .bind(&l.reason)
                .bind(l.expires_at)
                .bind(now)
                .fetch_optional(&self.writes)
                .await?;
                if taken.is_some() {
                    return Ok(LockOutcome::Acquired);
                }
                match self.get_lock(&l.repository, &l.environment, now).await? {
                    Some(current) => Ok(LockOutcome::HeldBy(current)),
                    // Released between the two statements: try again.
                    None => $crate::store::Store::acquire_lock(self, l, now).await,
                }
            }

            async fn get_lock(&self, repository: &str, environment: &str, now: i64) -> Result<Option<Lock>, StoreError> {
                let row = sqlx::query(concat!(
                    $crate::store::sql::lock_select!(),
                    " WHERE repository = $1 AND environment = $2 AND (expires_at IS NULL OR expires_at > $3)"
                ))
                .bind(repository)
                .bind(environment)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| $crate::store::sql::lock_from_row(&r)).transpose()
            }

            async fn list_locks(&self, repository: &str, now: i64) -> Result<Vec<Lock>, StoreError> {
                let rows = sqlx::query(concat!(
                    $crate::store::sql::lock_select!(),
                    " WHERE repository = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY environment"
                ))
                .bind(repository)
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(|r| $crate::store::sql::lock_from_row(r)).collect()
            }

            async fn set_lock_deployment(&self, repository: &str, environment: &str, owner_token: &str, deployment_id: i64) -> Result<bool, StoreError> {
                let done = sqlx::query("UPDATE env_locks SET deployment_id = $4 WHERE repository = $1 AND environment = $2 AND owner_token = $3")
                    .bind(repository)
                    .bind(environment)
                    .bind(owner_token)
                    .bind(deployment_id)
                    .execute(&self.writes)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn release_lock(&self, repository: &str, environment: &str, owner_token: &str) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM env_locks WHERE repository = $1 AND environment = $2 AND owner_token = $3")
                    .bind(repository)
                    .bind(environment)
                    .bind(owner_token)
                    .execute(&self.writes)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn release_deployment_lock(&self, repository: &str, deployment_id: i64) -> Result<Option<String>, StoreError> {
                let row: Option<(String,)> = sqlx::query_as(
                    "DELETE FROM env_locks WHERE repository = $1 AND deployment_id = $2 AND kind = 'deploy' RETURNING environment",
                )
                .bind(repository)
                .bind(deployment_id)
                .fetch_optional(&self.writes)
                .await?;
                Ok(row.map(|(env,)| env))
            }

            async fn take_expired_locks(&self, now: i64) -> Result<Vec<Lock>, StoreError> {
                let rows = sqlx::query(
                    "DELETE FROM env_locks WHERE expires_at IS NOT NULL AND expires_at <= $1
                     RETURNING repository, environment, kind, holder, pr, owner_token, deployment_id, reason, expires_at, created_at",
                )
                .bind(now)
                .fetch_all(&self.writes)
                .await?;
                rows.iter().map(|r| $crate::store::sql::lock_from_row(r)).collect()
            }

            async fn release_pr_locks(&self, repository: &str, pr: i64) -> Result<Vec<String>, StoreError> {
                let rows: Vec<(String,)> = sqlx::query_as("DELETE FROM env_locks WHERE repository = $1 AND pr = $2 RETURNING environment")
                    .bind(repository)
                    .bind(pr)
                    .fetch_all(&self.writes)
                    .await?;
                Ok(rows.into_iter().map(|(env,)| env).collect())
            }
        }
    };
}
pub(in crate::store) use sql_locks;
