"""A whole 14-day warm-up over N customers: time per phase and peak memory per day.

    python benchmarks/fortnight_bench.py [--customers 100000] [--days 14] [--keep DIR]

The Klaviyo-compatible sandbox (``--fast``: rate limits ×100) and the SMTP sink run in their
own processes; the export is imported once, then every day runs in its own process, as
``warmup run PLAN --day N`` does, with its clock just after the day's send time. Per day it
prints CPU and wall time of each phase — engine (``run_day``: allocate, freeze, write the
outbox), Klaviyo (the unsubscribe pull before the day, and the outbox drain: exclusion-list
calls), email (render and send over SMTP) — and the day process's own peak memory (VmHWM).
The plan's ``rate_per_second`` is lifted so that the pacing does not hide the work.

Anchors in the same run: the plain CSV load of the same export (``import_bench``'s) and the
one-statement allocation of the largest day (``day_bench``'s) set the floor of the work.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

DAY = r"""
import json, os, resource, sys, time
from contextlib import closing
def peak_mb():
    # VmHWM is this process's own peak; ru_maxrss also counts the parent's memory at the fork
    try:
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) for l in status if l.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def clock():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), u.ru_utime + u.ru_stime
figures = {}
peaks = {}
def phase(name, start):
    wall, cpu = clock()
    old = figures.get(name, (0.0, 0.0))
    figures[name] = (old[0] + cpu - start[1], old[1] + wall - start[0])
    # the process's peak so far: the phase that raises it is the one that holds the memory
    peaks[name] = max(peaks.get(name, 0.0), peak_mb())
    return wall, cpu
start = clock()
from datetime import datetime
from warmup.plan.calendar import day_date, local_time
from warmup.consent.pull import pull_for_plan
from warmup.dispatch import cancel_held_email
from warmup.dispatch.email import drain_email
from warmup.dispatch.klaviyo import drain_klaviyo
from warmup.engine import run_day
from warmup.plan import load_plan
from warmup.store import open_store
loaded = load_plan(sys.argv[1])
day = int(sys.argv[2])
plan = loaded.plan
now = local_time(plan, day_date(plan, day), plan.schedule.send_time_for(day)) + \
    __import__("datetime").timedelta(minutes=5)
mark = phase("imports", start)
pulled = []
def pull():
    global mark
    mark = phase("engine", mark)
    pulled.append(pull_for_plan(loaded))
    mark = phase("klaviyo", mark)
result = run_day(loaded, day, now=now, prepare=pull)
mark = phase("engine", mark)
with closing(open_store(loaded.store_path, create=False)) as store:
    cancel_held_email(store, before=day)
    k = drain_klaviyo(loaded, store, day)
    mark = phase("klaviyo", mark)
    e = drain_email(loaded, store, day, clock=lambda: now)
    mark = phase("email", mark)
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"phases": figures, "rss_mb": peak_mb(), "peaks": peaks,
                  "new": result.allocation["new"] if result.allocation else 0,
                  "status": result.status, "klaviyo_sent": k.sent, "email_sent": e.sent,
                  "failed": k.failed + e.failed, "on_hold": k.on_hold}))
"""


def start_servers(state: Path) -> tuple[list[subprocess.Popen[str]], str, str, int]:
    key = "pk_" + secrets.token_hex(17)
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "warmup", "sandbox", "--port", "0", "--fast", "--state",
         str(state), "--api-key-env", "BENCH_SANDBOX_KEY"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "BENCH_SANDBOX_KEY": key},
    )  # fmt: skip
    assert sandbox.stdout is not None
    url = sandbox.stdout.readline().split(" on ")[1].strip()
    sink = subprocess.Popen(
        [sys.executable, "-m", "warmup.email.sink", "0"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert sink.stdout is not None
    port = int(sink.stdout.readline())
    return [sandbox, sink], url, key, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--keep", type=Path, default=None, help="work folder to keep")
    args = parser.parse_args()
    import yaml

    from warmup.app.demo import demo_plan, klaviyo_account
    from warmup.app.sample import write_sample_csv

    work = args.keep or Path(tempfile.mkdtemp(prefix="fortnight-bench-"))
    if not args.keep:
        atexit.register(shutil.rmtree, work, True)  # a temporary folder goes with the run
    work.mkdir(parents=True, exist_ok=True)
    store = work / "demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    csv_path = write_sample_csv(work / "customers.csv", args.customers, seed=0)
    processes, url, key, port = start_servers(
        klaviyo_account(csv_path, work / "klaviyo-sandbox.json")
    )
    try:
        import pendulum

        start = pendulum.now("Europe/Prague").date() - timedelta(days=args.days)
        plan = demo_plan(klaviyo_url=url, smtp_port=port, start=start)
        plan["providers"]["new"]["rate_per_second"] = 100_000
        plan_path = work / "demo.yaml"
        plan_path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
        env = {
            **os.environ,
            "KLAVIYO_API_KEY": key,
            "WARMUP_UNSUBSCRIBE_SECRET": secrets.token_urlsafe(32),
            "WARMUP_STORE": str(store),
        }
        from day_bench import ANCHOR, child
        from import_bench import PLAIN

        plain = child(PLAIN, str(csv_path), str(work / "plain.db"), "0")
        (work / "plain.db").unlink()
        before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "warmup", "import", str(plan_path), str(csv_path), "--quiet"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        print(
            f"import of {args.customers:,} customers (`warmup import`, a process): "
            f"CPU {cpu:.2f} s, "
            f"wall {time.perf_counter() - started:.2f} s; anchor (plain csv → executemany): "
            f"CPU {plain['cpu']:.2f} s, wall {plain['seconds']:.2f} s"
        )
        totals: dict[str, list[float]] = {}
        for day in range(1, args.days + 1):
            out = subprocess.run(
                [sys.executable, "-c", DAY, str(plan_path), str(day)],
                env=env, check=True, capture_output=True, text=True,
            )  # fmt: skip
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            parts = []
            for name in ("imports", "engine", "klaviyo", "email"):
                cpu, wall = figures["phases"].get(name, (0.0, 0.0))
                totals.setdefault(name, [0.0, 0.0])
                totals[name][0] += cpu
                totals[name][1] += wall
                parts.append(f"{name} CPU {cpu:6.2f} s wall {wall:6.2f} s")
            print(
                f"day {day:2d}: new {figures['new']:>7,} · " + " · ".join(parts)
                + f" · peak RSS {figures['rss_mb']:4.0f} MB (by the end of: "
                + ", ".join(f"{n} {m:.0f}" for n, m in figures["peaks"].items())
                + f") · sent {figures['email_sent']:,}"
                f" emails, {figures['klaviyo_sent']:,} Klaviyo rows ({figures['failed']} failed, "
                f"{figures['on_hold']} on hold), {figures['status']}",
                flush=True,
            )  # fmt: skip
        anchor = child(ANCHOR, str(plan_path), str(store), str(args.customers))
        print(
            f"anchor: the largest day's allocation as one SQL statement: CPU "
            f"{anchor['cpu']:.2f} s, wall {anchor['wall']:.2f} s"
        )
        print(
            "all days: "
            + " · ".join(f"{n} CPU {c:.1f} s wall {w:.1f} s" for n, (c, w) in totals.items())
        )
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
