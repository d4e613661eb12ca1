"""Guardrails: the new provider's bounce, complaint and delivery figures per day, and the
decision before a day runs — proceed, hold, or stop and roll back.

Counting, per sending day (the new provider; Klaviyo guards its own reputation):
- ``sent``: warm-up emails handed to the provider (outbox rows ``sent`` or ``bounced``);
- ``hard_bounced``: customers whose mail was refused for good (outbox ``bounced``, or a
  ``hard_bounced`` event of that day, counted once per customer); ``soft_bounced`` likewise from
  ``soft_bounced`` events (a customer hard-bounced is not also counted soft);
- ``delivered`` = sent − hard − soft bounces; ``complained`` / ``unsubscribed``: customers with
  such an event of that day. An event's day is that of the mail it is about (see warmup.events).

Rates: hard bounces and delivered over ``sent``; complaints and unsubscribes over ``delivered``
(as Gmail's Postmaster spam rate is). A decision pools the latest days, newest first, until
they hold ``guardrails.min_sample`` sent emails; below that, rates do not count yet.

Decision (thresholds from the plan; defaults are the published lines):
- **rollback** when hard bounces reach 5% or complaints 0.3% (Gmail's ceiling): the day is
  refused (GuardrailRefusal, exit 3) until someone overrides it, and then runs with the volume
  of ``rollback_days`` days before the breaching day's;
- **hold** when hard bounces reach 2%, complaints 0.1% (Gmail's bulk-sender target, SES's review
  line) or delivered falls to 90% (SparkPost's and Braze's automatic warm-ups): the day repeats
  the volume of the last healthy day;
- **hold** too when ``guardrails.relative`` finds the new provider worse than Klaviyo for the
  same engagement tier by more than its lines (:mod:`warmup.guardrails.relative`);
- **proceed** otherwise: the ramp moves one step on from the last day's volume (which is the
  schedule's own day unless an earlier day was held or rolled back).
An override (``--override-guardrail "reason"``) lifts the refusal, never the volume.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from warmup.errors import GuardrailRefusal
from warmup.guardrails.relative import relative_check
from warmup.plan import LoadedPlan
from warmup.plan.models import Guardrails
from warmup.store import Store
from warmup.store import days as stored_days
from warmup.store import events as stored_events

Action = Literal["proceed", "hold", "rollback"]


@dataclass(frozen=True)
class DayFigures:
    day: int
    provider: str
    sent: int
    hard_bounced: int
    soft_bounced: int
    complained: int
    unsubscribed: int

    @property
    def delivered(self) -> int:
        return max(0, self.sent - self.hard_bounced - self.soft_bounced)

    @property
    def hard_bounce_rate(self) -> float:
        return self.hard_bounced / self.sent if self.sent else 0.0

    @property
    def delivered_rate(self) -> float:
        return self.delivered / self.sent if self.sent else 1.0

    @property
    def complaint_rate(self) -> float:
        return self.complained / self.delivered if self.delivered else 0.0

    @property
    def unsubscribe_rate(self) -> float:
        return self.unsubscribed / self.delivered if self.delivered else 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            delivered=self.delivered,
            hard_bounce_rate=self.hard_bounce_rate,
            delivered_rate=self.delivered_rate,
            complaint_rate=self.complaint_rate,
            unsubscribe_rate=self.unsubscribe_rate,
        )
        return data


def _pool(days: list[DayFigures]) -> DayFigures:
    return DayFigures(
        day=max(d.day for d in days),
        provider=days[0].provider,
        sent=sum(d.sent for d in days),
        hard_bounced=sum(d.hard_bounced for d in days),
        soft_bounced=sum(d.soft_bounced for d in days),
        complained=sum(d.complained for d in days),
        unsubscribed=sum(d.unsubscribed for d in days),
    )


def day_figures(store: Store, *, before: int | None = None) -> list[DayFigures]:
    """The new provider's figures of every day that sent mail (days < ``before`` if given)."""
    limit = before if before is not None else 2**31
    return [
        DayFigures(
            c.day,
            "new",
            c.sent,
            min(c.hard, c.sent),
            min(c.soft, c.sent),
            c.complained,
            c.unsubscribed,
        )
        for c in stored_events.day_counts(store.backend, before=limit)
    ]


@dataclass
class GuardrailDecision:
    action: Action
    # The schedule day whose new-provider volume this day uses.
    volume_day: int
    reasons: list[str] = field(default_factory=list)
    figures: list[DayFigures] = field(default_factory=list)
    window: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "volume_day": self.volume_day,
            "reasons": self.reasons,
            "window": self.window,
            "figures": [f.to_json() for f in self.figures],
        }

    def describe(self, day: int) -> str:
        head = {
            "proceed": f"day {day}: guardrails ok",
            "hold": f"day {day}: guardrails hold the ramp at day {self.volume_day}'s volume",
            "rollback": f"day {day}: guardrails stop the ramp and roll back to day "
            f"{self.volume_day}'s volume",
        }[self.action]
        return "\n".join([head, *(f"  {reason}" for reason in self.reasons)])


def _pct(rate: float) -> str:
    return f"{rate * 100:.2f}%".replace(".00%", "%")


def _breaches(f: DayFigures, g: Guardrails, level: Literal["hold", "rollback"]) -> list[str]:
    where = "rollback" if level == "rollback" else "hold"
    hard = g.rollback.hard_bounce_rate if level == "rollback" else g.hold.hard_bounce_rate
    complaint = g.rollback.complaint_rate if level == "rollback" else g.hold.complaint_rate
    found = []
    if f.sent and f.hard_bounce_rate >= hard:
        found.append(
            f"hard bounce rate {_pct(f.hard_bounce_rate)} ({f.hard_bounced} of "
            f"{f.sent} sent) reached the {where} line {_pct(hard)}"
        )
    if f.delivered and f.complaint_rate >= complaint:
        found.append(
            f"complaint rate {_pct(f.complaint_rate)} ({f.complained} of "
            f"{f.delivered} delivered) reached the {where} line {_pct(complaint)}"
        )
    if level == "hold" and f.sent and f.delivered_rate <= g.hold.delivered_rate_below:
        found.append(
            f"delivered rate {_pct(f.delivered_rate)} ({f.delivered} of {f.sent} "
            f"sent) fell to the hold line {_pct(g.hold.delivered_rate_below)}"
        )
    return found


def _effective_volume(store: Store) -> dict[int, int]:
    """Which schedule day's volume each day that ran used (its own unless held back)."""
    return stored_days.volume_days(store.backend)


def evaluate_guardrails(loaded: LoadedPlan, store: Store, day: int) -> GuardrailDecision:
    """The decision for ``day`` from the figures of the days before it (see module docstring)."""
    g = loaded.plan.guardrails
    figures = day_figures(store, before=day)
    ran = _effective_volume(store)
    earlier = [d for d in ran if d < day]
    # After a held or rolled-back day the ramp climbs back one step a day, not in one jump.
    last = max(earlier) if earlier else None
    step = day if last is None or ran[last] == last else min(day, ran[last] + 1)
    window: list[DayFigures] = []
    for f in reversed(figures):
        window.append(f)
        if sum(w.sent for w in window) >= g.min_sample:
            break
    if not window:
        return GuardrailDecision("proceed", step, ["no mail sent before this day"], figures)
    pooled = _pool(window)
    days = sorted(w.day for w in window)
    span = f"day {days[0]}" if len(days) == 1 else f"days {days[0]}–{days[-1]}"
    relative = relative_check(loaded, store, days)
    against = (relative.breaches, relative.notes) if relative else ([], [])
    if pooled.sent < g.min_sample:
        if against[0]:
            return _hold(figures, g, ran, step, days, [f"{span}: {r}" for r in against[0]])
        return GuardrailDecision(
            "proceed",
            step,
            [
                f"{span}: {pooled.sent} emails sent, below min_sample {g.min_sample}: rates do not "
                "count yet",
                *(f"{span}: {n}" for n in against[1]),
            ],
            figures,
            days,
        )
    rollback = _breaches(pooled, g, "rollback")
    if rollback:
        breach_volume = ran.get(days[-1], days[-1])
        target = max(1, breach_volume - g.rollback.rollback_days)
        return GuardrailDecision(
            "rollback", target, [f"{span}: {r}" for r in rollback], figures, days
        )
    hold = _breaches(pooled, g, "hold") + against[0]
    if hold:
        return _hold(figures, g, ran, step, days, [f"{span}: {r}" for r in hold])
    return GuardrailDecision(
        "proceed",
        step,
        [
            f"{span}: hard bounces {_pct(pooled.hard_bounce_rate)}, complaints "
            f"{_pct(pooled.complaint_rate)}, delivered {_pct(pooled.delivered_rate)} of "
            f"{pooled.sent} sent: within the lines",
            *(f"{span}: {n}" for n in against[1]),
        ],
        figures,
        days,
    )


def _hold(
    figures: list[DayFigures],
    g: Guardrails,
    ran: dict[int, int],
    step: int,
    days: list[int],
    reasons: list[str],
) -> GuardrailDecision:
    """Repeat the volume of the last healthy day before the pooled ``days``."""
    healthy = [f.day for f in figures if f.day < days[0] and not _breaches(f, g, "hold")]
    target = ran.get(healthy[-1], healthy[-1]) if healthy else 1
    return GuardrailDecision("hold", min(target, step), reasons, figures, days)


def check_guardrails(
    loaded: LoadedPlan, store: Store, day: int, *, override_reason: str | None = None
) -> GuardrailDecision:
    """What the engine calls before a day runs: the decision, or GuardrailRefusal for a
    rollback nobody has overridden. The caller records ``volume_day`` and the override."""
    decision = evaluate_guardrails(loaded, store, day)
    if decision.action == "rollback" and not (override_reason and override_reason.strip()):
        raise GuardrailRefusal(
            decision.describe(day),
            hint=f"find the cause (list quality, content, authentication), then run day {day} "
            'with --override-guardrail "what you fixed" to go on at day '
            f"{decision.volume_day}'s volume",
        )
    return decision
