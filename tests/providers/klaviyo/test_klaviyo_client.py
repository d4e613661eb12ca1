"""Client edges with httpx.MockTransport (the main paths run against the sandbox): Retry-After,
retries with backoff, errors, the limiter's rule with a hand-driven clock."""

from __future__ import annotations

import httpx
import pytest

import warmup.providers.klaviyo.client as client_module
from warmup.errors import InvalidInput, KlaviyoError, ProviderError
from warmup.providers.klaviyo import KlaviyoClient, RetryPolicy
from warmup.providers.klaviyo.endpoints import M, Tier
from warmup.providers.klaviyo.ratelimit import RateLimiter

KEY = "pk_" + "s" * 34


def scripted(
    answers: list[httpx.Response | Exception], seen: list[httpx.Request]
) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handle)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", recorded.append)
    return recorded


def throttled(seconds: str) -> httpx.Response:
    return httpx.Response(
        429,
        headers={"Retry-After": seconds},
        json={
            "errors": [
                {
                    "id": "x",
                    "status": 429,
                    "code": "throttled",
                    "title": "Request was throttled.",
                    "detail": f"Request was throttled. Expected available in {seconds} second(s).",
                }
            ]
        },
    )


def test_every_request_carries_key_revision_and_jsonapi_type(sleeps: list[float]) -> None:
    seen: list[httpx.Request] = []
    client = KlaviyoClient(
        "http://k.test", KEY, revision="2026-07-15", transport=scripted([httpx.Response(204)], seen)
    )
    client.call("POST", "/api/lists/L/relationships/profiles", json={"data": []})
    [request] = seen
    assert request.headers["Authorization"] == f"Klaviyo-API-Key {KEY}"
    assert request.headers["revision"] == "2026-07-15"
    assert request.headers["Content-Type"] == "application/vnd.api+json"
    assert KEY not in repr(client)


def test_429_waits_exactly_retry_after(sleeps: list[float]) -> None:
    seen: list[httpx.Request] = []
    client = KlaviyoClient(
        "http://k.test",
        KEY,
        transport=scripted([throttled("7"), throttled("0"), httpx.Response(204)], seen),
    )
    client.call("DELETE", "/api/lists/L/relationships/profiles", json={"data": []})
    assert sleeps == [7.0, 0.0]
    assert client.stats.throttled["remove_from_list"] == 2


def test_5xx_and_broken_connections_retry_with_capped_jittered_backoff(sleeps: list[float]) -> None:
    seen: list[httpx.Request] = []
    answers: list[httpx.Response | Exception] = [
        httpx.Response(503),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.Response(500),
        httpx.Response(200, json={"data": [], "links": {}}),
    ]
    policy = RetryPolicy(attempts=6, base_delay=0.5, max_delay=1.5)
    client = KlaviyoClient(
        "http://k.test", KEY, retry=policy, transport=scripted(answers, seen), seed=3
    )
    assert client.get("/api/lists") == {"data": [], "links": {}}
    assert len(sleeps) == 4
    assert all(0 <= s <= 1.5 for s in sleeps)
    assert len(set(sleeps)) == 4  # jitter: no two waits alike


def test_retries_are_bounded_and_the_error_names_the_request_only(sleeps: list[float]) -> None:
    seen: list[httpx.Request] = []
    client = KlaviyoClient(
        "http://k.test",
        KEY,
        retry=RetryPolicy(attempts=3),
        transport=scripted([httpx.ConnectError("x")] * 3, seen),
    )
    with pytest.raises(ProviderError) as caught:
        client.get("/api/lists")
    assert len(seen) == 3
    assert "GET /api/lists" in caught.value.message and KEY not in caught.value.render()


def test_4xx_is_not_retried_and_carries_klaviyos_error(sleeps: list[float]) -> None:
    seen: list[httpx.Request] = []
    body = {
        "errors": [
            {
                "id": "e",
                "status": 400,
                "code": "invalid",
                "title": "Invalid input.",
                "detail": "Invalid email address",
                "source": {"pointer": "/data/attributes/email"},
            }
        ]
    }
    client = KlaviyoClient(
        "http://k.test", KEY, transport=scripted([httpx.Response(400, json=body)], seen)
    )
    with pytest.raises(KlaviyoError) as caught:
        client.post("/api/profiles", {"data": {}})
    assert len(seen) == 1 and sleeps == []
    [detail] = caught.value.errors
    assert (detail.code, detail.pointer) == ("invalid", "/data/attributes/email")


def test_links_outside_the_base_url_are_refused() -> None:
    client = KlaviyoClient("http://k.test", KEY, transport=scripted([], []))
    with pytest.raises(ProviderError):
        client.get("http://elsewhere.test/api/lists/?page%5Bcursor%5D=x")


def test_missing_key_variable_is_invalid_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KLAVIYO_KEY", raising=False)
    with pytest.raises(InvalidInput) as caught:
        KlaviyoClient.from_env("http://k.test", "NO_SUCH_KLAVIYO_KEY")
    assert "NO_SUCH_KLAVIYO_KEY" in caught.value.render()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_limiter_admits_a_burst_then_waits_for_completed_requests() -> None:
    clock = Clock()
    limiter = RateLimiter(M, clock=clock)
    tickets = [limiter.acquire() for _ in range(10)]
    # The 11th must wait: all ten are in flight (Klaviyo may count them at any moment).
    assert limiter._wait_needed(clock.now) is None
    for ticket in tickets:
        limiter.release(ticket)
    clock.now = 100.4
    assert limiter._wait_needed(clock.now) == pytest.approx(0.6)
    clock.now = 101.0
    assert limiter._wait_needed(clock.now) == 0.0


def test_limiter_keeps_the_steady_window() -> None:
    clock = Clock()
    limiter = RateLimiter(Tier("T", 100, 5), clock=clock)
    for _ in range(5):
        limiter.release(limiter.acquire())
    clock.now = 130.0
    assert limiter._wait_needed(clock.now) == pytest.approx(30.0)


def test_limiter_share_scales_the_tier() -> None:
    assert RateLimiter(M, scale=0.5).limits[:2] == [(5, 1.0), (75, 60.0)]
