"""Nothing warmup does depends on the machine's TZ: the same commands, run as users run them
(a separate process each) under two zones a day apart, print and record the same."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.storefill import fill_store, table, write_plan
from warmup.clock import local_today

# UTC+14 and UTC-10 (-9 in summer): at any moment their calendar dates differ.
ZONES = ("Pacific/Kiritimati", "America/Adak")


def warmup(args: list[str], tz: str, store: Path) -> str:
    env = {**os.environ, "TZ": tz, "WARMUP_STORE": str(store), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "warmup", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def test_init_and_run_under_two_machine_zones(tmp_path: Path) -> None:
    before = local_today("Europe/Prague")
    outputs: dict[str, list[str]] = {}
    recorded: dict[str, list[tuple[object, ...]]] = {}
    for tz in ZONES:
        folder = tmp_path / tz.replace("/", "-")
        folder.mkdir()
        store = folder / "store.db"
        warmup(["init", str(folder / "init"), "--timezone", "Europe/Prague"], tz, store)
        start = (folder / "init" / "plan.yaml").read_text().split("start_date: ")[1][:10]
        # A plan starting today where it sends: `--now 10:05` means 10:05 today in Prague.
        fill_store(store, 80, seed=9)
        plan = write_plan(folder, variant=1)
        plan.write_text(plan.read_text().replace("2026-12-01", before.isoformat()))
        real = warmup(
            ["run", str(plan), "--day", "1", "--now", "10:05", "--no-dispatch"], tz, store
        )
        outputs[tz] = [start, real.replace(str(folder), "DIR")]
        recorded[tz] = table(store, "SELECT day, date, status, completed_at, started_at FROM days")
    if local_today("Europe/Prague") != before:
        pytest.skip("Prague's midnight passed during the test")
    first, second = (outputs[tz] for tz in ZONES)
    assert first == second
    assert first[0] == (before + timedelta(days=1)).isoformat()  # init: tomorrow in Prague
    assert first[1].startswith(f"ran engine-test day 1 ({before.isoformat()}): completed")
    assert "note:" not in first[1]  # not late, not early: today at 10:05
    assert recorded[ZONES[0]] == recorded[ZONES[1]]
    day, date, status, completed, started = recorded[ZONES[0]][0]
    assert (day, date, status) == (1, before.isoformat(), "completed")
    # 10:05 in Prague, stored in UTC; the start too (it was the machine's real time)
    assert str(completed).endswith(("T09:05:00+00:00", "T08:05:00+00:00"))
    assert started == completed
