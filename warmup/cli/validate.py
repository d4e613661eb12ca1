from __future__ import annotations

from pathlib import Path

import typer

from warmup.cli.errors import handle_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def validate(
        plan: Path = typer.Argument(..., help="The plan file (YAML)."),
    ) -> None:
        """Check a plan, its scenario and templates; list every problem with file:line:col."""
        from warmup.app.validation import validate_plan
        from warmup.plan.summary import summarize
        from warmup.wallclock import notes

        loaded = validate_plan(plan)
        typer.echo(summarize(loaded))
        for note in notes(loaded):
            typer.echo(f"  clock      {note}")
