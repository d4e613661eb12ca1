"""Render and send N warm-up emails through the real dispatcher to a local aiosmtpd sink.

    python benchmarks/send_bench.py --messages 50000 --connections 8

The sink runs as a separate process (``python -m warmup.email.sink``) unless ``--in-process``,
so its CPU is not charged to the sender and the two can use both cores. Everything else is the
production path: a real SQLite store with customers and outbox rows, the shipped day-01
template, signed unsubscribe links, per-message ``sending``/``sent`` commits, smtplib over
loopback. An anchor follows in the same run: as many messages over plain smtplib. Prints
messages/s, CPU and wall time of both, peak memory (RSS before and after the drain: flat
means the drain does not grow with N), and how the worker time splits between
rendering+building and the wire.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import smtplib
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import yaml

from warmup.dispatch.email import drain_email
from warmup.email.sink import smtp_sink
from warmup.plan import load_plan
from warmup.store import now_iso, open_store

REPO = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_plan(folder: Path, port: int, connections: int) -> Path:
    plan = {
        "name": "bench",
        "timezone": "Europe/Prague",
        "start_date": "2026-12-01",
        "scenario": str(REPO / "scenarios" / "variant-1.yaml"),
        "templates": str(REPO / "templates"),
        "store": str(folder / "bench.db"),
        "sender": {"from": "Acme News <news@send.acme.example>", "reply_to": "care@acme.example"},
        "unsubscribe": {
            "url": "https://acme.example/unsubscribe",
            "mailto": "unsubscribe@acme.example",
        },
        "providers": {
            "new": {
                "kind": "smtp",
                "host": "127.0.0.1",
                "port": port,
                "tls": "none",
                "max_connections": connections,
                "rate_per_second": 1_000_000,
            },
            "klaviyo": {"exclusion_list": {"name": "x"}, "unsubscribe_list": {"name": "u"}},
        },
        "schedule": {"days": [{"day": 1, "new": "all", "template": "day-01"}]},
    }
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(plan), encoding="utf-8")
    return path


def fill_store(path: Path, count: int) -> None:
    store = open_store(path)
    now = now_iso()
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO customers (id, email, first_name, last_name, attributes, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, '{}', ?, ?)",
            (
                (i, f"reader{i}@example.com", "Jana", "Nováková", now, now)
                for i in range(1, count + 1)
            ),
        )
        conn.executemany(
            "INSERT INTO consents (customer_id, channel, status, changed_at, source) "
            "VALUES (?, 'email', 'subscribed', ?, 'bench')",
            ((i, now) for i in range(1, count + 1)),
        )
        conn.executemany(
            "INSERT INTO outbox (key, day, node_id, kind, provider, customer_id, payload, "
            "created_at, updated_at) VALUES (?, 1, 'email', 'email', 'new', ?, ?, ?, ?)",
            (
                (f"bench:1:email:{i}", i, json.dumps({"template": "day-01"}), now, now)
                for i in range(1, count + 1)
            ),
        )
    store.close()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def plain_smtp(port: int, count: int) -> None:
    message = (
        "From: news@send.acme.example\r\nTo: a@example.com\r\nSubject: warm-up\r\n\r\n"
        + "Hello from the warm-up.\r\n" * 40
    )
    with smtplib.SMTP("127.0.0.1", port) as client:
        for i in range(count):
            client.sendmail("news@send.acme.example", [f"c{i}@example.com"], message)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the sink in this process (shares its CPU and GIL)",
    )
    args = parser.parse_args()
    os.environ.setdefault("WARMUP_UNSUBSCRIBE_SECRET", "bench-secret")
    os.environ.pop("WARMUP_STORE", None)

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        folder = Path(tmp)
        sink_process = None
        if args.in_process:
            sink = stack.enter_context(smtp_sink(keep=False))
            port = sink.port
        else:
            sink_process = subprocess.Popen(
                [sys.executable, "-m", "warmup.email.sink"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert sink_process.stdout and sink_process.stdin
            port = int(sink_process.stdout.readline())
        loaded = load_plan(write_plan(folder, port, args.connections))
        fill_store(loaded.store_path, args.messages)
        store = open_store(loaded.store_path)
        rss_before = peak_rss_mb()
        cpu_started, started = cpu_seconds(), time.perf_counter()
        report = drain_email(loaded, store, 1)
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_started
        rss_after = peak_rss_mb()
        # the anchor: the same number of one pre-built message over plain smtplib, one
        # connection, no store, no rendering — the floor of the wire work
        cpu_started, started = cpu_seconds(), time.perf_counter()
        plain_smtp(port, args.messages)
        anchor_wall = time.perf_counter() - started
        anchor_cpu = cpu_seconds() - cpu_started
        if sink_process is not None:
            assert sink_process.stdin and sink_process.stdout
            sink_process.stdin.write("count\n")
            sink_process.stdin.flush()
            received = int(sink_process.stdout.readline())
            sink_process.stdin.close()
            sink_process.wait(timeout=30)
        else:
            received = sink.count
        store.close()

    busy = report.render_seconds + report.wire_seconds
    print(
        f"messages            {args.messages} ({received - args.messages} received by the sink, "
        f"{'in-process' if args.in_process else 'separate process'})"
    )
    print(f"connections         {args.connections}")
    print(f"sent                {report.sent}  failed {report.failed}  bounced {report.bounced}")
    print(f"elapsed             {elapsed:.2f} s wall, {cpu:.2f} s CPU (this process)")
    print(
        f"anchor              plain smtplib, one connection, one pre-built message: "
        f"{anchor_wall:.2f} s wall, {anchor_cpu:.2f} s CPU; the drain is {cpu / anchor_cpu:.2f}× "
        "its CPU"
    )
    print(f"throughput          {report.sent / elapsed:.0f} messages/s")
    print(f"peak RSS            {rss_before:.1f} MB before the drain, {rss_after:.1f} MB after")
    print(
        f"render + build      {1000 * report.render_seconds / max(1, report.sent):.3f} ms/message"
        f" ({100 * report.render_seconds / busy:.0f}% of worker time)"
    )
    print(
        f"wire (SMTP + store) {1000 * report.wire_seconds / max(1, report.sent):.3f} ms/message"
        f" per connection ({100 * report.wire_seconds / busy:.0f}% of worker time)"
    )
    if received != 2 * args.messages or report.sent != args.messages:
        sys.exit("not every message arrived exactly once")


if __name__ == "__main__":
    main()
