"""Webhook, email and consent_reject nodes as durable actions, written set-at-a-time.

Each action is one ``INSERT OR IGNORE`` into ``outbox`` keyed ``plan:day:node:customer``, so
writing it again after a crash adds nothing. The rows come from the day's frozen ``journeys``:
only customers whose path reaches the node by now, and — for email — only customers allocated to
the new provider today whose consent and address still allow mail at the moment of writing.

Outbox contract (dispatchers rely on it):
- webhook: kind='webhook', provider='klaviyo', payload ``{"list", "template", "batch_size"}``
  (the node's, alike for every row of a day: the dispatcher reads the profile from
  ``customers`` when it sends; event-flow rows also copy the profile fields);
- email: kind='email', provider='new', payload ``{"template": "day-03"}`` (the address is
  read from ``customers`` when sent),
  ``after_key`` = the same customer's exclusion-list webhook row of the day (when the path has
  one), ``not_before`` = when the customer reached the node if that was after midnight.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from warmup.engine.consent import reject_consent
from warmup.engine.context import DayContext
from warmup.engine.journeys import journeys_on
from warmup.engine.paths import Path
from warmup.engine.predicates import SAFE
from warmup.engine.walk import FlowSql, Timeline, as_utc_iso
from warmup.plan.scenario import ConsentRejectNode, EmailNode, WebhookNode

log = logging.getLogger("warmup.engine")

PROFILE_FIELDS = ("email", "klaviyo_id", "phone", "external_id", "first_name", "last_name")


@dataclass(frozen=True)
class Step:
    node_id: str
    not_before: str | None
    after_node: str | None


def email_template(ctx: DayContext, node: EmailNode) -> str:
    return (ctx.template or "") if node.template == "day" else node.template


def due_steps(
    ctx: DayContext, flow: FlowSql, timeline: Timeline, paths: list[Path]
) -> dict[Step, list[Path]]:
    """Action nodes reached by now, grouped by what their SQL needs."""
    steps: dict[Step, list[Path]] = defaultdict(list)
    for path in paths:
        times = timeline.times(path)
        exclusion: str | None = None
        for index, node_id in enumerate(path.nodes):
            node = flow.nodes[node_id]
            arrive = times[index][0]
            if not ctx.reached(arrive):
                break
            if isinstance(node, WebhookNode) and node.list == "exclusion":
                exclusion = node_id
            if isinstance(node, WebhookNode | EmailNode | ConsentRejectNode):
                not_before = as_utc_iso(arrive) if arrive > ctx.start else None
                after = exclusion if isinstance(node, EmailNode) else None
                steps[Step(node_id, not_before, after)].append(path)
            if not ctx.reached(times[index][1]):
                break
    return steps


def write_actions(
    ctx: DayContext, flow: FlowSql, timeline: Timeline, paths: list[Path], now: str
) -> dict[str, int]:
    """Write every due action; returns rows newly written per node."""
    written: dict[str, int] = defaultdict(int)
    for step, step_paths in sorted(
        due_steps(ctx, flow, timeline, paths).items(),
        key=lambda item: (item[0].node_id, item[0].not_before or ""),
    ):
        node = flow.nodes[step.node_id]
        where, params = journeys_on(ctx, step_paths)
        if isinstance(node, WebhookNode):
            written[node.id] += _webhook(ctx, node, step, where, params, now)
        elif isinstance(node, EmailNode):
            written[node.id] += _email(ctx, node, step, where, params, now)
        elif isinstance(node, ConsentRejectNode):
            written[node.id] += reject_consent(
                ctx.conn,
                f"SELECT j.customer_id FROM journeys j WHERE j.day = ? AND {where}",
                [ctx.day, *params],
                channel=node.channel,
                source=f"scenario:{node.id}",
                now=now,
            )
    for node_id, count in written.items():
        log.info("day %s: node %s wrote %s outbox rows", ctx.day, node_id, count)
    return dict(written)


def insert_webhooks(
    conn: sqlite3.Connection,
    node: WebhookNode,
    *,
    key_prefix: str,
    day: int,
    source: str,
    params: list[Any],
    not_before: str | None,
    now: str,
    with_profile: bool = True,
) -> int:
    """One webhook outbox row per customer ``source`` yields (a FROM clause with ``c`` bound to
    ``customers``, or with ``with_profile=False`` to anything with an ``id`` column); the key is
    ``key_prefix`` + customer id.

    The payload holds the node's settings and, ``with_profile``, a copy of the customer's
    profile (``PROFILE_FIELDS``) for whoever reads the row. The dispatcher reads the profile
    from ``customers`` when it sends, so the day's bulk rows leave the copy out: building it
    per customer was most of the cost of writing them."""
    settings = {"list": node.list, "template": node.template, "batch_size": node.batch_size}
    if with_profile:
        fields = ", ".join(f"'{name}', c.{name}" for name in PROFILE_FIELDS)
        payload_sql = f"json_object('list', ?, 'template', ?, 'batch_size', ?, {fields})"
        payload_params: list[Any] = list(settings.values())
    else:
        payload_sql = "?"
        payload_params = [json.dumps(settings, separators=(",", ":"))]
    cursor = conn.execute(
        "INSERT OR IGNORE INTO outbox (key, day, node_id, kind, provider, customer_id, payload, "
        "status, not_before, after_key, created_at, updated_at) "
        f"SELECT ? || c.id, ?, ?, 'webhook', 'klaviyo', c.id, {payload_sql}, "
        f"'pending', ?, NULL, ?, ? {source}",
        [key_prefix, day, node.id, *payload_params, not_before, now, now, *params],
    )
    return cursor.rowcount


def _webhook(
    ctx: DayContext, node: WebhookNode, step: Step, where: str, params: list[Any], now: str
) -> int:
    return insert_webhooks(
        ctx.conn,
        node,
        key_prefix=ctx.key_prefix(node.id),
        day=ctx.day,
        source="FROM (SELECT j.customer_id AS id FROM journeys j "
        f"WHERE j.day = ? AND {where} ORDER BY j.customer_id) c",
        params=[ctx.day, *params],
        not_before=step.not_before,
        now=now,
        with_profile=False,
    )


def _email(
    ctx: DayContext, node: EmailNode, step: Step, where: str, params: list[Any], now: str
) -> int:
    after = ctx.key_prefix(step.after_node) if step.after_node else None
    cursor = ctx.conn.execute(
        "INSERT OR IGNORE INTO outbox (key, day, node_id, kind, provider, customer_id, payload, "
        "status, not_before, after_key, created_at, updated_at) "
        "SELECT ? || c.id, ?, ?, 'email', 'new', c.id, ?, 'pending', ?, "
        "CASE WHEN ? IS NULL THEN NULL ELSE ? || c.id END, ?, ? "
        "FROM journeys j JOIN allocations a ON a.day = j.day AND a.customer_id = j.customer_id "
        "AND a.provider = 'new' JOIN customers c ON c.id = j.customer_id "
        "LEFT JOIN consents e ON e.customer_id = c.id AND e.channel = 'email' "
        f"WHERE j.day = ? AND {where} AND {SAFE} ORDER BY j.customer_id",
        [
            ctx.key_prefix(node.id),
            ctx.day,
            node.id,
            json.dumps({"template": email_template(ctx, node)}, separators=(",", ":")),
            step.not_before,
            after,
            after,
            now,
            now,
            ctx.day,
            *params,
        ],
    )
    # Allocated but no longer mailable (unsubscribed since the allocation): say so. When the
    # insert wrote a row for every allocated customer on these paths, nobody was skipped.
    allocated = ctx.conn.execute(
        f"SELECT count(*) FROM journeys j WHERE j.day = ? AND j.outcome = 'new' AND {where}",
        [ctx.day, *params],
    ).fetchone()[0]
    if cursor.rowcount == allocated:
        return cursor.rowcount
    ctx.conn.execute(
        "UPDATE journeys SET outcome = 'skipped' WHERE day = ? AND outcome = 'new' AND "
        f"customer_id IN (SELECT j.customer_id FROM journeys j WHERE j.day = ? AND {where}) "
        "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.key = ? || journeys.customer_id)",
        [ctx.day, ctx.day, *params, ctx.key_prefix(node.id)],
    )
    return cursor.rowcount
