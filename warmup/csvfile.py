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


def first_bad_byte(path: Path) -> tuple[int, int, int] | None:
    """(line, column, byte) of the first byte that is not UTF-8, read in bounded chunks: a
    text reader decodes ahead of the CSV parser, so its line count says nothing about where."""
    line, line_start, offset, carry = 1, 0, 0, b""
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 16):
            data = carry + chunk
            try:
                data.decode("utf-8")
                good, carry = len(data), b""
            except UnicodeDecodeError as exc:
                if exc.reason == "unexpected end of data" and len(data) - exc.start < 4:
                    good, carry = exc.start, data[exc.start :]  # a character split by the chunk
                else:
                    good = exc.start
                    line += data.count(b"\n", 0, good)
                    last = data.rfind(b"\n", 0, good)
                    if last >= 0:
                        line_start = offset + last + 1
                    return line, offset + good - line_start + 1, data[good]
            line += data.count(b"\n", 0, good)
            last = data.rfind(b"\n", 0, good)
            if last >= 0:
                line_start = offset + last + 1
            offset += good
    return (line, offset - line_start + 1, carry[0]) if carry else None


def not_utf8(path: Path) -> CsvImportError:
    """The error for a CSV that is not UTF-8, at the line and column of its first bad byte."""
    where = first_bad_byte(path)
    if where is None:
        return CsvImportError(
            "not UTF-8 text",
            file=path,
            hint="save it as UTF-8 (CSV UTF-8 in Excel) and import again",
        )
    line, column, byte = where
    return CsvImportError(
        f"byte 0x{byte:02X} is not UTF-8 text (the file is in another encoding, "
        "such as Latin-1 or Windows-1252)",
        file=path,
        line=line,
        column=column,
        hint='save it as UTF-8 ("CSV UTF-8" in Excel, or iconv -f cp1252 -t utf-8) and '
        "import again",
    )
