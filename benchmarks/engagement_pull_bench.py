"""Engagement pull (issue 17): a plan's customers' email events from Klaviyo's events API into
the store, first in full, then incrementally.

N customers, E events spread over opened / clicked / received (plus events of profiles the store
does not hold), recorded straight into a sandbox served in this process (at Klaviyo's real tiers
unless --fast). Prints each pull's requests against the floor (one metrics read + one page of
1,000 per metric's events), 429s, wall time against the XL tier's floor, CPU time (the
in-process sandbox's own work included), and the store's growth.

    python benchmarks/engagement_pull_bench.py                          # 20,000 / 60,000
    python benchmarks/engagement_pull_bench.py --customers 300 --events 900 --fast   # smoke
"""

from __future__ import annotations

import argparse
import atexit
import os
import random
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from warmup.engagement.pull import pull_engagement
from warmup.plan import load_plan
from warmup.providers.klaviyo import KlaviyoClient
from warmup.providers.klaviyo.endpoints import XL
from warmup.providers.klaviyo.worktime import tier_seconds
from warmup.sandbox import SandboxConfig, serve_in_thread
from warmup.sandbox.state import new_ulid
from warmup.store import now_iso, open_store

REPO = Path(__file__).resolve().parent.parent
METRICS = {"opened": "Opened Email", "clicked": "Clicked Email", "received": "Received Email"}


def plan_file(folder: Path, base_url: str) -> Path:
    text = (REPO / "plans" / "example.yaml").read_text()
    text = text.replace("../scenarios/", f"{REPO}/scenarios/").replace(
        "templates: ../templates", f"templates: {REPO / 'templates'}"
    )
    text = text.replace("https://a.klaviyo.com", base_url).replace(
        "api_key_env: KLAVIYO_API_KEY", "api_key_env: BENCH_KLAVIYO_KEY"
    )
    text += "engagement: {source: klaviyo, pull: [received, opened, clicked], window_days: 30}\n"
    path = folder / "plan.yaml"
    path.write_text(text)
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--fast", action="store_true")
    args = parser.parse_args()
    rng = random.Random(7)
    folder = Path(tempfile.mkdtemp(prefix="engagement-bench-"))
    atexit.register(shutil.rmtree, folder, True)  # a temporary folder goes with the run
    os.environ["WARMUP_STORE"] = str(folder / "store.db")
    with serve_in_thread(SandboxConfig(fast=args.fast, seed=7)) as sandbox:
        os.environ["BENCH_KLAVIYO_KEY"] = sandbox.api_key
        loaded = load_plan(plan_file(folder, sandbox.base_url))
        account = sandbox.app.account
        store = open_store(loaded.store_path)
        now = now_iso()
        with store.transaction() as conn:
            conn.executemany(
                "INSERT INTO customers (email, created_at, updated_at) VALUES (?, ?, ?)",
                [(f"c{i}@example.com", now, now) for i in range(args.customers)],
            )
        # one profile in ten is not the plan's customer: read, not kept
        profiles = [
            account.upsert_profile({"email": f"c{i}@example.com"})[0]["id"]
            for i in range(args.customers + args.customers // 10)
        ]
        metrics = {
            k: account.events.metric_named(n, "api", account.rng) for k, n in METRICS.items()
        }
        moment = datetime.now(UTC) - timedelta(days=20)
        per_metric = dict.fromkeys(METRICS, 0)
        for i in range(args.events):
            kind = rng.choice(list(METRICS))
            when = (moment + timedelta(seconds=i * 10)).isoformat()
            account.events.record(
                {"time": when, "properties": {}},
                metrics[kind],
                rng.choice(profiles),
                new_ulid(account.rng),
            )
            per_metric[kind] += 1
        scale = 100.0 if args.fast else 1.0
        client = KlaviyoClient(sandbox.base_url, sandbox.api_key, rate_scale=scale)
        size_before = Path(loaded.store_path).stat().st_size
        for label in ("full pull", "incremental pull"):
            before = client.stats.total()
            cpu, wall = time.process_time(), time.perf_counter()
            report = pull_engagement(loaded, store, client)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            requests = client.stats.total() - before
            pages = (
                sum(max(1, -(-n // 1000)) for n in per_metric.values())
                if label == "full pull"
                else len(METRICS)
            )
            floor = 1 + pages
            floor_s = tier_seconds(pages, XL) / scale
            print(
                f"{label}: {sum(report.read.values()):,} events read, "
                f"{sum(report.stored.values()):,} stored; requests {requests} (floor {floor}); "
                f"{sum(client.stats.throttled.values())} x 429; wall {wall:.2f} s "
                f"(XL tier floor {floor_s:.2f} s); CPU {cpu:.2f} s"
            )
        store.close()
        grown = Path(loaded.store_path).stat().st_size - size_before
        print(f"store +{grown / 1e6:.1f} MB for {args.events:,} events")
        client.close()


if __name__ == "__main__":
    main()
