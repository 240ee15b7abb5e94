//! The SQL both backends share. Placeholders are `$N`, which PostgreSQL and
//! (through sqlx) SQLite both accept; the backends differ only in how they
//! connect, their migrations, the claim's row locking, and recovery at start.
//!
//! Each topic's statements live in a submodule, as a macro that writes an
//! inherent `impl` block for the backend struct; `sql_store!` calls them all
//! and writes the `impl Store`, which forwards each method to its topic.

mod bookkeeping;
mod deliveries;
mod locks;
mod operators;
mod protection;
mod rows;
mod runs;

pub(super) use bookkeeping::sql_bookkeeping;
pub(super) use deliveries::{
    claim_sql, held_by_claim, held_by_claims, insert_deliveries_sql, insert_outcomes,
    newest_of_sql, sql_deliveries,
};
pub(super) use locks::sql_locks;
pub(super) use operators::sql_operators;
pub(super) use protection::sql_protection;
pub(super) use rows::{
    claimed_from_row, lock_from_row, protection_from_row, queued_from_row, record_from_row,
    run_from_row, status_from_row,
};
pub(crate) use rows::{lock_select, protection_select, queue_select, record_select, run_select};
pub(super) use runs::sql_runs;

/// `impl Store` for a backend struct with two pools: `pool` for reads and
/// `writes` for statements that write (the same pool on PostgreSQL; one
/// connection on SQLite, see `sqlite.rs`). `$one_writer`: the database runs
/// one write at a time, so `seq` follows commit order (SQLite).
/// `$excluded`: turns the installation ids a claim excludes into the value
/// bound to the claim's `$4`.
///
/// The methods themselves are the topics' inherent methods of the same names
/// (inherent methods come first in method lookup, so `self.name(..)` below
/// reaches them, not the trait method it is in).
macro_rules! sql_store {
    ($store:ty, $backend:literal, $migrator:expr, $claim:expr, $excluded:expr, $requeue:expr, $one_writer:expr) => {
        $crate::store::sql::sql_deliveries!($store, $claim, $excluded, $requeue, $one_writer);
        $crate::store::sql::sql_locks!($store);
        $crate::store::sql::sql_runs!($store);
        $crate::store::sql::sql_bookkeeping!($store);
        $crate::store::sql::sql_protection!($store);
        $crate::store::sql::sql_operators!($store);

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn migrate(&self) -> Result<(), StoreError> {
                $migrator.run(&self.writes).await?;
                Ok(())
            }

            async fn close(&self) {
                self.writes.close().await;
                self.pool.close().await;
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn insert_deliveries(
                &self,
                batch: &[NewDelivery],
                now: i64,
            ) -> Result<Vec<InsertOutcome>, StoreError> {
                self.insert_deliveries(batch, now).await
            }

            async fn insert_delivery_due(
                &self,
                d: &NewDelivery,
                now: i64,
                due: i64,
            ) -> Result<InsertOutcome, StoreError> {
                self.insert_delivery_due(d, now, due).await
            }

            async fn claim_batch(
                &self,
                worker: &str,
                now: i64,
                lease_ms: i64,
                excluded_installations: &[i64],
                max_behind: usize,
            ) -> Result<Vec<ClaimedDelivery>, StoreError> {
                self.claim_batch(worker, now, lease_ms, excluded_installations, max_behind)
                    .await
            }

            async fn mark_done_many(
                &self,
                claims: &[ClaimedDelivery],
                now: i64,
            ) -> Result<u64, StoreError> {
                self.mark_done_many(claims, now).await
            }

            async fn release_claims(&self, claims: &[ClaimedDelivery]) -> Result<u64, StoreError> {
                self.release_claims(claims).await
            }

            async fn mark_retry(
                &self,
                claim: &ClaimedDelivery,
                error: &str,
                next_attempt_at: i64,
            ) -> Result<bool, StoreError> {
                self.mark_retry(claim, error, next_attempt_at).await
            }

            async fn mark_failed(
                &self,
                claim: &ClaimedDelivery,
                error: &str,
                now: i64,
            ) -> Result<bool, StoreError> {
                self.mark_failed(claim, error, now).await
            }

            async fn requeue_processing(&self) -> Result<u64, StoreError> {
                self.requeue_processing().await
            }

            async fn queue_depth(&self) -> Result<i64, StoreError> {
                self.queue_depth().await
            }

            async fn prune_finished(&self, before: i64) -> Result<u64, StoreError> {
                self.prune_finished(before).await
            }

            async fn delivery_status(
                &self,
                delivery_id: &str,
            ) -> Result<Option<DeliveryStatus>, StoreError> {
                self.delivery_status(delivery_id).await
            }

            async fn acquire_lock(&self, l: &Lock, now: i64) -> Result<LockOutcome, StoreError> {
                self.acquire_lock(l, now).await
            }

            async fn get_lock(
                &self,
                repository: &str,
                environment: &str,
                now: i64,
            ) -> Result<Option<Lock>, StoreError> {
                self.get_lock(repository, environment, now).await
            }

            async fn list_locks(
                &self,
                repository: &str,
                now: i64,
            ) -> Result<Vec<Lock>, StoreError> {
                self.list_locks(repository, now).await
            }

            async fn set_lock_deployment(
                &self,
                repository: &str,
                environment: &str,
                owner_token: &str,
                deployment_id: i64,
            ) -> Result<bool, StoreError> {
                self.set_lock_deployment(repository, environment, owner_token, deployment_id)
                    .await
            }

            async fn release_lock(
                &self,
                repository: &str,
                environment: &str,
                owner_token: &str,
            ) -> Result<bool, StoreError> {
                self.release_lock(repository, environment, owner_token)
                    .await
            }

            async fn release_deployment_lock(
                &self,
                repository: &str,
                deployment_id: i64,
            ) -> Result<Option<String>, StoreError> {
                self.release_deployment_lock(repository, deployment_id)
                    .await
            }

            async fn take_expired_locks(&self, now: i64) -> Result<Vec<Lock>, StoreError> {
                self.take_expired_locks(now).await
            }

            async fn stalled_queues(&self, now: i64) -> Result<Vec<QueuedDeploy>, StoreError> {
                self.stalled_queues(now).await
            }

            async fn release_pr_locks(
                &self,
                repository: &str,
                pr: i64,
            ) -> Result<Vec<String>, StoreError> {
                self.release_pr_locks(repository, pr).await
            }

            async fn begin_run(&self, run: &CommandRun) -> Result<Option<CommandRun>, StoreError> {
                self.begin_run(run).await
            }

            async fn set_comment_reply(
                &self,
                repository: &str,
                comment_id: i64,
                reply_comment_id: i64,
            ) -> Result<(), StoreError> {
                self.set_comment_reply(repository, comment_id, reply_comment_id)
                    .await
            }

            async fn runs_of_comment(
                &self,
                repository: &str,
                comment_id: i64,
            ) -> Result<Vec<CommandRun>, StoreError> {
                self.runs_of_comment(repository, comment_id).await
            }

            async fn count_runs_since(
                &self,
                repository: &str,
                actor: &str,
                since: i64,
            ) -> Result<i64, StoreError> {
                self.count_runs_since(repository, actor, since).await
            }

            async fn set_run_deployment(
                &self,
                repository: &str,
                comment_id: i64,
                line: i64,
                deployment_id: i64,
                model: &str,
            ) -> Result<(), StoreError> {
                self.set_run_deployment(repository, comment_id, line, deployment_id, model)
                    .await
            }

            async fn run_for_deployment(
                &self,
                repository: &str,
                deployment_id: i64,
            ) -> Result<Option<CommandRun>, StoreError> {
                self.run_for_deployment(repository, deployment_id).await
            }

            async fn update_run_model(
                &self,
                repository: &str,
                comment_id: i64,
                line: i64,
                model: &str,
            ) -> Result<(), StoreError> {
                self.update_run_model(repository, comment_id, line, model)
                    .await
            }

            async fn enqueue_deploy(&self, q: &QueuedDeploy) -> Result<(), StoreError> {
                self.enqueue_deploy(q).await
            }

            async fn queued_deploys(
                &self,
                repository: &str,
                environment: &str,
            ) -> Result<Vec<QueuedDeploy>, StoreError> {
                self.queued_deploys(repository, environment).await
            }

            async fn next_queued_deploy(
                &self,
                repository: &str,
                environment: &str,
            ) -> Result<Option<QueuedDeploy>, StoreError> {
                self.next_queued_deploy(repository, environment).await
            }

            async fn dequeue_deploy(
                &self,
                repository: &str,
                comment_id: i64,
                line: i64,
            ) -> Result<bool, StoreError> {
                self.dequeue_deploy(repository, comment_id, line).await
            }

            async fn drop_pr_queue(&self, repository: &str, pr: i64) -> Result<u64, StoreError> {
                self.drop_pr_queue(repository, pr).await
            }

            async fn preview_comment(
                &self,
                repository: &str,
                pr: i64,
            ) -> Result<Option<i64>, StoreError> {
                self.preview_comment(repository, pr).await
            }

            async fn set_preview_comment(
                &self,
                repository: &str,
                pr: i64,
                comment_id: i64,
            ) -> Result<i64, StoreError> {
                self.set_preview_comment(repository, pr, comment_id).await
            }

            async fn upsert_preview_row(
                &self,
                repository: &str,
                pr: i64,
                environment: &str,
                data: &str,
                now: i64,
            ) -> Result<(), StoreError> {
                self.upsert_preview_row(repository, pr, environment, data, now)
                    .await
            }

            async fn preview_rows(
                &self,
                repository: &str,
                pr: i64,
            ) -> Result<Vec<(String, String, i64)>, StoreError> {
                self.preview_rows(repository, pr).await
            }

            async fn set_previews_closed(
                &self,
                repository: &str,
                pr: i64,
                closed_at: Option<i64>,
            ) -> Result<(), StoreError> {
                self.set_previews_closed(repository, pr, closed_at).await
            }

            async fn previews_closed(&self, repository: &str, pr: i64) -> Result<bool, StoreError> {
                self.previews_closed(repository, pr).await
            }

            async fn log_policy(&self, e: &PolicyLogEntry<'_>, now: i64) -> Result<(), StoreError> {
                self.log_policy(e, now).await
            }

            async fn policy_log_count(&self, repository: &str) -> Result<i64, StoreError> {
                self.policy_log_count(repository).await
            }

            async fn problem_reported(
                &self,
                repository: &str,
                problem: &str,
            ) -> Result<bool, StoreError> {
                self.problem_reported(repository, problem).await
            }

            async fn record_problem(
                &self,
                repository: &str,
                problem: &str,
                now: i64,
            ) -> Result<(), StoreError> {
                self.record_problem(repository, problem, now).await
            }

            async fn config_generation(&self, repository: &str) -> Result<i64, StoreError> {
                self.config_generation(repository).await
            }

            async fn bump_config_generation(&self, repository: &str) -> Result<i64, StoreError> {
                self.bump_config_generation(repository).await
            }

            async fn policy_epoch(&self, repository: &str, sha: &str) -> Result<i64, StoreError> {
                self.policy_epoch(repository, sha).await
            }

            async fn bump_policy_epoch(
                &self,
                repository: &str,
                sha: &str,
            ) -> Result<i64, StoreError> {
                self.bump_policy_epoch(repository, sha).await
            }

            async fn posted_check_run(
                &self,
                repository: &str,
                sha: &str,
                name: &str,
            ) -> Result<Option<(i64, String)>, StoreError> {
                self.posted_check_run(repository, sha, name).await
            }

            async fn set_posted_check_run(
                &self,
                repository: &str,
                sha: &str,
                name: &str,
                check_run_id: i64,
                digest: &str,
            ) -> Result<(), StoreError> {
                self.set_posted_check_run(repository, sha, name, check_run_id, digest)
                    .await
            }

            async fn valid_config(
                &self,
                repository: &str,
            ) -> Result<Option<(String, String)>, StoreError> {
                self.valid_config(repository).await
            }

            async fn save_valid_config(
                &self,
                repository: &str,
                blob_sha: &str,
                config: &str,
                now: i64,
            ) -> Result<(), StoreError> {
                self.save_valid_config(repository, blob_sha, config, now)
                    .await
            }

            async fn record_smoke_outcome(
                &self,
                repository: &str,
                environment: &str,
                deployment_id: i64,
                passed: bool,
                now: i64,
            ) -> Result<Option<bool>, StoreError> {
                self.record_smoke_outcome(repository, environment, deployment_id, passed, now)
                    .await
            }

            async fn sticky(
                &self,
                repository: &str,
                pr: i64,
                kind: &str,
            ) -> Result<Option<i64>, StoreError> {
                self.sticky(repository, pr, kind).await
            }

            async fn set_sticky(
                &self,
                repository: &str,
                pr: i64,
                kind: &str,
                id: i64,
            ) -> Result<(), StoreError> {
                self.set_sticky(repository, pr, kind, id).await
            }

            async fn save_protection_request(
                &self,
                r: &ProtectionRequest,
            ) -> Result<ProtectionRequest, StoreError> {
                self.save_protection_request(r).await
            }

            async fn pending_protection_requests(
                &self,
                repository: &str,
            ) -> Result<Vec<ProtectionRequest>, StoreError> {
                self.pending_protection_requests(repository).await
            }

            async fn due_protection_requests(
                &self,
                now: i64,
            ) -> Result<Vec<ProtectionRequest>, StoreError> {
                self.due_protection_requests(now).await
            }

            async fn protection_progress(
                &self,
                id: i64,
                posts: i64,
                comment: &str,
                next_check_at: i64,
                deadline: i64,
            ) -> Result<(), StoreError> {
                self.protection_progress(id, posts, comment, next_check_at, deadline)
                    .await
            }

            async fn answer_protection_request(
                &self,
                id: i64,
                state: &str,
            ) -> Result<bool, StoreError> {
                self.answer_protection_request(id, state).await
            }

            async fn list_deliveries(
                &self,
                filter: &$crate::store::DeliveryFilter,
            ) -> Result<Vec<$crate::store::DeliveryRecord>, StoreError> {
                self.list_deliveries(filter).await
            }

            async fn delivery_record(
                &self,
                delivery_id: &str,
            ) -> Result<Option<($crate::store::DeliveryRecord, String)>, StoreError> {
                self.delivery_record(delivery_id).await
            }

            async fn retry_delivery(
                &self,
                delivery_id: &str,
                now: i64,
            ) -> Result<$crate::store::RetryOutcome, StoreError> {
                self.retry_delivery(delivery_id, now).await
            }

            async fn repository_installation(
                &self,
                repository: &str,
            ) -> Result<Option<Option<i64>>, StoreError> {
                self.repository_installation(repository).await
            }

            async fn pending_stats(&self) -> Result<$crate::store::PendingStats, StoreError> {
                self.pending_stats().await
            }

            async fn all_locks(&self, now: i64) -> Result<Vec<Lock>, StoreError> {
                self.all_locks(now).await
            }

            async fn all_pending_protection_requests(
                &self,
            ) -> Result<Vec<ProtectionRequest>, StoreError> {
                self.all_pending_protection_requests().await
            }
        }
    };
}
pub(super) use sql_store;
