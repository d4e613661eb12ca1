from __future__ import annotations

from pathlib import Path

import typer

from warmup.cli.errors import handle_errors


def register(app: typer.Typer) -> None:
    store_app = typer.Typer(
        name="store",
        help="Work on a plan's store: copy it between SQLite and PostgreSQL.",
        no_args_is_help=True,
    )
    app.add_typer(store_app)

    @store_app.command("copy")
    @handle_errors
    def copy(
        source: str = typer.Argument(
            ..., help="The store to copy: a SQLite file or postgresql://host/database."
        ),
        destination: str = typer.Argument(
            ..., help="Where to: a SQLite file (made if missing) or postgresql://host/database."
        ),
        replace: bool = typer.Option(
            False, "--replace", help="Empty a destination that already holds data first."
        ),
    ) -> None:
        """Copy every table of a store to another one, verified by row counts and checksums.
        A plan in mid-ramp continues on the copy once its `store:` (or WARMUP_STORE) names it;
        the copy shares the Klaviyo lists the source claimed on this machine, so the plan may
        go on from either (a move, or a backup while the source stays live).
        A password belongs in PGPASSWORD, not in the URL."""
        from warmup.dispatch import claims
        from warmup.store.copy import copy_store

        copied = copy_store(source, destination, replace=replace)
        width = max(len(c.table) for c in copied)
        for c in copied:
            typer.echo(f"{c.table:<{width}}  {c.rows:>9} rows  sha256-sum {c.checksum[:16]}")
        total = sum(c.rows for c in copied)
        shared = claims.add_copy(Path(source), Path(destination))
        if shared:
            typer.echo(
                f"the Klaviyo lists {', '.join(shared)} are the copy's too (the same plan's store)"
            )
        typer.echo(
            f"copied {total} rows in {len(copied)} tables to {destination}: "
            "counts and checksums match"
        )
