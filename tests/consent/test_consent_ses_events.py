"""SES events through the sandbox's SNS topic into `warmup serve`: a subscription confirmed,
signed notifications stored once each, forged or foreign ones refused."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.consent import add_customers, add_mail, write_plan
from warmup.consent import FlowReport, serve_in_thread
from warmup.consent.sns import trusted_url
from warmup.plan import LoadedPlan
from warmup.providers.base import OutgoingEmail
from warmup.providers.ses import SesProvider, SesSettings
from warmup.sandbox.ses import SesSandboxConfig
from warmup.sandbox.ses_server import RunningSes, serve_ses_in_thread
from warmup.store import Store, open_store

PEOPLE = ["ann@example.com", "bounce+bob@example.com", "complaint+cy@example.com"]
PEOPLE += ["soft+dan@example.com"]


class Recorder:
    def __init__(self) -> None:
        self.ran = threading.Event()

    def __call__(self, loaded: LoadedPlan, store: Store) -> FlowReport:
        self.ran.set()
        return FlowReport(0, 0)


@pytest.fixture
def ses() -> Iterator[RunningSes]:
    with serve_ses_in_thread(SesSandboxConfig(fast=True)) as running:
        yield running


def _plan(tmp_path: Path, trusted: str) -> LoadedPlan:
    extra = f"events:\n  sns:\n    trust_url_prefixes_for_tests: [{json.dumps(trusted)}]\n"
    loaded = write_plan(tmp_path, extra=extra)
    store = open_store(loaded.store_path)
    ids = add_customers(store, PEOPLE)
    add_mail(store, 2, ids.values())
    store.close()
    return loaded


def _send_to_everyone(ses: RunningSes) -> None:
    provider = SesProvider(
        SesSettings(
            region="us-east-1",
            access_key_id=ses.access_key_id,
            secret_access_key=ses.secret_access_key,
            endpoint_url=ses.base_url,
            configuration_set="warmup",
        )
    )
    session = provider.open_session()
    data = b"From: news@send.acme.example\r\nSubject: hi\r\n\r\nhello\r\n"
    for email in PEOPLE:
        message = OutgoingEmail("k", "news@send.acme.example", email, "<m@x>", data)
        session.send(message, lambda: True)


def _events(loaded: LoadedPlan) -> list[tuple[str, str, str, int]]:
    store = open_store(loaded.store_path)
    try:
        rows = store.conn.execute(
            "SELECT source, type, email, day FROM events ORDER BY email, type"
        ).fetchall()
    finally:
        store.close()
    return [tuple(r) for r in rows]


def test_ses_events_arrive_signed_and_are_stored_once(tmp_path: Path, ses: RunningSes) -> None:
    loaded = _plan(tmp_path, ses.base_url + "/")
    recorder = Recorder()
    with serve_in_thread(loaded, run=recorder) as service:
        ses.app.topic.subscribe(service.base_url + "/webhooks/ses")
        assert ses.app.topic.flush()
        assert ses.app.topic.confirmed
        _send_to_everyone(ses)
        assert ses.app.topic.flush()
        first = _events(loaded)
        ses.app.topic.redeliver()  # SNS retries: nothing new may be stored
        assert ses.app.topic.flush()
        assert _events(loaded) == first
        assert ses.app.topic.failures == 0
    assert first == [
        ("ses", "delivered", "ann@example.com", 2),
        ("ses", "hard_bounced", "bounce+bob@example.com", 2),
        ("ses", "complained", "complaint+cy@example.com", 2),
        ("ses", "delivered", "complaint+cy@example.com", 2),
        ("ses", "soft_bounced", "soft+dan@example.com", 2),
    ]


def test_forged_and_foreign_messages_are_refused(tmp_path: Path, ses: RunningSes) -> None:
    loaded = _plan(tmp_path, ses.base_url + "/")
    with serve_in_thread(loaded, run=Recorder()) as service:
        url = service.base_url + "/webhooks/ses"
        ses.app.topic.subscribe(url)
        assert ses.app.topic.flush()
        _send_to_everyone(ses)
        assert ses.app.topic.flush()
        before = _events(loaded)
        genuine = next(m for m in ses.app.topic.delivered if m["Type"] == "Notification")
        body = json.loads(genuine["Message"])
        body["delivery"]["recipients"] = ["ann@example.com"]
        body["mail"]["messageId"] = "forged-id"
        forged = {**genuine, "Message": json.dumps(body)}
        reply = httpx.post(url, content=json.dumps(forged))
        assert reply.status_code == 403
        assert "signature" in reply.json()["error"]
        foreign = {**genuine, "SigningCertURL": "https://evil.example/cert.pem"}
        assert httpx.post(url, content=json.dumps(foreign)).status_code == 403
        assert httpx.post(url, content=b"{not json").status_code == 400
        assert _events(loaded) == before


def test_without_the_test_setting_only_sns_hosts_are_trusted(
    tmp_path: Path, ses: RunningSes
) -> None:
    loaded = write_plan(tmp_path)
    assert loaded.plan.events.sns.trust_url_prefixes_for_tests == []
    store = open_store(loaded.store_path)
    store.close()
    with serve_in_thread(loaded, run=Recorder()) as service:
        ses.app.topic.subscribe(service.base_url + "/webhooks/ses")
        assert ses.app.topic.flush()
        assert not ses.app.topic.confirmed  # the sandbox's certificate URL was refused
    sns = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem"
    assert trusted_url(sns, (), certificate=True)
    assert not trusted_url(sns.replace("https", "http"), (), certificate=True)
    assert not trusted_url(
        "https://sns.eu-west-1.amazonaws.com.evil.example/x.pem", (), certificate=True
    )
    assert not trusted_url("https://sns.eu-west-1.amazonaws.com/x.txt", (), certificate=True)


def test_a_sandbox_started_before_serve_keeps_asking_until_confirmed(
    tmp_path: Path, ses: RunningSes
) -> None:
    import socket
    import time

    loaded = _plan(tmp_path, ses.base_url + "/")
    with socket.socket() as probe:  # a free port, where serve starts later
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    topic = ses.app.topic
    topic.confirm_backoff = (0.05, 0.2)
    heard: list[tuple[int, int]] = []
    released: list[int] = []
    topic.on_unconfirmed = lambda attempts, held: heard.append((attempts, held))
    topic.on_confirmed = released.append
    topic.subscribe(f"http://127.0.0.1:{port}/webhooks/ses")
    _send_to_everyone(ses)  # held: nobody has confirmed yet
    sent = len(heard)
    deadline = time.monotonic() + 30
    while len(heard) < sent + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    # still asking after the first delivery's own retries, and saying what waits
    assert len(heard) >= sent + 2 and not topic.confirmed
    assert heard[-1] == (len(heard), 5)
    with serve_in_thread(loaded, port=port, run=Recorder()):
        while not topic.confirmed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert topic.confirmed and released == [5]
        assert topic.flush()
        assert len(_events(loaded)) == 5


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-1.amazonaws.com:99999/x.pem",
        "https://sns.us-east-1.amazonaws.com:abc/x.pem",
        "https://[::1/x.pem",
    ],
)
def test_a_malformed_certificate_url_is_untrusted_not_an_error(url: str) -> None:
    # urlparse raises ValueError on these (port out of range, not a number, an open bracket);
    # warmup serve answered the forged message with a 500.
    assert not trusted_url(url, (), certificate=True)
    assert not trusted_url(url, (), certificate=False)


@pytest.mark.parametrize(
    "body",
    [
        {"eventType": "Bounce", "bounce": {"bounceType": "Permanent", "bouncedRecipients": ["a"]}},
        {"eventType": "Bounce", "bounce": [1]},
        {"eventType": "Delivery", "delivery": {"recipients": ["a@b.com"]}, "mail": [1]},
        {"eventType": "Subscription", "subscription": "x"},
    ],
)
def test_a_notification_of_another_shape_is_a_400(body: dict[str, object]) -> None:
    from warmup.consent.sns import ses_events
    from warmup.consent.webhooks import BadWebhook

    with pytest.raises(BadWebhook) as caught:
        ses_events({"Message": json.dumps(body), "MessageId": "m"})
    assert caught.value.status == 400


def test_bounces_without_a_feedback_id_keep_distinct_ids() -> None:
    # SES always sends feedbackId; without one, each bounce was stored as "None:<email>" and the
    # second bounce of an address (another mail) was taken for a replay of the first
    from warmup.consent.sns import ses_events

    def bounce(mail_id: str, sns_id: str) -> list[str]:
        body = {
            "eventType": "Bounce",
            "mail": {"messageId": mail_id},
            "bounce": {
                "bounceType": "Transient",
                "timestamp": "2026-11-20T10:00:00.000Z",
                "bouncedRecipients": [{"emailAddress": "ann@example.com"}],
            },
        }
        return [e.event_id for e in ses_events({"Message": json.dumps(body), "MessageId": sns_id})]

    first, second = bounce("mail-1", "sns-1"), bounce("mail-2", "sns-2")
    assert first == ["mail-1:bounce:ann@example.com"]
    assert second == ["mail-2:bounce:ann@example.com"]
    assert bounce("", "sns-3") == ["sns-3:bounce:ann@example.com"]
