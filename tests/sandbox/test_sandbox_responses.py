"""Every answer the sandbox gives, checked against the response schema of its operation's
OpenAPI document, closed where the document allows it (no invented fields): successes of all
operations (the SDK pass), then every kind of refusal — schema 400s, unknown fields and query
values, 401, 403, 404, 405, 409, 410 and 404 revisions, real 429s, injected 429/500 faults."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from jsonschema import Draft4Validator  # type: ignore[import-untyped]
from klaviyo_api import KlaviyoAPI  # type: ignore[import-untyped]
from starlette.types import Message, Receive, Scope, Send

import warmup.sandbox.app as sandbox_app
from tests.sandbox.sandbox_sdk_scenario import drive_every_operation
from warmup import serving
from warmup.sandbox import SandboxApp, SandboxConfig, spec
from warmup.sandbox.revisions import STABLE_REVISION as REVISION


@dataclass
class Answer:
    method: str
    path: str
    status: int
    body: bytes


@dataclass
class Recorder:
    """ASGI wrapper keeping every answer the sandbox sends."""

    app: SandboxApp
    answers: list[Answer] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        answer = Answer(scope["method"], scope["path"], 0, b"")

        async def keep(message: Message) -> None:
            # Kept before it is sent: the client may read the answer before the app returns.
            if message["type"] == "http.response.start":
                answer.status = message["status"]
                self.answers.append(answer)
            elif message["type"] == "http.response.body":
                answer.body += message.get("body", b"")
            await send(message)

        await self.app(scope, receive, keep)


@contextmanager
def recorded(config: SandboxConfig) -> Iterator[tuple[str, SandboxApp, Recorder]]:
    sock = serving.bind("127.0.0.1", 0)
    base_url = serving.base_url(sock, "127.0.0.1")
    app = SandboxApp(config, base_url)
    recorder = Recorder(app)
    with serving.serve_in_thread(recorder, sock, name="recorded-sandbox"):
        yield base_url, app, recorder


# Any operation's document holds Klaviyo's shared ClientError / ServerError shapes.
_ANY = spec.operations()[0]


def check(answer: Answer) -> str:
    """Validate one answer; returns the schema's key ("200", "4XX", …) for the tallies."""
    found = spec.match(answer.method, answer.path)
    op = found[0] if found else _ANY
    key = str(answer.status)
    if key not in op.responses and found and key in ("202", "204") and not answer.body:
        return key  # documented bodiless answers (202 of the jobs without a job, 204)
    key = key if key in op.responses else f"{answer.status // 100}XX"
    assert key in op.responses, f"{answer.method} {answer.path}: {answer.status} undocumented"
    document = json.loads(answer.body)
    validators = [op.responses[key]]
    if not _has_all_of(op.responses[key].schema):
        # Closed as well: the sandbox may not invent fields. (Where the documents merge objects
        # with allOf, closing each part would refuse the other's fields: those stay open.)
        validators.append(_closed(op.responses[key]))
    errors = [
        e
        for validator in validators
        for e in validator.iter_errors(document)
        if not _null_link(e) and not _real_error_extras(e)
    ]
    assert not errors, f"{answer.method} {answer.path} {answer.status}: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors
    )
    return key


_CLOSED: dict[int, Draft4Validator] = {}


def _closed(validator: Draft4Validator) -> Draft4Validator:
    if id(validator) not in _CLOSED:
        schema = spec.closed_schema(validator.schema)
        _CLOSED[id(validator)] = Draft4Validator(schema, registry=validator._registry)
    return _CLOSED[id(validator)]


def _has_all_of(node: Any) -> bool:
    if isinstance(node, dict):
        return "allOf" in node or any(_has_all_of(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_all_of(v) for v in node)
    return False


def _real_error_extras(error: Any) -> bool:
    """Real error objects also carry an integer ``status``, ``links`` and ``meta``
    (klaviyo-api.md §1) that ClientError does not list."""
    path = list(error.absolute_path)
    if error.validator != "additionalProperties" or path[:1] != ["errors"] or len(path) != 2:
        return False
    return set(error.instance) - set(error.schema.get("properties", {})) <= {
        "status",
        "links",
        "meta",
    }


def _null_link(error: Any) -> bool:
    """``links.next``/``prev`` are null on the last/first page: Klaviyo sends null
    (klaviyo-api.md §3, klaviyo-api-python #6) where the documents say string."""
    path = list(error.absolute_path)
    return error.instance is None and path[-2:-1] == ["links"] and path[-1] in ("next", "prev")


class FrozenTime:
    """The rate-limit clock stopped mid-window: the 11th call in a 10/s tier is a 429."""

    @staticmethod
    def monotonic() -> float:
        return 1000.5


def refusals(base_url: str, api_key: str, read_only_key: str) -> None:
    headers = {"Authorization": f"Klaviyo-API-Key {api_key}", "revision": REVISION}
    with httpx.Client(base_url=base_url, headers=headers) as client:
        unknown = {"data": {"type": "profile", "attributes": {"favorite_color": "red"}}}
        assert client.post("/api/profiles", json=unknown).status_code == 400
        assert client.post("/api/profiles", content=b"{not json").status_code == 400
        body = {"data": {"type": "profile", "attributes": {"email": "x@example.com"}}}
        assert client.post("/api/profiles", json=body).status_code == 201
        assert client.post("/api/profiles", json=body).status_code == 409
        assert client.get("/api/profiles/NOPE").status_code == 404
        assert client.get("/api/nothing-here").status_code == 404
        assert client.put("/api/lists").status_code == 405
        assert client.get("/api/lists", params={"page[size]": "11"}).status_code == 400
        assert client.get("/api/lists", params={"fields[list]": "colour"}).status_code == 400
        assert client.get("/api/lists", headers={"revision": "2024-10-15"}).status_code == 410
        assert client.get("/api/lists", headers={"revision": "2027-01-15"}).status_code == 404
        assert client.get("/api/lists", headers={"revision": "soon"}).status_code == 400
        assert client.get("/api/lists", headers={"Authorization": "Bearer x"}).status_code == 401
        read_only = {"Authorization": f"Klaviyo-API-Key {read_only_key}"}
        assert client.post("/api/lists", json={}, headers=read_only).status_code == 403


def test_every_answer_matches_its_openapi_response_schema(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = SandboxConfig(fast=True, seed=5)
    with recorded(config) as (base_url, _, recorder):
        drive_every_operation(KlaviyoAPI(config.api_key, max_retries=1, test_host=base_url))
        refusals(base_url, config.api_key, config.read_only_key)
        answers = list(recorder.answers)
    with recorded(SandboxConfig(fast=True, faults=1.0, seed=15)) as (base_url, app, recorder):
        headers = {"Authorization": f"Klaviyo-API-Key {app.config.api_key}", "revision": REVISION}
        with httpx.Client(base_url=base_url, headers=headers) as client:
            for _ in range(4):  # seed 15: 429, 429, 500, 500
                # An injected dropped connection leaves no answer to check.
                with contextlib.suppress(httpx.TransportError):
                    client.get("/api/lists")
        answers += [a for a in recorder.answers if a.body]
    monkeypatch.setattr(sandbox_app, "time", FrozenTime)
    with recorded(SandboxConfig(seed=4)) as (base_url, app, recorder):
        headers = {"Authorization": f"Klaviyo-API-Key {app.config.api_key}", "revision": REVISION}
        with httpx.Client(base_url=base_url, headers=headers) as client:
            statuses = [client.get("/api/metrics").status_code for _ in range(11)]
        assert statuses[-1] == 429
        answers += recorder.answers

    tallies: dict[str, set[int]] = {}
    for answer in answers:
        tallies.setdefault(check(answer), set()).add(answer.status)
    seen = {answer.status for answer in answers}
    assert {200, 201, 202, 204, 400, 401, 403, 404, 405, 409, 410, 429, 500} <= seen, seen
    served = {op.op_id for op in spec.operations()}
    checked = {found[0].op_id for a in answers if (found := spec.match(a.method, a.path))}
    assert served == checked
