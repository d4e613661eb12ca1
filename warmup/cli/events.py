from __future__ import annotations

from pathlib import Path

import typer

from warmup.cli.errors import handle_errors


def register(app: typer.Typer) -> None:
    events = typer.Typer(
        help="Provider events (bounces, complaints, unsubscribes).", no_args_is_help=True
    )
    app.add_typer(events, name="events")

    @events.command("import")
    @handle_errors
    def import_command(
        plan: Path = typer.Argument(..., help="The plan file (YAML)."),
        csv_file: Path = typer.Argument(
            ...,
            metavar="FILE.csv",
            help="Events exported by the provider: columns event_id, type, email, occurred_at.",
        ),
        source: str | None = typer.Option(
            None,
            "--source",
            help="Who reported the events (default: new, the new provider); an event id is "
            "stored once per source.",
        ),
    ) -> None:
        """Store a provider's exported events once each; unsubscribes and complaints go through
        the consent flow to Klaviyo."""
        from warmup.consent import import_events_file
        from warmup.events import DEFAULT_SOURCE
        from warmup.plan import load_plan

        report = import_events_file(
            load_plan(plan), csv_file, source=DEFAULT_SOURCE if source is None else source
        )
        typer.echo(report.summary())
