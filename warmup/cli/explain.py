from __future__ import annotations

import json
from pathlib import Path

import typer

from warmup.cli.errors import handle_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def explain(
        plan: Path = typer.Argument(..., help="The plan file (YAML)."),
        email: str = typer.Argument(..., help="The customer's email address."),
        day: int = typer.Option(..., "--day", help="The sending day."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    ) -> None:
        """Why a customer was or was not mailed on a day: the path and the reasons."""
        from warmup.engine import explain as explain_journey
        from warmup.plan import load_plan
        from warmup.plan.calendar import require_day

        loaded = load_plan(plan)
        require_day(loaded.plan, day)
        result = explain_journey(loaded, day, email)
        if as_json:
            typer.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
        else:
            typer.echo(result.render())
