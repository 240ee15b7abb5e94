//! The operators' views (`shipgate deliveries|locks|requests`, `/metrics`):
//! reads across repositories and the manual retry. Apart because nothing on
//! the webhook path uses them.

/// The operator methods of `$store`, as an inherent `impl` that
/// `sql_store!` forwards to.
macro_rules! sql_operators {
    ($store:ty) => {
        impl $store {
            async fn list_deliveries(&self, filter: &$crate::store::DeliveryFilter) -> Result<Vec<$crate::store::DeliveryRecord>, StoreError> {
                let mut sql = String::from(concat!($crate::store::sql::record_select!(), " WHERE 1 = 1"));
                let mut n = 0;
                if filter.state.is_some() {
                    n += 1;
                    sql.push_str(&format!(" AND state = ${n}"));
                }
                if filter.repository.is_some() {
                    n += 1;
                    sql.push_str(&format!(" AND repository = ${n}"));
                }
                sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${}", n + 1));
                let mut query = sqlx::query(&sql);
                if let Some(state) = filter.state {
                    query = query.bind(state.as_str());
                }
                if let Some(repo) = &filter.repository {
                    query = query.bind(repo);
                }
                let rows = query.bind(filter.limit).fetch_all(&self.pool).await?;
                rows.iter().map(|r| $crate::store::sql::record_from_row(r)).collect()
            }

            async fn delivery_record(&self, delivery_id: &str) -> Result<Option<($crate::store::DeliveryRecord, String)>, StoreError> {
                let row = sqlx::query(concat!($crate::store::sql::record_select!(), " WHERE delivery_id = $1"))
                    .bind(delivery_id)
                    .fetch_optional(&self.pool)
                    .await?;
                let Some(r) = row else { return Ok(None) };
                let record = $crate::store::sql::record_from_row(&r)?;
                let payload = match sqlx::Row::try_get::<Option<Vec<u8>>, _>(&r, "payload_lz4")? {
                    Some(stored) => $crate::store::Payload::decompress(&stored)?,
                    None => sqlx::Row::try_get(&r, "payload")?,
                };
                Ok(Some((record, payload)))
            }

            async fn retry_delivery(&self, delivery_id: &str, now: i64) -> Result<$crate::store::RetryOutcome, StoreError> {
                let done = sqlx::query(
                    "UPDATE deliveries SET state = 'received', attempts = 0, next_attempt_at = $2, locked_by = NULL, locked_until = NULL, finished_at = NULL
                      WHERE delivery_id = $1 AND state = 'failed'",
                )
                .bind(delivery_id)
                .bind(now)
                .execute(&self.writes)
                .await?;
                if done.rows_affected() == 1 {
                    return Ok($crate::store::RetryOutcome::Retried);
                }
                Ok(match self.delivery_status(delivery_id).await? {
                    None => $crate::store::RetryOutcome::NotFound,
                    Some(st) => $crate::store::RetryOutcome::NotFailed(st.state),
                })
            }

            async fn repository_installation(&self, repository: &str) -> Result<Option<Option<i64>>, StoreError> {
                let row: Option<(Option<i64>,)> = sqlx::query_as(
                    "SELECT installation_id FROM deliveries WHERE repository = $1
                      ORDER BY (CASE WHEN installation_id IS NULL THEN 1 ELSE 0 END), seq DESC LIMIT 1",
                )
                .bind(repository)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(id,)| id))
            }

            async fn pending_stats(&self) -> Result<$crate::store::PendingStats, StoreError> {
                // The count reads the partial index of pending rows; the
                // oldest is the earliest of each repository's queue head,
                // found by skipping through that index one repository at a
                // time as the claim does (`MIN(received_at)` over all
                // pending rows read every one of them: 280 ms against
                // 0.05 ms for 100,000 pending on SQLite; bench/pending_stats.py).
                let (depth, oldest_received_at): (i64, Option<i64>) = sqlx::query_as(
                    "WITH RECURSIVE repos(r) AS (
                             SELECT MIN(repository) FROM deliveries
                              WHERE state IN ('received', 'processing') AND repository IS NOT NULL
                           UNION ALL
                             SELECT (SELECT MIN(x.repository) FROM deliveries x
                                      WHERE x.state IN ('received', 'processing') AND x.repository > repos.r)
                               FROM repos WHERE repos.r IS NOT NULL)
                     SELECT (SELECT COUNT(*) FROM deliveries WHERE state IN ('received', 'processing')),
                            (SELECT MIN(d.received_at) FROM deliveries d WHERE d.seq IN (
                                 SELECT (SELECT MIN(h.seq) FROM deliveries h
                                          WHERE h.state IN ('received', 'processing') AND h.repository = repos.r)
                                   FROM repos WHERE repos.r IS NOT NULL
                                 UNION ALL
                                 SELECT MIN(n.seq) FROM deliveries n
                                  WHERE n.state IN ('received', 'processing') AND n.repository IS NULL))",
                )
                .fetch_one(&self.pool)
                .await?;
                Ok($crate::store::PendingStats { depth, oldest_received_at })
            }

            async fn all_locks(&self, now: i64) -> Result<Vec<Lock>, StoreError> {
                let rows = sqlx::query(concat!(
                    $crate::store::sql::lock_select!(),
                    " WHERE expires_at IS NULL OR expires_at > $1 ORDER BY repository, environment"
                ))
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(|r| $crate::store::sql::lock_from_row(r)).collect()
            }

            async fn all_pending_protection_requests(&self) -> Result<Vec<ProtectionRequest>, StoreError> {
                let rows = sqlx::query(concat!($crate::store::sql::protection_select!(), " WHERE state = 'pending' ORDER BY id"))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(|r| $crate::store::sql::protection_from_row(r)).collect()
            }
        }
    };
}
pub(in crate::store) use sql_operators;
