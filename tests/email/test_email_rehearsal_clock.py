"""`warmup run --now T`: the rehearsal clock moves, so a 4xx retry falls due and the run ends."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from tests.email.email_fixtures import add_customers, add_email_rows, smtp_config, write_plan
from warmup.app.day import rehearsal_clock
from warmup.dispatch.email import RetryPolicy, drain_email
from warmup.email.sink import smtp_sink
from warmup.store import Store

RETRY = RetryPolicy(attempts=3, first_delay=0.2, wait_up_to=5)
T = datetime(2026, 12, 3, 9, 5, tzinfo=UTC)


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging: a frozen clock never lets the retry fall due."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"the drain was still waiting after {seconds} s")

    previous: Callable[..., object] | int | None = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_the_clock_starts_at_the_given_moment_and_moves() -> None:
    clock = rehearsal_clock(T)
    first = clock()
    assert abs((first - T).total_seconds()) < 1
    assert clock() >= first


def test_a_4xx_under_a_rehearsal_clock_is_retried_and_the_drain_ends(
    tmp_path: Path, store: Store
) -> None:
    ids = add_customers(store, 3)
    add_email_rows(store, 1, ids, exclusion=None)
    replies: dict[str, str | list[str]] = {"user1@example.com": ["421 4.7.0 try again later"]}
    with smtp_sink(replies=replies) as sink, deadline(20):
        loaded = write_plan(tmp_path, new=smtp_config(sink.port))
        report = drain_email(loaded, store, 1, retry=RETRY, clock=rehearsal_clock(T))
    assert (report.sent, report.failed) == (3, 0)
    assert sorted(sink.recipients()).count("user1@example.com") == 1
