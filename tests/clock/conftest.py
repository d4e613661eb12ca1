from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    # The autouse fixture of tests/conftest.py points WARMUP_STORE here.
    return tmp_path / "store.db"
