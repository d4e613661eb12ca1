from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from warmup.cli.errors import handle_errors
from warmup.cli.progress import progress_bar


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def demo(
        directory: Path | None = typer.Option(
            None, "--dir", help="Workspace folder (default: a new temporary one)."
        ),
        customers: int = typer.Option(2000, "--customers", help="Sample customers to import."),
        days: int = typer.Option(3, "--days", help="Days of the example plan to run (1–14)."),
        provider: str = typer.Option(
            "smtp",
            "--provider",
            help="New provider: smtp (an SMTP sink), ses or sendgrid (their API sandboxes, "
            "with signed events into warmup serve).",
        ),
        quiet: bool = typer.Option(
            False,
            "--quiet",
            "-q",
            help="No progress bar or steps; only the status table and the report path.",
        ),
    ) -> None:
        """Run the example plan end to end on loopback: sample customers, a Klaviyo sandbox,
        an SMTP sink, days 1–N for real, then the status table and an HTML report."""
        from contextlib import ExitStack

        from warmup.app.demo import run_demo
        from warmup.report.status import render_table

        # The import's bar lives only while the import runs: drawn on the first update and
        # closed before the next step's line, which would otherwise be glued onto it.
        bar = ExitStack()
        updates: list[Callable[..., None]] = []

        def progress(completed: int, total: int | None = None) -> None:
            if not updates:
                updates.append(
                    bar.enter_context(progress_bar("importing customers", None, quiet=quiet))
                )
            updates[0](completed, total=total)

        def say(line: str) -> None:
            bar.close()
            if not quiet:
                typer.echo(line)

        with bar:
            result = run_demo(
                directory=directory,
                customers=customers,
                days=days,
                say=say,
                progress=progress,
                provider=provider,
            )
        assert result.status is not None
        typer.echo(render_table(result.status))
        typer.echo(
            f"\nreport: {result.report_path}\nplan:   {result.plan_path} "
            "(its sandboxes are stopped now)"
        )
