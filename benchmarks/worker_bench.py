"""Send throughput of 1, 2, 4… ``warmup worker`` processes sharing one store, against a loopback
SMTP sink that answers each message after a fixed delay (a relay's per-connection rate).

    python benchmarks/worker_bench.py --messages 2000 --workers 1,2,4 --connection-rate 50
    python benchmarks/worker_bench.py --postgres "host=127.0.0.1 port=5432 user=postgres"

Each worker count gets a fresh store (a SQLite file, or a new PostgreSQL database on the
``--postgres`` server, dropped afterwards) with N customers and their day-1 email rows; the
workers are real processes (``python -m warmup worker PLAN --day 1``), each with
``--connections`` SMTP connections; the plan's rate is unlimited, so the sink's per-connection
delay and the machine are what limit. The sink runs in this process (its CPU is not the
workers'). Prints, per worker count, messages/s and the check that every recipient got exactly
one message.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from send_bench import write_plan  # the same one-day SMTP plan; $WARMUP_STORE picks the store

from warmup.email.sink import smtp_sink
from warmup.store import now_iso, open_store


def fill_store(location: str, count: int, prefix: str) -> None:
    now = now_iso()
    with closing(open_store(location)) as store:
        db = store.backend
        with db.transaction():
            db.bulk_load(
                "customers",
                ("id", "email", "first_name", "attributes", "created_at", "updated_at"),
                (
                    (i, f"{prefix}{i}@example.com", "Jana", "{}", now, now)
                    for i in range(1, count + 1)
                ),
            )
            db.bulk_load(
                "consents",
                ("customer_id", "channel", "status", "changed_at", "source"),
                ((i, "email", "subscribed", now, "bench") for i in range(1, count + 1)),
            )
            payload = json.dumps({"template": "day-01"})
            db.bulk_load(
                "outbox",
                ("key", "day", "node_id", "kind", "provider", "customer_id", "payload",
                 "created_at", "updated_at"),
                ((f"bench:1:email:{i}", 1, "email", "email", "new", i, payload, now, now)
                 for i in range(1, count + 1)),
            )  # fmt: skip
            for table in ("customers", "outbox"):
                db.after_bulk_load(table)


def _children_cpu() -> float:
    """User + system CPU of the finished worker processes (not the sink's, not the server's)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def fresh_store(folder: Path, postgres: str | None, name: str) -> Iterator[str]:
    if postgres is None:
        yield str(folder / f"{name}.db")
        return
    import psycopg

    database = f"warmup_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres, dbname="postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {database}")
    params = psycopg.conninfo.conninfo_to_dict(postgres)
    try:
        yield (
            f"postgresql://{params.get('user', 'postgres')}@{params['host']}:"
            f"{params.get('port', 5432)}/{database}"
        )
    finally:
        with psycopg.connect(postgres, dbname="postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--workers", default="1,2,4", help="worker counts to measure, e.g. 1,2,4")
    parser.add_argument("--connections", type=int, default=2, help="SMTP connections per worker")
    parser.add_argument(
        "--connection-rate",
        type=float,
        default=50.0,
        help="messages a second the sink takes on one connection (it answers after 1/rate s)",
    )
    parser.add_argument("--postgres", metavar="CONNINFO", help="measure on this PostgreSQL server")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    env = {**os.environ, "WARMUP_UNSUBSCRIBE_SECRET": "bench-secret"}
    engine = "postgresql" if args.postgres else "sqlite"
    print(
        f"{engine}: {args.messages} messages, {args.connections} connection(s) per worker, "
        f"sink {args.connection_rate:g}/s per connection"
    )
    with tempfile.TemporaryDirectory() as tmp, smtp_sink(keep=False) as sink:
        folder = Path(tmp)
        sink.data_delay = 1.0 / args.connection_rate
        plan = write_plan(folder, sink.port, args.connections)
        for workers in counts:
            with fresh_store(folder, args.postgres, f"w{workers}") as location:
                prefix = f"w{workers}-reader"
                fill_store(location, args.messages, prefix)
                before = sink.count
                cpu_before = _children_cpu()
                started = time.perf_counter()
                processes = [
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "warmup",
                            "worker",
                            str(plan),
                            "--day",
                            "1",
                        ],
                        env={**env, "WARMUP_STORE": location},
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                    for _ in range(workers)
                ]
                for process in processes:
                    _, err = process.communicate()
                    if process.returncode != 0:
                        raise SystemExit(f"a worker failed: {err}")
                wall = time.perf_counter() - started
                cpu = _children_cpu() - cpu_before
                got = sink.count - before
                with closing(open_store(location)) as store:
                    (sent,) = store.backend.execute(
                        "SELECT count(*) FROM outbox WHERE status = 'sent'"
                    ).fetchone()
                mine = [n for a, n in sink.per_recipient.items() if a.startswith(prefix)]
                once = (
                    "each recipient once"
                    if len(mine) == sent == args.messages and max(mine) == 1
                    else f"{got} received by {len(mine)} recipients, {sent} sent"
                )
                ceiling = workers * args.connections * args.connection_rate
                print(
                    f"workers {workers}: {args.messages / wall:8.1f} msg/s  wall {wall:6.2f} s  "
                    f"workers' CPU {cpu:6.2f} s ({cpu / args.messages * 1000:.2f} ms/msg)  "
                    f"(sink ceiling {ceiling:g}/s)  {once}"
                )


if __name__ == "__main__":
    main()
