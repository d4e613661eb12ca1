"""A plan with mailbox groups over the consent tests' example plan, and its customers."""

from __future__ import annotations

from pathlib import Path

from tests.support.consent import write_plan
from warmup.plan import LoadedPlan, load_plan

RAMP = [10 * d for d in range(1, 15)]


def plan_text(tmp: Path, caps: str, *, mailboxes: str = "", volumes: dict[int, int]) -> Path:
    loaded = write_plan(tmp)
    text = loaded.path.read_text()
    for day, volume in volumes.items():
        start = text.index(f"{{day: {day}, new: ")
        end = text.index(",", text.index("new: ", start))
        text = text[:start] + f"{{day: {day}, new: {volume}" + text[end:]
    text = text.replace("\nguardrails:", f"  mailbox_caps:\n{caps}\nguardrails:", 1)
    loaded.path.write_text(text + mailboxes)
    return loaded.path


def mailbox_plan(
    tmp: Path,
    *,
    volumes: dict[int, int],
    guardrails: tuple[int, float] = (200, 0.02),
) -> LoadedPlan:
    """gmail capped at 40% of each day's limit, microsoft at 10, 20, 30… a day; no DNS."""
    path = plan_text(
        tmp,
        f'    gmail: "40%"\n    microsoft: {RAMP}\n',
        mailboxes="mailboxes: {resolve_mx: false}\n",
        volumes=volumes,
    )
    sample, hard = guardrails
    text = path.read_text().replace("min_sample: 200", f"min_sample: {sample}")
    text = text.replace("hold: {hard_bounce_rate: 0.02", f"hold: {{hard_bounce_rate: {hard}")
    text = text.replace("delivered_rate_below: 0.90", f"delivered_rate_below: {1 - 2 * hard:.2f}")
    # the day's own rollback out of the way: these tests are about a group's hold
    path.write_text(
        text.replace("rollback: {hard_bounce_rate: 0.05", "rollback: {hard_bounce_rate: 0.5")
    )
    return load_plan(path)


def group_of_test_address(email: str) -> str:
    """The test's own answer (not the code under test's) for its addresses."""
    domain = email.rpartition("@")[2]
    return {"gmail.com": "gmail", "outlook.com": "microsoft"}.get(domain, "other")
