"""Checks shared by every CSV warmup reads (customer exports, event exports)."""

from __future__ import annotations

import stat
from pathlib import Path

from warmup.errors import CsvImportError


def refuse_non_regular(path: Path) -> None:
    """A device, pipe or folder is refused before reading: ``/dev/zero`` has no line end, and
    a CSV reader would hold ever more of it in memory."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # opening it says what is wrong (not found, no permission)
    if not stat.S_ISREG(mode):
        raise CsvImportError(
            "not a regular file (a folder, a device or a pipe)",
            file=path,
            hint="name the exported .csv file itself (copy a stream to a file first)",
        )
