"""The two peers of a real `warmup run`, each in its own process on loopback: the
Klaviyo-compatible sandbox and the SMTP sink. Killing the run cannot take them down, and what
they received is the ground truth."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from warmup.app.demo import klaviyo_account
from warmup.app.sample import write_sample_csv

CUSTOMERS = 3000
KLAVIYO_KEY = "pk_e2e" + "0" * 31
# Share of Klaviyo requests answered with a 429, a 500, a slow reply or a dropped connection
# (some after the change was made): retries must stay idempotent across kills too.
SANDBOX_FAULTS = 0.05


@dataclass(frozen=True)
class Peers:
    customers_csv: Path
    klaviyo_url: str
    klaviyo_key: str
    smtp_port: int
    received: Path  # the sink writes one NNNNNN.eml per message here


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[Peers]:
    """Sample customers, a sandbox that already knows them (the export came from Klaviyo)
    (with a few injected faults) and an SMTP sink that takes 10 ms to answer each message's 250,
    widening the window in which a kill leaves a message's fate unknown."""
    csv_path = write_sample_csv(tmp_path / "customers.csv", CUSTOMERS, seed=0)
    state = klaviyo_account(csv_path, tmp_path / "klaviyo-sandbox.json")
    env = {**os.environ, "E2E_KLAVIYO_KEY": KLAVIYO_KEY}
    sandbox = subprocess.Popen(
        [
            *(sys.executable, "-m", "warmup", "sandbox", "--port", "0", "--fast"),
            *("--faults", str(SANDBOX_FAULTS)),
            *("--state", str(state), "--api-key-env", "E2E_KLAVIYO_KEY"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    received = tmp_path / "received"
    sink = subprocess.Popen(
        [sys.executable, "-m", "warmup.email.sink", "--save-to", str(received), "--delay", "0.01"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sandbox.stdout is not None and sink.stdout is not None
        announced = sandbox.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)", announced)
        assert match, f"the sandbox did not announce its URL: {announced!r}"
        port = int(sink.stdout.readline())
        yield Peers(csv_path, match.group(1), KLAVIYO_KEY, port, received)
    finally:
        if sink.stdin is not None:
            sink.stdin.close()  # end of input stops the sink
        try:
            sink.wait(timeout=15)
        except subprocess.TimeoutExpired:
            sink.kill()
            sink.wait()
        _stop(sandbox)
        for process in (sandbox, sink):
            if process.stdout is not None:
                process.stdout.close()
