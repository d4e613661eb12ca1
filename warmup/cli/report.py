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
    ) -> None:
        """Write one self-contained HTML report: ramp, rates vs guardrails, a day's funnel on
        the scenario graph, list-sync state."""
        from warmup.plan import load_plan
        from warmup.report.html import write_report

        out = write_report(load_plan(plan), html, day=day)
        typer.echo(f"wrote {out}")
