from __future__ import annotations

from pathlib import Path

import typer

from warmup.cli.errors import handle_errors
from warmup.errors import EXIT_FAILURE


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def sync(
        plan: Path = typer.Argument(..., help="The plan file (YAML)."),
        day: int | None = typer.Option(None, "--day", help="Day to sync (default: the latest)."),
        verify: bool = typer.Option(
            False,
            "--verify",
            help="Read the lists back from Klaviyo and report any difference from the store.",
        ),
        repair: bool = typer.Option(
            False, "--repair", help="Like --verify, then fix the lists to match."
        ),
        claim: bool = typer.Option(
            False,
            "--claim",
            help="Take over a Klaviyo list another plan has claimed (the members that plan "
            "added are never removed).",
        ),
        pull: bool = typer.Option(
            False,
            "--pull",
            help="First mark profiles that unsubscribed or were suppressed in Klaviyo since "
            "the last pull as unsubscribed in the store; with `engagement.source: klaviyo`, "
            "also pull Klaviyo's email events since the last pull.",
        ),
        resolve_lists: bool = typer.Option(
            False,
            "--resolve-lists",
            help="Forget the list ids found from the plan's list names and find (or create) "
            "each list by name again, then repair it: after a list was deleted in Klaviyo.",
        ),
        now: str | None = typer.Option(
            None,
            "--now",
            metavar="TIMESTAMP",
            help="Set the clock (rehearsals), as for `warmup run`: 2026-12-03T10:05 in the "
            "plan's time zone, 10:05 (today there), or with an offset.",
        ),
    ) -> None:
        """Drive unfinished, failed and on-hold Klaviyo actions again; keep the lists exact."""
        from warmup.app.sync import sync as sync_day
        from warmup.plan import load_plan
        from warmup.plan.calendar import parse_moment, require_day

        loaded = load_plan(plan)
        if day is not None:
            require_day(loaded.plan, day)
        clock = parse_moment(now, loaded.plan.timezone) if now else None
        report = sync_day(
            loaded,
            day,
            verify=verify,
            repair=repair,
            claim=claim,
            pull=pull,
            resolve_lists=resolve_lists,
            now=clock,
            say=typer.echo,
        )
        if report is None:
            return
        typer.echo(report.summary())
        if not report.ok:
            raise typer.Exit(EXIT_FAILURE)
