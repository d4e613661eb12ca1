from __future__ import annotations

import pytest

from warmup.email import pacing
from warmup.email.pacing import Pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_slots_are_evenly_spaced_without_a_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(pacing.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(pacing.time, "sleep", clock.sleep)
    pacer = Pacer(10)
    clock.now += 60  # a long idle spell earns no burst
    start = clock.now
    for _ in range(21):
        pacer.wait()
    assert clock.now - start == pytest.approx(2.0)
    assert all(s == pytest.approx(0.1) for s in clock.slept)


def test_no_rate_means_no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(pacing.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(pacing.time, "sleep", clock.sleep)
    pacer = Pacer(None)
    for _ in range(100):
        pacer.wait()
    assert clock.slept == []
