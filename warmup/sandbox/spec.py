"""Klaviyo's OpenAPI documents as the sandbox's route table and request validators.

Every operation the sandbox serves comes from a shipped document (``openapi/*.json``, copied
unchanged from klaviyo/openapi): its path, method, scopes, rate-limit tier and request schema.
Bodies are validated with jsonschema against those schemas, never by hand-written checks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import (  # type: ignore[import-untyped]
    ValidationError,
    best_match,
)
from referencing import Registry
from referencing.jsonschema import DRAFT4

OPENAPI_DIR = Path(__file__).parent / "openapi"
_WINDOWS = {"s": 1.0, "m": 60.0, "d": 86400.0}


@dataclass(frozen=True)
class Limit:
    count: int
    window: float


@dataclass(frozen=True)
class Operation:
    op_id: str
    method: str
    template: str
    pattern: re.Pattern[str]
    scopes: tuple[str, ...]
    limits: tuple[Limit, ...]
    validator: Draft4Validator | None


def _parse_limit(text: str) -> Limit:
    count, unit = text.split("/")
    return Limit(int(count), _WINDOWS[unit])


def _openapi30_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable: true`` is not JSON Schema: turn it into a ``null`` type."""
    if isinstance(node, list):
        return [_openapi30_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _openapi30_to_jsonschema(value) for key, value in node.items()}
    if out.pop("nullable", False):
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"]
        elif "$ref" in out:
            out = {"anyOf": [{"$ref": out.pop("$ref")}, {"type": "null"}], **out}
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _inline_refs(node: Any, document: dict[str, Any], uri: str, seen: tuple[str, ...] = ()) -> Any:
    """Resolve the document's local ``$ref``s once (validation is twice as fast without the
    per-item lookups); a recursive reference stays a ``$ref``, made absolute for the registry."""
    if isinstance(node, list):
        return [_inline_refs(item, document, uri, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        if ref in seen:
            return {**node, "$ref": f"{uri}{ref}"}
        target: Any = document
        for part in ref[2:].split("/"):
            target = target[part]
        resolved = _inline_refs(target, document, uri, (*seen, ref))
        rest = {k: _inline_refs(v, document, uri, seen) for k, v in node.items() if k != "$ref"}
        return {"allOf": [resolved, rest]} if rest else resolved
    return {key: _inline_refs(value, document, uri, seen) for key, value in node.items()}


def _path_regex(template: str) -> re.Pattern[str]:
    # Klaviyo's links carry a trailing slash while current paths have none: accept both.
    body = re.sub(r"\{[^}]+\}", r"(?P<\g<0>>[^/]+)", template.rstrip("/"))
    body = body.replace("<{", "<").replace("}>", ">")
    return re.compile(f"^{body}/?$")


@lru_cache(maxsize=1)
def operations() -> tuple[Operation, ...]:
    """Every operation of the shipped documents."""
    found: list[Operation] = []
    for file in sorted(OPENAPI_DIR.glob("*.json")):
        document = _openapi30_to_jsonschema(json.loads(file.read_text(encoding="utf-8")))
        uri = f"urn:klaviyo:{file.name}"
        registry = Registry().with_resource(uri, DRAFT4.create_resource(document))
        for template, methods in document["paths"].items():
            for method, op in methods.items():
                if not isinstance(op, dict) or "operationId" not in op:
                    continue
                validator = None
                content = op.get("requestBody", {}).get("content", {})
                for media in content.values():
                    ref = media["schema"]["$ref"]
                    validator = Draft4Validator(
                        _inline_refs({"$ref": ref}, document, uri), registry=registry
                    )
                rate = op.get("x-klaviyo-ratelimit", {})
                limits = tuple(
                    _parse_limit(rate[key]) for key in ("burst", "steady", "daily") if key in rate
                )
                found.append(
                    Operation(
                        op["operationId"],
                        method.upper(),
                        template,
                        _path_regex(template),
                        tuple(op.get("x-klaviyo-scopes", [])),
                        limits,
                        validator,
                    )
                )
    # Fixed paths before templated ones: /api/profiles/{id} must not swallow a longer path.
    return tuple(sorted(found, key=lambda o: (o.template.count("{"), -len(o.template))))


def match(method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
    """The operation serving ``METHOD path`` and its path parameters, or None."""
    for op in operations():
        if op.method != method:
            continue
        found = op.pattern.match(path)
        if found:
            return op, found.groupdict()
    return None


def path_exists(path: str) -> bool:
    return any(op.pattern.match(path) for op in operations())


def first_error(op: Operation, body: Any) -> ValidationError | None:
    """The most relevant schema violation of ``body``, or None when it is valid."""
    if op.validator is None:
        return None
    return best_match(op.validator.iter_errors(body))
