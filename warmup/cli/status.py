from __future__ import annotations

import json
from pathlib import Path

import typer

from warmup.cli.errors import handle_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def status(
        plan: Path = typer.Argument(..., help="The plan file (YAML)."),
        as_json: bool = typer.Option(
            False, "--json", help="Machine-readable output (stable, versioned; see the README)."
        ),
        now: str | None = typer.Option(
            None,
            "--now",
            metavar="TIMESTAMP",
            help="Set the clock (rehearsals), as for `warmup run`: 2026-12-03T10:05 in the "
            "plan's time zone, 10:05 (today there), or with an offset.",
        ),
    ) -> None:
        """Each day's planned vs actual volume, the outbox and list-sync backlog, unsubscribes
        waiting, guardrail state and the next thing to do."""
        from warmup.clock import parse_moment
        from warmup.plan import load_plan
        from warmup.report.status import plan_status, render_table

        loaded = load_plan(plan)
        clock = parse_moment(now, loaded.plan.timezone) if now else None
        result = plan_status(loaded, now=clock)
        if as_json:
            typer.echo(json.dumps(result.to_json(), indent=2, sort_keys=True))
        else:
            typer.echo(render_table(result))
