"""``warmup sandbox --provider ses|…``: the email API emulators, in the foreground."""

from __future__ import annotations

import typer

from warmup.errors import InvalidInput

PROVIDERS = ("ses", "sendgrid")


def run_api_sandbox(
    provider: str,
    *,
    port: int,
    fast: bool,
    faults: float,
    sns_endpoint: str | None,
    rate: float | None = None,
) -> None:
    if provider not in PROVIDERS:
        raise InvalidInput(
            f"--provider {provider!r} is not one of klaviyo, {', '.join(PROVIDERS)}",
            hint="write --provider ses or --provider sendgrid",
        )
    if provider == "sendgrid":
        _sendgrid(port=port, fast=fast, faults=faults, webhook_url=sns_endpoint, rate=rate)
        return
    from warmup.sandbox.ses import SesSandboxConfig
    from warmup.sandbox.ses_server import RunningSes, serve_ses_forever

    config = SesSandboxConfig(fast=fast, faults=faults)
    if rate is not None:
        config.max_send_rate = rate

    def announce(running: RunningSes) -> None:
        typer.echo(f"SES sandbox on {running.base_url} (region {config.region})")
        typer.echo(f"access key id: {running.access_key_id}")
        # The sandbox's own throwaway secret: printing it is how a rehearsal gets it.
        typer.echo(f"secret access key: {running.secret_access_key}")
        typer.echo(
            f"point the plan at it: providers.new: {{kind: ses, region: {config.region}, "
            f"endpoint_url: {running.base_url}}} and events.sns.trust_url_prefixes_for_tests: "
            f"[{running.base_url}/]"
        )
        if sns_endpoint:
            typer.echo(f"SNS notifications go to {sns_endpoint} once it confirms")

    def unconfirmed(attempts: int, held: int) -> None:
        typer.echo(
            f"SNS subscription to {sns_endpoint} still unconfirmed after {attempts} "
            f"attempt{'s' if attempts > 1 else ''} ({held} notifications held); trying again "
            "— is warmup serve running there?"
        )

    def confirmed(released: int) -> None:
        typer.echo(
            f"SNS subscription to {sns_endpoint} confirmed; {released} held notifications sent"
        )

    serve_ses_forever(
        config,
        port,
        announce,
        sns_endpoint=sns_endpoint,
        on_unconfirmed=unconfirmed,
        on_confirmed=confirmed,
    )


def _sendgrid(
    *, port: int, fast: bool, faults: float, webhook_url: str | None, rate: float | None
) -> None:
    from warmup.sandbox.sendgrid import SendGridSandboxConfig
    from warmup.sandbox.sendgrid_server import RunningSendGrid, serve_sendgrid_forever

    config = SendGridSandboxConfig(fast=fast, faults=faults)
    if rate is not None:
        config.requests_per_second = rate

    def announce(running: RunningSendGrid) -> None:
        typer.echo(f"SendGrid sandbox on {running.base_url}")
        # The sandbox's own throwaway key: printing it is how a rehearsal gets it.
        typer.echo(f"API key: {running.api_key}")
        typer.echo(f"event webhook verification key: {running.public_key}")
        typer.echo(
            f"point the plan at it: providers.new: {{kind: sendgrid, base_url: {running.base_url}}}"
        )
        if webhook_url:
            typer.echo(f"signed events go to {webhook_url}")

    serve_sendgrid_forever(config, port, announce, webhook_url=webhook_url)
