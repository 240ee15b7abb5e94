#!/usr/bin/env python3
"""What a /metrics scrape costs the store with a backlog: the query behind
shipgate_queue_depth and shipgate_queue_oldest_age_seconds, before and after,
in the same run, on SQLite.

    python3 bench/pending_stats.py [SHIPGATE_BINARY] [PENDING]

It makes a database with `shipgate migrate` (the binary, default
target/debug/shipgate), stores PENDING received deliveries over 20
repositories (default 100,000) behind as many done ones, and times each
query 15 times (median and minimum, ms). The queries are the ones in
src/store/sql.rs (`pending_stats`), spelled out here.
"""
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

P = "state IN ('received', 'processing')"
QUERIES = {
    "depth only (before: queue_depth)": f"SELECT COUNT(*) FROM deliveries WHERE {P}",
    "depth + MIN(received_at) over all pending rows": f"SELECT COUNT(*), MIN(received_at) FROM deliveries WHERE {P}",
    "depth + oldest of the queue heads (pending_stats)": f"""
        WITH RECURSIVE repos(r) AS (
                SELECT MIN(repository) FROM deliveries WHERE {P} AND repository IS NOT NULL
              UNION ALL
                SELECT (SELECT MIN(x.repository) FROM deliveries x WHERE x.{P} AND x.repository > repos.r)
                  FROM repos WHERE repos.r IS NOT NULL)
        SELECT (SELECT COUNT(*) FROM deliveries WHERE {P}),
               (SELECT MIN(d.received_at) FROM deliveries d WHERE d.seq IN (
                    SELECT (SELECT MIN(h.seq) FROM deliveries h WHERE h.{P} AND h.repository = repos.r)
                      FROM repos WHERE repos.r IS NOT NULL
                    UNION ALL
                    SELECT MIN(n.seq) FROM deliveries n WHERE n.{P} AND n.repository IS NULL))""",
}


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/debug/shipgate"
    pending = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.db")
        subprocess.run([binary, "migrate"], env={"DATABASE_URL": f"sqlite://{path}"},
                       check=True, capture_output=True)
        db = sqlite3.connect(path)
        db.execute(f"""
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {2 * pending})
            INSERT INTO deliveries (delivery_id, event, repository, payload, payload_lz4,
                                    received_at, next_attempt_at, state, finished_at)
            SELECT 'd' || i, 'push', 'o/r' || (i % 20), '', randomblob(600), i, i,
                   CASE WHEN i <= {pending} THEN 'done' ELSE 'received' END,
                   CASE WHEN i <= {pending} THEN i END
              FROM n""")
        db.commit()
        print(f"{pending} pending and {pending} done deliveries, 20 repositories")
        answers = []
        for name, sql in QUERIES.items():
            answers.append(db.execute(sql).fetchall()[0])
            times = []
            for _ in range(15):
                t = time.perf_counter()
                db.execute(sql).fetchall()
                times.append((time.perf_counter() - t) * 1000)
            times.sort()
            print(f"  {name:<52} median {times[7]:8.2f} ms   min {times[0]:8.2f} ms")
        # Both ways find the same depth and oldest arrival.
        assert answers[1] == answers[2] == (pending, pending + 1), answers


if __name__ == "__main__":
    main()
