//! ChatOps bookkeeping SQL: the command runs of each comment and the queue
//! of deploys waiting for an environment's lock. Apart because both are keyed
//! by comment and line, and a deploy's start moves a row from one to the other.

/// The command run and deploy queue methods of `$store`, as an inherent
/// `impl` that `sql_store!` forwards to.
macro_rules! sql_runs {
    ($store:ty) => {
        impl $store {
            async fn stalled_queues(&self, now: i64) -> Result<Vec<QueuedDeploy>, StoreError> {
                let rows = sqlx::query(concat!(
                    $crate::store::sql::queue_select!(),
                    " q WHERE q.seq = (SELECT MIN(h.seq) FROM deploy_queue h WHERE h.repository = q.repository AND h.environment = q.environment)
                        AND NOT EXISTS (SELECT 1 FROM env_locks l WHERE l.repository = q.repository AND l.environment = q.environment
                                          AND (l.expires_at IS NULL OR l.expires_at > $1))
                      ORDER BY q.seq"
                ))
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(|r| $crate::store::sql::queued_from_row(r)).collect()
            }

            async fn begin_run(&self, run: &CommandRun) -> Result<Option<CommandRun>, StoreError> {
                let inserted = sqlx::query(
                    "INSERT INTO command_runs (repository, comment_id, line, command, environment, actor, pr, created_at, position)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT (repository, comment_id, line) DO NOTHING",
                )
                .bind(&run.repository)
                .bind(run.comment_id)
                .bind(run.line)
                .bind(&run.command)
                .bind(&run.environment)
                .bind(&run.actor)
                .bind(run.pr)
                .bind(run.created_at)
                .bind(run.position)
                .execute(&self.writes)
                .await?;
                if inserted.rows_affected() == 1 {
                    return Ok(None);
                }
                let row = sqlx::query(concat!(
                    $crate::store::sql::run_select!(),
                    " WHERE repository = $1 AND comment_id = $2 AND line = $3"
                ))
                .bind(&run.repository)
                .bind(run.comment_id)
                .bind(run.line)
                .fetch_one(&self.writes)
                .await?;
                $crate::store::sql::run_from_row(&row).map(Some)
            }

            async fn set_comment_reply(&self, repository: &str, comment_id: i64, reply_comment_id: i64) -> Result<(), StoreError> {
                sqlx::query("UPDATE command_runs SET reply_comment_id = $3 WHERE repository = $1 AND comment_id = $2")
                    .bind(repository)
                    .bind(comment_id)
                    .bind(reply_comment_id)
                    .execute(&self.writes)
                    .await?;
                Ok(())
            }

            async fn runs_of_comment(&self, repository: &str, comment_id: i64) -> Result<Vec<CommandRun>, StoreError> {
                let rows = sqlx::query(concat!(
                    $crate::store::sql::run_select!(),
                    " WHERE repository = $1 AND comment_id = $2 ORDER BY position, created_at, line"
                ))
                .bind(repository)
                .bind(comment_id)
                .fetch_all(&self.writes)
                .await?;
                rows.iter().map(|r| $crate::store::sql::run_from_row(r)).collect()
            }

            async fn count_runs_since(&self, repository: &str, actor: &str, since: i64) -> Result<i64, StoreError> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM command_runs WHERE repository = $1 AND actor = $2 AND created_at >= $3")
                    .bind(repository)
                    .bind(actor)
                    .bind(since)
                    .fetch_one(&self.writes)
                    .await?;
                Ok(n)
            }

            async fn set_run_deployment(&self, repository: &str, comment_id: i64, line: i64, deployment_id: i64, model: &str) -> Result<(), StoreError> {
                let mut tx = self.writes.begin().await?;
                sqlx::query("UPDATE command_runs SET deployment_id = $4, model = $5 WHERE repository = $1 AND comment_id = $2 AND line = $3")
                    .bind(repository)
                    .bind(comment_id)
                    .bind(line)
                    .bind(deployment_id)
                    .bind(model)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM deploy_queue WHERE repository = $1 AND comment_id = $2 AND line = $3")
                    .bind(repository)
                    .bind(comment_id)
                    .bind(line)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn run_for_deployment(&self, repository: &str, deployment_id: i64) -> Result<Option<CommandRun>, StoreError> {
                let row = sqlx::query(concat!(
                    $crate::store::sql::run_select!(),
                    " WHERE repository = $1 AND deployment_id = $2"
                ))
                .bind(repository)
                .bind(deployment_id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| $crate::store::sql::run_from_row(&r)).transpose()
            }

            async fn update_run_model(&self, repository: &str, comment_id: i64, line: i64, model: &str) -> Result<(), StoreError> {
                sqlx::query("UPDATE command_runs SET model = $4 WHERE repository = $1 AND comment_id = $2 AND line = $3")
                    .bind(repository)
                    .bind(comment_id)
                    .bind(line)
                    .bind(model)
                    .execute(&self.writes)
                    .await?;
                Ok(())
            }

            async fn enqueue_deploy(&self, q: &QueuedDeploy) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO deploy_queue (repository, environment, pr, comment_id, line, actor, git_ref, installation_id, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT (repository, comment_id, line) DO NOTHING",
                )
                .bind(&q.repository)
                .bind(&q.environment)
                .bind(q.pr)
                .bind(q.comment_id)
                .bind(q.line)
                .bind(&q.actor)
                .bind(&q.git_ref)
                .bind(q.installation_id)
                .bind(q.created_at)
                .execute(&self.writes)
                .await?;
                Ok(())
            }

            async fn queued_deploys(&self, repository: &str, environment: &str) -> Result<Vec<QueuedDeploy>, StoreError> {
                let rows = sqlx::query(concat!(
                    $crate::store::sql::queue_select!(),
                    " WHERE repository = $1 AND environment = $2 ORDER BY seq"
                ))
                .bind(repository)
                .bind(environment)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(|r| $crate::store::sql::queued_from_row(r)).collect()
            }

            async fn next_queued_deploy(&self, repository: &str, environment: &str) -> Result<Option<QueuedDeploy>, StoreError> {
                let row = sqlx::query(concat!(
                    $crate::store::sql::queue_select!(),
                    " WHERE repository = $1 AND environment = $2 ORDER BY seq LIMIT 1"
                ))
                .bind(repository)
                .bind(environment)
                .fetch_optional(&self.writes)
                .await?;
                row.map(|r| $crate::store::sql::queued_from_row(&r)).transpose()
            }

            async fn dequeue_deploy(&self, repository: &str, comment_id: i64, line: i64) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM deploy_queue WHERE repository = $1 AND comment_id = $2 AND line = $3")
                    .bind(repository)
                    .bind(comment_id)
                    .bind(line)
                    .execute(&self.writes)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn drop_pr_queue(&self, repository: &str, pr: i64) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM deploy_queue WHERE repository = $1 AND pr = $2")
                    .bind(repository)
                    .bind(pr)
                    .execute(&self.writes)
                    .await?;
                Ok(done.rows_affected())
            }
        }
    };
}
pub(in crate::store) use sql_runs;
