from __future__ import annotations

import pytest

from tests.support.consent import HOOK_SECRET, LINK_SECRET


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARMUP_UNSUBSCRIBE_SECRET", LINK_SECRET)
    monkeypatch.setenv("WARMUP_WEBHOOK_SECRET", HOOK_SECRET)
