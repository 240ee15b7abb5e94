-- No query reads deliveries_pending: the claim walks deliveries_repo_pending
-- (repository, seq), which holds the same rows, and so can the queue-depth
-- count. Each insert, claim and finish wrote to it all the same (about one
-- WAL page in six per delivery on SQLite; see bench/BENCHMARKS.md).
DROP INDEX IF EXISTS deliveries_pending;
