"""The one-screen summary `warmup validate` prints for a valid plan."""

from __future__ import annotations

from warmup.plan.loader import LoadedPlan
from warmup.plan.models import (
    NewProvider,
    SendGridProvider,
    SendWindowSettings,
    SesProvider,
    SmtpProvider,
)
from warmup.plan.scenario import WebhookNode
from warmup.store.backends import store_location


def _new_provider(new: NewProvider) -> str:
    if isinstance(new, SmtpProvider):
        return (
            f" {new.host}:{new.port} tls={new.tls}, {new.rate_per_second:g}/s, "
            f"{new.max_connections} connections"
        )
    if isinstance(new, SesProvider):
        rate = f"{new.rate_per_second:g}/s cap" if new.rate_per_second else "account's rate"
        connections = (
            f"at most {new.max_connections}" if new.max_connections else "sized from the rate"
        )
        return (
            f" {new.region} ({new.endpoint_url or 'AWS'}), credentials: {new.credentials}, "
            f"{rate}, connections {connections}"
        )
    if isinstance(new, SendGridProvider):
        return (
            f" {new.base_url} (key from ${new.api_key_env}), {new.batch_size} per request, "
            f"{new.max_connections} connections"
        )
    return f" → {new.directory}"


def _cap(value: int | str | None) -> str:
    return "-" if value is None else str(value)


def _mailboxes(loaded: LoadedPlan) -> list[str]:
    """The mailbox groups' caps (one value, or the ramp day by day) and how MX is looked up."""
    plan = loaded.plan
    if plan.mailboxes is None and not plan.schedule.mailbox_caps:
        return []
    caps = [
        f"{name} {' '.join(_cap(v) for v in values) if len(values) > 1 else _cap(values[0])}"
        for name, values in plan.schedule.mailbox_caps.items()
    ]
    settings = plan.mailboxes
    if settings is not None and not settings.resolve_mx:
        mx = "MX lookups off"
    elif settings is not None and settings.nameservers:
        mx = "MX via " + ", ".join(settings.nameservers)
    else:
        mx = "MX via the system's resolver"
    own = ", ".join(settings.groups) if settings is not None and settings.groups else ""
    return [
        "  mailboxes  caps: " + ("; ".join(caps) if caps else "none"),
        f"             {mx}" + (f"; own groups: {own}" if own else ""),
    ]


def _points(rate: float) -> str:
    points = round(rate * 100, 4)
    return f"{points:g} point" + ("" if points == 1 else "s")


def _guardrails(loaded: LoadedPlan) -> list[str]:
    """A group's own hold lines and the lines against Klaviyo, when the plan sets them."""
    rails = loaded.plan.guardrails
    lines = []
    for name, own in rails.groups.items():
        set_lines = own.hold.model_dump(exclude_none=True)
        parts = [f"{k} {v:g}" for k, v in set_lines.items()]
        if own.min_sample:
            parts.append(f"min_sample {own.min_sample}")
        lines.append(f"  guardrail  {name}: " + (", ".join(parts) or "the plan's lines"))
    relative = rails.relative
    if relative is not None:
        hold = relative.hold
        parts = [
            f"delivered more than {_points(v)} below"
            if k.startswith("delivered")
            else f"{k.split('_')[0]}s more than {_points(v)} above"
            for k, v in hold.model_dump(exclude_none=True).items()
        ]
        lines += [
            f"  guardrail  against Klaviyo per tier ({', '.join(relative.tiers)}; "
            f"min_sample {relative.min_sample} a side)",
            "             hold on " + ("; ".join(parts) or "nothing"),
            "             opens and clicks not compared: the new provider reports none to warmup",
        ]
    return lines


def _window(window: SendWindowSettings | None) -> str:
    if window is None:
        return ""
    return f", mail spread {window.start}–{window.end} ({window.shape})"


def summarize(loaded: LoadedPlan) -> str:
    plan = loaded.plan
    new = plan.providers.new
    klaviyo = plan.providers.klaviyo
    lines = [
        f"plan {plan.name}: valid",
        f"  scenario   {loaded.scenario.name} ({loaded.scenario_path}, "
        f"{len(loaded.scenario.nodes)} nodes)",
        f"  days       {plan.day_count}, day 1 on {plan.start_date} ({plan.timezone}), "
        f"send time {plan.schedule.send_time}" + _window(plan.schedule.send_window),
        f"  new        {new.kind}" + _new_provider(new),
        f"  klaviyo    {klaviyo.base_url} (key from ${klaviyo.api_key_env}, revision "
        f"{klaviyo.revision}, {klaviyo.list_mode})",
        f"  store      {store_location(loaded.store_path)}",
        f"  templates  {loaded.templates_dir}",
        "  schedule   " + " ".join(f"{d.day}:{d.new}" for d in plan.schedule.days),
    ]
    lines += _mailboxes(loaded)
    lines += _guardrails(loaded)
    hooks = [n for n in loaded.scenario.nodes if isinstance(n, WebhookNode)]
    if hooks:
        lines.append(
            "  webhooks   " + ", ".join(f"#{n.id} → {n.list or n.template}" for n in hooks)
        )
    return "\n".join(lines)
