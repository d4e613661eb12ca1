from __future__ import annotations

import os
from pathlib import Path

import typer

from warmup.cli.errors import handle_errors
from warmup.errors import InvalidInput

# Kept in step with warmup.sandbox.revisions (tests/sandbox/test_sandbox_fidelity.py); not
# imported from there so that the CLI starts without loading the sandbox's server stack.
HELP = (
    "Run a Klaviyo-compatible API on loopback for rehearsals; Ctrl-C stops it.\n\n"
    "Revisions: every live one up to Klaviyo's current stable 2026-10-15 is accepted (a date "
    "between releases is served as the release before it; a revision retired two years after "
    "its date gets 410) and answered with the shapes of revision 2026-07-15, those of the "
    "OpenAPI documents it ships."
)


def register(app: typer.Typer) -> None:
    @app.command(help=HELP)
    @handle_errors
    def sandbox(
        port: int = typer.Option(8710, "--port", help="Port on 127.0.0.1 (0 = any free one)."),
        faults: float = typer.Option(
            0.0,
            "--faults",
            min=0.0,
            max=1.0,
            help="Share of requests answered with a 429, a 500, a "
            "slow reply or a dropped connection, e.g. 0.2.",
        ),
        state: Path | None = typer.Option(
            None, "--state", help="JSON file keeping the sandbox's data across restarts."
        ),
        fast: bool = typer.Option(
            False,
            "--fast",
            help="Time ×100: Klaviyo's rate-limit counts over 10 ms and 0.6 s windows, jobs "
            "done in milliseconds (tests, demos).",
        ),
        strict: bool = typer.Option(
            False,
            "--strict",
            help="Behave like a strict account: 404 for unknown profile ids, refuse "
            "non-ASCII local parts.",
        ),
        meddle: float = typer.Option(
            0.0,
            "--meddle",
            min=0.0,
            max=1.0,
            help="Share of list adds another client follows with an edit (drops a member or "
            "changes a member's email), e.g. 0.05.",
        ),
        api_key_env: str | None = typer.Option(
            None,
            "--api-key-env",
            help="Accept the key in this environment variable instead of a new random one.",
        ),
        provider: str = typer.Option(
            "klaviyo",
            "--provider",
            help="Which API to emulate: klaviyo, ses (Amazon SES v2 with its SNS topic) "
            "or sendgrid (v3 Mail Send with its signed Event Webhook).",
        ),
        sns_endpoint: str | None = typer.Option(
            None,
            "--events-to",
            "--sns-endpoint",
            help="With --provider ses|sendgrid: where events go (warmup serve's "
            "/webhooks/ses or /webhooks/sendgrid).",
        ),
        rate: float | None = typer.Option(
            None,
            "--rate",
            help="With --provider ses: the account's max send rate (messages/s); "
            "sendgrid: requests/s. Before --fast's ×100.",
        ),
    ) -> None:
        """Run a Klaviyo-compatible API on loopback for rehearsals; Ctrl-C stops it."""
        if provider != "klaviyo":
            from warmup.cli.sandbox_apis import run_api_sandbox

            run_api_sandbox(
                provider,
                port=port,
                fast=fast,
                faults=faults,
                sns_endpoint=sns_endpoint,
                rate=rate,
            )
            return
        from warmup.sandbox import SandboxConfig, serve_forever

        config = SandboxConfig(faults=faults, fast=fast, state=state, strict=strict, meddle=meddle)
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise InvalidInput(f"environment variable {api_key_env} is not set or is empty")
            config.api_key = key

        def announce(base_url: str) -> None:
            typer.echo(f"Klaviyo sandbox on {base_url}")
            # A key the sandbox made is a throwaway (printing it is how a rehearsal gets it);
            # one taken from the environment may be a real account's, so it is only named
            shown = f"from ${api_key_env}" if api_key_env else config.api_key
            typer.echo(f"API key: {shown}")
            typer.echo(f"point the plan at it: providers.klaviyo.base_url: {base_url}")

        from warmup.serving import PortUnavailable

        try:
            serve_forever(config, port, announce)
        except PortUnavailable as exc:
            raise InvalidInput(str(exc), hint=exc.hint) from None
