"""What every AWS-compatible sandbox endpoint checks: a SigV4 signature and a request body
against the service's published API model.

The signature is recomputed here from the AWS Signature Version 4 specification with the
standard library's HMAC, independently of botocore (the client signs with botocore; the
sandbox must not share the connector's code, or a signing mistake would pass both sides).
The body is checked against botocore's copy of the service's own API definition
(``botocore/data/<service>/<version>/service-2.json``, the file AWS publishes and the SDKs are
generated from): required members, unknown members, types, lengths and enums.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import quote

_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, ?SignedHeaders=(?P<headers>[a-z0-9;-]+), ?"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
MAX_SKEW = timedelta(minutes=5)


class AwsError(Exception):
    """An AWS-style error reply: HTTP status, error code (``x-amzn-ErrorType``) and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class SignedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lowercased names
    body: bytes


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _canonical_query(query: str) -> str:
    pairs = []
    for part in query.split("&") if query else []:
        name, _, value = part.partition("=")
        pairs.append((name, value))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def verify_sigv4(
    request: SignedRequest,
    secrets: dict[str, str],
    *,
    region: str,
    service: str,
    now: datetime | None = None,
) -> str:
    """The access key id of a correctly signed request; AwsError(403) otherwise."""
    match = _AUTH.match(request.headers.get("authorization", ""))
    if match is None:
        raise AwsError(403, "MissingAuthenticationToken", "Request is missing Authentication Token")
    key_id = match["key"]
    secret = secrets.get(key_id)
    if secret is None:
        raise AwsError(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    if match["region"] != region or match["service"] != service:
        raise AwsError(
            403,
            "SignatureDoesNotMatch",
            f"Credential should be scoped to a valid region ({region}) and service ({service}).",
        )
    stamp = request.headers.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise AwsError(403, "IncompleteSignature", "missing or malformed X-Amz-Date") from None
    if not stamp.startswith(match["date"]):
        raise AwsError(403, "SignatureDoesNotMatch", "credential date differs from X-Amz-Date")
    if abs((now or datetime.now(UTC)) - signed_at) > MAX_SKEW:
        raise AwsError(403, "RequestExpired", "Signature expired: the request is too old")
    signed = match["headers"].split(";")
    if "host" not in signed or any(name not in request.headers for name in signed):
        raise AwsError(403, "SignatureDoesNotMatch", "a signed header is missing")
    canonical_headers = "".join(
        f"{name}:{' '.join(request.headers[name].split())}\n" for name in signed
    )
    payload_hash = hashlib.sha256(request.body).hexdigest()
    declared = request.headers.get("x-amz-content-sha256")
    if declared is not None and declared not in (payload_hash, "UNSIGNED-PAYLOAD"):
        raise AwsError(400, "XAmzContentSHA256Mismatch", "the body does not match its hash")
    canonical = "\n".join(
        [
            request.method,
            quote(request.path, safe="/~"),
            _canonical_query(request.query),
            canonical_headers,
            match["headers"],
            payload_hash,
        ]
    )
    scope = f"{match['date']}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(("AWS4" + secret).encode(), match["date"])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match["signature"]):
        raise AwsError(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    return key_id


@lru_cache(maxsize=4)
def service_model(service: str) -> dict[str, Any]:
    """The service's published API definition, as botocore ships it."""
    from botocore.loaders import create_loader

    model: dict[str, Any] = create_loader().load_service_model(service, "service-2")
    return model


def check_shape(model: dict[str, Any], shape_name: str, value: Any, where: str = "") -> None:
    """AwsError(400, BadRequestException) naming the first member that breaks the model."""
    shape = model["shapes"][shape_name]
    kind = shape["type"]
    label = where or shape_name

    def bad(text: str) -> AwsError:
        return AwsError(400, "BadRequestException", f"{label}: {text}")

    if kind == "structure":
        if not isinstance(value, dict):
            raise bad("expected an object")
        members = shape.get("members", {})
        for name in shape.get("required", []):
            if name not in value:
                raise bad(f"missing required member {name}")
        for name, item in value.items():
            if name not in members:
                raise bad(f"unknown member {name}")
            check_shape(model, members[name]["shape"], item, f"{label}.{name}")
    elif kind == "list":
        if not isinstance(value, list):
            raise bad("expected a list")
        if len(value) < shape.get("min", 0) or len(value) > shape.get("max", len(value)):
            raise bad(f"{len(value)} items is outside the allowed range")
        for index, item in enumerate(value):
            check_shape(model, shape["member"]["shape"], item, f"{label}[{index}]")
    elif kind == "map":
        if not isinstance(value, dict):
            raise bad("expected an object")
        for key, item in value.items():
            check_shape(model, shape["value"]["shape"], item, f"{label}.{key}")
    elif kind == "string":
        if not isinstance(value, str):
            raise bad("expected a string")
        if "enum" in shape and value not in shape["enum"]:
            raise bad(f"{value!r} is not one of {', '.join(shape['enum'])}")
        if len(value) < shape.get("min", 0) or len(value) > shape.get("max", len(value)):
            raise bad("string length is outside the allowed range")
    elif kind == "blob":
        # rest-json carries blobs as base64 text.
        if not isinstance(value, str):
            raise bad("expected base64 text")
        try:
            base64.b64decode(value, validate=True)
        except binascii.Error:
            raise bad("is not valid base64") from None
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad("expected an integer")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise bad("expected true or false")
    elif kind in ("double", "float") and (
        not isinstance(value, int | float) or isinstance(value, bool)
    ):
        raise bad("expected a number")
