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
    """Why ``email`` (trimmed, lower-cased) cannot be imported, and what to write instead; None
    when it can."""
    local, at, _ = email.partition("@")
    found = _REFUSED.search(email)
    if (not at or _SHAPE.match(email) is None) and (
        found is None or found.group() in (".", "..", ".@")
    ):
        return _shape_problem(email)
    if len(email) > 254 or len(local) > 64:
        return "invalid email: longer than 254 characters or a local part over 64"
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


def _shape_problem(email: str) -> str:
    local, at, domain = email.partition("@")
    if not at:
        return "invalid email: no @ (write local@domain, e.g. jana@example.com)"
    if not local:
        return "invalid email: nothing before the @ (write local@domain)"
    if "@" in domain:
        return "invalid email: more than one @ (write a single address, local@domain)"
    if not domain:
        return "invalid email: nothing after the @ (write the domain, e.g. example.com)"
    if not domain.isascii():
        try:
            ascii_form = domain.encode("idna").decode("ascii")
        except UnicodeError:
            ascii_form = "its xn-- form"
        # not converted on import: Klaviyo holds the profile under the address as exported,
        # and a converted address would be another profile, never excluded
        return (
            f"invalid email: the domain {domain!r} is internationalised (non-ASCII); write the "
            f"address as Klaviyo holds it, in ASCII form ({local}@{ascii_form}) if that is how "
            "the profile was created there"
        )
    if ".." in domain or domain.startswith(".") or domain.endswith("."):
        return (
            "invalid email: the domain has an empty part (two dots in a row, or a dot at an "
            "end); write it as name.tld, e.g. example.com"
        )
    if any(label.startswith("-") or label.endswith("-") for label in domain.split(".")):
        return "invalid email: a part of the domain starts or ends with a hyphen (remove it)"
    if "." not in domain:
        return f"invalid email: the domain {domain!r} has no dot (write e.g. {domain}.com)"
    return (
        "invalid email: a character an address may not hold (spaces, quotes, brackets, commas; "
        "the domain only letters, digits, hyphens and dots)"
    )


# The common address (lower-case ASCII, dots only between characters, a dotted domain of
# letters, digits and inner hyphens) is valid by one match; anything else gets `problem`'s full
# check. A subset of what `problem` accepts: the import checks every row. A domain label is
# letters and digits with hyphens only between them; the possessive quantifiers never give a
# character back, where backtracking into each label cost a third of the match (issue 16).
_LABEL = r"[a-z0-9]++(?:-++[a-z0-9]++)*+"
_COMMON = re.compile(rf"[a-z0-9_+-]++(?:\.[a-z0-9_+-]++)*+@{_LABEL}(?:\.{_LABEL})++")


def is_valid(email: str) -> bool:
    if _COMMON.fullmatch(email) is not None and len(email) <= 254 and email.find("@") <= 64:
        return True
    return problem(email) is None


def international(email: str) -> bool:
    """A local part with non-ASCII characters: only SMTPUTF8 relays carry it."""
    return not email.partition("@")[0].isascii()
