"""The HTTP surface of `warmup serve` over real loopback HTTP: one-click unsubscribe, signed
webhooks, and every bad request answered 4xx with nothing changed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.consent import (
    LINK_SECRET,
    add_customers,
    add_mail,
    counts,
    event,
    post_events,
    write_plan,
)
from warmup.consent import FlowReport, serve_in_thread
from warmup.consent.server import RunningService
from warmup.email.tokens import make_token
from warmup.plan import LoadedPlan, load_plan
from warmup.store import Store, open_store


class Recorder:
    """A flow runner that records its passes (the real flow is tested end to end)."""

    def __init__(self) -> None:
        self.passes = 0
        self.ran = threading.Event()

    def __call__(self, loaded: LoadedPlan, store: Store) -> FlowReport:
        self.passes += 1
        self.ran.set()
        return FlowReport(0, 0)


@pytest.fixture
def plan(tmp_path: Path) -> LoadedPlan:
    loaded = write_plan(tmp_path)
    store = open_store(loaded.store_path)
    ids = add_customers(store, ["ann@example.com", "bob@example.com"])
    add_mail(store, 3, [ids["ann@example.com"]])
    store.close()
    return loaded


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def service(plan: LoadedPlan, recorder: Recorder) -> Iterator[RunningService]:
    with serve_in_thread(plan, run=recorder) as running:
        recorder.ran.wait(5)  # the start-up pass
        recorder.ran.clear()
        yield running


@pytest.fixture
def store(plan: LoadedPlan) -> Iterator[Store]:
    opened = open_store(plan.store_path)
    yield opened
    opened.close()


def token(email: str, *, plan: str = "acme-newsletter", secret: str = LINK_SECRET) -> str:
    return make_token(secret, plan, email)


def test_healthz(service: RunningService) -> None:
    answer = httpx.get(f"{service.base_url}/healthz")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"
    assert answer.json()["plan"] == "acme-newsletter"


def test_one_click_unsubscribe_stores_one_event_and_wakes_the_flow(
    service: RunningService, store: Store, recorder: Recorder
) -> None:
    url = f"{service.base_url}/unsubscribe?token={token('ann@example.com')}"
    for _ in range(2):  # a mail client retrying the one-click POST
        answer = httpx.post(
            url,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 200
        assert "Unsubscribed" in answer.text
    rows = store.conn.execute("SELECT source, type, email, customer_id, day FROM events").fetchall()
    assert rows == [
        (
            "unsubscribe-link",
            "unsubscribed",
            "ann@example.com",
            store.conn.execute(
                "SELECT id FROM customers WHERE email = 'ann@example.com'"
            ).fetchone()[0],
            3,
        )
    ]
    assert recorder.ran.wait(5)


def test_landing_page_shows_a_confirm_button(service: RunningService) -> None:
    good = httpx.get(f"{service.base_url}/unsubscribe?token={token('bob@example.com')}")
    assert good.status_code == 200
    assert '<form method="post"' in good.text and "<button" in good.text
    bad = httpx.get(f"{service.base_url}/unsubscribe?token=nonsense")
    assert bad.status_code == 400


@pytest.mark.parametrize(
    "forged",
    [
        token("ann@example.com", secret="someone-else's-secret"),
        token("ann@example.com", plan="another-plan"),
        token("ann@example.com")[:-2] + "AA",
        token("bob@example.com").split(".")[0] + "." + token("ann@example.com").split(".")[1],
        "",
        "not-a-token",
        "%%%.%%%",
    ],
)
def test_forged_tokens_change_nothing(service: RunningService, store: Store, forged: str) -> None:
    before = counts(store)
    answer = httpx.post(
        f"{service.base_url}/unsubscribe",
        params={"token": forged},
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 400
    assert counts(store) == before


def test_webhook_events_are_stored_once(
    service: RunningService, store: Store, recorder: Recorder
) -> None:
    batch = [
        event("e1", "delivered", "ann@example.com"),
        event("e2", "complained", "Ann@Example.com", data={"feedback": "abuse"}),
        event(3, "hard_bounced", "nobody@example.com"),
    ]
    first = post_events(service.base_url, batch)
    assert first.status_code == 200
    assert first.json() == {"stored": 3, "duplicates": 0, "unknown_customers": 1}
    assert recorder.ran.wait(5)
    before = counts(store)
    replay = post_events(service.base_url, batch)
    assert replay.status_code == 409
    assert "already received" in replay.json()["error"]
    assert counts(store) == before
    partly = post_events(service.base_url, [*batch, event("e4", "soft_bounced", "bob@example.com")])
    assert partly.status_code == 200
    assert partly.json()["stored"] == 1 and partly.json()["duplicates"] == 3
    stored = store.conn.execute(
        "SELECT event_id, type, email, day, payload FROM events WHERE event_id = 'e2'"
    ).fetchone()
    assert stored[:4] == ("e2", "complained", "ann@example.com", 3)
    assert json.loads(stored[4]) == {"feedback": "abuse"}


@pytest.mark.parametrize(
    "body, headers, status",
    [
        (b'{"events": [', None, 400),
        (b'{"events": []}', None, 400),
        (
            b'{"events": [{"id": "x", "type": "opened", "email": "ann@example.com", '
            b'"occurred_at": "2026-12-01T10:00:00Z"}]}',
            None,
            400,
        ),
        (
            b'{"events": [{"id": "x", "type": "delivered", "email": "ann@example.com", '
            b'"occurred_at": "yesterday"}]}',
            None,
            400,
        ),
        (
            b'{"events": [{"id": "x", "type": "delivered", "email": "ann@example.com", '
            b'"occurred_at": "2026-12-01T10:00:00Z", "surprise": 1}]}',
            None,
            400,
        ),
        (b"[1, 2]", None, 400),
        (b"\xff\xfe", None, 400),
        (b'{"events": []}', {"X-Warmup-Signature": "sha256=" + "0" * 64}, 401),
        (b'{"events": []}', {"X-Warmup-Signature": ""}, 401),
    ],
)
def test_bad_webhooks_change_nothing(
    service: RunningService, store: Store, body: bytes, headers: dict[str, str] | None, status: int
) -> None:
    before = counts(store)
    if headers is None:
        answer = post_events(service.base_url, body)
    else:
        answer = httpx.post(f"{service.base_url}/webhooks/events", content=body, headers=headers)
    assert answer.status_code == status
    assert answer.json()["error"]
    assert counts(store) == before


def test_wrong_secret_is_refused(service: RunningService, store: Store) -> None:
    before = counts(store)
    answer = post_events(
        service.base_url, [event("e9", "unsubscribed", "ann@example.com")], secret="guessed"
    )
    assert answer.status_code == 401
    assert counts(store) == before


def test_oversized_bodies_are_refused(service: RunningService, store: Store) -> None:
    before = counts(store)
    many = [
        event(f"e{i}", "delivered", "ann@example.com", data={"pad": "x" * 1200}) for i in range(900)
    ]
    answer = post_events(service.base_url, many)
    assert answer.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        for _ in range(300):
            yield b"x" * 4096

    streamed = httpx.post(f"{service.base_url}/webhooks/events", content=chunks())
    assert streamed.status_code == 413
    form = httpx.post(
        f"{service.base_url}/unsubscribe?token={token('ann@example.com')}", content=b"x" * 10_000
    )
    assert form.status_code == 413
    assert counts(store) == before


def test_serve_without_the_webhook_secret_serves_links_and_refuses_webhooks(
    plan: LoadedPlan, monkeypatch: pytest.MonkeyPatch, recorder: Recorder
) -> None:
    monkeypatch.delenv("WARMUP_WEBHOOK_SECRET")
    with serve_in_thread(plan, run=recorder) as running:
        hook = post_events(running.base_url, [event("e1", "hard_bounced", "ann@example.com")])
        assert hook.status_code == 503 and "WARMUP_WEBHOOK_SECRET" in hook.json()["error"]
        link = httpx.post(f"{running.base_url}/unsubscribe?token={token('bob@example.com')}")
        assert link.status_code == 200


def test_the_confirm_page_cannot_be_framed_sniffed_or_load_anything(
    service: RunningService,
) -> None:
    for url in (f"/unsubscribe?token={token('bob@example.com')}", "/unsubscribe?token=bad"):
        page = httpx.get(service.base_url + url)
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert page.headers["x-content-type-options"] == "nosniff"


def test_opaque_tokens_unsubscribe_their_customer(
    service: RunningService, store: Store, plan: LoadedPlan
) -> None:
    cid = store.conn.execute("SELECT id FROM customers WHERE email = 'bob@example.com'").fetchone()
    opaque = make_token(LINK_SECRET, "acme-newsletter", "bob@example.com", int(cid[0]))
    assert "bob" not in opaque
    answer = httpx.post(f"{service.base_url}/unsubscribe?token={opaque}")
    assert answer.status_code == 200
    emails = [e for (e,) in store.conn.execute("SELECT email FROM events")]
    assert emails == ["bob@example.com"]


PUBLIC_CONSTANT = b"warmup-rehearsal-secret-not-for-production"  # what older code signed with


def test_a_rehearsal_serve_refuses_tokens_forged_with_the_old_public_constant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recorder: Recorder
) -> None:
    monkeypatch.delenv("WARMUP_UNSUBSCRIBE_SECRET")
    write_plan(tmp_path)
    rehearsal = _file_provider_plan(tmp_path)
    store = open_store(rehearsal.store_path)
    add_customers(store, ["ann@example.com"])
    store.close()
    with serve_in_thread(rehearsal, run=recorder) as running:
        forged = make_token(PUBLIC_CONSTANT, "acme-newsletter", "ann@example.com")
        answer = httpx.post(f"{running.base_url}/unsubscribe?token={forged}")
        assert answer.status_code == 400
    store = open_store(rehearsal.store_path)
    try:
        assert counts(store)[0] == 0
    finally:
        store.close()


def _file_provider_plan(tmp: Path) -> LoadedPlan:
    text = (tmp / "plan.yaml").read_text()
    start = text.index("  new:\n")
    end = text.index("  klaviyo:\n")
    path = tmp / "rehearsal.yaml"
    path.write_text(
        text[:start] + "  new: {kind: file, directory: eml}\n" + text[end:], encoding="utf-8"
    )
    return load_plan(path)


@pytest.mark.parametrize("depth", [900, 100_000])
def test_a_signed_webhook_nested_deeply_is_a_4xx(
    service: RunningService, store: Store, depth: int
) -> None:
    nested = b'{"events": [{"id": "n1", "type": "delivered", "email": "ann@example.com", '
    nested += b'"occurred_at": "2026-12-01T10:00:00Z", "data": '
    nested += b'{"a": ' * depth + b"1" + b"}" * depth + b"}]}"
    before = counts(store)
    answer = post_events(service.base_url, nested)
    assert 400 <= answer.status_code < 500, answer.text
    assert counts(store) == before


def test_random_forged_opaque_tokens_are_all_a_4xx(service: RunningService, store: Store) -> None:
    # Random 24-byte bodies unmask to random 64-bit ids: about half lie beyond what SQLite
    # holds, which once reached the lookup and answered 500.
    import base64
    import random

    rng = random.Random(12)
    before = counts(store)
    with httpx.Client(base_url=service.base_url) as client:
        for _ in range(60):
            raw = bytes(rng.getrandbits(8) for _ in range(24))
            forged = "u" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
            answer = client.post("/unsubscribe", params={"token": forged})
            assert answer.status_code == 400, (forged, answer.text)
            assert client.get("/unsubscribe", params={"token": forged}).status_code == 400
    assert counts(store) == before


def test_a_signed_webhook_with_a_huge_number_is_a_400(
    service: RunningService, store: Store
) -> None:
    body = b'{"events": [{"id": ' + b"9" * 5000 + b', "type": "delivered", '
    body += b'"email": "ann@example.com", "occurred_at": "2026-12-01T10:00:00Z"}]}'
    before = counts(store)
    answer = post_events(service.base_url, body)
    assert answer.status_code == 400, answer.text
    assert counts(store) == before
