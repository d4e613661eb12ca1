"""Klaviyo's OpenAPI documents as the sandbox's route table and request validators.

Every operation the sandbox serves comes from a shipped document (``openapi/*.json``, copied
unchanged from klaviyo/openapi): its path, method, scopes, rate-limit tier and request schema.
Bodies are validated with jsonschema against those schemas, never by hand-written checks. The
documents leave their objects open but Klaviyo refuses a field it does not know (400, "'x' is
not a valid field for the resource 'profile'."), so request schemas are closed here
(``closed_schema``): free-form objects (``properties`` of a profile or event) stay open.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
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
    responses: dict[str, Draft4Validator]
    query: dict[str, dict[str, Any]]
    # ``filter``'s allowed field -> operators, read from the parameter's description.
    filters: dict[str, frozenset[str]] = field(default_factory=dict)


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


def closed_schema(node: Any) -> Any:
    """Every object schema that lists its properties refuses any other (Klaviyo's behaviour)."""
    if isinstance(node, list):
        return [closed_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: closed_schema(value) for key, value in node.items()}
    props = out.get("properties")
    if isinstance(props, dict) and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


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
                        closed_schema(_inline_refs({"$ref": ref}, document, uri)),
                        registry=registry,
                    )
                responses = {
                    status: Draft4Validator(
                        _inline_refs(media["schema"], document, uri), registry=registry
                    )
                    for status, answer in op.get("responses", {}).items()
                    for media in _response(answer, document).get("content", {}).values()
                }
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
                        responses,
                        {
                            param["name"]: param.get("schema", {})
                            for param in op.get("parameters", [])
                            if param.get("in") == "query"
                        },
                        allowed_filters(op.get("parameters", [])),
                    )
                )
    # Fixed paths before templated ones: /api/profiles/{id} must not swallow a longer path.
    return tuple(sorted(found, key=lambda o: (o.template.count("{"), -len(o.template))))


_ALLOWED = re.compile(r"`([^`]+)`: ((?:`[a-z-]+`(?:, )?)+)")


def allowed_filters(parameters: list[dict[str, Any]]) -> dict[str, frozenset[str]]:
    """The documents list a ``filter``'s fields and operators only in prose ("Allowed
    field(s)/operator(s):<br>`email`: `any`, `equals`<br>…"); this reads that list."""
    for param in parameters:
        if param.get("in") == "query" and param.get("name") == "filter":
            text = str(param.get("description", ""))
            _, _, listed = text.partition("Allowed field(s)/operator(s):")
            return {
                name: frozenset(re.findall(r"`([a-z-]+)`", ops))
                for name, ops in _ALLOWED.findall(listed)
            }
    return {}


def _response(answer: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    ref = answer.get("$ref")
    if isinstance(ref, str):
        target: Any = document
        for part in ref[2:].split("/"):
            target = target[part]
        return dict(target)
    return answer


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


def describe(error: ValidationError, body: Any) -> tuple[str, str]:
    """Klaviyo's ``detail`` and ``source.pointer`` for a schema violation of ``body``."""
    path = [str(part) for part in error.absolute_path]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = error.schema.get("properties", {})
        unknown = sorted(key for key in error.instance if key not in allowed)
        if unknown:
            pointer = "/" + "/".join([*path, unknown[0]])
            resource = _resource_name(body, path)
            return f"'{unknown[0]}' is not a valid field for the resource '{resource}'.", pointer
    pointer = "/" + "/".join(path)
    return f"The payload provided in the request is invalid: {error.message}", pointer


def _resource_name(body: Any, path: list[str]) -> str:
    """The JSON:API type owning an object (its own ``type`` or its parent's for ``attributes``),
    else the object's own key, as Klaviyo names it ('content', 'location')."""
    chain: list[Any] = [body]
    for part in path:
        node = chain[-1]
        chain.append(node[int(part)] if isinstance(node, list) else node[part])
    owner = chain[-2] if path and path[-1] == "attributes" else chain[-1]
    if isinstance(owner, dict) and isinstance(owner.get("type"), str):
        return str(owner["type"])
    named = [part for part in path if not part.isdigit()]
    return named[-1] if named else "document"
