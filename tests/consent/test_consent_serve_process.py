"""`warmup serve` as a real process: it announces its URL, answers on loopback, and Ctrl-C
stops it (exit 130)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.consent import HOOK_SECRET, LINK_SECRET, add_customers, write_plan
from warmup.store import open_store


@pytest.mark.slow
def test_serve_process_answers_and_ctrl_c_exits_130(tmp_path: Path) -> None:
    loaded = write_plan(tmp_path)
    store = open_store(loaded.store_path)
    add_customers(store, ["ann@example.com"])
    store.close()
    env = {
        **os.environ,
        "WARMUP_UNSUBSCRIBE_SECRET": LINK_SECRET,
        "WARMUP_WEBHOOK_SECRET": HOOK_SECRET,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "warmup", "serve", str(loaded.path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        assert match, line
        health = httpx.get(f"{match.group(1)}/healthz", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ok"
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    # Uvicorn shuts down gracefully, then passes the Ctrl-C on: warmup's exit code for it.
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted"
    assert LINK_SECRET not in err and HOOK_SECRET not in err
