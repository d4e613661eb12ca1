from __future__ import annotations

from pathlib import Path

import typer

from warmup.cli.errors import handle_errors

# The consent service's port when --port is not given.
DEFAULT_PORT = 8025


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def serve(
        plan: Path = typer.Argument(..., help="The plan file (YAML)."),
        host: str = typer.Option(
            "127.0.0.1",
            "--host",
            help="Address to listen on (loopback by default; put TLS in front of anything else).",
        ),
        port: int = typer.Option(
            DEFAULT_PORT, "--port", min=0, max=65535, help="Port to listen on (0 = any free one)."
        ),
    ) -> None:
        """Serve one-click unsubscribes and the new provider's event webhooks; unsubscribes and
        complaints reach Klaviyo's unsubscribe list within seconds."""
        from warmup.consent import serve_forever
        from warmup.plan import load_plan

        loaded = load_plan(plan)
        serve_forever(
            loaded,
            host=host,
            port=port,
            announce=lambda url: typer.echo(
                f"warmup serve: {url} (unsubscribe {url}/unsubscribe, webhooks "
                f"{url}/webhooks/events, health {url}/healthz) — Ctrl-C stops"
            ),
        )
