"""Klaviyo connector against the sandbox at Klaviyo's real rate-limit tiers.

Steps: bulk-import N new profiles into a list; read the list (learning the profile ids, N/100
pages); remove N/2 of them by id; unsubscribe N/10; read the list back. Per step it prints the
requests made against the minimum the batch sizes allow, and the wall time against the floor the
tiers allow (burst per second, steady per minute). The sandbox runs in its own process, as
Klaviyo would; each step starts with empty rate windows (the wait is not counted).

    python benchmarks/klaviyo_sync_bench.py              # full size: 100,000 (minutes)
    python benchmarks/klaviyo_sync_bench.py --size 5000  # quick
    python benchmarks/klaviyo_sync_bench.py --size 1000 --fast  # smoke: limits ×100
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from warmup.providers.klaviyo import KlaviyoClient
from warmup.providers.klaviyo import lists as ops

# The sandbox's tiers (OpenAPI revision 2026-07-15): M = 10/s 150/m, L = 75/s 750/m.
M = (10, 150)
L = (75, 750)


def floor_seconds(requests: int, tier: tuple[int, int]) -> float:
    """Least time between the first and the last request that the windows allow."""
    burst, steady = tier
    if requests <= 1:
        return 0.0
    minutes, rest = divmod(requests - 1, steady)
    return minutes * 60.0 + rest // burst


def start_sandbox(fast: bool) -> tuple[subprocess.Popen[str], str, str]:
    key = "pk_" + secrets.token_hex(17)
    env = {**os.environ, "BENCH_SANDBOX_KEY": key}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "warmup",
            "sandbox",
            "--port",
            "0",
            "--api-key-env",
            "BENCH_SANDBOX_KEY",
            *(["--fast"] if fast else []),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    return process, line.split(" on ")[1].strip(), key


def step(
    client: KlaviyoClient,
    name: str,
    minimum: int,
    floor: float,
    run: Callable[[], Any],
    rows: list[list[str]],
    uses: tuple[str, ...],
    settle: bool = True,
) -> Any:
    if settle:  # start with empty rate windows (up to a minute's wait, not counted)
        client.idle(*uses)
    before_main = client.stats.requests[uses[0]]
    before = client.stats.total()
    throttled = sum(client.stats.throttled.values())
    started, cpu_started = time.perf_counter(), time.process_time()
    result = run()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    made = client.stats.requests[uses[0]] - before_main
    other = client.stats.total() - before - made
    hits = sum(client.stats.throttled.values()) - throttled
    ratio = f"{wall / floor:.2f}x" if floor >= 1 else "n/a"
    rows.append(
        [
            name,
            str(made),
            str(minimum),
            f"{made / minimum:.2f}x",
            str(other),
            f"{wall:.1f}",
            f"{floor:.1f}",
            ratio,
            str(hits),
        ]
    )
    print(
        f"  {name}: {made} requests (min {minimum}) + {other} other, {wall:.1f} s wall "
        f"(floor {floor:.1f} s: the rate tiers' minimum), {cpu:.2f} s CPU, {hits} x 429",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument(
        "--fast",
        action="store_true",
        help="sandbox and limiter at 100× Klaviyo's tiers: checks the counts, not the timings",
    )
    args = parser.parse_args()
    n = args.size
    process, base_url, key = start_sandbox(args.fast)
    rows: list[list[str]] = []
    try:
        client = KlaviyoClient(base_url, key, rate_scale=100 if args.fast else 1)
        settle = not args.fast
        list_id, _ = ops.find_or_create_list(client, "Benchmark exclusions")
        people = [{"email": f"bench{i}@example.com"} for i in range(n)]
        imports = math.ceil(n / ops.MAX_IMPORT)
        step(
            client,
            f"import {n} new profiles into the list",
            imports,
            floor_seconds(imports, M),
            lambda: ops.import_profiles(client, people, list_id, poll=0.5),
            rows,
            ("bulk_import", "get_import_job"),
            settle,
        )

        pages = math.ceil(n / ops.PAGE)
        members = step(
            client,
            f"read {n} members (learn ids)",
            pages,
            floor_seconds(pages, L),
            lambda: list(ops.iter_members(client, list_id)),
            rows,
            ("get_list_profiles",),
            settle,
        )
        assert len(members) == n, len(members)

        half = [m.id for m in members[: n // 2]]
        removes = math.ceil(len(half) / ops.MAX_LIST_IDS)
        step(
            client,
            f"remove {len(half)} by id",
            removes,
            floor_seconds(removes, M),
            lambda: ops.remove_from_list(client, list_id, half),
            rows,
            ("remove_from_list",),
            settle,
        )

        tenth = [m.email or "" for m in members[n // 2 : n // 2 + n // 10]]
        jobs = math.ceil(len(tenth) / ops.MAX_UNSUBSCRIBE)
        step(
            client,
            f"unsubscribe {len(tenth)}",
            jobs,
            floor_seconds(jobs, L),
            lambda: ops.unsubscribe(client, tenth),
            rows,
            ("unsubscribe",),
            settle,
        )

        left = n - len(half)
        back_pages = math.ceil(left / ops.PAGE)
        back = step(
            client,
            f"read the list back ({left})",
            back_pages,
            floor_seconds(back_pages, L),
            lambda: list(ops.iter_members(client, list_id)),
            rows,
            ("get_list_profiles",),
            settle,
        )
        assert len(back) == left, len(back)
        client.close()
    finally:
        process.terminate()
        process.wait(30)
    header = [
        "step",
        "requests",
        "minimum",
        "req ratio",
        "job polls",
        "wall s",
        "floor s",
        "wall/floor",
        "429s",
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
