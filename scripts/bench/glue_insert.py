#!/usr/bin/env python3
"""The Glue job's way of writing, reproduced: batched INSERTs, one commit per batch.

Spark's JDBC writer prepares `INSERT INTO t (cols) VALUES (?, ...)`, adds rows to a batch and
runs `executeBatch()` every `batchsize` rows; the Glue job commits each batch (DSQL's 3,000-row
transactions). Here: psycopg 3 `executemany` of the same INSERT, `BATCH` rows per call, then
COMMIT. psycopg >= 3.1 runs executemany in libpq pipeline mode when libpq supports it, which is
what pgjdbc's executeBatch does too (many Bind/Execute sent before reading the results): no
COPY, no multi-row VALUES rewriting.

    glue_insert.py SOURCE_URL TARGET_URL BATCH ROUNDS schema.table:col,col,... ...

Reads every row of each table from SOURCE_URL first (untimed), then, ROUNDS times, empties the
target tables (TRUNCATE, untimed) and times only the inserts into TARGET_URL. Prints one line:
`rows best_seconds seconds,seconds,... server_cpu client_cpu`, the CPU seconds of the best round
spent by the server backend (/proc/PID/stat: the server is on this machine) and by this process
(details on stderr).
"""
import os
import sys
import time

import psycopg
from psycopg import sql


def backend_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    source, target, batch, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    tables = []
    for spec in sys.argv[5:]:
        name, cols = spec.split(":")
        schema, table = name.split(".")
        tables.append((schema, table, cols.split(",")))

    data = []
    with psycopg.connect(source) as conn:
        for schema, table, cols in tables:
            q = sql.SQL("SELECT {} FROM {}").format(
                sql.SQL(", ").join(map(sql.Identifier, cols)), sql.Identifier(schema, table)
            )
            with conn.cursor() as cur:
                cur.execute(q)
                data.append(cur.fetchall())

    pipeline = psycopg.Pipeline.is_supported()
    print(
        f"psycopg {psycopg.__version__} ({psycopg.pq.__impl__}, libpq {psycopg.pq.version()}),"
        f" executemany in pipeline mode: {'yes' if pipeline else 'no'}",
        file=sys.stderr,
    )
    rows = sum(len(r) for r in data)
    times, cpus = [], []
    with psycopg.connect(target, autocommit=False) as conn:
        for _ in range(rounds):
            conn.execute(
                sql.SQL("TRUNCATE {}").format(
                    sql.SQL(", ").join(sql.Identifier(s, t) for s, t, _ in tables)
                )
            )
            conn.commit()
            server0, client0 = backend_cpu(conn.info.backend_pid), time.process_time()
            started = time.perf_counter()
            for (schema, table, cols), rowset in zip(tables, data):
                q = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                    sql.Identifier(schema, table),
                    sql.SQL(", ").join(map(sql.Identifier, cols)),
                    sql.SQL(", ").join(sql.Placeholder() * len(cols)),
                )
                with conn.cursor() as cur:
                    for i in range(0, len(rowset), batch):
                        cur.executemany(q, rowset[i : i + batch])
                        conn.commit()
            times.append(time.perf_counter() - started)
            cpus.append((backend_cpu(conn.info.backend_pid) - server0, time.process_time() - client0))
    best = times.index(min(times))
    print(
        rows,
        f"{times[best]:.3f}",
        ",".join(f"{t:.2f}" for t in times),
        f"{cpus[best][0]:.2f}",
        f"{cpus[best][1]:.2f}",
    )

if __name__ == "__main__":
    main()
