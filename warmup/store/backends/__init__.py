"""Store backends: SQLite (the embedded default) and PostgreSQL, behind one interface.

A new backend is one module here implementing ``Backend`` (base.py), one branch in
``open_backend``, its DDL where it differs in ``store/migrations.py``, and the store tests
(tests/store/) run against it.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from warmup.errors import StoreError
from warmup.store.backends.base import Backend, Dialect, Executes, Row

__all__ = [
    "Backend",
    "Dialect",
    "Executes",
    "Row",
    "is_postgres_url",
    "open_backend",
    "store_location",
]

_URL = re.compile(r"^postgres(ql)?:", re.IGNORECASE)
# pathlib folds "//" into "/": a URL that travelled through a Path (LoadedPlan.store_path)
# comes back as "postgresql:/host/db".
_FOLDED = re.compile(r"^(postgres(?:ql)?:)/(?!/)", re.IGNORECASE)


def is_postgres_url(location: Path | str) -> bool:
    return bool(_URL.match(str(location)))


def store_location(location: Path | str) -> str:
    """The store's location as text: a SQLite path, or a PostgreSQL URL restored to its
    ``//`` form. A URL must name its host (``postgresql://localhost/db``), since
    ``postgresql:///db`` cannot survive a Path."""
    text = str(location)
    return _FOLDED.sub(r"\1//", text) if is_postgres_url(text) else text


def open_backend(location: Path | str) -> Backend:
    text = store_location(location)
    if is_postgres_url(text):
        if urlsplit(text).password is not None:
            raise StoreError(
                "the store URL holds a password",
                hint="remove it from the URL and set PGPASSWORD (or ~/.pgpass), which psycopg "
                "reads: secrets come from the environment, never from plan files or output",
            )
        from warmup.store.backends.postgresql import PostgresBackend

        return PostgresBackend(text)
    from warmup.store.backends.sqlite import SQLiteBackend

    return SQLiteBackend(text)
