from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.storefill import fill_store, write_plan
from warmup.plan import LoadedPlan, load_plan


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    # The autouse fixture of tests/conftest.py points WARMUP_STORE here.
    return tmp_path / "store.db"


@pytest.fixture
def plan1(tmp_path: Path, store_path: Path) -> LoadedPlan:
    fill_store(store_path, 400, seed=1)
    return load_plan(write_plan(tmp_path, variant=1))
