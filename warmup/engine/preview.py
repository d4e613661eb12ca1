"""What a day changes outside the store: Klaviyo list changes, sample emails, webhook bodies."""

from __future__ import annotations

import json
from typing import Any

from warmup.email.render import CUSTOMER_FIELDS, render_message
from warmup.engine import sql
from warmup.engine.context import DayContext
from warmup.engine.nodes.email import email_template
from warmup.engine.sql import PROFILE_FIELDS
from warmup.plan import properties
from warmup.plan.scenario import EmailNode, WebhookNode
from warmup.providers.klaviyo.endpoints import readback_cost
from warmup.providers.klaviyo.request import webhook_request
from warmup.store import customers

SAMPLE_SIZE = 3
# attribute_values: the imported free cells, merged into attributes (store.customers)
CUSTOMER_COLUMNS = (*CUSTOMER_FIELDS, "attributes", "attribute_values")


class NewSet:
    """Today's new-provider customers: the temp evaluation, or the frozen allocation."""

    def __init__(self, ctx: DayContext, *, frozen: bool) -> None:
        day = int(ctx.day)
        if frozen:
            self.rows = (
                "SELECT a.customer_id, j.rank FROM allocations a JOIN journeys j "
                "ON j.day = a.day AND j.customer_id = a.customer_id "
                f"WHERE a.day = {day} AND a.provider = 'new'"
            )
        else:
            self.rows = "SELECT customer_id, rank FROM engine_flow2 WHERE is_new = 1"
        self.conn = ctx.conn
        self.prev = day - 1
        self._figures: sql.NewSetFigures | None = None

    @property
    def figures(self) -> sql.NewSetFigures:
        """The set against the day before's (read once: the list changes and the Klaviyo work
        both show them)."""
        if self._figures is None:
            self._figures = sql.new_set_figures(self.conn, self.rows, self.prev)
        return self._figures


def list_changes(ctx: DayContext, new: NewSet) -> dict[str, Any]:
    """The exclusion list holds exactly the day's new-provider set: changes vs the day before."""
    prev = ctx.day - 1
    figures = new.figures
    # Whoever was in yesterday's set and is not added today stayed; the rest leave the list.
    removed = figures.before - (figures.today - figures.added)
    # Nobody is mailed before their email is read back from the list (verify before send).
    requests, seconds = readback_cost(figures.today, ctx.plan.providers.klaviyo.rate_share)
    return {
        "list": "exclusion",
        "previous_day": prev if prev >= 1 else None,
        "added": figures.added,
        "removed": removed,
        "read_back": {"requests": requests, "seconds": round(seconds, 1)},
    }


def sample_customers(ctx: DayContext, new: NewSet) -> list[tuple[int, dict[str, Any]]]:
    rows = sql.ranked_customers(ctx.conn, new.rows, CUSTOMER_COLUMNS, SAMPLE_SIZE)
    return _customers(ctx, rows)


def _customers(ctx: DayContext, rows: list[tuple[Any, ...]]) -> list[tuple[int, dict[str, Any]]]:
    """(rank, customer) with the customer's attributes merged into one JSON object."""
    names = sorted(customers.attribute_names(ctx.conn).items(), key=lambda item: item[1])
    out = []
    for row in rows:
        customer = dict(zip(CUSTOMER_COLUMNS, row[1:], strict=True))
        customer["attributes"] = customers.merged_attributes(
            customer["attributes"], customer.pop("attribute_values"), [n for n, _ in names]
        )
        out.append((int(row[0]), customer))
    return out


def known_list_id(ctx: DayContext, which: str) -> str | None:
    """The list id the dispatcher will write to, when the plan names it or an earlier run
    resolved its name (a dry run never asks Klaviyo)."""
    k = ctx.plan.providers.klaviyo
    ref = k.exclusion_list if which == "exclusion" else k.unsubscribe_list
    if ref.id:
        return ref.id
    if ref.per_day is not None:
        return ref.per_day.get(int(ctx.day))
    if ref.name is None:
        return None
    name = ref.name.replace("{day}", str(ctx.day)).replace("{date}", ctx.date.isoformat())
    return sql.resolved_list_id(ctx.conn, f"{which}:{name}")


def joining_customers(
    ctx: DayContext, new: NewSet, list_id: str
) -> list[tuple[int, dict[str, Any]]]:
    """The day's first few customers who are not confirmed members of ``list_id`` yet."""
    rows = sql.ranked_customers(
        ctx.conn, new.rows, CUSTOMER_COLUMNS, SAMPLE_SIZE, not_in_list=list_id
    )
    return _customers(ctx, rows)


def render_subject(ctx: DayContext, template: str, customer: dict[str, Any]) -> str:
    return render_message(
        ctx.loaded, template, customer, ctx.day, secret=b"dry-run: links are never sent"
    ).subject


def samples(ctx: DayContext, new: NewSet) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """A few recipients with their rendered subject, and the exclusion webhook's body."""
    customers = sample_customers(ctx, new)
    email = next((n for n in ctx.loaded.scenario.nodes if isinstance(n, EmailNode)), None)
    out: list[dict[str, Any]] = []
    for rank, customer in customers:
        entry: dict[str, Any] = {"rank": rank, "email": customer["email"]}
        if email is not None:
            template = email_template(ctx, email)
            entry["template"] = template
            entry["subject"] = render_subject(ctx, template, customer)
        out.append(entry)
    hook = next(
        (
            n
            for n in ctx.loaded.scenario.nodes
            if isinstance(n, WebhookNode) and n.list == "exclusion"
        ),
        None,
    )
    webhook = None
    list_id = known_list_id(ctx, "exclusion") if hook is not None else None
    if hook is not None and list_id is not None:
        # who is already a confirmed member gets no call: sample the people it will add
        customers = joining_customers(ctx, new, list_id)
    if hook is not None and customers:
        # As the dispatcher sends it: an imported Klaviyo id is used only once Klaviyo itself
        # returned it (migration 030); others join by email through a bulk import.
        confirmed = sql.klaviyo_id_confirmed(ctx.conn, [cid for cid, _ in customers])
        profiles = [
            {
                name: (c[name] if name != "klaviyo_id" or cid in confirmed else None)
                for name in PROFILE_FIELDS
            }
            for cid, c in customers
        ]
        properties.attach(
            ctx.plan,
            ctx.loaded.scenario,
            [
                (
                    profile,
                    {**c, "attributes": json.loads(c["attributes"] or "{}")},
                    ctx.day,
                    ctx.date,
                )
                for profile, (_, c) in zip(profiles, customers, strict=True)
            ],
        )
        # the dispatcher's first batch: profiles with a Klaviyo id go apart from the others
        batch = [p for p in profiles if p["klaviyo_id"]] or profiles
        request = webhook_request(
            ctx.loaded,
            hook.template,
            batch,
            which=hook.list,
            list_id=list_id or "LIST-ID-RESOLVED-AT-SYNC",
            list_mode=ctx.loaded.plan.providers.klaviyo.list_mode,
            day=int(ctx.day),
        )
        body = json.dumps(request, ensure_ascii=False)
        webhook = {
            "node": hook.id,
            "template": hook.template,
            "profiles": len(batch),
            "body": body,
        }
    return out, webhook
