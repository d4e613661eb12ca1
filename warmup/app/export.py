"""`warmup export`: one store table as CSV or JSON, for auditing a migration outside warmup.

Rows come from the store (``store.tables.read_table``: the table's own columns, primary-key
order, streamed), so a store of any size exports in constant memory, from SQLite and PostgreSQL
alike. Values are written as stored: times in the store's one format, JSON payloads as their
text.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from warmup.errors import InvalidInput

if TYPE_CHECKING:
    from warmup.plan import LoadedPlan

# What an audit reads; the store's bookkeeping (locks, meta, migrations, path ids) is not.
TABLES = (
    "journeys",
    "outbox",
    "customers",
    "allocations",
    "days",
    "runs",
    "consents",
    "consent_changes",
    "events",
    "klaviyo_lists",
    "klaviyo_members",
    "imports",
    "segment_members",
)
FORMATS = ("csv", "json")


# SQLite keeps a store's recent writes beside it; overwriting them loses them as surely.
_STORE_SIDE_FILES = ("-wal", "-shm", "-journal")


def refuse_own_files(loaded: LoadedPlan, output: Path) -> None:
    """Refuse an ``--output`` that is the plan file or its store (or the store's side files):
    opening it for writing would replace what the export is about to read."""
    store = loaded.store_path
    own = {
        loaded.path: "the plan file",
        loaded.scenario_path: "the plan's scenario file",
        store: "the plan's store",
    }
    own.update({Path(f"{store}{suffix}"): "the plan's store" for suffix in _STORE_SIDE_FILES})
    for path, what in own.items():
        if _same_file(output, path):
            raise InvalidInput(
                f"--output {output} is {what} ({path}): exporting into it would overwrite it",
                hint="pass --output a new file outside the store, e.g. outbox.csv",
            )


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:  # another name for the same file: a hard link or a bind mount
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): not the same file
        return False


def export_table(loaded: LoadedPlan, table: str, fmt: str, out: TextIO) -> int:
    """Write every row of ``table`` to ``out`` as ``fmt``; the number of rows written."""
    if table not in TABLES:  # the CLI offers only these; a library caller gets a clear error
        raise ValueError(f"table {table!r} is not one of {', '.join(TABLES)}")
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    # here: the CLI imports TABLES at every start, and the store's imports cost time
    from warmup.store import open_store
    from warmup.store.tables import read_table

    with closing(open_store(loaded.store_path, create=False)) as store:
        columns, rows = read_table(store, table)
        if fmt == "csv":
            return _write_csv(rows, columns, out)
        return _write_json(rows, columns, out)


def _write_csv(rows: Iterable[Sequence[Any]], columns: list[str], out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return count


def _write_json(rows: Iterable[Sequence[Any]], columns: list[str], out: TextIO) -> int:
    # One array, a row per line: valid JSON that is also easy to read and diff.
    count = 0
    out.write("[")
    for row in rows:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False, default=str))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
