//! The delivery queue's SQL: storing deliveries, claiming them in each
//! repository's order, recording their outcomes. Apart from the other tables
//! because the claim and its batch writes are the hot path and the subtle part.

use crate::store::{InsertOutcome, NewDelivery};

/// The claim statement; `$lock` is `FOR UPDATE SKIP LOCKED` on PostgreSQL,
/// and `$not_excluded` the backend's test that `d.installation_id` is not
/// among the installations in `$4` (those at their share of this process's
/// workers; see `Store::claim_next`).
///
/// Rows of one repository are claimed in order: only the head of each
/// repository's queue (its lowest pending `seq`) is a candidate, so a later
/// delivery waits while an earlier one is unfinished; deliveries without a
/// repository do not wait for each other. The heads are found by skipping
/// through the partial index of pending rows one repository at a time (a
/// recursive query: an index seek per repository with pending work), so a
/// claim touches neither the rows kept for retention nor a repository's
/// backlog behind a held head (SQLite, 10,000 pending rows in 9 repositories
/// behind a held head: 0.09 ms per claim; the earlier scan took 67 ms on a
/// 7,000-row backlog, see bench/BENCHMARKS.md). On
/// PostgreSQL a head another replica is claiming right now is skipped, and
/// its later siblings stay excluded because the locked row is still the
/// head in this snapshot.
///
/// An excluded installation's heads are passed over where the heads are
/// filtered, after they are found: the exclusion costs a test per head, not
/// a scan of anyone's backlog.
///
/// With the head come up to `$5` of the deliveries right behind it in the
/// same repository's queue, as long as each is due (its lease ran out, if it
/// is `processing`) and of the head's installation (a batch holds one
/// installation's share): the first one that is not ends the batch, so a
/// batch is always a run of the queue in order. They would wait for the head anyway,
/// and the loop that holds the head works them off next, one after another,
/// so a backlog costs one claim per batch instead of one per delivery.
/// Nothing else ever claims them: they are not heads. A delivery without a
/// repository is claimed alone.
macro_rules! claim_sql {
    ($lock:literal, $not_excluded:literal) => {
        concat!(
            "WITH head AS MATERIALIZED (
                    SELECT d.seq AS seq, d.repository AS repository, d.installation_id AS installation_id FROM deliveries d
                     WHERE d.seq IN (
                           WITH RECURSIVE repos(r) AS (
                                   SELECT MIN(repository) FROM deliveries
                                    WHERE state IN ('received', 'processing') AND repository IS NOT NULL
                                 UNION ALL
                                   SELECT (SELECT MIN(x.repository) FROM deliveries x
                                            WHERE x.state IN ('received', 'processing') AND x.repository > repos.r)
                                     FROM repos WHERE repos.r IS NOT NULL)
                           SELECT (SELECT MIN(h.seq) FROM deliveries h
                                    WHERE h.state IN ('received', 'processing') AND h.repository = repos.r)
                             FROM repos WHERE repos.r IS NOT NULL
                           UNION ALL
                           SELECT n.seq FROM deliveries n
                            WHERE n.state IN ('received', 'processing') AND n.repository IS NULL)
                       AND ((d.state = 'received' AND d.next_attempt_at <= $3)
                         OR (d.state = 'processing' AND d.locked_until < $3))
                       AND (d.installation_id IS NULL OR ",
            $not_excluded,
            ")
                     ORDER BY d.seq
                     LIMIT 1 ",
            $lock,
            "),
             behind AS MATERIALIZED (
                    SELECT n.seq AS seq, n.state AS state, n.next_attempt_at AS next_attempt_at,
                           n.locked_until AS locked_until, n.installation_id AS installation_id
                      FROM deliveries n
                     -- Scalar subqueries, not a join with head: so the
                     -- index (repository, seq) gives the order and LIMIT
                     -- stops the walk (a join sorted the whole backlog).
                     WHERE n.repository = (SELECT repository FROM head)
                       AND n.state IN ('received', 'processing') AND n.seq > (SELECT seq FROM head)
                     ORDER BY n.seq
                     LIMIT $5)
             UPDATE deliveries
                SET state = 'processing', attempts = attempts + 1, locked_by = $1, locked_until = $2
              WHERE seq IN (
                    SELECT seq FROM head
                    UNION ALL
                    SELECT b.seq FROM behind b
                     WHERE b.seq < COALESCE(
                           (SELECT MIN(x.seq) FROM behind x
                             WHERE NOT ((x.state = 'received' AND x.next_attempt_at <= $3)
                                     OR (x.state = 'processing' AND x.locked_until < $3))
                                OR COALESCE(x.installation_id, -1) <> COALESCE((SELECT installation_id FROM head), -1)),
                           9223372036854775807))
             RETURNING seq, delivery_id, event, action, installation_id, repository, payload, payload_lz4, attempts, locked_by"
        )
    };
}
pub(in crate::store) use claim_sql;

/// `held_by_claim!` for `count` claims, OR-ed: three parameters each (seq,
/// worker, attempt), the first at `$first`.
pub(in crate::store) fn held_by_claims(first: usize, count: usize) -> String {
    (0..count)
        .map(|i| {
            let p = first + 3 * i;
            format!(
                "(seq = ${p} AND locked_by = ${} AND attempts = ${})",
                p + 1,
                p + 2
            )
        })
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// One multi-row insert for `rows` deliveries: `$1` is the time, then six
/// parameters per row. With `returning` it returns the ids it inserted, so
/// the rest were already stored (or repeated earlier in the batch).
pub(in crate::store) fn insert_deliveries_sql(rows: usize, returning: bool) -> String {
    use std::fmt::Write;
    let mut sql = String::from(
        "INSERT INTO deliveries (delivery_id, event, action, installation_id, repository, payload, payload_lz4, received_at, next_attempt_at) VALUES ",
    );
    for row in 0..rows {
        let p = 2 + row * 6;
        let sep = if row == 0 { "" } else { ", " };
        let _ = write!(
            sql,
            "{sep}(${}, ${}, ${}, ${}, ${}, '', ${}, $1, $1)",
            p,
            p + 1,
            p + 2,
            p + 3,
            p + 4,
            p + 5
        );
    }
    sql.push_str(" ON CONFLICT (delivery_id) DO NOTHING");
    if returning {
        sql.push_str(" RETURNING delivery_id");
    }
    sql
}

/// Of `rows` delivery ids (`$1`…), the `$rows+1` with the highest `seq`.
/// Right after an insert of these ids has committed, on SQLite those are the
/// rows it added: every id of the batch now exists, so no later insert can
/// add a row with one, and SQLite runs one write at a time, so the rows
/// stored before have lower `seq`s. (Not so on PostgreSQL, where concurrent
/// transactions take `seq`s out of commit order.)
pub(in crate::store) fn newest_of_sql(rows: usize) -> String {
    let ids: Vec<String> = (1..=rows).map(|p| format!("${p}")).collect();
    format!(
        "SELECT delivery_id FROM deliveries WHERE delivery_id IN ({}) ORDER BY seq DESC LIMIT ${}",
        ids.join(", "),
        rows + 1
    )
}

/// Each batch entry's outcome, given the ids the insert returned: the first
/// entry with a returned id was inserted, every other entry is a duplicate.
pub(in crate::store) fn insert_outcomes(
    batch: &[NewDelivery],
    inserted: Vec<String>,
) -> Vec<InsertOutcome> {
    let mut inserted: std::collections::HashSet<String> = inserted.into_iter().collect();
    batch
        .iter()
        .map(|d| {
            if inserted.remove(&d.delivery_id) {
                InsertOutcome::Inserted
            } else {
                InsertOutcome::Duplicate
            }
        })
        .collect()
}

/// The condition an outcome write puts on its row: the claim that is
/// reporting (`$1` its seq, `$2` its worker, `$3` its attempt) still holds
/// it. A worker whose lease ran out and whose delivery was claimed again
/// (by another replica, or by this one after a pause) finds the row changed
/// and writes nothing.
macro_rules! held_by_claim {
    () => {
        " WHERE seq = $1 AND state = 'processing' AND locked_by = $2 AND attempts = $3"
    };
}
pub(in crate::store) use held_by_claim;

/// The delivery queue's methods of `$store`, as an inherent `impl` that
/// `sql_store!` forwards to. The other parameters are those of `sql_store!`.
macro_rules! sql_deliveries {
    ($store:ty, $claim:expr, $excluded:expr, $requeue:expr, $one_writer:expr) => {
        impl $store {
            async fn insert_deliveries(&self, batch: &[NewDelivery], now: i64) -> Result<Vec<InsertOutcome>, StoreError> {
                if batch.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = $crate::store::sql::insert_deliveries_sql(batch.len(), !$one_writer);
                let mut query = sqlx::query(&sql).bind(now);
                for d in batch {
                    query = query
                        .bind(&d.delivery_id)
                        .bind(&d.event)
                        .bind(&d.action)
                        .bind(d.installation_id)
                        .bind(&d.repository)
                        .bind(d.payload.as_stored());
                }
                let inserted = if $one_writer {
                    // No RETURNING: sqlx hands each returned row from the
                    // SQLite connection's thread to this task on its own, a
                    // wake-up per delivery (ingress alone was 9-11 % faster
                    // without them). The count tells whether all went in,
                    // as they nearly always do; if not, the rows just added
                    // are the newest with the batch's ids.
                    let added = query.execute(&self.writes).await?.rows_affected() as usize;
                    if added == batch.len() {
                        batch.iter().map(|d| d.delivery_id.clone()).collect()
                    } else {
                        let sql = $crate::store::sql::newest_of_sql(batch.len());
                        let mut newest = sqlx::query_scalar::<_, String>(&sql);
                        for d in batch {
                            newest = newest.bind(&d.delivery_id);
                        }
                        newest.bind(added as i64).fetch_all(&self.writes).await?
                    }
                } else {
                    query
                        .fetch_all(&self.writes)
                        .await?
                        .iter()
                        .map(|r| sqlx::Row::try_get::<String, _>(r, 0))
                        .collect::<Result<Vec<_>, _>>()?
                };
                Ok($crate::store::sql::insert_outcomes(batch, inserted))
            }

            async fn insert_delivery_due(&self, d: &NewDelivery, now: i64, due: i64) -> Result<InsertOutcome, StoreError> {
                let added = sqlx::query(
                    "INSERT INTO deliveries (delivery_id, event, action, installation_id, repository, payload, payload_lz4, received_at, next_attempt_at)
                     VALUES ($1, $2, $3, $4, $5, '', $6, $7, $8) ON CONFLICT (delivery_id) DO NOTHING",
                )
                .bind(&d.delivery_id)
                .bind(&d.event)
                .bind(&d.action)
                .bind(d.installation_id)
                .bind(&d.repository)
                .bind(d.payload.as_stored())
                .bind(now)
                .bind(due)
                .execute(&self.writes)
                .await?
                .rows_affected();
                Ok(if added == 1 { InsertOutcome::Inserted } else { InsertOutcome::Duplicate })
            }

            async fn claim_batch(&self, worker: &str, now: i64, lease_ms: i64, excluded_installations: &[i64], max_behind: usize) -> Result<Vec<ClaimedDelivery>, StoreError> {
                let rows = sqlx::query($claim)
                    .bind(worker)
                    .bind(now + lease_ms)
                    .bind(now)
                    .bind(($excluded)(excluded_installations))
                    .bind(max_behind as i64)
                    .fetch_all(&self.writes)
                    .await?;
                let mut claimed = rows
                    .iter()
                    .map($crate::store::sql::claimed_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                // RETURNING has no order.
                claimed.sort_by_key(|d| d.seq);
                Ok(claimed)
            }

            async fn mark_done_many(&self, claims: &[ClaimedDelivery], now: i64) -> Result<u64, StoreError> {
                if claims.is_empty() {
                    return Ok(0);
                }
                let sql = format!(
                    "UPDATE deliveries SET state = 'done', finished_at = $1, locked_by = NULL, locked_until = NULL, last_error = NULL
                      WHERE state = 'processing' AND ({})",
                    $crate::store::sql::held_by_claims(2, claims.len())
                );
                let mut query = sqlx::query(&sql).bind(now);
                for c in claims {
                    query = query.bind(c.seq).bind(&c.claimed_by).bind(c.attempts);
                }
                Ok(query.execute(&self.writes).await?.rows_affected())
            }

            async fn release_claims(&self, claims: &[ClaimedDelivery]) -> Result<u64, StoreError> {
                if claims.is_empty() {
                    return Ok(0);
                }
                let sql = format!(
                    "UPDATE deliveries SET state = 'received', attempts = attempts - 1, locked_by = NULL, locked_until = NULL
                      WHERE state = 'processing' AND ({})",
                    $crate::store::sql::held_by_claims(1, claims.len())
                );
                let mut query = sqlx::query(&sql);
                for c in claims {
                    query = query.bind(c.seq).bind(&c.claimed_by).bind(c.attempts);
                }
                Ok(query.execute(&self.writes).await?.rows_affected())
            }

            async fn mark_retry(&self, claim: &ClaimedDelivery, error: &str, next_attempt_at: i64) -> Result<bool, StoreError> {
                let done = sqlx::query(concat!(
                    "UPDATE deliveries SET state = 'received', next_attempt_at = $4, last_error = $5, locked_by = NULL, locked_until = NULL",
                    $crate::store::sql::held_by_claim!()
                ))
                .bind(claim.seq)
                .bind(&claim.claimed_by)
                .bind(claim.attempts)
                .bind(next_attempt_at)
                .bind(error)
                .execute(&self.writes)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn mark_failed(&self, claim: &ClaimedDelivery, error: &str, now: i64) -> Result<bool, StoreError> {
                let done = sqlx::query(concat!(
                    "UPDATE deliveries SET state = 'failed', finished_at = $4, last_error = $5, locked_by = NULL, locked_until = NULL",
                    $crate::store::sql::held_by_claim!()
                ))
                .bind(claim.seq)
                .bind(&claim.claimed_by)
                .bind(claim.attempts)
                .bind(now)
                .bind(error)
                .execute(&self.writes)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn requeue_processing(&self) -> Result<u64, StoreError> {
                let sql: Option<&str> = $requeue;
                match sql {
                    Some(sql) => Ok(sqlx::query(sql).execute(&self.writes).await?.rows_affected()),
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
                    .execute(&self.writes)
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
pub(in crate::store) use sql_deliveries;
