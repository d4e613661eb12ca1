"""The release table shared by ``warmup validate`` and the sandbox: which revisions Klaviyo
would refuse on a given day."""

from __future__ import annotations

from datetime import date

import pytest

from warmup import klaviyo_revisions as revisions
from warmup.providers.klaviyo.endpoints import REVISION
from warmup.sandbox import revisions as sandbox_revisions

TODAY = date(2026, 12, 1)


@pytest.mark.parametrize(
    ("revision", "today", "problem"),
    [
        ("2026-10-15", TODAY, None),
        ("2025-02-01", TODAY, None),  # served as 2025-01-15, alive until 2027-01-15
        ("2026-11-30.pre", TODAY, None),
        ("2024-12-31", TODAY, "revision 2024-12-31 was retired on 2026-10-15"),
        ("2027-01-15", TODAY, "revision 2027-01-15 is in the future"),
        ("2027-01-15", date(2027, 2, 1), None),  # a release newer than the table: trusted
        ("2021-06-01", TODAY, "older than Klaviyo's first release 2022-10-17"),
        ("2026-02-30", TODAY, "is not a date"),
    ],
)
def test_unusable_revisions(revision: str, today: date, problem: str | None) -> None:
    found = revisions.unusable(revision, today)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_one_table_for_warmup_the_plan_and_the_sandbox() -> None:
    assert REVISION == revisions.STABLE_REVISION == sandbox_revisions.STABLE_REVISION
    assert sandbox_revisions.RELEASES is revisions.RELEASES
