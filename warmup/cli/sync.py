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
        from warmup.clock import parse_moment
        from warmup.consent.pull import pull_for_plan
        from warmup.dispatch.klaviyo import sync_plan
        from warmup.plan import load_plan

        loaded = load_plan(plan)
        clock = parse_moment(now, loaded.plan.timezone) if now else None
        if pull:
            pulled = pull_for_plan(loaded)
            typer.echo(f"pulled {pulled:,} unsubscribes or suppressions from Klaviyo")
            from warmup.engagement.pull import pull_engagement_for_plan

            engagement = pull_engagement_for_plan(loaded)
            if engagement is not None:
                typer.echo(engagement.summary())
        if resolve_lists:
            from contextlib import closing

            from warmup.dispatch.relist import forget_resolved_lists
            from warmup.store import open_store

            with closing(open_store(loaded.store_path, create=False)) as store:
                for name, list_id in forget_resolved_lists(store):
                    typer.echo(f"list {name!r}: forgot id {list_id}; finding it by name again")
            # a list found or made anew holds none of the earlier confirmed changes: read it
            # back and make it exact
            repair = True
        report = sync_plan(loaded, day, verify=verify, repair=repair, claim=claim, now=clock)
        typer.echo(report.summary())
        if not report.ok:
            raise typer.Exit(EXIT_FAILURE)
