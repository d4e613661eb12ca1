from __future__ import annotations

from pathlib import Path

import typer

from warmup.cli.errors import handle_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def sample(
        count: int = typer.Argument(..., min=1, help="How many rows to generate."),
        out: Path = typer.Option(..., "--out", "-o", help="Where to write the CSV."),
        seed: int = typer.Option(0, "--seed", help="Same seed, same file."),
    ) -> None:
        """Write a deterministic synthetic Klaviyo-style export (with a few bad rows)."""
        from warmup.app.sample import write_sample_csv

        write_sample_csv(out, count, seed=seed)
        typer.echo(f"wrote {count:,} rows to {out}")
