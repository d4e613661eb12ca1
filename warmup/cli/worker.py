from __future__ import annotations

from pathlib import Path

import typer

from warmup.cli.errors import handle_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def worker(
        plan: Path = typer.Argument(..., help="The plan file (YAML)."),
        day: int | None = typer.Option(
            None, "--day", help="Drain this day only (default: every day with email to send)."
        ),
        lease_seconds: float = typer.Option(
            30.0,
            "--lease-seconds",
            min=1.0,
            max=50.0,
            help="How long a leased row stays this worker's; a dead worker's rows go to "
            "another after it.",
        ),
        resend_uncertain: bool = typer.Option(
            False,
            "--resend-uncertain",
            help="Also send messages whose outcome a crash left unknown (may duplicate).",
        ),
        now: str | None = typer.Option(
            None,
            "--now",
            metavar="TIMESTAMP",
            help="Set the clock (rehearsals, as `warmup run --now`): 2026-12-03T10:05 in the "
            "plan's time zone, or with an offset; it moves on at the real pace from there.",
        ),
    ) -> None:
        """Drain the plan's email outbox alongside any other workers sharing its store (run
        several, on several hosts, after `warmup run --no-dispatch`); the plan's send rate is
        shared by all of them."""
        from warmup.app.day import rehearsal_clock
        from warmup.dispatch.worker import run_worker
        from warmup.plan import load_plan
        from warmup.plan.calendar import parse_moment, require_day
        from warmup.store import open_store

        loaded = load_plan(plan)
        if day is not None:
            require_day(loaded.plan, day)
        clock = rehearsal_clock(parse_moment(now, loaded.plan.timezone)) if now else None
        store = open_store(loaded.store_path, create=False)
        try:
            report = run_worker(
                loaded,
                store,
                day=day,
                lease_seconds=lease_seconds,
                resend_uncertain=resend_uncertain,
                clock=clock,
            )
        finally:
            store.close()
        if not report.days:
            typer.echo(f"worker {report.worker}: no email to send")
        for done in report.days:
            typer.echo(
                f"worker {report.worker}: day {done.day}: {done.sent} sent, {done.bounced} "
                f"bounced, {done.failed} failed, {done.retried} retried, {done.cancelled} "
                # the first counts are this worker's; what is left is the whole day's
                f"cancelled; the day has {done.uncertain} uncertain, {done.waiting} waiting"
            )
            for warning in done.warnings:
                typer.echo(f"  warning: {warning}")
