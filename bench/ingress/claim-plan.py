#!/usr/bin/env python3
"""How long the worker's claim query takes on a benchmark database.

    bench/ingress/claim-plan.py SHIPGATE_DB

Run on a copy of the SQLite file that `KEEP_WORK=1 bench/ingress/run.sh`
leaves behind (it is modified: states are changed to set up the cases).
Prints the query plan of the claim's inner SELECT (as in src/store/sql.rs)
and its time in three states of the table, then the same with
`d.state IN ('received', 'processing')` added, which lets SQLite use the
partial index deliveries_pending.
"""
import shutil
import sqlite3
import sys
import tempfile
import time

CLAIM = """SELECT d.seq FROM deliveries d
 WHERE {extra}((d.state = 'received' AND d.next_attempt_at <= ?) OR (d.state = 'processing' AND d.locked_until < ?))
   AND NOT EXISTS (SELECT 1 FROM deliveries e
                    WHERE e.repository = d.repository AND e.seq < d.seq
                      AND e.state IN ('received', 'processing'))
 ORDER BY d.seq LIMIT 1"""
NOW = 10**15


def main() -> None:
    tmp = tempfile.mkdtemp()
    db = f"{tmp}/copy.db"
    shutil.copyfile(sys.argv[1], db)
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    rows = con.execute("SELECT count(*) FROM deliveries").fetchone()[0]
    states = con.execute("SELECT group_concat(state || '=' || n, ' ') FROM (SELECT state, count(*) n FROM deliveries GROUP BY state)").fetchone()[0]
    print(f"{rows} rows ({states})")

    def timed(label: str, extra: str = "") -> None:
        q = CLAIM.format(extra=extra)
        best = min(_once(con, q) for _ in range(3))
        print(f"  {label}: {best * 1000:.2f} ms")

    for extra, name in (("", "claim as shipped"), ("d.state IN ('received', 'processing') AND ", "with state IN (...)")):
        print(f"{name}; plan: " + "; ".join(r[3] for r in con.execute("EXPLAIN QUERY PLAN " + CLAIM.format(extra=extra), (NOW, 0))))
    timed("as left by the run, claim as shipped")
    timed("as left by the run, with state IN (...)", "d.state IN ('received', 'processing') AND ")
    head = con.execute("SELECT min(seq) FROM deliveries WHERE state IN ('received', 'processing')").fetchone()[0]
    if head is not None:
        con.execute(f"UPDATE deliveries SET state = 'processing', locked_until = {NOW} WHERE seq = {head}")
        con.commit()
        timed("head of the backlog held by another worker, claim as shipped")
        timed("head of the backlog held by another worker, with state IN (...)", "d.state IN ('received', 'processing') AND ")
    con.execute("UPDATE deliveries SET state = 'done' WHERE state = 'received'")
    con.commit()
    timed("nothing claimable, claim as shipped")
    timed("nothing claimable, with state IN (...)", "d.state IN ('received', 'processing') AND ")
    con.close()
    shutil.rmtree(tmp)


def _once(con: sqlite3.Connection, q: str) -> float:
    t = time.perf_counter()
    con.execute(q, (NOW, 0)).fetchall()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
