"""Store backends: SQLite (the embedded default) and PostgreSQL, behind one interface.

A new backend is one module here implementing ``Backend`` (base.py), one branch in
``open_backend``, its DDL where it differs in ``store/migrations.py``, and the store tests
(tests/store/) run against it.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from warmup.errors import InvalidInput
from warmup.store.backends.base import Backend, Dialect, Executes, Row

__all__ = [
    "Backend",
    "Dialect",
    "Executes",
    "Row",
    "check_location",
    "is_postgres_url",
    "open_backend",
    "store_location",
]

_URL = re.compile(r"^postgres(ql)?:", re.IGNORECASE)
# pathlib folds "//" into "/": a URL that travelled through a Path (LoadedPlan.store_path)
# comes back as "postgresql:/host/db".
_FOLDED = re.compile(r"^(postgres(?:ql)?:)/(?!/)", re.IGNORECASE)
# Any other "scheme:/" (folded) or "scheme://": a URL of another engine, never a SQLite path
# (two letters at least, so a Windows drive "C:/" stays a path).
_OTHER_URL = re.compile(r"^([a-z][a-z0-9+.-]+):/", re.IGNORECASE)
_HOSTLESS = re.compile(r"^postgres(ql)?:///", re.IGNORECASE)
_FORMS = "a SQLite file path (acme.db) or postgresql://[user@]host[:port]/database"


def check_location(location: Path | str) -> None:
    """Refuse, as invalid input, a store location warmup cannot open as meant: a URL of
    another engine (which would otherwise become a SQLite file in a folder named after its
    scheme), a PostgreSQL URL without a host (after a plan's path folding its database would
    be dialled as the host), or one holding a password."""
    text = str(location)
    if is_postgres_url(text):
        if _HOSTLESS.match(text):
            raise InvalidInput(
                f"the store URL {text} names no host",
                hint="write the server's host, e.g. postgresql://localhost/database "
                "(or 127.0.0.1, or the host of a managed database)",
            )
        if urlsplit(text).password is not None:
            raise InvalidInput(
                "the store URL holds a password",
                hint="remove it from the URL and set PGPASSWORD (or ~/.pgpass), which psycopg "
                "reads: secrets come from the environment, never from plan files or output",
            )
        return
    other = _OTHER_URL.match(text)
    if other:
        scheme = other.group(1).lower()
        shown = text if urlsplit(text).password is None else f"{scheme}://…"
        raise InvalidInput(
            f"the store {shown} is a {scheme} URL, which warmup cannot open",
            hint=f"a store is {_FORMS}"
            + ("; a SQLite store is named by its file path" if scheme == "sqlite" else ""),
        )


def is_postgres_url(location: Path | str) -> bool:
    return bool(_URL.match(str(location)))


def store_location(location: Path | str) -> str:
    """The store's location as text: a SQLite path, or a PostgreSQL URL restored to its
    ``//`` form. A URL must name its host (``postgresql://localhost/db``), since
    ``postgresql:///db`` cannot survive a Path."""
    text = str(location)
    check_location(text)
    return _FOLDED.sub(r"\1//", text) if is_postgres_url(text) else text


def open_backend(location: Path | str) -> Backend:
    text = store_location(location)
    if is_postgres_url(text):
        from warmup.store.backends.postgresql import PostgresBackend

        return PostgresBackend(text)
    from warmup.store.backends.sqlite import SQLiteBackend

    return SQLiteBackend(text)
