"""The dry run's webhook body is the request the dispatcher makes: built by the same function,
compared here with what a real run sent to the sandbox over HTTP."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from warmup.app.demo import demo_plan, klaviyo_account
from warmup.app.sample import write_sample_csv
from warmup.cli.app import app
from warmup.email.sink import smtp_sink
from warmup.providers.klaviyo.client import KlaviyoClient
from warmup.sandbox import SandboxConfig, serve_in_thread
from warmup.store import open_store

runner = CliRunner()


def _preview(plan_path: Path) -> dict[str, Any]:
    shown = runner.invoke(
        app,
        ["run", str(plan_path), "--day", "1", "--dry-run", "--json", "--now", "2026-12-01T10:05"],
    )
    assert shown.exit_code == 0, shown.output
    request: dict[str, Any] = json.loads(json.loads(shown.output)["webhook"]["body"])
    return request


def test_the_preview_is_the_request_the_dispatcher_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARMUP_UNSUBSCRIBE_SECRET", "preview-test-secret")
    store_path = tmp_path / "store.db"
    monkeypatch.setenv("WARMUP_STORE", str(store_path))
    csv_path = write_sample_csv(tmp_path / "customers.csv", 120, seed=5)
    account = klaviyo_account(csv_path, tmp_path / "klaviyo.json")
    sent: list[dict[str, Any]] = []
    real_call = KlaviyoClient.call

    def recording(self: KlaviyoClient, method: str, url: str, **kwargs: Any) -> Any:
        if kwargs.get("json") is not None:
            sent.append({"method": method, "path": url, "body": kwargs["json"]})
        return real_call(self, method, url, **kwargs)

    with serve_in_thread(SandboxConfig(fast=True, state=account)) as sandbox, smtp_sink() as sink:
        monkeypatch.setenv("KLAVIYO_API_KEY", sandbox.api_key)
        plan = demo_plan(klaviyo_url=sandbox.base_url, smtp_port=sink.port, start=date(2026, 12, 1))
        plan_path = tmp_path / "plan.yaml"
        plan_path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
        assert runner.invoke(app, ["import", str(plan_path), str(csv_path), "-q"]).exit_code == 0
        store = open_store(store_path)
        assert store.conn.execute("SELECT count(phone) FROM customers").fetchone()[0] > 0

        imported = _preview(plan_path)  # nobody's id confirmed yet: a bulk import by email
        assert imported["path"] == "/api/profile-bulk-import-jobs"
        assert "phone_number" not in json.dumps(imported)

        # some ids Klaviyo returned, some not: the dispatcher sends them in separate requests
        store.conn.execute("UPDATE customers SET klaviyo_id_confirmed = (id % 2 = 0)")
        store.close()
        mixed = _preview(plan_path)
        assert mixed["path"].endswith("/relationships/profiles")
        assert all(item["id"] for item in mixed["body"]["data"])

        monkeypatch.setattr(KlaviyoClient, "call", recording)
        ran = runner.invoke(app, ["run", str(plan_path), "--day", "1", "--now", "2026-12-01T10:05"])
        assert ran.exit_code == 0, ran.output
    list_id = next(r["path"].split("/")[3] for r in sent if "/relationships/" in r["path"])
    real = [
        r for r in sent if r["path"] == mixed["path"].replace("LIST-ID-RESOLVED-AT-SYNC", list_id)
    ]
    assert real and {r["method"] for r in real} == {mixed["method"]}
    items = [item for r in real for item in r["body"]["data"]]
    assert all(item in items for item in mixed["body"]["data"])
    # what the import preview showed per profile is what a real import carries
    # (the run's scope probe posts an empty body there first: Klaviyo answers it 400)
    real_imports = [r for r in sent if r["path"] == imported["path"] and r["body"]["data"]]
    entries = [p for r in real_imports for p in r["body"]["data"]["attributes"]["profiles"]["data"]]
    shown = imported["body"]["data"]["attributes"]["profiles"]["data"]
    assert {tuple(sorted(p["attributes"])) for p in shown} <= {
        tuple(sorted(p["attributes"])) for p in entries
    }

    # Day 2 starts with day 1's recipients, who are members already and get no call: the
    # preview shows the list's real id and only people the day will really add (here the
    # half of day 1's recipients the store no longer counts as members).
    store = open_store(store_path)
    store.conn.execute("DELETE FROM klaviyo_members WHERE customer_id % 2 = 0")
    members = {
        str(e)
        for (e,) in store.conn.execute(
            "SELECT c.email FROM klaviyo_members m JOIN customers c ON c.id = m.customer_id "
            "WHERE m.list_id = ?",
            (list_id,),
        )
    }
    store.close()
    assert members
    shown_day_2 = runner.invoke(
        app,
        ["run", str(plan_path), "--day", "2", "--dry-run", "--json", "--now", "2026-12-02T10:05"],
    )
    assert shown_day_2.exit_code == 0, shown_day_2.output
    day_2 = json.loads(json.loads(shown_day_2.output)["webhook"]["body"])
    body = json.dumps(day_2)
    assert "LIST-ID-RESOLVED-AT-SYNC" not in body and list_id in body
    assert not any(email in body for email in members), body
