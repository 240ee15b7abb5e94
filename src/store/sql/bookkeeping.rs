//! Small per-repository and per-PR records: preview and sticky comments, the
//! policy log, reported problems, config generations, policy epochs, posted
//! check runs, the last valid config, each environment's last smoke outcome.
//! Apart from the queues: each is a simple keyed read or upsert.

/// The bookkeeping methods of `$store`, as an inherent `impl` that
/// `sql_store!` forwards to.
macro_rules! sql_bookkeeping {
    ($store:ty) => {
        impl $store {
            async fn preview_comment(&self, repository: &str, pr: i64) -> Result<Option<i64>, StoreError> {
                let row: Option<(i64,)> = sqlx::query_as("SELECT comment_id FROM preview_comments WHERE repository = $1 AND pr = $2")
                    .bind(repository)
                    .bind(pr)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|(id,)| id))
            }

            async fn set_preview_comment(&self, repository: &str, pr: i64, comment_id: i64) -> Result<i64, StoreError> {
                sqlx::query("INSERT INTO preview_comments (repository, pr, comment_id) VALUES ($1, $2, $3) ON CONFLICT (repository, pr) DO NOTHING")
                    .bind(repository)
                    .bind(pr)
                    .bind(comment_id)
                    .execute(&self.writes)
                    .await?;
                Ok(self.preview_comment(repository, pr).await?.unwrap_or(comment_id))
            }

            async fn upsert_preview_row(&self, repository: &str, pr: i64, environment: &str, data: &str, now: i64) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO preview_rows (repository, pr, environment, data, updated_at) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (repository, pr, environment) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                )
                .bind(repository)
                .bind(pr)
                .bind(environment)
                .bind(data)
                .bind(now)
                .execute(&self.writes)
                .await?;
                Ok(())
            }

            async fn preview_rows(&self, repository: &str, pr: i64) -> Result<Vec<(String, String, i64)>, StoreError> {
                let rows: Vec<(String, String, i64)> = sqlx::query_as(
                    "SELECT environment, data, updated_at FROM preview_rows WHERE repository = $1 AND pr = $2 ORDER BY environment",
                )
                .bind(repository)
                .bind(pr)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            async fn set_previews_closed(&self, repository: &str, pr: i64, closed_at: Option<i64>) -> Result<(), StoreError> {
                let q = match closed_at {
                    Some(at) => sqlx::query("INSERT INTO preview_closed (repository, pr, closed_at) VALUES ($1, $2, $3) ON CONFLICT (repository, pr) DO NOTHING")
                        .bind(repository)
                        .bind(pr)
                        .bind(at),
                    None => sqlx::query("DELETE FROM preview_closed WHERE repository = $1 AND pr = $2")
                        .bind(repository)
                        .bind(pr),
                };
                q.execute(&self.writes).await?;
                Ok(())
            }

            async fn previews_closed(&self, repository: &str, pr: i64) -> Result<bool, StoreError> {
                let row: Option<(i64,)> = sqlx::query_as("SELECT closed_at FROM preview_closed WHERE repository = $1 AND pr = $2")
                    .bind(repository)
                    .bind(pr)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.is_some())
            }

            async fn log_policy(&self, e: &PolicyLogEntry<'_>, now: i64) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO policy_log (repository, branch, trigger, actor, action, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(e.repository)
                    .bind(e.branch)
                    .bind(e.trigger)
                    .bind(e.actor)
                    .bind(e.action)
                    .bind(e.detail)
                    .bind(now)
                    .execute(&self.writes)
                    .await?;
                Ok(())
            }

            async fn policy_log_count(&self, repository: &str) -> Result<i64, StoreError> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM policy_log WHERE repository = $1")
                    .bind(repository)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(n)
            }

            async fn problem_reported(&self, repository: &str, problem: &str) -> Result<bool, StoreError> {
                let row: Option<(i64,)> = sqlx::query_as("SELECT created_at FROM reported_problems WHERE repository = $1 AND problem = $2")
                    .bind(repository)
                    .bind(problem)
                    .fetch_optional(&self.writes)
                    .await?;
                Ok(row.is_some())
            }

            async fn record_problem(&self, repository: &str, problem: &str, now: i64) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO reported_problems (repository, problem, created_at) VALUES ($1, $2, $3) ON CONFLICT (repository, problem) DO NOTHING")
                    .bind(repository)
                    .bind(problem)
                    .bind(now)
                    .execute(&self.writes)
                    .await?;
                Ok(())
            }

            async fn config_generation(&self, repository: &str) -> Result<i64, StoreError> {
                let row: Option<(i64,)> = sqlx::query_as("SELECT generation FROM config_generations WHERE repository = $1")
                    .bind(repository)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map_or(0, |(g,)| g))
            }

            async fn bump_config_generation(&self, repository: &str) -> Result<i64, StoreError> {
                let (generation,): (i64,) = sqlx::query_as(
                    "INSERT INTO config_generations (repository, generation) VALUES ($1, 1)
                     ON CONFLICT (repository) DO UPDATE SET generation = config_generations.generation + 1
                     RETURNING generation",
                )
                .bind(repository)
                .fetch_one(&self.writes)
                .await?;
                Ok(generation)
            }

            async fn policy_epoch(&self, repository: &str, sha: &str) -> Result<i64, StoreError> {
                let row: Option<(i64,)> = sqlx::query_as("SELECT epoch FROM policy_epochs WHERE repository = $1 AND sha = $2")
                    .bind(repository)
                    .bind(sha)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map_or(0, |(e,)| e))
            }

            async fn bump_policy_epoch(&self, repository: &str, sha: &str) -> Result<i64, StoreError> {
                let (epoch,): (i64,) = sqlx::query_as(
                    "INSERT INTO policy_epochs (repository, sha, epoch) VALUES ($1, $2, 1)
                     ON CONFLICT (repository, sha) DO UPDATE SET epoch = policy_epochs.epoch + 1
                     RETURNING epoch",
                )
                .bind(repository)
                .bind(sha)
                .fetch_one(&self.writes)
                .await?;
                Ok(epoch)
            }

            async fn posted_check_run(&self, repository: &str, sha: &str, name: &str) -> Result<Option<(i64, String)>, StoreError> {
                let row: Option<(i64, String)> = sqlx::query_as(
                    "SELECT check_run_id, digest FROM posted_check_runs WHERE repository = $1 AND sha = $2 AND name = $3",
                )
                .bind(repository)
                .bind(sha)
                .bind(name)
                .fetch_optional(&self.writes)
                .await?;
                Ok(row)
            }

            async fn set_posted_check_run(&self, repository: &str, sha: &str, name: &str, check_run_id: i64, digest: &str) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO posted_check_runs (repository, sha, name, check_run_id, digest) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (repository, sha, name) DO UPDATE SET check_run_id = excluded.check_run_id, digest = excluded.digest",
                )
                .bind(repository)
                .bind(sha)
                .bind(name)
                .bind(check_run_id)
                .bind(digest)
                .execute(&self.writes)
                .await?;
                Ok(())
            }

            async fn valid_config(&self, repository: &str) -> Result<Option<(String, String)>, StoreError> {
                let row: Option<(String, String)> = sqlx::query_as("SELECT blob_sha, config FROM valid_configs WHERE repository = $1")
                    .bind(repository)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row)
            }

            async fn save_valid_config(&self, repository: &str, blob_sha: &str, config: &str, now: i64) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO valid_configs (repository, blob_sha, config, updated_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (repository) DO UPDATE SET blob_sha = excluded.blob_sha, config = excluded.config, updated_at = excluded.updated_at",
                )
                .bind(repository)
                .bind(blob_sha)
                .bind(config)
                .bind(now)
                .execute(&self.writes)
                .await?;
                Ok(())
            }

            async fn record_smoke_outcome(&self, repository: &str, environment: &str, deployment_id: i64, passed: bool, now: i64) -> Result<Option<bool>, StoreError> {
                // Smoke jobs of a repository run one at a time, in order.
                let row: Option<(i64, i64, Option<i64>)> = sqlx::query_as(
                    "SELECT deployment_id, passed, previous_passed FROM smoke_outcomes WHERE repository = $1 AND environment = $2",
                )
                .bind(repository)
                .bind(environment)
                .fetch_optional(&self.writes)
                .await?;
                let previous = match row {
                    None => None,
                    // The same deployment again: what came before it still stands.
                    Some((id, _, before)) if id == deployment_id => before,
                    Some((_, was, _)) => Some(was),
                };
                sqlx::query(
                    "INSERT INTO smoke_outcomes (repository, environment, deployment_id, passed, previous_passed, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (repository, environment) DO UPDATE SET deployment_id = excluded.deployment_id, passed = excluded.passed, previous_passed = excluded.previous_passed, updated_at = excluded.updated_at",
                )
                .bind(repository)
                .bind(environment)
                .bind(deployment_id)
                .bind(passed as i64)
                .bind(previous)
                .bind(now)
                .execute(&self.writes)
                .await?;
                Ok(previous.map(|p| p != 0))
            }

            async fn sticky(&self, repository: &str, pr: i64, kind: &str) -> Result<Option<i64>, StoreError> {
                let row: Option<(i64,)> = sqlx::query_as("SELECT comment_id FROM sticky_comments WHERE repository = $1 AND pr = $2 AND kind = $3")
                    .bind(repository)
                    .bind(pr)
                    .bind(kind)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|(id,)| id))
            }

            async fn set_sticky(&self, repository: &str, pr: i64, kind: &str, id: i64) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO sticky_comments (repository, pr, kind, comment_id) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (repository, pr, kind) DO UPDATE SET comment_id = excluded.comment_id",
                )
                .bind(repository)
                .bind(pr)
                .bind(kind)
                .bind(id)
                .execute(&self.writes)
                .await?;
                Ok(())
            }
        }
    };
}
pub(in crate::store) use sql_bookkeeping;
