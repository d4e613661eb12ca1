"""What one Klaviyo drain did: the counts ``warmup run`` and ``warmup sync`` print."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class KlaviyoReport:
    day: int
    lists: dict[str, str] = field(default_factory=dict)
    sent: int = 0
    already_members: int = 0
    on_hold: int = 0
    failed: int = 0
    removed: int = 0
    ids_resolved: int = 0
    requests: int = 0
    throttled: int = 0
    # Read back from Klaviyo before any row counted as sent: list pages read, and the calls
    # that joined unseen customers again by email.
    requests_readback: int = 0
    requests_repair: int = 0
    dead_ids: int = 0
    # Set when the day has not begun in the plan's timezone: no list was touched.
    come_back_at: str | None = None
    # failed rows of the day and earlier after this run, its own included (a second run of the
    # day leaves earlier failures alone: they are `warmup sync`'s)
    failed_outstanding: int = 0
    problems: list[str] = field(default_factory=list)
