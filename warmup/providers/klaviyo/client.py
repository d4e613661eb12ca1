"""An httpx client for Klaviyo's REST API: auth, pinned revision, limits, retries, errors.

Every call goes through the endpoint's rate limiter; a 429 waits exactly ``Retry-After``
seconds; 5xx, timeouts and broken connections are retried with capped exponential backoff and
full jitter. The API key lives only in the outgoing ``Authorization`` header: it is never
logged, stored or put into an exception (errors name ``METHOD path`` only).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from warmup.errors import (
    InvalidInput,
    KlaviyoError,
    KlaviyoErrorDetail,
    ProviderError,
    RateLimited,
)
from warmup.providers.klaviyo.endpoints import REVISION as DEFAULT_REVISION
from warmup.providers.klaviyo.endpoints import Endpoint, endpoint_for
from warmup.providers.klaviyo.ratelimit import RateLimiter

MEDIA_TYPE = "application/vnd.api+json"
USER_AGENT = "warmup-klaviyo/0.1"


@dataclass
class RetryPolicy:
    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_throttled: int = 30
    timeout: float = 30.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


@dataclass
class Stats:
    """Requests per endpoint, and what went wrong: the benchmark and ``sync`` report these."""

    requests: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)
    retried: Counter[str] = field(default_factory=Counter)

    def total(self) -> int:
        return sum(self.requests.values())


class KlaviyoClient:
    """One account's connection. Thread-safe: workers share it and its limiters."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        revision: str = DEFAULT_REVISION,
        rate_share: float = 1.0,
        rate_scale: float = 1.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        seed: int | None = None,
        workers: int = 4,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.revision = revision
        self.retry = retry or RetryPolicy()
        self.scale = rate_share
        # rate_scale > 1 talks to a ``--fast`` sandbox: same counts, shorter windows.
        self.time_scale = rate_scale
        self.stats = Stats()
        # Threads for independent batch calls; the per-endpoint limiters are shared by all.
        self.workers = workers
        self._rng = random.Random(seed)
        self._limiters: dict[str, RateLimiter] = {}
        self._lock = threading.Lock()
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=self.retry.timeout,
            headers={
                "Authorization": f"Klaviyo-API-Key {api_key}",
                "revision": revision,
                "Accept": MEDIA_TYPE,
                "Content-Type": MEDIA_TYPE,
                "User-Agent": USER_AGENT,
            },
        )

    @classmethod
    def from_env(
        cls,
        base_url: str,
        api_key_env: str,
        *,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> KlaviyoClient:
        """A client keyed from the variable ``api_key_env`` of ``env`` (the process
        environment when None)."""
        key = (os.environ if env is None else env).get(api_key_env)
        if not key:
            raise InvalidInput(
                f"environment variable {api_key_env} is not set",
                hint=f"export {api_key_env}=<your Klaviyo private API key>",
            )
        return cls(base_url, key, **kwargs)

    def __enter__(self) -> KlaviyoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"KlaviyoClient({self.base_url!r}, revision={self.revision!r})"

    def limiter(self, endpoint: Endpoint) -> RateLimiter:
        with self._lock:
            if endpoint.name not in self._limiters:
                self._limiters[endpoint.name] = RateLimiter(
                    endpoint.tier, scale=self.scale, time_scale=self.time_scale
                )
            return self._limiters[endpoint.name]

    def _count(self, counter: Counter[str], name: str) -> None:
        with self._lock:
            counter[name] += 1

    def idle(self, *names: str) -> None:
        """Wait until the named endpoints' (default: all) rate windows are empty."""
        for name, limiter in list(self._limiters.items()):
            if not names or name in names:
                limiter.idle()

    def call(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        """One API call with limits and retries; returns the 2xx response or raises.

        ``idempotent=False`` (creating a list) gives up at the first 5xx or broken connection
        instead of retrying blindly: the caller looks again before it repeats the call."""
        path = urlsplit(url).path if url.startswith("http") else url
        if url.startswith("http") and not url.startswith(self.base_url):
            raise ProviderError(f"refusing to follow a link outside {self.base_url}: {path}")
        endpoint = endpoint_for(method, path)
        if endpoint is None:
            raise ProviderError(f"{method} {path} is not a Klaviyo endpoint warmup knows")
        limiter = self.limiter(endpoint)
        where = f"{method} {path}"
        failures = throttles = 0
        while True:
            ticket = limiter.acquire()
            self._count(self.stats.requests, endpoint.name)
            try:
                response = self._http.request(method, url, json=json, params=params)
            except httpx.TransportError as exc:
                limiter.release(ticket)
                failures += 1
                if failures >= self.retry.attempts or not idempotent:
                    raise ProviderError(
                        f"{where}: {type(exc).__name__} after {failures} attempts",
                        hint="check the network and base_url, then run `warmup sync PLAN` again",
                    ) from None
                self._count(self.stats.retried, endpoint.name)
                time.sleep(self.retry.backoff(failures, self._rng))
                continue
            limiter.release(ticket)
            status = response.status_code
            if status == 429:
                throttles += 1
                self._count(self.stats.throttled, endpoint.name)
                retry_after = _retry_after(response)
                if throttles > self.retry.max_throttled:
                    raise _error(response, where)
                time.sleep(retry_after)
                continue
            if status >= 500:
                failures += 1
                if failures >= self.retry.attempts or not idempotent:
                    raise _error(response, where)
                self._count(self.stats.retried, endpoint.name)
                time.sleep(self.retry.backoff(failures, self._rng))
                continue
            if status >= 400:
                raise _error(response, where)
            return response

    def get(self, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        document: dict[str, Any] = self.call("GET", url, params=params).json()
        return document

    def post(self, url: str, body: Any) -> httpx.Response:
        return self.call("POST", url, json=body)


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(int(response.headers.get("Retry-After", "1"))))
    except ValueError:
        return 1.0


def _error(response: httpx.Response, where: str) -> KlaviyoError:
    details: list[KlaviyoErrorDetail] = []
    try:
        for item in response.json().get("errors", []):
            details.append(
                KlaviyoErrorDetail(
                    status=int(item.get("status", response.status_code)),
                    code=str(item.get("code", "")),
                    title=str(item.get("title", "")),
                    detail=str(item.get("detail", "")),
                    pointer=(item.get("source") or {}).get("pointer"),
                    meta=item.get("meta") or {},
                )
            )
    except (ValueError, AttributeError):
        pass  # Cloudflare answers some 403s with HTML: keep the status alone
    first = details[0].detail if details else response.reason_phrase
    hint = None
    if response.status_code == 401:
        hint = "check the API key in the plan's api_key_env variable"
    elif response.status_code == 403:
        hint = "the API key lacks a scope this call needs (lists, profiles, subscriptions: write)"
    if response.status_code == 429:
        return RateLimited(
            f"{where}: {response.status_code} {first}",
            request=where,
            retry_after=_retry_after(response),
            errors=details,
        )
    return KlaviyoError(
        f"{where}: {response.status_code} {first}",
        status=response.status_code,
        request=where,
        errors=details,
        hint=hint,
    )
