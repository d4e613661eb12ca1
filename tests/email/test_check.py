"""`warmup check PLAN` against the real sandbox and a loopback SMTP relay with STARTTLS and
AUTH: every check passes with everything in place; each missing piece fails its own line and
the exit code; --json says the same."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.support import plans
from warmup.cli import app
from warmup.dispatch import claims
from warmup.email.sink import Sink, smtp_sink
from warmup.sandbox import RunningSandbox, SandboxConfig, serve_in_thread
from warmup.store import open_store

runner = CliRunner()


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with serve_in_thread(SandboxConfig(fast=True, seed=5)) as running:
        yield running


@pytest.fixture
def relay(server_tls: ssl.SSLContext) -> Iterator[Sink]:
    with smtp_sink(tls="starttls", tls_context=server_tls, auth=("relay", "pw")) as sink:
        yield sink


def write_plan(tmp: Path, sandbox: RunningSandbox, relay: Sink, **klaviyo: object) -> Path:
    settings = {
        "store": str(tmp / "check.db"),
        "providers": {
            "new": {"port": relay.port, "tls": "starttls"},
            "klaviyo": {"base_url": sandbox.base_url, **klaviyo},
        },
    }
    return plans.write_plan(tmp, settings=settings)


@pytest.fixture
def ready(
    tmp_path: Path,
    sandbox: RunningSandbox,
    relay: Sink,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    monkeypatch.delenv("WARMUP_STORE")
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # trust the relay's certificate
    monkeypatch.setenv("KLAVIYO_API_KEY", sandbox.api_key)
    monkeypatch.setenv("WARMUP_UNSUBSCRIBE_SECRET", "s" * 40)
    monkeypatch.setenv("WARMUP_SMTP_USER", "relay")
    monkeypatch.setenv("WARMUP_SMTP_PASSWORD", "pw")
    plan = write_plan(tmp_path, sandbox, relay)
    open_store(tmp_path / "check.db").close()
    return plan


def test_everything_in_place_passes(ready: Path, sandbox: RunningSandbox, relay: Sink) -> None:
    result = runner.invoke(app, ["check", str(ready)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(line.startswith("ok") for line in lines[:-1]), result.output
    assert "STARTTLS, AUTH accepted" in result.output and relay.logins == 1
    assert "does not exist yet: day 1 creates it" in result.output
    assert sandbox.api_key not in result.output and "pw" not in result.output.split()
    document = json.loads(runner.invoke(app, ["check", str(ready), "--json"]).stdout)
    names = [c["name"] for c in document["checks"]]
    assert len(names) == len(set(names)), names  # each variable once
    assert document["ok"] is True and {c["name"] for c in document["checks"]} >= {
        "klaviyo",
        "klaviyo scopes",
        "exclusion list",
        "smtp",
        "store",
    }


def test_each_missing_piece_fails_its_line(
    ready: Path, sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLAVIYO_API_KEY", sandbox.read_only_key)  # no write scopes
    monkeypatch.setenv("WARMUP_SMTP_PASSWORD", "wrong")
    (tmp_path / "check.db").unlink()
    plan = ready.read_text().replace("{name: Warmup unsubscribes}", "{id: NoSuchList}")
    plan = plan.replace("name: Warmup unsubscribes", "id: NoSuchList")
    ready.write_text(plan)
    result = runner.invoke(app, ["check", str(ready), "--json"])
    assert result.exit_code == 1, result.output
    failed = {c["name"]: c["detail"] for c in json.loads(result.stdout)["checks"] if not c["ok"]}
    assert set(failed) == {"klaviyo scopes", "unsubscribe list", "smtp", "store"}, failed
    assert "lists:write" in failed["klaviyo scopes"]
    assert "refused the login" in failed["smtp"]
    assert "warmup import" in failed["store"]


def test_a_list_another_plan_claimed_fails_its_line(
    ready: Path, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    headers = {"Authorization": f"Klaviyo-API-Key {sandbox.api_key}", "revision": "2026-10-15"}
    body = {"data": {"type": "list", "attributes": {"name": "Warmup exclusions"}}}
    created = httpx.post(f"{sandbox.base_url}/api/lists", json=body, headers=headers)
    list_id = created.json()["data"]["id"]
    other = tmp_path / "other.db"
    open_store(other).close()
    claims.check(list_id, "other-plan", other, take_over=False)
    result = runner.invoke(app, ["check", str(ready), "--json"])
    assert result.exit_code == 1, result.output
    failed = {c["name"]: c["detail"] for c in json.loads(result.stdout)["checks"] if not c["ok"]}
    assert set(failed) == {"exclusion list"}, failed
    assert "claimed by plan 'other-plan'" in failed["exclusion list"]
    assert "--claim" in failed["exclusion list"]


def test_a_postgresql_store_is_checked_where_it_is(
    ready: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`warmup check` on a plan whose store is PostgreSQL: an empty database says to import
    first; once migrated, it is writable."""
    monkeypatch.setenv("WARMUP_STORE", postgres_url)
    before = runner.invoke(app, ["check", str(ready), "--json"])
    [store] = [c for c in json.loads(before.stdout)["checks"] if c["name"] == "store"]
    assert not store["ok"] and "warmup import" in store["detail"], store
    open_store(postgres_url).close()
    after = runner.invoke(app, ["check", str(ready), "--json"])
    [store] = [c for c in json.loads(after.stdout)["checks"] if c["name"] == "store"]
    assert store == {
        "name": "store",
        "ok": True,
        "detail": f"{postgres_url} is writable (0 customers)",
    }, store


def test_consent_lists_are_checked(ready: Path, sandbox: RunningSandbox) -> None:
    """A consent category's list is read before each day and never created: `warmup check`
    finds it (a name or id Klaviyo does not have stopped only the first real day)."""
    headers = {"Authorization": f"Klaviyo-API-Key {sandbox.api_key}", "revision": "2026-10-15"}
    body = {"data": {"type": "list", "attributes": {"name": "Newsletter"}}}
    created = httpx.post(f"{sandbox.base_url}/api/lists", json=body, headers=headers)
    list_id = created.json()["data"]["id"]
    text = ready.read_text()
    anchor = "  klaviyo:\n"
    assert anchor in text
    ready.write_text(
        text.replace(
            anchor,
            anchor + "    consent_lists: {newsletter: {name: Newsletter}, promo: {name: Nope}, "
            f"vip: {{id: {list_id}}}, old: {{id: NoSuchList}}}}\n",
            1,
        )
    )
    result = runner.invoke(app, ["check", str(ready), "--json"])
    assert result.exit_code == 1, result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["consent list newsletter"]["ok"] is True
    assert list_id in checks["consent list newsletter"]["detail"]
    assert checks["consent list vip"]["ok"] is True
    assert checks["consent list promo"]["ok"] is False
    assert "no list named 'Nope'" in checks["consent list promo"]["detail"]
    assert checks["consent list old"]["ok"] is False
    assert "consent_lists.old" in checks["consent list old"]["detail"]
