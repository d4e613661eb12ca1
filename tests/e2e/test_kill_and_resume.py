"""The product's promise, tested whole: a real `warmup run` with real dispatch, against a real
Klaviyo sandbox and a real SMTP sink (each in its own process), SIGKILLed at random moments of
days 1–3 and run again until it exits 0. What the peers received is then held against the store:
no duplicate, no gap, nothing to a Klaviyo customer, the exclusion list exact.

``WARMUP_E2E_SEED=N`` replays another sequence of kills; the seed and the phase each kill landed
in are printed (pytest shows them when the test fails).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date
from email.parser import BytesHeaderParser
from pathlib import Path
from random import Random

import pytest

from tests.e2e.e2e_peers import Peers
from tests.support import plans
from warmup.app.demo import demo_plan
from warmup.email.message import message_id_for
from warmup.importer import import_csv
from warmup.plan import load_plan
from warmup.providers.klaviyo import KlaviyoClient
from warmup.providers.klaviyo.lists import find_list, iter_members

SEED = int(os.environ.get("WARMUP_E2E_SEED", "20261201"))
# The new provider's volume per day (the example plan's ramp, steeper: more mail to kill amid).
VOLUMES = {1: 300, 2: 600, 3: 900}
SECRET = "e2e-unsubscribe-secret"
DOMAIN = "send.acme.example"  # the plan's sender domain: Message-IDs end with it
EXCLUSIONS = "Warmup exclusions"
MAX_CONNECTIONS = 8


def kill_window(day: int) -> tuple[float, float]:
    """Seconds after the launch a kill may land: a day's uninterrupted run takes about 2–4 s on
    a 2-core machine (start-up ~0.7 s, email at ~300 messages/s), so the window covers it."""
    return 0.3, 1.0 + VOLUMES[day] / 350


PHASES = (
    "start-up/load/pull",
    "evaluate",
    "allocate/outbox",
    "klaviyo dispatch",
    "email sending",
    "after the last send",
)
OPEN = {"pending", "sending"}


@dataclass(frozen=True)
class Progress:
    """What a day's run has left behind: the store's rows and the sink's count."""

    runs: int
    allocated: int
    day_status: str | None
    webhooks: tuple[tuple[str, int], ...]
    emails: tuple[tuple[str, int], ...]
    received: int

    def frontier(self, before: Progress) -> int:
        """The furthest phase (index in PHASES) whose writes a run left behind."""
        webhooks, emails = dict(self.webhooks), dict(self.emails)
        if self == before:
            return 0
        if not self.allocated:
            return 1
        if self.day_status != "completed":
            return 2
        if any(webhooks.get(s) for s in OPEN) or not webhooks:
            return 3
        if any(emails.get(s) for s in OPEN):
            return 4
        return 5


def printed_frontier(out: str) -> int:
    """The furthest phase a run announced on stdout (a phase can end before it writes)."""
    if "\nemail    " in out:
        return 5
    if "\nran " in out:  # the engine's day result: dispatch comes next, Klaviyo first
        return 3
    if "unsubscribes or suppressions pulled" in out:
        return 1
    return 0


@dataclass
class Attempt:
    day: int
    number: int
    kill_after: float | None  # None: run to the end
    phase: str
    seconds: float
    received: int

    def line(self) -> str:
        what = (
            f"SIGKILL after {self.kill_after:.2f} s in {self.phase}"
            if self.kill_after is not None
            else f"ran to the end: {self.phase}"
        )
        return (
            f"day {self.day} run {self.number}: {what} "
            f"({self.seconds:.2f} s, sink holds {self.received})"
        )


def progress(store: Path, received: Path, day: int) -> Progress:
    conn = sqlite3.connect(store)
    try:

        def count(table: str) -> int:
            return int(
                conn.execute(f"SELECT count(*) FROM {table} WHERE day = ?", (day,)).fetchone()[0]
            )

        def by_status(kind: str) -> tuple[tuple[str, int], ...]:
            rows = conn.execute(
                "SELECT status, count(*) FROM outbox WHERE day = ? AND kind = ? GROUP BY status",
                (day, kind),
            )
            return tuple(sorted((str(s), int(n)) for s, n in rows))

        status = conn.execute("SELECT status FROM days WHERE day = ?", (day,)).fetchone()
        return Progress(
            runs=count("runs"),
            allocated=count("allocations"),
            day_status=str(status[0]) if status else None,
            webhooks=by_status("webhook"),
            emails=by_status("email"),
            received=sum(1 for _ in received.glob("*.eml")),
        )
    finally:
        conn.close()


def write_plan(folder: Path, peers: Peers) -> Path:
    demo = demo_plan(
        klaviyo_url=peers.klaviyo_url, smtp_port=peers.smtp_port, start=date(2026, 12, 1)
    )
    settings = {
        "store": str(folder / "store.db"),
        "providers": {
            "klaviyo": {"api_key_env": "E2E_KLAVIYO_KEY"},
            "new": {"max_connections": MAX_CONNECTIONS, "rate_per_second": 400},
        },
        "schedule": {
            "days": [
                {"day": day, "new": new, "template": f"day-{day:02d}"}
                for day, new in VOLUMES.items()
            ]
        },
    }
    return plans.write_plan(folder, base=demo, settings=settings)


def warmup(plan: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "warmup", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def run_day_with_kills(
    plan: Path, env: dict[str, str], store: Path, peers: Peers, day: int, rng: Random
) -> list[Attempt]:
    """Launch day ``day``, SIGKILL it at random moments (2–4 times), then run it to the end."""
    attempts: list[Attempt] = []
    kills = rng.choice([2, 3, 3, 4])
    argv = ("run", str(plan), "--day", str(day), "--now", f"2026-12-{day:02d}T10:05")
    for number in range(1, kills + 2):
        before = progress(store, peers.received, day)
        kill_after = rng.uniform(*kill_window(day)) if number <= kills else None
        started = time.monotonic()
        process = warmup(plan, env, *argv)
        try:
            out, err = process.communicate(timeout=kill_after or 120)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            out, err = process.communicate()
        seconds = time.monotonic() - started
        after = progress(store, peers.received, day)
        killed = process.returncode == -signal.SIGKILL
        attempt = Attempt(
            day,
            number,
            kill_after if killed else None,
            PHASES[max(after.frontier(before), printed_frontier(out.decode()))],
            seconds,
            after.received,
        )
        attempts.append(attempt)
        print(attempt.line())
        if not killed:
            assert process.returncode == 0, (
                f"day {day} run {number} exited {process.returncode}:\n"
                f"{out.decode()}\n{err.decode()}"
            )
            return attempts
    raise AssertionError(f"day {day} never ran to the end")


def received_ids(folder: Path) -> Counter[str]:
    parser = BytesHeaderParser()
    ids: Counter[str] = Counter()
    for path in sorted(folder.glob("*.eml")):
        with path.open("rb") as handle:
            ids[str(parser.parse(handle)["Message-ID"]).strip()] += 1
    return ids


@pytest.mark.slow
def test_killed_runs_finish_every_day_with_no_duplicate_and_no_gap(
    tmp_path: Path, peers: Peers, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = time.monotonic()
    store = tmp_path / "store.db"
    plan = write_plan(tmp_path, peers)
    env = {
        **os.environ,
        "E2E_KLAVIYO_KEY": peers.klaviyo_key,
        "WARMUP_UNSUBSCRIBE_SECRET": SECRET,
        "WARMUP_STORE": str(store),
    }
    for name in ("E2E_KLAVIYO_KEY", "WARMUP_UNSUBSCRIBE_SECRET", "WARMUP_STORE"):
        monkeypatch.setenv(name, env[name])
    loaded = load_plan(plan)
    imported = import_csv(loaded, peers.customers_csv)
    assert imported.rows_loaded > 2500

    print(f"seed {SEED} (WARMUP_E2E_SEED={SEED} replays it)")
    rng = Random(SEED)
    attempts = [
        attempt
        for day in VOLUMES
        for attempt in run_day_with_kills(plan, env, store, peers, day, rng)
    ]
    killed = [a for a in attempts if a.kill_after is not None]
    assert killed, "every run ended before its kill: widen kill_window"
    phases = Counter(a.phase for a in killed)
    print(f"{len(killed)} kills: " + ", ".join(f"{n} in {p}" for p, n in phases.items()))
    story = f"seed {SEED}; " + "; ".join(a.line() for a in attempts)

    conn = sqlite3.connect(store)
    try:
        days = dict(conn.execute("SELECT day, status FROM days"))
        new = {
            (int(day), str(email).lower())
            for day, email in conn.execute(
                "SELECT a.day, c.email FROM allocations a JOIN customers c ON c.id = a.customer_id "
                "WHERE a.provider = 'new'"
            )
        }
        klaviyo = {
            (int(day), str(email).lower())
            for day, email in conn.execute(
                "SELECT a.day, c.email FROM allocations a JOIN customers c ON c.id = a.customer_id "
                "WHERE a.provider = 'klaviyo'"
            )
        }
        emails = [
            (str(key), int(day), str(email).lower(), str(status), str(after))
            for key, day, email, status, after in conn.execute(
                "SELECT o.key, o.day, c.email, o.status, dep.status FROM outbox o "
                "JOIN customers c ON c.id = o.customer_id "
                "LEFT JOIN outbox dep ON dep.key = o.after_key WHERE o.kind = 'email'"
            )
        ]
    finally:
        conn.close()
    assert days == dict.fromkeys(VOLUMES, "completed"), story
    assert {day for day, _ in new} == set(VOLUMES), story
    assert {day: sum(1 for d, _ in new if d == day) for day in VOLUMES} == VOLUMES, story

    # The outbox holds one email per customer the new provider mails that day: no gap there.
    assert sorted((day, email) for _, day, email, _, _ in emails) == sorted(new), story
    # Each was held until its customer's exclusion-list row was confirmed.
    assert {after for *_, after in emails} == {"sent"}, story
    statuses = Counter(status for _, _, _, status, _ in emails)
    assert set(statuses) <= {"sent", "uncertain"}, (statuses, story)

    ids = received_ids(peers.received)
    duplicates = {mid: n for mid, n in ids.items() if n > 1}
    assert not duplicates, (f"{len(duplicates)} messages arrived twice", story)
    expected = {
        message_id_for(key, DOMAIN): (day, email, status) for key, day, email, status, _ in emails
    }
    strays = set(ids) - set(expected)
    assert not strays, (f"{len(strays)} messages the outbox never asked for", story)
    gaps = [key for key, (_, _, status) in expected.items() if status == "sent" and key not in ids]
    assert not gaps, (f"{len(gaps)} rows marked sent never arrived", story)
    # Nobody the day left with Klaviyo got that day's mail from the new provider.
    delivered = {(day, email) for mid, (day, email, _) in expected.items() if mid in ids}
    assert not delivered & klaviyo, story

    # Uncertain: killed between handing a message over and its 250 — reported, not re-sent (so
    # delivered at most once, checked above), and few: at most one per connection per kill.
    # Email goes out beside the Klaviyo drain (released page by page once read back), so a kill
    # the phase guess files under Klaviyo can also leave messages in flight: count every kill.
    uncertain = statuses.get("uncertain", 0)
    assert uncertain <= MAX_CONNECTIONS * len(killed), story
    status_run = subprocess.run(
        [sys.executable, "-m", "warmup", "status", str(plan), "--json"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert status_run.returncode == 0, status_run.stderr.decode()
    backlog = json.loads(status_run.stdout)["email_backlog"]
    assert (backlog["uncertain"], backlog["sent"]) == (uncertain, statuses["sent"]), story
    assert sum(1 for e in expected.values() if e[2] == "uncertain") == uncertain
    print(
        f"{len(ids)} messages received, {statuses['sent']} sent, {uncertain} uncertain "
        f"({sum(1 for m, e in expected.items() if e[2] == 'uncertain' and m in ids)} of them "
        "arrived)"
    )

    # Klaviyo's exclusion list is exactly the new provider's customers of the last day.
    last = max(VOLUMES)
    with KlaviyoClient(peers.klaviyo_url, peers.klaviyo_key, rate_scale=100) as client:
        list_id = find_list(client, EXCLUSIONS)
        assert list_id is not None, story
        members = {(m.email or "").lower() for m in iter_members(client, list_id)}
    assert members == {email for day, email in new if day == last}, story
    print(f"wall time {time.monotonic() - started:.1f} s")
