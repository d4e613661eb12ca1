from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from warmup.cli.errors import handle_errors
from warmup.cli.progress import polled_progress

if TYPE_CHECKING:
    from warmup.plan import LoadedPlan
    from warmup.store import Store


def _dispatch(
    loaded: LoadedPlan, day: int, *, resend_uncertain: bool, clock: datetime | None, quiet: bool
) -> str:
    from warmup.dispatch import dispatch_day, outbox_progress
    from warmup.store import open_store

    reader: list[Store] = []

    def read() -> tuple[int, int]:
        # the poller's own connection: sqlite3 connections stay in their thread
        if not reader:
            reader.append(open_store(loaded.store_path, create=False))
        return outbox_progress(reader[0], day)

    store = open_store(loaded.store_path, create=False)
    try:
        with polled_progress(f"day {day} dispatch", read, quiet=quiet):
            report = dispatch_day(
                loaded,
                store,
                day,
                resend_uncertain=resend_uncertain,
                clock=(lambda: clock) if clock else None,
            )
    finally:
        store.close()
        for extra in reader:
            extra.close()
    return report.render()


def _check_earlier_days(loaded: LoadedPlan, day: int) -> None:
    from warmup.dispatch import check_earlier_days_sent
    from warmup.store import open_store

    store = open_store(loaded.store_path, create=False)
    try:
        check_earlier_days_sent(loaded, store, day)
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def run(
        plan: Path = typer.Argument(..., help="The plan file (YAML)."),
        day: int = typer.Option(..., "--day", help="The sending day to run (1 = the first)."),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Evaluate the whole day and change nothing."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
        now: str | None = typer.Option(
            None,
            "--now",
            metavar="TIMESTAMP",
            help="Set the clock (rehearsals), e.g. 2026-12-03T10:05 in the plan's time zone.",
        ),
        force: str | None = typer.Option(
            None,
            "--force",
            metavar="REASON",
            help="Run even though the previous day has not completed; the reason is recorded.",
        ),
        override_guardrail: str | None = typer.Option(
            None,
            "--override-guardrail",
            metavar="REASON",
            help="Run although the guardrails stopped the ramp (at the rolled-back volume); "
            "the reason is recorded.",
        ),
        no_dispatch: bool = typer.Option(
            False, "--no-dispatch", help="Write the outbox only; send nothing."
        ),
        resend_uncertain: bool = typer.Option(
            False,
            "--resend-uncertain",
            help="Also send messages whose outcome a crash left unknown (may duplicate).",
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ) -> None:
        """Run day N of the plan's scenario: allocate, write the outbox, send."""
        from warmup.calendar import parse_moment
        from warmup.consent.pull import pull_for_plan
        from warmup.engine import run_day
        from warmup.plan import load_plan

        loaded = load_plan(plan)
        clock = parse_moment(now, loaded.plan.timezone) if now else None
        if not dry_run and not no_dispatch and force is None:
            # A day completes before its dispatch: moving on would strand its unsent email.
            _check_earlier_days(loaded, day)

        def pull() -> None:
            # Unsubscribes made in Klaviyo since the last pull must not be mailed today.
            pulled = pull_for_plan(loaded)
            typer.echo(f"klaviyo  {pulled:,} unsubscribes or suppressions pulled", err=as_json)

        result = run_day(
            loaded,
            day,
            now=clock,
            dry_run=dry_run,
            force_reason=force,
            override_guardrail=override_guardrail,
            prepare=None if no_dispatch else pull,
        )
        if as_json:
            typer.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
        else:
            typer.echo(result.render())
        if not dry_run and not no_dispatch:
            # After the day's result is shown: a provider failure must not hide what was done.
            typer.echo(
                _dispatch(loaded, day, resend_uncertain=resend_uncertain, clock=clock, quiet=quiet),
                err=as_json,
            )
