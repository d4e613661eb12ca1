"""Unsubscribe-to-Klaviyo latency: a one-click unsubscribe POSTed to a running `warmup serve`
until the customer is a member of the Klaviyo sandbox's unsubscribe list.

    python benchmarks/unsubscribe_latency_bench.py [--customers 2000] [--one-by-one 20]
                                                   [--burst 200] [--fast]

Everything runs over loopback HTTP: the sandbox (Klaviyo's real rate tiers and ~1 s bulk-import
jobs unless --fast), the consent service, the store on disk. Day 1 of the example plan is run and
its exclusion list synced first, so the service meets the state of a live warm-up. Prints the
latency of unsubscribes sent one at a time (each waited for) and of a burst sent at once (time
until the last one is in the list), with the Klaviyo requests the service made.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the repo root: the tests package imports as under pytest

from tests.support.consent import KEY_ENV, LINK_SECRET, add_customers, write_plan  # noqa: E402
from warmup.consent import serve_in_thread  # noqa: E402
from warmup.dispatch.klaviyo import drain_klaviyo  # noqa: E402
from warmup.email.tokens import make_token  # noqa: E402
from warmup.engine import run_day  # noqa: E402
from warmup.sandbox import RunningSandbox, SandboxConfig  # noqa: E402
from warmup.sandbox import serve_in_thread as sandbox_in_thread  # noqa: E402
from warmup.store import open_store  # noqa: E402


def members(sandbox: RunningSandbox, name: str) -> set[str]:
    account = sandbox.app.account
    for list_id, record in account.lists.items():
        if record["name"] == name:
            return {
                account.profiles[pid]["attributes"]["email"]
                for pid in account.members[list_id].seq_of
            }
    return set()


def wait_until(sandbox: RunningSandbox, emails: set[str], timeout: float = 120) -> float:
    start = time.perf_counter()
    while not emails <= members(sandbox, "Warmup unsubscribes"):
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"timed out after {timeout}s waiting for {len(emails)} emails")
        time.sleep(0.005)
    return time.perf_counter()


def one_click(client: httpx.Client, base: str, email: str) -> None:
    answer = client.post(
        f"{base}/unsubscribe",
        params={"token": make_token(LINK_SECRET, "acme-newsletter", email)},
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    answer.raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--one-by-one", type=int, default=20)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument(
        "--fast", action="store_true", help="sandbox with rate limits ×100 and instant jobs"
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="warmup-unsub-bench-"))
    atexit.register(shutil.rmtree, tmp, True)  # a temporary folder goes with the run
    os.environ.update(
        WARMUP_STORE=str(tmp / "store.db"),
        WARMUP_UNSUBSCRIBE_SECRET=LINK_SECRET,
        WARMUP_WEBHOOK_SECRET="bench-webhook-secret",
    )
    with sandbox_in_thread(SandboxConfig(fast=args.fast, seed=1)) as sandbox:
        os.environ[KEY_ENV] = sandbox.api_key
        loaded = write_plan(tmp, base_url=sandbox.base_url)
        store = open_store(loaded.store_path)
        emails = [f"u{i:07d}@example.com" for i in range(args.customers)]
        add_customers(store, emails)
        run_day(loaded, 1, now=datetime(2026, 12, 1, 12, 0, tzinfo=ZoneInfo("Europe/Prague")))
        drain_klaviyo(loaded, store, 1)
        requests_before = sum(sandbox.app.account.effects.values())
        singles, burst = emails[: args.one_by_one], emails[args.one_by_one :][: args.burst]
        latencies: list[float] = []
        # CPU of this process: the service and the sandbox run in its threads, so this is the
        # whole cost of the unsubscribes
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        with serve_in_thread(loaded, retry_seconds=1) as service, httpx.Client() as client:
            for email in singles:
                start = time.perf_counter()
                one_click(client, service.base_url, email)
                latencies.append(wait_until(sandbox, {email}) - start)
            start = time.perf_counter()
            for email in burst:
                one_click(client, service.base_url, email)
            posted = time.perf_counter() - start
            burst_wall = wait_until(sandbox, set(burst)) - start
            passes = service.worker.passes
        cpu, wall = time.process_time() - cpu_started, time.perf_counter() - wall_started
        store.close()
    mode = "fast sandbox" if args.fast else "sandbox at Klaviyo's real tiers"
    print(f"unsubscribe → Klaviyo unsubscribe list ({mode}, {args.customers:,} customers)")
    if latencies:
        ordered = sorted(latencies)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        print(
            f"  one at a time ({len(latencies)}): median {statistics.median(latencies):.3f}s,"
            f" p95 {p95:.3f}s, max {max(latencies):.3f}s"
        )
    if burst:
        print(
            f"  burst of {len(burst)}: posted in {posted:.3f}s, all in the list after "
            f"{burst_wall:.3f}s ({len(burst) / burst_wall:.0f}/s)"
        )
    effects = sum(sandbox.app.account.effects.values()) - requests_before
    print(f"  consent-flow passes {passes}; sandbox effects during the run {effects}")
    print(f"  CPU {cpu:.2f} s, wall {wall:.2f} s (service, sandbox and client in this process)")


if __name__ == "__main__":
    main()
