from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.storefill import fill_store, write_plan
from warmup.plan import LoadedPlan, load_plan
from warmup.store.copy import copy_store


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    # The autouse fixture of tests/conftest.py points WARMUP_STORE here.
    return tmp_path / "store.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def plan1_store(
    request: pytest.FixtureRequest, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """plan1's store on each engine: filled as SQLite, then copied to PostgreSQL (the engine
    must decide alike on both)."""
    fill_store(store_path, 400, seed=1)
    if request.param == "sqlite":
        return str(store_path)
    url = str(request.getfixturevalue("postgres_url"))
    copy_store(store_path, url)
    monkeypatch.setenv("WARMUP_STORE", url)
    return url


@pytest.fixture
def plan1(tmp_path: Path, plan1_store: str) -> LoadedPlan:
    return load_plan(write_plan(tmp_path, variant=1))
