"""Providers are wired from explicit settings: ``load_plan(env=...)`` hands the values the plan's
variables name down to every provider; nothing is read from, or written to, ``os.environ``
behind the caller's back, and the values never show in a plan's repr."""

from __future__ import annotations

import os
from contextlib import closing
from pathlib import Path

import pytest

from tests.support.storefill import write_plan
from warmup.dispatch.klaviyo import client_for
from warmup.email.tokens import unsubscribe_secret
from warmup.errors import InvalidInput
from warmup.plan import load_plan

KEY = "pk_explicit_settings_test"


def test_the_klaviyo_key_comes_from_the_plans_settings(tmp_path: Path) -> None:
    path = write_plan(tmp_path)
    assert "KLAVIYO_API_KEY" not in os.environ
    loaded = load_plan(path, env={"KLAVIYO_API_KEY": KEY})
    with closing(client_for(loaded)) as client:
        assert client._http.headers["Authorization"] == f"Klaviyo-API-Key {KEY}"
    assert "KLAVIYO_API_KEY" not in os.environ
    assert KEY not in repr(loaded)
    with pytest.raises(InvalidInput, match="KLAVIYO_API_KEY is not set"):
        client_for(load_plan(path, env={}))


def test_the_store_and_signing_secret_come_from_the_settings(tmp_path: Path) -> None:
    path = write_plan(tmp_path)
    loaded = load_plan(
        path,
        env={"WARMUP_STORE": str(tmp_path / "x.db"), "WARMUP_UNSUBSCRIBE_SECRET": "s3cret"},
    )
    assert loaded.store_path == tmp_path / "x.db"
    assert loaded.store_path != Path(os.environ["WARMUP_STORE"])
    secret = unsubscribe_secret(loaded.plan.unsubscribe.secret_env, rehearsal=False, env=loaded.env)
    assert secret == b"s3cret"
