"""`warmup demo`: the whole job on one machine — no account, no network beyond loopback.

A scratch workspace gets sample customers and a plan made from the shipped example, pointed at a
Klaviyo-compatible sandbox and an SMTP sink, both started here on 127.0.0.1. The first days of
the plan then run for real: the engine allocates, Klaviyo's exclusion list is synced in the
sandbox, mail is delivered to the sink. The plan's days are dated in the recent past and each
runs with its clock just after its send time, so every wait is due and the run takes seconds.
Servers and the in-process secrets are gone when the demo ends, Ctrl-C included: the secrets
reach the providers as explicit settings (``load_plan(env=...)``), never through ``os.environ``.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pendulum
import yaml

from warmup.app.day import run_and_dispatch
from warmup.app.demo_apis import ApiTarget, api_target, start_events, webhook_secret
from warmup.app.sample import write_sample_csv
from warmup.email.sink import Sink, smtp_sink
from warmup.errors import InvalidInput
from warmup.importer import import_csv
from warmup.plan import LoadedPlan, load_plan
from warmup.plan.calendar import day_date, local_time
from warmup.plan.resources import bundled_dir
from warmup.report.html import write_report
from warmup.report.status import PlanStatus, plan_status
from warmup.sandbox import SandboxConfig, serve_in_thread
from warmup.store.database import STORE_ENV

PLAN_FILE = "demo.yaml"
# Past the send time, so a day's waits are all due when it runs.
AFTER_SEND = timedelta(minutes=5)


@dataclass
class DemoDay:
    day: int
    date: str
    status: str
    new: int
    klaviyo: int
    excluded: int
    delivered: int


@dataclass
class DemoResult:
    workspace: Path
    plan_path: Path
    report_path: Path
    customers_loaded: int
    days: list[DemoDay] = field(default_factory=list)
    status: PlanStatus | None = None
    sink_messages: int = 0
    klaviyo_url: str = ""


def demo_settings(sandbox_key: str, store: Path, target: ApiTarget | None = None) -> dict[str, str]:
    """The settings the demo's plan is wired from: the process environment with the local
    servers' keys, fresh signing secrets and the workspace's store laid over it. They are handed
    to ``load_plan``; nothing is written back to ``os.environ``."""
    values = {
        "KLAVIYO_API_KEY": sandbox_key,
        "WARMUP_UNSUBSCRIBE_SECRET": secrets.token_urlsafe(32),
        STORE_ENV: str(store),
        **(target.env | webhook_secret() if target else {}),
    }
    return {**os.environ, **values}


def demo_plan(*, klaviyo_url: str, smtp_port: int, start: date) -> dict[str, Any]:
    """The shipped example plan, aimed at the local servers and dated to start on ``start``."""
    example = yaml.safe_load((bundled_dir("plans") / "example.yaml").read_text(encoding="utf-8"))
    example.update(
        start_date=start.isoformat(),
        scenario=str(bundled_dir("scenarios") / "variant-1.yaml"),
        templates=str(bundled_dir("templates")),
        store="demo.db",
    )
    example["providers"]["klaviyo"]["base_url"] = klaviyo_url
    example["providers"]["new"].update(host="127.0.0.1", port=smtp_port, tls="none")
    for key in ("username_env", "password_env"):
        example["providers"]["new"].pop(key, None)
    example["schedule"]["skip_dates"] = []
    example["schedule"]["skip_weekdays"] = []
    return dict(example)


def klaviyo_account(csv_path: Path, state_path: Path) -> Path:
    """The sandbox's state file holding the export's profiles under their Klaviyo IDs: the
    export came from Klaviyo, so Klaviyo knows these profiles before the warm-up starts."""
    profiles: dict[str, Any] = {}
    stamp = pendulum.now("UTC").replace(microsecond=0).isoformat()
    with csv_path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            pid, email = (row.get("Klaviyo ID") or "").strip(), (row.get("Email") or "").strip()
            if not pid or "@" not in email or pid in profiles:
                continue
            attributes: dict[str, Any] = {
                "email": email.lower(),
                "first_name": row.get("First Name") or None,
                "last_name": row.get("Last Name") or None,
                "created": stamp,
                "updated": stamp,
                "properties": {},
            }
            profiles[pid] = {
                "id": pid,
                "attributes": {k: v for k, v in attributes.items() if v is not None},
                "consent": "SUBSCRIBED",
                "suppression": None,
            }
    state_path.write_text(
        json.dumps({"seq": 0, "profiles": profiles, "lists": {}, "members": {}}), encoding="utf-8"
    )
    return state_path


def run_demo(
    *,
    directory: Path | str | None = None,
    customers: int = 2000,
    days: int = 3,
    say: Callable[[str], None] = lambda line: None,
    progress: Callable[[int], None] | None = None,
    provider: str = "smtp",
    after_day: Callable[[LoadedPlan, int], None] | None = None,
) -> DemoResult:
    """Run the demo in ``directory`` (a new scratch folder when None); see the module docstring.
    ``say`` receives one line per step."""
    if customers < 1:
        raise InvalidInput(
            f"--customers {customers} is too small", hint="pass at least 1, e.g. --customers 2000"
        )
    if not 1 <= days <= 14:
        raise InvalidInput(
            f"--days {days} is outside the example plan", hint="pass a number of days from 1 to 14"
        )
    workspace = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="warmup-demo-"))
    workspace.mkdir(parents=True, exist_ok=True)
    plan_path = workspace / PLAN_FILE
    if (workspace / "demo.db").exists():
        raise InvalidInput(
            f"{workspace / 'demo.db'} already exists: the demo starts from an empty store",
            hint="pass --dir with a new folder, or delete it",
        )
    csv_path = write_sample_csv(workspace / "customers.csv", customers, seed=0)
    say(f"workspace   {workspace}")
    say(f"customers   {customers:,} sample rows in {csv_path.name}")
    with ExitStack() as stack:
        account = klaviyo_account(csv_path, workspace / "klaviyo-sandbox.json")
        sandbox = stack.enter_context(serve_in_thread(SandboxConfig(fast=True, state=account)))
        say(f"sandbox     Klaviyo-compatible API on {sandbox.base_url}")
        target = None if provider == "smtp" else stack.enter_context(api_target(provider))
        sink: Sink | None = None
        if target is None:
            sink = stack.enter_context(smtp_sink(keep=False))
            say(f"smtp sink   127.0.0.1:{sink.port}")
        else:
            say(f"{provider:<11} {target.label}")
        today = pendulum.now("Europe/Prague").date()
        start = today - timedelta(days=days)
        plan = demo_plan(
            klaviyo_url=sandbox.base_url, smtp_port=sink.port if sink else 1, start=start
        )
        if target is not None:
            plan["providers"]["new"] = target.new
            plan["events"] = target.events
        plan_path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
        loaded = load_plan(
            plan_path, env=demo_settings(sandbox.api_key, workspace / "demo.db", target)
        )
        imported = import_csv(loaded, csv_path, progress=progress)
        if target is not None:
            say(f"serve       events into {start_events(stack, target, loaded)}")
        say(
            f"imported    {imported.rows_loaded:,} customers "
            f"({imported.rows_rejected} rows rejected)"
        )
        result = DemoResult(
            workspace,
            plan_path,
            workspace / "report.html",
            imported.rows_loaded,
            klaviyo_url=sandbox.base_url,
        )
        delivered = target.delivered if target else (lambda: sink.count if sink else 0)
        settle = target.settle if target else (lambda: None)
        where = "the sink" if target is None else f"the {provider} sandbox"
        for day in range(1, days + 1):
            result.days.append(_run_one_day(loaded, day, delivered, settle, where, say))
            if after_day is not None:  # while the servers still run (tests look at them)
                after_day(loaded, day)
        result.sink_messages = delivered()
        result.status = plan_status(loaded)
        write_report(loaded, result.report_path)
    return result


def _run_one_day(
    loaded: LoadedPlan,
    day: int,
    delivered: Callable[[], int],
    settle: Callable[[], None],
    where: str,
    say: Callable[[str], None],
) -> DemoDay:
    plan = loaded.plan
    when = day_date(plan, day)
    clock = local_time(plan, when, plan.schedule.send_time_for(day)) + AFTER_SEND
    before = delivered()
    ran = run_and_dispatch(loaded, day, now=clock)
    assert ran.dispatch is not None  # a day run in Mode.SEND always dispatches
    # The provider's events (deliveries, bounces) reach the store before the next day's
    # guardrails look at them.
    settle()
    allocation = ran.result.allocation or {}
    outcome = DemoDay(
        day,
        ran.result.date,
        ran.result.status,
        int(allocation.get("new") or 0),
        int(allocation.get("klaviyo") or 0),
        ran.dispatch.klaviyo.sent,
        delivered() - before,
    )
    say(
        f"day {day}       {outcome.date}: {outcome.new:,} to the new provider, "
        f"{outcome.klaviyo:,} stay with Klaviyo, {outcome.delivered:,} emails delivered to "
        f"{where} ({outcome.status})"
    )
    return outcome
