from __future__ import annotations

from pathlib import Path

import typer

from warmup.cli.errors import handle_errors
from warmup.cli.progress import progress_bar


def register(app: typer.Typer) -> None:
    @app.command("import")
    @handle_errors
    def import_command(
        plan: Path = typer.Argument(..., help="The plan file (YAML)."),
        csv_file: Path = typer.Argument(
            ...,
            metavar="FILE.csv",
            help="A Klaviyo list/segment export, or any CSV "
            "mapped under the plan's import.columns.",
        ),
        segment: str | None = typer.Option(
            None,
            "--segment",
            help="Segment the rows belong to (default: the plan's import.segment).",
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ) -> None:
        """Load customers from a CSV export into the plan's store (an upsert)."""
        from warmup.app.importing import import_customers, refuse_empty
        from warmup.plan import load_plan

        loaded = load_plan(plan)
        size = csv_file.stat().st_size if csv_file.exists() else None
        with progress_bar(f"importing {csv_file.name}", size, quiet=quiet) as update:
            report = import_customers(loaded, csv_file, segment=segment, progress=update)
        typer.echo(report.summary())
        refuse_empty(report)
