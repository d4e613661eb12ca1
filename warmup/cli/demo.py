from __future__ import annotations

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
        from warmup.demo import run_demo
        from warmup.report.status import render_table

        say = (lambda line: None) if quiet else typer.echo
        with progress_bar("importing customers", None, quiet=quiet) as update:
            result = run_demo(
                directory=directory,
                customers=customers,
                days=days,
                say=say,
                progress=update,
                provider=provider,
            )
        assert result.status is not None
        typer.echo(render_table(result.status))
        typer.echo(
            f"\nreport: {result.report_path}\nplan:   {result.plan_path} "
            "(its sandboxes are stopped now)"
        )
