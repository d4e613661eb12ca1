from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dispatch.klaviyo.klaviyo_helpers import KEY_ENV
from warmup.sandbox import RunningSandbox, SandboxConfig, serve_in_thread


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSandbox]:
    with serve_in_thread(SandboxConfig(fast=True, seed=7)) as running:
        monkeypatch.setenv(KEY_ENV, running.api_key)
        yield running
