from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import postgres_server, postgres_url, store_location

__all__ = ["postgres_server", "postgres_url", "store_location"]  # fixtures for every package

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _template_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Compiled templates go to the session's folder, not the machine's temporary folder."""
    os.environ["WARMUP_TEMPLATE_CACHE"] = str(tmp_path_factory.mktemp("template-cache"))


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own store path and no credentials from the developer's shell."""
    monkeypatch.setenv("WARMUP_STORE", str(tmp_path / "store.db"))
    monkeypatch.setenv("WARMUP_STATE_DIR", str(tmp_path / "warmup-state"))  # list claims
    for name in list(os.environ):
        if name.startswith(("KLAVIYO_", "WARMUP_SMTP_")):
            monkeypatch.delenv(name)
    yield


@pytest.fixture
def example_plan() -> Path:
    return REPO / "plans" / "example.yaml"
