"""End to end over real loopback servers: mail goes out through an SMTP server, the recipient's
one-click unsubscribe and a provider complaint reach a running `warmup serve`, the consent flow
puts them on the Klaviyo sandbox's unsubscribe list, and the next day allocates neither."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support.consent import KEY_ENV, add_customers, event, post_events, write_plan
from warmup.consent import serve_in_thread, unsubscribe_backlog
from warmup.dispatch.email import drain_email
from warmup.dispatch.klaviyo import drain_klaviyo
from warmup.email.sink import Sink, smtp_sink
from warmup.engine import run_day
from warmup.plan import LoadedPlan, load_plan
from warmup.providers.klaviyo import KlaviyoClient
from warmup.providers.klaviyo.lists import find_list
from warmup.sandbox import RunningSandbox, SandboxConfig
from warmup.sandbox import serve_in_thread as sandbox_in_thread
from warmup.store import Store, open_store

PRAGUE = ZoneInfo("Europe/Prague")


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSandbox]:
    with sandbox_in_thread(SandboxConfig(fast=True, seed=3)) as running:
        monkeypatch.setenv(KEY_ENV, running.api_key)
        yield running


@pytest.fixture
def sink() -> Iterator[Sink]:
    with smtp_sink() as running:
        yield running


def unsubscribed_in_klaviyo(sandbox: RunningSandbox) -> set[str]:
    with KlaviyoClient(sandbox.base_url, sandbox.api_key) as client:
        list_id = find_list(client, "Warmup unsubscribes")
    if list_id is None:
        return set()
    account = sandbox.app.account
    return {account.profiles[pid]["attributes"]["email"] for pid in account.members[list_id].seq_of}


def wait_for(check: object, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def send(loaded: LoadedPlan, store: Store, day: int, now: datetime) -> None:
    """dispatch_day's two steps, with the email dispatcher's clock at the rehearsal's time."""
    drain_klaviyo(loaded, store, day, now=now)
    drain_email(loaded, store, day, clock=lambda: now)


def token_of(message: object) -> str:
    header = str(message["List-Unsubscribe"])  # type: ignore[index]
    url = next(part.strip("<> ") for part in header.split(",") if "http" in part)
    return parse_qs(urlparse(url).query)["token"][0]


@pytest.mark.slow
def test_unsubscribe_and_complaint_reach_klaviyo_and_stop_allocation(
    tmp_path: Path, sandbox: RunningSandbox, sink: Sink
) -> None:
    loaded: LoadedPlan = write_plan(tmp_path, base_url=sandbox.base_url, smtp_port=sink.port)
    text = loaded.path.read_text().replace("tls: starttls", "tls: none")
    text = text.replace("{day: 1, new: 50,", "{day: 1, new: 8,").replace(
        "{day: 2, new: 50,", "{day: 2, new: 12,"
    )
    loaded.path.write_text(text)
    loaded = load_plan(loaded.path)
    store = open_store(loaded.store_path)
    ids = add_customers(store, [f"p{i:02d}@example.com" for i in range(20)])

    day1 = datetime(2026, 12, 1, 12, 0, tzinfo=PRAGUE)
    run_day(loaded, 1, now=day1)
    send(loaded, store, 1, day1)
    mailed = {m.rcpt_tos[0]: m.parsed() for m in sink.messages}
    assert len(mailed) == 8
    quitter, complainer = sorted(mailed)[:2]

    with serve_in_thread(loaded, retry_seconds=1) as service:
        started = time.monotonic()
        answer = httpx.post(
            f"{service.base_url}/unsubscribe",
            params={"token": token_of(mailed[quitter])},
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 200
        hook = post_events(service.base_url, [event("fbl-1", "complained", complainer)])
        assert hook.status_code == 200
        assert wait_for(lambda: {quitter, complainer} <= unsubscribed_in_klaviyo(sandbox)), (
            f"not in Klaviyo's unsubscribe list; flow error: {service.worker.last_error}"
        )
        latency = time.monotonic() - started
    assert latency < 20
    assert unsubscribe_backlog(store).count == 0
    withdrawn = dict(
        store.conn.execute(
            "SELECT c.email, s.status FROM consents s JOIN customers c ON c.id = s.customer_id "
            "WHERE s.status <> 'subscribed'"
        )
    )
    assert withdrawn == {quitter: "unsubscribed", complainer: "unsubscribed"}

    day2 = datetime(2026, 12, 2, 12, 0, tzinfo=PRAGUE)
    run_day(loaded, 2, now=day2)
    allocated = dict(
        store.conn.execute("SELECT customer_id, provider FROM allocations WHERE day = 2")
    )
    assert ids[quitter] not in allocated and ids[complainer] not in allocated
    assert sum(1 for p in allocated.values() if p == "new") == 12
    send(loaded, store, 2, day2)
    assert len(sink.messages) == 8 + 12
    assert sink.per_recipient[quitter] == 1 and sink.per_recipient[complainer] == 1
    store.close()
