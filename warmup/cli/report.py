from __future__ import annotations

from pathlib import Path

import typer

from warmup.cli.errors import handle_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def report(
        plan: Path = typer.Argument(..., help="The plan file (YAML)."),
        html: Path = typer.Option(..., "--html", help="Where to write the report (.html)."),
        day: int | None = typer.Option(
            None, "--day", help="Day whose funnel to draw (default: the latest day run)."
        ),
        now: str | None = typer.Option(
            None,
            "--now",
            metavar="TIMESTAMP",
            help="Set the clock (rehearsals), as for `warmup status`: 2026-12-03T10:05 in the "
            "plan's time zone, 10:05 (today there), or with an offset.",
        ),
    ) -> None:
        """Write one self-contained HTML report: ramp, rates vs guardrails, a day's funnel on
        the scenario graph, list-sync state."""
        from warmup.clock import parse_moment
        from warmup.plan import load_plan
        from warmup.report.html import write_report

        loaded = load_plan(plan)
        clock = parse_moment(now, loaded.plan.timezone) if now else None
        out = write_report(loaded, html, day=day, now=clock)
        typer.echo(f"wrote {out}")
