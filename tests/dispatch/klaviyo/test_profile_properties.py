"""Field mapping to Klaviyo profile properties (issue 17): the plan maps export columns, customer
fields, the warm-up's day and a split node's arm to custom properties; they are checked at
load, `validate` and `import`, and reach Klaviyo (the sandbox) with the bulk import a profile
joins the exclusion list by."""

from __future__ import annotations

import csv
from contextlib import closing
from pathlib import Path

import pendulum
import pytest

from tests.dispatch.klaviyo.klaviyo_helpers import KEY_ENV, fast_client
from tests.support.storefill import write_plan
from warmup.app.validation import validate_plan
from warmup.dispatch.klaviyo import drain_klaviyo
from warmup.engine import run_day
from warmup.engine.nodes.split import SplitNode, bucket, salt
from warmup.errors import CsvImportError, PlanError
from warmup.importer import import_csv
from warmup.plan import LoadedPlan, load_plan
from warmup.sandbox import RunningSandbox
from warmup.store import open_store

SPLIT = """
name: tagged
nodes:
  - {id: t, type: trigger, on: date, next: a}
  - {id: a, type: audience, source: allocation, yes: x}
  - {id: x, type: webhook, template: klaviyo/add-profiles-to-list.json.j2, list: exclusion,
     batch_size: 1000, next: s}
  # the arms: treatment and control (an end node here; a property tags them in Klaviyo)
  - {id: s, type: split, share: 0.5}
"""

MAPPING = """    profile_properties:
      loyalty_tier: {column: Loyalty Tier}
      warmup_day: {warmup: day}
      warmup_arm: {arm: s}
      given_name: {field: first_name}
"""


def tagged_plan(folder: Path, base_url: str = "http://127.0.0.1:9", mapping: str = MAPPING) -> Path:
    scenario = folder / "tagged.yaml"
    scenario.write_text(SPLIT, encoding="utf-8")
    path = write_plan(folder, days=[4, 6], scenario=scenario, store=folder / "t.db")
    text = path.read_text(encoding="utf-8")
    text = text.replace("base_url: http://127.0.0.1:9", f"base_url: {base_url}")
    text = text.replace(
        '    unsubscribe_list: {name: "Warmup unsubscribes"}\n',
        f'    unsubscribe_list: {{name: "Warmup unsubscribes"}}\n    api_key_env: {KEY_ENV}\n'
        + mapping,
    )
    path.write_text(text, encoding="utf-8")
    return path


def export(folder: Path, n: int, *, tier_column: str = "Loyalty Tier") -> Path:
    path = folder / "export.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Email", "First Name", "Email Marketing Consent", tier_column])
        for i in range(1, n + 1):
            tier = "" if i == n else ("gold" if i % 2 else "silver")
            writer.writerow([f"c{i}@example.com", f"Name{i}", "SUBSCRIBED", tier])
    return path


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_the_mapped_properties_reach_klaviyo_with_the_bulk_import(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    loaded = load_plan(tagged_plan(tmp_path, sandbox.base_url))
    import_csv(loaded, export(tmp_path, 8))
    result = run_day(loaded, 1, now=pendulum.datetime(2026, 12, 1, 8, tz="Europe/Prague"))
    assert result.allocation["new"] == 4
    client = fast_client(sandbox.base_url, sandbox.api_key)
    with closing(open_store(loaded.store_path, create=False)) as store:
        report = drain_klaviyo(loaded, store, 1, client=client)
        assert report.failed == 0 and report.sent == 4
        new = [
            str(e)
            for (e,) in store.conn.execute(
                "SELECT c.email FROM allocations a JOIN customers c ON c.id = a.customer_id "
                "WHERE a.day = 1 AND a.provider = 'new' ORDER BY c.id"
            )
        ]
    split = loaded.scenario.by_id["s"]
    assert isinstance(split, SplitNode)
    for email in new:
        found = client.get("/api/profiles", {"filter": f'equals(email,"{email}")'})["data"]
        assert len(found) == 1, email
        number = int(email[1:].split("@")[0])
        place = bucket(salt(loaded.name, split), email)
        assert place is not None
        expected: dict[str, object] = {
            "warmup_day": 1,
            "warmup_arm": "yes" if place < 0.5 else "no",
            "given_name": f"Name{number}",
        }
        if number != 8:  # the last export row's tier cell is empty: no property, not ""
            expected["loyalty_tier"] = "gold" if number % 2 else "silver"
        assert found[0]["attributes"]["properties"] == expected


def test_the_dry_run_shows_the_properties_in_the_webhook_body(tmp_path: Path) -> None:
    loaded = load_plan(tagged_plan(tmp_path))
    import_csv(loaded, export(tmp_path, 8))
    result = run_day(loaded, 1, dry_run=True)
    assert result.webhook is not None
    assert '"properties": {"' in result.webhook["body"]
    assert '"warmup_day": 1' in result.webhook["body"]
    # with properties every joining profile goes through the bulk import (the call carrying them)
    assert "/api/profile-bulk-import-jobs" in result.webhook["body"]


def test_an_arm_of_a_node_that_is_no_split_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tagged_plan(tmp_path, mapping="    profile_properties:\n      arm: {arm: a}\n")
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    (issue,) = caught.value.issues
    assert issue.line == line_of(path, "arm: {arm: a}")
    assert "not a split node" in issue.message and "(s)" in (issue.hint or "")


def test_a_property_needs_exactly_one_source(tmp_path: Path) -> None:
    path = tagged_plan(
        tmp_path, mapping="    profile_properties:\n      x: {column: A, warmup: day}\n"
    )
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    assert caught.value.issues[0].line == line_of(path, "x: {column: A")
    assert "exactly one source" in caught.value.issues[0].message


def test_validate_checks_the_columns_against_the_imported_export(tmp_path: Path) -> None:
    path = tagged_plan(tmp_path)
    validate_plan(path)  # no store yet: `import` checks the header instead
    import_csv(load_plan(path), export(tmp_path, 4))
    validate_plan(path)
    path.write_text(path.read_text().replace("column: Loyalty Tier", "column: Loyalty tier"))
    with pytest.raises(PlanError) as caught:
        validate_plan(path)
    (issue,) = caught.value.issues
    assert issue.line == line_of(path, "column: Loyalty tier")
    assert "'Loyalty tier'" in issue.message
    # a column the import maps to a customer field is not a free column: `field:` it is
    path.write_text(path.read_text().replace("column: Loyalty tier", "column: First Name"))
    with pytest.raises(PlanError) as caught:
        validate_plan(path)
    assert "field:" in (caught.value.issues[0].hint or "")


def test_import_refuses_an_export_without_a_mapped_column(tmp_path: Path) -> None:
    loaded = load_plan(tagged_plan(tmp_path))
    with pytest.raises(CsvImportError) as caught:
        import_csv(loaded, export(tmp_path, 3, tier_column="Tier"))
    assert caught.value.line == 1 and "`Loyalty Tier`" in caught.value.message
    with closing(open_store(loaded.store_path)) as store:
        assert store.conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 0


def test_without_a_mapping_nothing_changes(tmp_path: Path) -> None:
    loaded: LoadedPlan = load_plan(tagged_plan(tmp_path, mapping=""))
    import_csv(loaded, export(tmp_path, 8))
    result = run_day(loaded, 1, dry_run=True)
    assert result.webhook is not None and "properties" not in result.webhook["body"]
