"""Each SES sandbox signs with a certificate of its own at a URL of its own, as SNS names its
certificates by hash (``SimpleNotificationService-<hash>.pem``): a `warmup serve` that keeps the
certificate of a sandbox it verified before must still verify a restarted sandbox on the same
port. With one fixed path, serve kept the first key and refused every message of the next
sandbox (403), so its SubscriptionConfirmation never verified until serve was restarted."""

from __future__ import annotations

import httpx

from warmup.consent.sns import SnsVerifier
from warmup.sandbox.ses import SesSandboxConfig
from warmup.sandbox.ses_server import serve_ses_in_thread
from warmup.sandbox.sns import Topic

BASE = "http://127.0.0.1:8711"


def test_a_restarted_sandbox_on_the_same_port_is_verified() -> None:
    first, second = Topic(BASE), Topic(BASE)
    serving = {"topic": first}

    def fetch(url: str) -> bytes:
        topic = serving["topic"]
        if url != topic.certificate_url:
            raise httpx.HTTPStatusError("404", request=httpx.Request("GET", url), response=None)  # type: ignore[arg-type]
        return topic.signer.certificate_pem

    verifier = SnsVerifier([BASE + "/"], fetch=fetch)
    verifier.parse(httpx.Response(200, json=first._envelope("Notification", "{}")).content)
    serving["topic"] = second
    verifier.parse(httpx.Response(200, json=second._envelope("Notification", "{}")).content)
    assert first.certificate_url != second.certificate_url


def test_the_ses_sandbox_serves_its_topics_certificate() -> None:
    with serve_ses_in_thread(SesSandboxConfig(fast=True)) as running:
        topic = running.app.topic
        assert "/sns/SimpleNotificationService-" in topic.certificate_url
        reply = httpx.get(topic.certificate_url)
    assert reply.status_code == 200
    assert reply.content == topic.signer.certificate_pem
