"""Signed unsubscribe tokens that reveal nothing about the person they unsubscribe.

A token is ``u`` + base64url(sealed customer id ‖ MAC), where the MAC is an HMAC over
(plan, email) and the customer id (the store's row id) is masked with a keystream derived
from the secret and that MAC (a synthetic-IV construction, stdlib only). It names no address:
`warmup serve` unmasks the id, looks the email up in the store and checks the MAC, so a token
cannot be forged, moved to another customer or plan, or read without the secret. The same
customer always gets the same token (a message's links are stable across retries).

Tokens of the first format (``base64(email).MAC``, which carried the address readably) stay
valid: links in mail already sent must keep working during the migration (RFC 8058 asks
for links that do not expire).

Nothing public ever signs a token: the secret comes from the plan's environment variable or,
for rehearsals without one, from a random secret made for the store (a file beside it, 0600).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path

from warmup.errors import InvalidInput

log = logging.getLogger(__name__)

# 128 bits of HMAC-SHA256: far beyond guessing, and keeps the URL short.
_MAC_BYTES = 16
_ID_BYTES = 8
_PREFIX = "u"
# Store row ids are positive SQLite integers; an unmasked id outside that range comes from a
# forged or damaged token and is refused before any lookup.
_MAX_ID = 2**63 - 1
SECRET_FILE_SUFFIX = ".unsubscribe-secret"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(secret: bytes | str) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _mac(secret: bytes, plan_name: str, email: str) -> bytes:
    message = f"unsubscribe\0{plan_name}\0{email}".encode()
    return hmac.new(secret, message, hashlib.sha256).digest()[:_MAC_BYTES]


def _mask(secret: bytes, mac: bytes) -> bytes:
    return hmac.new(secret, b"unsubscribe-id-mask\0" + mac, hashlib.sha256).digest()[:_ID_BYTES]


def make_token(
    secret: bytes | str, plan_name: str, email: str, customer_id: int | None = None
) -> str:
    """The URL-safe token for one customer of one plan (``email`` as stored: lowercased).

    With ``customer_id`` (every link that is sent): the opaque form. Without it, the first
    format, kept for callers that have no store row (links that are never sent)."""
    key = _key(secret)
    mac = _mac(key, plan_name, email)
    if customer_id is None:
        return f"{_b64(email.encode())}.{_b64(mac)}"
    sealed = bytes(
        a ^ b for a, b in zip(customer_id.to_bytes(_ID_BYTES, "big"), _mask(key, mac), strict=True)
    )
    return _PREFIX + _b64(sealed + mac)


def verify_token(
    secret: bytes | str,
    plan_name: str,
    token: str,
    email_of: Callable[[int], str | None] | None = None,
) -> str | None:
    """The email a token was made for, or None when it is malformed or not signed by us.
    ``email_of(customer_id)`` looks an opaque token's customer up (in the store)."""
    key = _key(secret)
    token = token.strip()
    if "." not in token:
        return _verify_opaque(key, plan_name, token, email_of)
    encoded_email, _, encoded_mac = token.partition(".")
    if not encoded_email or not encoded_mac:
        return None
    try:
        email = _unb64(encoded_email).decode()
        given = _unb64(encoded_mac)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not hmac.compare_digest(given, _mac(key, plan_name, email)):
        return None
    return email


def _verify_opaque(
    key: bytes, plan_name: str, token: str, email_of: Callable[[int], str | None] | None
) -> str | None:
    if email_of is None or not token.startswith(_PREFIX):
        return None
    try:
        raw = _unb64(token[len(_PREFIX) :])
    except (binascii.Error, ValueError):
        return None
    if len(raw) != _ID_BYTES + _MAC_BYTES:
        return None
    sealed, mac = raw[:_ID_BYTES], raw[_ID_BYTES:]
    customer_id = int.from_bytes(
        bytes(a ^ b for a, b in zip(sealed, _mask(key, mac), strict=True)), "big"
    )
    # The MAC covers the email, so it can only be checked after the lookup; the lookup is
    # bounded to ids the store can hold, and a miss costs the same as a wrong MAC.
    if not 1 <= customer_id <= _MAX_ID:
        return None
    email = email_of(customer_id)
    if email is None or not hmac.compare_digest(mac, _mac(key, plan_name, email)):
        return None
    return email


def unsubscribe_url(base_url: str, token: str) -> str:
    """``https://…/unsubscribe?token=…`` (``&token=`` when the base already has a query)."""
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}token={token}"


def secret_file_for(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + SECRET_FILE_SUFFIX)


def store_secret(store_path: Path) -> bytes:
    """This store's own random unsubscribe secret, made on first use: a file beside the store,
    readable by its owner only. Never printed or logged."""
    path = secret_file_for(store_path)
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    value = secrets.token_hex(32).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(value)
    return value


def unsubscribe_secret(
    env_name: str,
    *,
    rehearsal: bool,
    store_path: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> bytes:
    """The HMAC secret from the variable ``env_name`` of ``env`` (the process environment when
    None). Missing: an error, or for rehearsals (file provider, dry run) the store's own random
    secret (a new random one when there is no store: such links are never sent) and a warning
    naming the variable."""
    value = (os.environ if env is None else env).get(env_name)
    if value:
        return value.encode()
    if rehearsal:
        log.warning(
            "%s is not set: unsubscribe links are signed with this store's own random "
            "secret; set it before mailing for real",
            env_name,
        )
        return store_secret(store_path) if store_path is not None else secrets.token_bytes(32)
    raise InvalidInput(
        f"environment variable {env_name} is not set: it holds the secret that signs "
        "unsubscribe links",
        hint=f"export {env_name}=<a long random string> (the consent service needs the same "
        "value), e.g. `export " + env_name + "=$(openssl rand -hex 32)`",
    )
