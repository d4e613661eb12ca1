from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from warmup.cli.errors import handle_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def init(
        directory: Path = typer.Argument(..., metavar="DIR", help="Folder to create the plan in."),
        variant: int = typer.Option(
            1,
            "--variant",
            help="Scenario variant: 1 (a new template "
            "every day) or 2 (templates reused, never twice).",
        ),
        days: int = typer.Option(14, "--days", min=1, max=90, help="Number of sending days."),
        end_volume: str = typer.Option(
            "all", "--end-volume", help="Last day's volume: all, a count, or a share like 50%."
        ),
        timezone: str = typer.Option("Europe/Prague", "--timezone", help="IANA time zone."),
        start_date: datetime | None = typer.Option(
            None, "--start-date", formats=["%Y-%m-%d"], help="Day 1 (default: tomorrow)."
        ),
        name: str | None = typer.Option(None, "--name", help="Plan name (default: DIR's name)."),
        force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
    ) -> None:
        """Scaffold a working plan: plan.yaml, its scenario and templates, with a geometric ramp."""
        from warmup.app.scaffold import PLAN_FILE, scaffold_plan

        loaded = scaffold_plan(
            directory,
            variant=variant,
            days=days,
            end_volume=end_volume,
            timezone=timezone,
            start_date=start_date.date() if start_date else None,
            name=name,
            force=force,
        )
        schedule = " ".join(str(d.new) for d in loaded.plan.schedule.days)
        typer.echo(
            f"wrote {directory / PLAN_FILE} (plan {loaded.plan.name}, "
            f"{loaded.plan.day_count} days: {schedule})\n"
            f"next: warmup validate {directory / PLAN_FILE}"
        )
