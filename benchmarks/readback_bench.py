"""Verify before send: a day's exclusion list read back from Klaviyo, streamed into the email.

One day of N new-provider recipients, dispatched twice against one sandbox (its own process, at
Klaviyo's real tiers unless --fast) and an SMTP sink: first the anchor, today's flow before
issue 11 (a list change counts as sent on Klaviyo's acknowledgement; email after Klaviyo), then
verify-before-send (each recipient's email read back from the list, 100 a page, their email
released page by page while later pages are read). Prints read-back requests against the floor
(N / 100), 429s, the day's wall time from list sync to last email, and CPU time, for both.

    python benchmarks/readback_bench.py                    # 100,000 recipients, real tiers
    python benchmarks/readback_bench.py --recipients 500 --fast   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from warmup.app.demo import demo_plan
from warmup.dispatch import dispatch_day
from warmup.dispatch.klaviyo import readback as dispatch_readback
from warmup.email.sink import smtp_sink
from warmup.plan import load_plan
from warmup.providers.klaviyo import KlaviyoClient
from warmup.store import Store, open_store
from warmup.store.outbox import SENT

STAMP = "2026-11-20T00:00:00+00:00"


def start_sandbox(fast: bool) -> tuple[subprocess.Popen[str], str, str]:
    key = "pk_" + secrets.token_hex(17)
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "warmup", "sandbox", "--port", "0"),
            *("--api-key-env", "BENCH_SANDBOX_KEY", *(["--fast"] if fast else [])),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "BENCH_SANDBOX_KEY": key},
    )
    assert process.stdout is not None
    return process, process.stdout.readline().split(" on ")[1].strip(), key


def fill(store: Store, n: int, plan_name: str) -> None:
    """Day 1 as the engine leaves it: N allocated to the new provider, one exclusion row and
    one email row (waiting for it) each."""
    conn = store.conn
    with store.transaction() as c:
        c.executemany(
            "INSERT INTO customers (id, email, created_at, updated_at) VALUES (?, ?, ?, ?)",
            ((i, f"bench{i}@example.com", STAMP, STAMP) for i in range(1, n + 1)),
        )
        c.execute("INSERT INTO days (day, date, status) VALUES (1, '2026-11-20', 'completed')")
        c.execute(
            "INSERT INTO allocations (day, customer_id, provider) "
            "SELECT 1, id, 'new' FROM customers"
        )
        hook = json.dumps(
            {
                "list": "exclusion",
                "template": "klaviyo/add-profiles-to-list.json.j2",
                "batch_size": 10000,
            }
        )
        c.execute(
            "INSERT INTO outbox (key, day, node_id, kind, provider, customer_id, payload, status, "
            "created_at, updated_at) SELECT ? || ':1:225:' || id, 1, '225', 'webhook', 'klaviyo', "
            "id, ?, 'pending', ?, ? FROM customers",
            (plan_name, hook, STAMP, STAMP),
        )
        c.execute(
            "INSERT INTO outbox (key, day, node_id, kind, provider, customer_id, payload, status, "
            "after_key, created_at, updated_at) SELECT ? || ':1:227:' || id, 1, '227', 'email', "
            "'new', id, json_object('template', 'day-01', 'email', email), 'pending', "
            "? || ':1:225:' || id, ?, ? FROM customers",
            (plan_name, plan_name, STAMP, STAMP),
        )
    conn.execute("ANALYZE")


def acknowledged_only(drain: Any, list_id: str, rows: list[Any]) -> list[Any]:
    """The anchor: what warmup did before issue 11 — sent on Klaviyo's acknowledgement."""
    drain.mark(rows, SENT, list_id=list_id)
    return []


def run(
    label: str, folder: Path, base_url: str, key: str, port: int, n: int, fast: bool
) -> dict[str, float]:
    plan = demo_plan(klaviyo_url=base_url, smtp_port=port, start=date(2026, 11, 20))
    plan["name"] = f"bench-{label}"
    plan["providers"]["klaviyo"]["api_key_env"] = "BENCH_SANDBOX_KEY"
    plan["providers"]["klaviyo"]["exclusion_list"] = {"name": f"Bench exclusions {label}"}
    plan["providers"]["new"].update(max_connections=4, rate_per_second=100_000)
    path = folder / f"{label}.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
    os.environ["WARMUP_STORE"] = str(folder / f"{label}.db")
    loaded = load_plan(path)
    store = open_store(loaded.store_path)
    fill(store, n, plan["name"])
    client = KlaviyoClient(base_url, key, rate_scale=100 if fast else 1)
    cpu, wall = time.process_time(), time.perf_counter()
    report = dispatch_day(loaded, store, 1, klaviyo_client=client)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    k = report.klaviyo
    figures = {
        "wall": wall,
        "cpu": cpu,
        "readback": float(k.requests_readback),
        "floor": float(-(-n // 100)),
        "throttled": float(sum(client.stats.throttled.values())),
        "sent": float(report.email.sent),
        "held": float(k.on_hold),
    }
    print(
        f"  {label}: {report.email.sent:,} emails, {k.sent:,} list changes sent, "
        f"{k.on_hold:,} held; read-back {k.requests_readback:,} requests (floor "
        f"{figures['floor']:,.0f}, {k.requests_readback / max(1.0, figures['floor']):.2f}x), "
        f"{figures['throttled']:,.0f} x 429; wall {wall:.1f} s, CPU {cpu:.1f} s",
        flush=True,
    )
    client.close()
    store.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--fast", action="store_true", help="sandbox and limiter at 100x")
    args = parser.parse_args()
    os.environ.setdefault("WARMUP_UNSUBSCRIBE_SECRET", secrets.token_hex(16))
    process, base_url, key = start_sandbox(args.fast)
    os.environ["BENCH_SANDBOX_KEY"] = key
    verify = dispatch_readback.verify_members
    try:
        with tempfile.TemporaryDirectory() as tmp, smtp_sink(keep=False) as sink:
            print(f"one day of {args.recipients:,} recipients, {os.cpu_count()} CPUs", flush=True)
            dispatch_readback.verify_members = acknowledged_only  # type: ignore[assignment]
            anchor = run("anchor", Path(tmp), base_url, key, sink.port, args.recipients, args.fast)
            dispatch_readback.verify_members = verify
            if not args.fast:
                time.sleep(61)  # fresh rate windows for the second run
            new = run("verified", Path(tmp), base_url, key, sink.port, args.recipients, args.fast)
    finally:
        dispatch_readback.verify_members = verify
        process.terminate()
        process.wait(30)
    print(
        f"read-back: {new['readback']:,.0f} requests for a floor of {new['floor']:,.0f} "
        f"({new['readback'] / max(1.0, new['floor']):.3f}x), {new['throttled']:,.0f} x 429"
    )
    print(
        f"day wall time (list sync to last email): {new['wall']:.1f} s vs {anchor['wall']:.1f} s "
        f"anchor ({100 * (new['wall'] / anchor['wall'] - 1):+.1f}%); CPU {new['cpu']:.1f} s vs "
        f"{anchor['cpu']:.1f} s"
    )


if __name__ == "__main__":
    main()
