"""``warmup sandbox --provider ses|…``: the email API emulators, in the foreground."""

from __future__ import annotations

import typer

from warmup.errors import InvalidInput

PROVIDERS = ("ses",)


def run_api_sandbox(
    provider: str, *, port: int, fast: bool, faults: float, sns_endpoint: str | None
) -> None:
    if provider not in PROVIDERS:
        raise InvalidInput(
            f"--provider {provider!r} is not one of klaviyo, {', '.join(PROVIDERS)}",
            hint="write --provider ses",
        )
    from warmup.sandbox.ses import SesSandboxConfig
    from warmup.sandbox.ses_server import RunningSes, serve_ses_forever

    config = SesSandboxConfig(fast=fast, faults=faults)

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

    serve_ses_forever(config, port, announce, sns_endpoint=sns_endpoint)
