from __future__ import annotations

import pytest

from warmup.email import pacing
from warmup.email.pacing import FLOOR, Pacer


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


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_halved_once_per_burst_then_climbs_back() -> None:
    clock = Clock()
    pacer = Pacer(40, clock=clock)
    assert pacer.rate == 40
    assert pacer.slow_down()
    assert pacer.rate == 20
    clock.now += 0.5
    assert not pacer.slow_down()  # the same burst's other throttled answers
    assert pacer.rate == 20
    clock.now += 1.0
    assert pacer.slow_down()  # still throttled: halved again
    assert pacer.rate == 10
    clock.now += 3.0  # 2 s quiet, then 10% of the full rate back per second
    assert pacer.rate == pytest.approx(14)
    clock.now += 60
    assert pacer.rate == 40
    assert pacer.slowest == 10


def test_never_below_the_floor_and_unpaced_stays_unpaced() -> None:
    clock = Clock()
    pacer = Pacer(32, clock=clock)
    for _ in range(12):
        clock.now += 1.0
        pacer.slow_down()
    assert pacer.rate == pacer.slowest == 32 * FLOOR
    free = Pacer(None, clock=clock)
    assert not free.slow_down() and free.rate == 0
