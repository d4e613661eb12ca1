from __future__ import annotations

import json
from pathlib import Path

import typer

from warmup.cli.errors import handle_errors
from warmup.errors import EXIT_FAILURE


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def check(
        plan: Path = typer.Argument(..., help="The plan file (YAML)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    ) -> None:
        """Pre-flight before a real day: environment variables, Klaviyo (key, scopes, lists),
        the SMTP relay (TLS, AUTH), sender and unsubscribe settings, the store. One line per
        check; exit 0 only if every check passes."""
        from warmup.app.preflight import preflight
        from warmup.plan import load_plan

        checks = preflight(load_plan(plan))
        passed = all(c.ok for c in checks)
        if as_json:
            document = {"ok": passed, "checks": [c.to_json() for c in checks]}
            typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        else:
            for c in checks:
                typer.echo(c.line())
            failed = sum(not c.ok for c in checks)
            typer.echo("all checks passed" if passed else f"{failed} check(s) failed")
        if not passed:
            raise typer.Exit(EXIT_FAILURE)
