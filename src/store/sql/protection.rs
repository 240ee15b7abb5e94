//! Deployment protection rule requests' SQL: recording a request, finding
//! the pending and due ones, recording progress and the answer.

/// The protection request methods of `$store`, as an inherent `impl` that
/// `sql_store!` forwards to.
macro_rules! sql_protection {
    ($store:ty) => {
        impl $store {
            async fn save_protection_request(&self, r: &ProtectionRequest) -> Result<ProtectionRequest, StoreError> {
                sqlx::query(
                    "INSERT INTO protection_requests (repository, environment, deployment_id, callback_url, sha, git_ref, pr, installation_id, deadline, next_check_at, created_at, reviewed_sha)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                     ON CONFLICT (repository, deployment_id, environment) DO NOTHING",
                )
                .bind(&r.repository)
                .bind(&r.environment)
                .bind(r.deployment_id)
                .bind(&r.callback_url)
                .bind(&r.sha)
                .bind(&r.git_ref)
                .bind(r.pr)
                .bind(r.installation_id)
                .bind(r.deadline)
                .bind(r.next_check_at)
                .bind(r.created_at)
                .bind(&r.reviewed_sha)
                .execute(&self.writes)
                .await?;
                let row = sqlx::query(concat!(
                    $crate::store::sql::protection_select!(),
                    " WHERE repository = $1 AND deployment_id = $2 AND environment = $3"
                ))
                .bind(&r.repository)
                .bind(r.deployment_id)
                .bind(&r.environment)
                .fetch_one(&self.writes)
                .await?;
                $crate::store::sql::protection_from_row(&row)
            }

            async fn pending_protection_requests(&self, repository: &str) -> Result<Vec<ProtectionRequest>, StoreError> {
                let rows = sqlx::query(concat!($crate::store::sql::protection_select!(), " WHERE repository = $1 AND state = 'pending' ORDER BY id"))
                    .bind(repository)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(|r| $crate::store::sql::protection_from_row(r)).collect()
            }

            async fn due_protection_requests(&self, now: i64) -> Result<Vec<ProtectionRequest>, StoreError> {
                let rows = sqlx::query(concat!($crate::store::sql::protection_select!(), " WHERE state = 'pending' AND next_check_at <= $1 ORDER BY id"))
                    .bind(now)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(|r| $crate::store::sql::protection_from_row(r)).collect()
            }

            async fn protection_progress(&self, id: i64, posts: i64, comment: &str, next_check_at: i64, deadline: i64) -> Result<(), StoreError> {
                sqlx::query("UPDATE protection_requests SET progress_posts = $2, last_comment = $3, next_check_at = $4, deadline = $5 WHERE id = $1")
                    .bind(id)
                    .bind(posts)
                    .bind(comment)
                    .bind(next_check_at)
                    .bind(deadline)
                    .execute(&self.writes)
                    .await?;
                Ok(())
            }

            async fn answer_protection_request(&self, id: i64, state: &str) -> Result<bool, StoreError> {
                let done = sqlx::query("UPDATE protection_requests SET state = $2 WHERE id = $1 AND state = 'pending'")
                    .bind(id)
                    .bind(state)
                    .execute(&self.writes)
                    .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
pub(in crate::store) use sql_protection;
