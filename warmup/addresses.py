"""Which email addresses warmup accepts, and which of them the new provider may mail.

Klaviyo refuses more than the plain ``local@domain`` shape: dots at the edges of the local part
or two in a row, and control or bidirectional-override characters anywhere (a U+202E in an
address shows the reader a different address than the one mailed). An address Klaviyo refuses
can never be verified in its exclusion list, so the importer refuses it with the reason.

A non-ASCII local part (``sofía@…``) needs SMTPUTF8 end to end and some Klaviyo accounts refuse
it. Such customers are imported, but the allocation keeps them on Klaviyo: they never take a
slot of the day's new-provider limit.
"""

from __future__ import annotations

import re

# One search finds every kind of problem, so a valid address costs a single regex pass.
_REFUSED = re.compile(
    r"\.\.|^\.|\.@|[\x00-\x1f\x7f\x80-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"
)
_SHAPE = re.compile(
    r"^[^@\s\"(),:;<>\[\\\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)


def refused(email: str) -> bool:
    """True when Klaviyo refuses ``email`` although it has the ``local@domain`` shape."""
    return _REFUSED.search(email) is not None


def problem(email: str) -> str | None:
    """Why ``email`` (trimmed, lower-cased) cannot be imported, or None when it can."""
    local, at, _ = email.partition("@")
    if not at or _SHAPE.match(email) is None:
        return "invalid email"
    if len(email) > 254 or len(local) > 64:
        return "invalid email: longer than 254 characters or a local part over 64"
    found = _REFUSED.search(email)
    if found is None:
        return None
    text = found.group()
    if text == "..":
        return "invalid email: two dots in a row (Klaviyo refuses it)"
    if text == ".@":
        return "invalid email: the part before @ ends with a dot (Klaviyo refuses it)"
    if text == ".":
        return "invalid email: starts with a dot (Klaviyo refuses it)"
    return f"invalid email: contains the invisible character U+{ord(text):04X} (Klaviyo refuses it)"


def is_valid(email: str) -> bool:
    return problem(email) is None


def international(email: str) -> bool:
    """A local part with non-ASCII characters: only SMTPUTF8 relays carry it."""
    return not email.partition("@")[0].isascii()
