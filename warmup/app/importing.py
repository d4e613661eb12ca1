"""`warmup import`: load a CSV export into the plan's store (an upsert), and refuse an import
that loaded nothing — an empty export or one whose every row was rejected is a wrong file, not a
success."""

from __future__ import annotations

from pathlib import Path

from warmup.errors import CsvImportError
from warmup.importer import ImportReport, Progress, import_csv
from warmup.plan import LoadedPlan


def import_customers(
    loaded: LoadedPlan,
    csv_file: Path,
    *,
    segment: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    return import_csv(loaded, csv_file, segment=segment, progress=progress)


def refuse_empty(report: ImportReport) -> None:
    """Refuse an import that loaded nothing; called once its report (the rejected rows and
    their reasons) has been shown, which the error points at."""
    if not report.rows_read:
        raise CsvImportError(
            "the file has a header but no rows; nothing was imported",
            file=report.file,
            line=2,
            hint="export the segment again with its customers (is it empty in Klaviyo?)",
        )
    if not report.rows_loaded:
        raise CsvImportError(
            f"every one of its {report.rows_read:,} rows was rejected; nothing was imported",
            file=report.file,
            hint="check the reasons above (is it the right export, with the email column "
            "the plan names under import.columns?)",
        )
