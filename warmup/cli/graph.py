from __future__ import annotations

import typer

from warmup.cli.errors import handle_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def graph(
        scenario: str = typer.Argument(
            ..., help="A scenario file, or a shipped one by name (variant-1, variant-2)."
        ),
        fmt: str = typer.Option(
            "mermaid",
            "--format",
            "-f",
            metavar="mermaid|dot",
            help="Diagram language: mermaid or dot.",
        ),
    ) -> None:
        """Draw a scenario's node graph (ids, types, titles, yes/no edges) as Mermaid or dot."""
        from warmup.report.graph import render_graph

        typer.echo(render_graph(scenario, fmt), nl=False)
