"""Query parameters checked against the operation's OpenAPI document, as Klaviyo checks them:
a sparse fieldset, ``include``, ``additional-fields`` or ``sort`` value the document does not
list is a 400 whose ``source`` names the parameter (``{"parameter": "fields[profile]"}``).

A ``filter`` may name only the fields and operators its description lists (``check_filter``;
the same 400 with ``{"parameter": "filter"}``). Unknown parameter *names* are left alone:
Klaviyo's answer to them is unconfirmed, and the handlers refuse what they cannot honour (page
sizes, cursors, malformed filters)."""

from __future__ import annotations

from typing import Any

from warmup.sandbox.handlers import ApiError, parse_filter


class ParameterError(ApiError):
    """A 400 ``invalid`` pointing at a query parameter instead of the body."""

    def document(self) -> dict[str, Any]:
        document = super().document()
        document["errors"][0]["source"] = {"parameter": self.pointer}
        return document


def _refuse(name: str, detail: str) -> ParameterError:
    return ParameterError(400, "invalid", "Invalid input.", detail, name)


def check(parameters: dict[str, dict[str, Any]], query: dict[str, str]) -> None:
    """Raise Klaviyo's 400 for the first listed-value parameter holding an unlisted value."""
    for name, raw in query.items():
        schema = parameters.get(name)
        if schema is None:
            continue
        if schema.get("type") == "array" and "enum" in schema.get("items", {}):
            allowed = schema["items"]["enum"]
            for value in raw.split(","):
                if value not in allowed:
                    resource = name[name.find("[") + 1 : -1] if "[" in name else name
                    if name.startswith("fields["):
                        detail = f"'{value}' is not a valid field for the resource '{resource}'."
                    elif name == "include":
                        detail = f"'{value}' is not a valid relationship; allowed: {allowed}."
                    else:
                        detail = f"'{value}' is not a valid value for '{name}'; allowed: {allowed}."
                    raise _refuse(name, detail)
        elif "enum" in schema and raw not in schema["enum"]:
            raise _refuse(
                name, f"'{raw}' is not a valid value for '{name}'; allowed: {schema['enum']}."
            )


def check_filter(allowed: dict[str, frozenset[str]], query: dict[str, str]) -> None:
    """Refuse a ``filter`` term whose field or operator the document does not list."""
    if not allowed or "filter" not in query:
        return
    for op, fld, _ in parse_filter(query["filter"]):
        if op not in allowed.get(fld, frozenset()):
            raise _refuse("filter", f"'{op}' is not a valid operator for '{fld}'.")
