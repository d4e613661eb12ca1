from __future__ import annotations

from pathlib import Path

import typer

from warmup.app.export import FORMATS, TABLES
from warmup.cli.errors import handle_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def export(
        plan: Path = typer.Argument(..., help="The plan file (YAML)."),
        table: str = typer.Option(
            ...,
            "--table",
            help=f"The store table to write: {', '.join(TABLES)} (journeys: each customer's "
            "path; outbox: every action and its outcome).",
        ),
        fmt: str = typer.Option("csv", "--format", help=f"{' or '.join(FORMATS)}."),
        output: Path | None = typer.Option(
            None, "--output", "-o", help="Write to this file (default: standard output)."
        ),
    ) -> None:
        """Write one store table as CSV or JSON, for auditing a migration (the row count goes
        to standard error)."""
        import sys

        from warmup.app.export import export_table
        from warmup.errors import InvalidInput
        from warmup.plan import load_plan

        if table not in TABLES:
            raise InvalidInput(
                f"--table {table!r} is not a table warmup exports",
                hint=f"pass one of {', '.join(TABLES)}",
            )
        if fmt not in FORMATS:
            raise InvalidInput(
                f"--format {fmt!r} is not a format warmup exports",
                hint=f"pass {' or '.join(FORMATS)}",
            )
        loaded = load_plan(plan)
        if output is None:
            count = export_table(loaded, table, fmt, sys.stdout)
        else:
            try:
                handle = output.open("w", encoding="utf-8", newline="")
            except OSError as exc:
                raise InvalidInput(
                    f"cannot write {output}: {exc.strerror}",
                    hint="pass --output a file in a folder you can write",
                ) from None
            with handle:
                count = export_table(loaded, table, fmt, handle)
        typer.echo(f"exported {count:,} {table} row(s)", err=True)
