"""Signed unsubscribe tokens: the email address plus an HMAC over (plan, email).

A token names its customer (so the one-click endpoint needs no lookup table) and cannot be
forged or moved to another customer or plan without the secret. Tokens never expire: an
unsubscribe link in a months-old email must still work (RFC 8058 asks for that).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os

from warmup.errors import InvalidInput

log = logging.getLogger(__name__)

# 128 bits of HMAC-SHA256: far beyond guessing, and keeps the URL short.
_MAC_BYTES = 16
# Used only where nothing real is sent (file provider, dry runs), never for SMTP.
REHEARSAL_SECRET = b"warmup-rehearsal-secret-not-for-production"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, plan_name: str, email: str) -> bytes:
    message = f"unsubscribe\0{plan_name}\0{email}".encode()
    return hmac.new(secret, message, hashlib.sha256).digest()[:_MAC_BYTES]


def make_token(secret: bytes | str, plan_name: str, email: str) -> str:
    """The URL-safe token for one customer of one plan (``email`` as stored: lowercased)."""
    key = secret.encode() if isinstance(secret, str) else secret
    return f"{_b64(email.encode())}.{_b64(_mac(key, plan_name, email))}"


def verify_token(secret: bytes | str, plan_name: str, token: str) -> str | None:
    """The email a token was made for, or None when it is malformed or not signed by us."""
    key = secret.encode() if isinstance(secret, str) else secret
    encoded_email, _, encoded_mac = token.strip().partition(".")
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


def unsubscribe_url(base_url: str, token: str) -> str:
    """``https://…/unsubscribe?token=…`` (``&token=`` when the base already has a query)."""
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}token={token}"


def unsubscribe_secret(env_name: str, *, rehearsal: bool) -> bytes:
    """The HMAC secret from ``env_name``. Missing: an error, or for rehearsals (file provider,
    dry run) a fixed rehearsal secret and a warning — links made with it must never go out."""
    value = os.environ.get(env_name)
    if value:
        return value.encode()
    if rehearsal:
        log.warning(
            "%s is not set: unsubscribe links use a rehearsal secret and will not "
            "verify in production",
            env_name,
        )
        return REHEARSAL_SECRET
    raise InvalidInput(
        f"environment variable {env_name} is not set: it holds the secret that signs "
        "unsubscribe links",
        hint=f"export {env_name}=<a long random string> (the consent service needs the same "
        "value), e.g. `export " + env_name + "=$(openssl rand -hex 32)`",
    )
