from __future__ import annotations

import json
from pathlib import Path

import typer

from warmup.cli.errors import handle_errors
from warmup.cli.progress import polled_progress
from warmup.errors import EXIT_FAILURE


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
            help="Set the clock (rehearsals): 2026-12-03T10:05 in the plan's time zone, 10:05 "
            "(today there), or with an offset, needed in an hour the clocks repeat.",
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
        claim: bool = typer.Option(
            False,
            "--claim",
            help="Take over a Klaviyo list another plan has claimed (the members that plan "
            "added are never removed).",
        ),
    ) -> None:
        """Run day N of the plan's scenario: allocate, write the outbox, send."""
        from warmup.app.day import Mode, run_and_dispatch
        from warmup.engine import DayResult
        from warmup.plan import load_plan
        from warmup.plan.calendar import parse_moment

        loaded = load_plan(plan)
        clock = parse_moment(now, loaded.plan.timezone) if now else None
        mode = Mode.DRY_RUN if dry_run else Mode.OUTBOX_ONLY if no_dispatch else Mode.SEND

        shown: list[DayResult] = []

        def show(result: DayResult) -> None:
            if as_json and mode.sends:
                shown.append(result)  # printed once, with the dispatch's figures, below
                return
            if as_json:
                typer.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
            else:
                typer.echo(result.render())

        try:
            outcome = run_and_dispatch(
                loaded,
                day,
                mode=mode,
                now=clock,
                force_reason=force,
                override_guardrail=override_guardrail,
                resend_uncertain=resend_uncertain,
                claim=claim,
                on_result=show,
                on_pull=lambda n: typer.echo(
                    f"klaviyo  {n:,} unsubscribes or suppressions pulled", err=as_json
                ),
                dispatch_progress=lambda read: polled_progress(
                    f"day {day} dispatch", read, quiet=quiet
                ),
            )
        except BaseException:
            for result in shown:  # the day ran: say what it did even though dispatch failed
                typer.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
            raise
        if outcome.dispatch is None:
            return
        if outcome.cancelled_held:
            typer.echo(
                f"cancelled {outcome.cancelled_held:,} earlier email(s) whose Klaviyo exclusion "
                "was on hold (see `warmup status`)",
                err=as_json,
            )
        if as_json:
            document = outcome.result.to_json()
            document["dispatch"] = outcome.dispatch.to_json()
            typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        else:
            typer.echo(outcome.dispatch.render())
        if failed := outcome.failed:
            if earlier := outcome.failed_earlier:
                typer.echo(
                    f"error: {earlier:,} Klaviyo list change(s) failed in an earlier run and stay "
                    "failed (a run does not drive them again); the email waiting for them waits",
                    err=True,
                )
            typer.echo(
                f"error: {failed:,} action(s) failed (see above) — fix the cause, then "
                f"`warmup sync {plan} --day {day}` drives the list changes again and "
                f"`warmup run {plan} --day {day}` sends the email waiting for them; a list "
                f"deleted in Klaviyo: `warmup sync {plan} --day {day} --resolve-lists`",
                err=True,
            )
            raise typer.Exit(EXIT_FAILURE)
