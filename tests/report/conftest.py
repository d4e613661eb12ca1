from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

BROWSERS = ("chromium", "chromium-browser")


def _find() -> str | None:
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium; a clear skip where it is absent. A test never installs it: `.ci/run`
    does (apt-get, as root), and the README says what the browser test needs."""
    found = _find()
    if not found:
        pytest.skip(
            "chromium is not installed: the browser test needs Debian's chromium on PATH "
            "(`bash .ci/run` installs it as root with apt-get install -y chromium)"
        )
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
