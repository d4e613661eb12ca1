from __future__ import annotations

import json
from enum import StrEnum

import typer

from warmup.cli.errors import handle_errors


class SchemaKind(StrEnum):
    plan = "plan"
    scenario = "scenario"


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def schema(
        kind: SchemaKind = typer.Argument(..., help="plan or scenario"),
    ) -> None:
        """Print the JSON Schema of plan or scenario files, for editor autocompletion."""
        from warmup.plan import Plan, Scenario

        model = Plan if kind is SchemaKind.plan else Scenario
        document = model.model_json_schema(by_alias=True)
        document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        document["title"] = f"warmup {kind.value} file"
        typer.echo(json.dumps(document, indent=2, sort_keys=True))
