from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

BROWSERS = ("chromium", "chromium-browser")


def _find() -> str | None:
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed with apt-get when absent; a clear skip where it cannot be."""
    found = _find()
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip(
            "chromium is not installed and apt-get cannot install it here (needs root "
            "on Debian/Ubuntu): apt-get install -y chromium"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=900, check=False
        )
        if done.returncode != 0:
            pytest.skip(
                f"could not install chromium ({' '.join(command)} exited "
                f"{done.returncode}): {done.stderr.strip()[-300:]}"
            )
    found = _find()
    if not found:
        pytest.skip("apt-get installed chromium but no chromium binary is on PATH")
    return found


def screenshot(browser: str, page: Path, out: Path, *, height: int = 900) -> Path:
    """Render ``page`` headless, offline, into a PNG."""
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={out.parent / 'chromium-profile'}",
            f"--screenshot={out}",
            f"--window-size=1200,{height}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert out.exists(), "chromium wrote no screenshot"
    return out
