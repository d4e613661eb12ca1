"""Deterministic synthetic Klaviyo-style exports for the demo, tests and benchmarks.

The columns and their order are those of Klaviyo's "Export list to CSV" (32 columns). A small,
fixed share of rows is bad on purpose — invalid emails, non-E.164 phones, duplicate emails in
another case — so that every import exercises its error report.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

KLAVIYO_COLUMNS = [
    "Email",
    "Klaviyo ID",
    "First Name",
    "Last Name",
    "Organization",
    "Title",
    "Phone Number",
    "Address",
    "Address 2",
    "City",
    "State / Region",
    "Country",
    "Zip Code",
    "Latitude",
    "Longitude",
    "Source",
    "IP Address",
    "Email Marketing Consent",
    "Email Marketing Consent Timestamp",
    "Historic Customer Lifetime Value",
    "Total Customer Lifetime Value",
    "Predicted Customer Lifetime Value",
    "Average Order Value",
    "Historic Number Of Orders",
    "First Active",
    "Last Active",
    "Profile Created On",
    "Date Added",
    "Last Open",
    "Last Click",
    "Average Days Between Orders",
    "Email Suppressions",
]

_FIRST = [
    "Ann",
    "Ben",
    "Clara",
    "David",
    "Eva",
    "Filip",
    "Greta",
    "Hana",
    "Ivan",
    "Jana",
    "Karel",
    "Lucie",
    "Martin",
    "Nina",
    "Oskar",
    "Petra",
    "Radek",
    "Sara",
    "Tomas",
    "Vera",
]
_LAST = [
    "Novak",
    "Svoboda",
    "Lee",
    "Garcia",
    "Smith",
    "Dvorak",
    "Muller",
    "Rossi",
    "Kim",
    "Horak",
    "Nemec",
    "Brown",
    "Lopez",
    "Wagner",
    "Silva",
]
_CITIES = [
    ("Prague", "Prague", "CZ", "110 00"),
    ("Brno", "South Moravia", "CZ", "602 00"),
    ("Berlin", "Berlin", "DE", "10115"),
    ("Vienna", "Vienna", "AT", "1010"),
    ("Austin", "Texas", "US", "73301"),
    ("Leeds", "England", "GB", "LS1"),
]
_DOMAINS = ["example.com", "example.org", "example.net", "mail.example", "shop.example"]
_ULID = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_EPOCH = datetime(2026, 11, 1, tzinfo=UTC)


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def generate_rows(n: int, seed: int = 0) -> Iterator[list[str]]:
    """Yield ``n`` export rows (without the header), the same for the same ``seed``."""
    rng = random.Random(seed)
    previous_email = ""
    for i in range(n):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        email = f"{first.lower()}.{last.lower()}.{i}@{_DOMAINS[i % len(_DOMAINS)]}"
        roll = rng.random()
        if roll < 0.003:
            email = f"{first.lower()}.{i}.at.{_DOMAINS[0]}"  # no @: invalid
        elif roll < 0.012 and previous_email:
            # the previous customer again, in capitals with stray spaces: must merge
            email = f" {previous_email.upper()} "
        else:
            previous_email = email
        phone_roll = rng.random()
        if phone_roll < 0.4:
            phone = f"+4207{rng.randrange(10_000_000, 99_999_999)}"
        elif phone_roll < 0.404:
            phone = f"555-{rng.randrange(1000, 9999)}"  # not E.164
        else:
            phone = ""
        consent_roll = rng.random()
        consent = (
            "SUBSCRIBED"
            if consent_roll < 0.80
            else "NEVER_SUBSCRIBED"
            if consent_roll < 0.93
            else "UNSUBSCRIBED"
        )
        suppression = ""
        if consent == "UNSUBSCRIBED":
            suppression = "['UNSUBSCRIBE']"
        elif rng.random() < 0.01:
            suppression = "['HARD_BOUNCE']"
        created = _EPOCH - timedelta(days=rng.randrange(30, 1500))
        last_open = (
            _EPOCH - timedelta(days=rng.randrange(0, 90), seconds=rng.randrange(86400))
            if rng.random() < 0.85
            else None
        )
        last_click = (
            last_open - timedelta(days=rng.randrange(0, 20))
            if last_open and rng.random() < 0.5
            else None
        )
        city, region, country, zipc = _CITIES[rng.randrange(len(_CITIES))]
        orders = rng.randrange(0, 30)
        aov = round(rng.uniform(15, 180), 2)
        yield [
            email,
            "01" + "".join(rng.choice(_ULID) for _ in range(24)),
            first,
            last,
            "",
            "",
            phone,
            f"{rng.randrange(1, 200)} Main Street",
            "",
            city,
            region,
            country,
            zipc,
            f"{rng.uniform(-60, 60):.4f}",
            f"{rng.uniform(-120, 120):.4f}",
            rng.choice(["Signup Form", "Checkout", "Import", "API"]),
            f"203.0.113.{rng.randrange(1, 255)}",
            consent,
            _ts(created + timedelta(days=1)) if consent == "SUBSCRIBED" else "",
            f"{orders * aov:.2f}",
            f"{orders * aov:.2f}",
            f"{rng.uniform(0, 500):.2f}",
            f"{aov:.2f}",
            str(orders),
            _ts(created),
            _ts(last_open or created),
            _ts(created),
            _ts(created),
            _ts(last_open) if last_open else "",
            _ts(last_click) if last_click else "",
            f"{rng.uniform(5, 120):.1f}" if orders > 1 else "",
            suppression,
        ]


def write_sample_csv(path: Path | str, n: int, seed: int = 0) -> Path:
    """Write an ``n``-row export with a header to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(KLAVIYO_COLUMNS)
        writer.writerows(generate_rows(n, seed))
    return path
