"""SMS consent from the export (issue 17, seed 004's consent values): stored as the customer's
``sms`` consent, sticky like email's, so scenario conditions on ``channel: sms`` mean something."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

from warmup.importer import import_csv
from warmup.plan import load_plan

HEADER = ["Email", "Email Marketing Consent", "SMS Marketing Consent"]


def write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def sms(tmp_path: Path) -> dict[str, str]:
    conn = sqlite3.connect(tmp_path / "store.db")
    return dict(
        conn.execute(
            "SELECT c.email, s.status FROM consents s JOIN customers c ON c.id = s.customer_id "
            "WHERE s.channel = 'sms'"
        )
    )


def test_sms_consent_is_imported_and_an_opt_out_sticks(tmp_path: Path, example_plan: Path) -> None:
    loaded = load_plan(example_plan)
    first = [
        ["a@example.com", "SUBSCRIBED", "Subscribed"],
        ["b@example.com", "SUBSCRIBED", "UNSUBSCRIBED"],
        ["c@example.com", "SUBSCRIBED", ""],  # Klaviyo leaves never-subscribed SMS empty
        ["d@example.com", "SUBSCRIBED", "Never Subscribed"],
        ["e@example.com", "SUBSCRIBED", "maybe"],  # not a consent value: nothing stored
    ]
    import_csv(loaded, write(tmp_path / "a.csv", first))
    assert sms(tmp_path) == {
        "a@example.com": "subscribed",
        "b@example.com": "unsubscribed",
        "d@example.com": "never_subscribed",
    }
    again = [
        ["a@example.com", "SUBSCRIBED", "Unsubscribed"],
        ["b@example.com", "SUBSCRIBED", "Subscribed"],  # an import never resubscribes
        ["c@example.com", "SUBSCRIBED", "Subscribed"],
    ]
    import_csv(loaded, write(tmp_path / "b.csv", again))
    assert sms(tmp_path) == {
        "a@example.com": "unsubscribed",
        "b@example.com": "unsubscribed",
        "c@example.com": "subscribed",
        "d@example.com": "never_subscribed",
    }
