"""What a day's run (or dry run) reports, as text and as one JSON document.

JSON schema of ``DayResult.to_json()`` (key names are stable; add keys, never rename)::

    {
      "plan": "acme-newsletter",          # plan name
      "day": 3,                           # sending day number
      "date": "2026-12-03",               # its calendar date (plan time zone)
      "dry_run": false,
      "status": "completed" | "waiting",  # waiting: customers are parked, see due_at
      "due_at": "2026-12-03T09:00:00+00:00" | null,   # when to run again (UTC)
      "already_completed": false,         # the day had completed before: nothing new was done
      "funnel": [                         # one entry per scenario node, in file order
        {"id": "7", "type": "condition", "title": "...", "in": 1000,
         "out": {"yes": 950},             # customers that left by each edge
         "ended": {"no": 50},             # walks that ended on a missing edge
         "parked": 0, "due_at": null}     # customers waiting at the node, and until when
      ],
      "allocation": {"volume": "10%" | 5000 | "all", "eligible": 950, "limit": 95,
                     "new": 95, "klaviyo": 855,
                     "groups": [{"group": "gmail", "eligible": 400, "cap": 38, "new": 38,
                                 "klaviyo": 362, "held": null | "why"}]   # with mailbox groups
                    } | null,   # null: the allocation has not run
      "list_changes": {"list": "exclusion", "previous_day": 2 | null,
                       "added": 45, "removed": 0} | null,
      "samples": [{"rank": 1, "email": "...", "template": "day-03", "subject": "..."}],
      "webhook": {"node": "225", "template": "klaviyo/...", "profiles": 3,
                  "body": "<rendered request body>"} | null,
      "outbox": {"225": 95, "email": 95},  # rows this run wrote, per node (empty in a dry run)
      "notes": ["..."],
      "klaviyo_work": {"requests": 22, "seconds": 187.0, "from": "…", "ends": "…",
                       "send_at": "…", "before_send": true,
                       "work": [{"what", "endpoint", "tier", "requests", "seconds"}],
                       "notes": ["..."]} | null   # warmup.engagement.dry_run
    }
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from warmup.engine.funnel import NodeCount
from warmup.mailboxes.allocation import render_groups


@dataclass
class DayResult:
    plan: str
    day: int
    date: str
    dry_run: bool
    status: str = "completed"
    due_at: str | None = None
    already_completed: bool = False
    funnel: list[NodeCount] = field(default_factory=list)
    tree: str = ""
    allocation: dict[str, Any] | None = None
    list_changes: dict[str, Any] | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)
    webhook: dict[str, Any] | None = None
    outbox: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    klaviyo_work: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "day": self.day,
            "date": self.date,
            "dry_run": self.dry_run,
            "status": self.status,
            "due_at": self.due_at,
            "already_completed": self.already_completed,
            "funnel": [node.to_json() for node in self.funnel],
            "allocation": self.allocation,
            "list_changes": self.list_changes,
            "samples": self.samples,
            "webhook": self.webhook,
            "outbox": self.outbox,
            "notes": self.notes,
            "klaviyo_work": self.klaviyo_work,
        }

    def render(self) -> str:
        head = "dry run of" if self.dry_run else "ran"
        lines = [f"{head} {self.plan} day {self.day} ({self.date}): {self.status}"]
        if self.tree:
            lines += ["", self.tree]
        if self.allocation is not None:
            a = self.allocation
            lines += [
                "",
                f"allocation: new provider {a['new']:,} of limit {a['limit']:,} "
                f"(schedule: {a['volume']}), eligible {a['eligible']:,}, Klaviyo "
                f"{a['klaviyo']:,}",
                *render_groups(a.get("groups")),
            ]
        if self.list_changes is not None:
            c = self.list_changes
            since = f"day {c['previous_day']}" if c["previous_day"] else "empty list"
            lines.append(f"Klaviyo exclusion list: +{c['added']:,} −{c['removed']:,} (vs {since})")
            if "read_back" in c:
                lines.append(
                    f"  read back before sending: {c['read_back']['requests']:,} requests, "
                    f"about {c['read_back']['seconds']:,.0f} s at Klaviyo's L tier"
                )
        if self.outbox:
            lines.append(
                "outbox: " + ", ".join(f"#{node} +{count:,}" for node, count in self.outbox.items())
            )
        if self.samples:
            lines += ["", "sample recipients:"]
            for s in self.samples:
                subject = f'  {s["template"]}  "{s["subject"]}"' if "subject" in s else ""
                lines.append(f"  rank {s['rank']:,}  {s['email']}{subject}")
        if self.webhook is not None:
            w = self.webhook
            lines += [
                "",
                f"webhook #{w['node']} body ({w['profiles']} sample profiles):",
                "  " + w["body"].strip(),
            ]
        for note in (self.klaviyo_work or {}).get("notes", []):
            # a real run's text names only what needs doing; the dry run shows the estimate
            if self.dry_run or note.startswith("WARNING"):
                lines.append(f"note: {note}")
        for note in self.notes:
            lines.append(f"note: {note}")
        return "\n".join(lines)
