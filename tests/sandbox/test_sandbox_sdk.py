"""The sandbox as Klaviyo's own Python SDK sees it: klaviyo-api, at its default revision, builds
every request and parses every answer with its own models, through every operation served."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from klaviyo_api import KlaviyoAPI  # type: ignore[import-untyped]

from tests.sandbox.sandbox_sdk_scenario import drive_every_operation
from warmup.sandbox import RunningSandbox, SandboxConfig, serve_in_thread, spec
from warmup.sandbox.revisions import STABLE_REVISION


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with serve_in_thread(SandboxConfig(fast=True, seed=18)) as running:
        yield running


@pytest.fixture(scope="module")
def sdk(sandbox: RunningSandbox) -> KlaviyoAPI:
    return KlaviyoAPI(sandbox.api_key, max_delay=1, max_retries=3, test_host=sandbox.base_url)


def test_the_sdk_sends_the_current_stable_revision() -> None:
    assert KlaviyoAPI._REVISION == STABLE_REVISION


def test_every_served_operation_through_the_sdk(sdk: KlaviyoAPI, sandbox: RunningSandbox) -> None:
    drive_every_operation(sdk)
    served = {op.op_id for op in spec.operations()}
    assert served == set(sandbox.app.requests), served ^ set(sandbox.app.requests)
