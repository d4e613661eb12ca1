"""Plan checks that span sections: every group ``schedule.mailbox_caps`` and
``guardrails.groups`` name exists."""

from __future__ import annotations

import difflib

from warmup.errors import Issue
from warmup.mailboxes.cache import groups_of
from warmup.mailboxes.groups import OTHER
from warmup.plan.models import Plan
from warmup.plan.yamlpos import Positioned


def mailbox_issues(plan: Plan, positioned: Positioned) -> list[Issue]:
    known = [g.name for g in groups_of(plan)] + [OTHER]
    issues = []
    named = [(("schedule", "mailbox_caps"), name) for name in plan.schedule.mailbox_caps]
    named += [(("guardrails", "groups"), name) for name in plan.guardrails.groups]
    for section, name in named:
        if name in known:
            continue
        line, col = positioned.where((*section, name), key=True) or (None, None)
        close = difflib.get_close_matches(name, known, n=1)
        issues.append(
            Issue(
                positioned.file,
                line,
                col,
                f"mailbox group {name!r} is not defined",
                (f"did you mean {close[0]!r}? " if close else "")
                + f"use one of {', '.join(known)}, or define it under `mailboxes: groups:`",
            )
        )
    return issues
