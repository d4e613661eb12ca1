from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from warmup.app.export import FORMATS, TABLES
from warmup.cli.errors import handle_errors

if TYPE_CHECKING:
    from warmup.plan import LoadedPlan


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

        from warmup.app.export import export_table, refuse_own_files
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
            refuse_own_files(loaded, output)
            count = _export_to_file(loaded, table, fmt, output)
        typer.echo(f"exported {count:,} {table} row(s)", err=True)


def _export_to_file(loaded: LoadedPlan, table: str, fmt: str, output: Path) -> int:
    """Export into ``output``; a file that cannot be opened or written (a full disk, a folder,
    no permission) is a clear error naming it."""
    from warmup.app.export import export_table
    from warmup.errors import InvalidInput, WarmupError

    try:
        handle = output.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise InvalidInput(
            f"cannot write {output}: {exc.strerror}",
            hint="pass --output a file in a folder you can write",
        ) from None
    try:
        with handle:  # closing flushes: a full disk often shows only here
            return export_table(loaded, table, fmt, handle)
    except OSError as exc:
        raise WarmupError(
            f"writing {output} failed: {exc.strerror or exc}; the file is incomplete",
            hint="free space or pick another --output, then export again",
        ) from None
