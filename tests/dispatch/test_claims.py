"""The list-claim registry treats a store and its verified copies as one plan.

`warmup store copy` used to move the source's claims to the copy: after a backup (source still
live) the plan's own next run from the source was refused as "another plan's" list, and the
consent flow of the live `serve` replicas with it, until someone passed --claim.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from warmup.dispatch import claims
from warmup.errors import Refused
from warmup.store import open_store


def test_a_copy_and_its_source_both_keep_the_claim(tmp_path: Path) -> None:
    live, backup, other = (tmp_path / f"{n}.db" for n in ("live", "backup", "other"))
    for path in (live, backup, other):
        open_store(path).close()
    claims.check("LIST1", "brand", live, take_over=False)

    assert claims.add_copy(live, backup) == ["LIST1"]
    assert claims.add_copy(live, backup) == []  # copied again: nothing new to share
    # the backup, then the live store again, then the backup: one plan, never refused
    for store in (backup, live, backup):
        claims.check("LIST1", "brand", store, take_over=False)
        assert claims.held_by_another("LIST1", store) is None
    held = claims.owner("LIST1")
    assert held is not None and held["store"] == str(backup.resolve())
    assert held["copies"] == [str(live.resolve())] and "before" not in held

    # another plan's store is still refused, by both members of the family's claim
    with pytest.raises(Refused, match="belongs to plan 'brand'"):
        claims.check("LIST1", "other-plan", other, take_over=False)
    assert claims.held_by_another("LIST1", other) == held

    # taken over knowingly: both of the brand's stores are protected earlier holders now
    claims.check("LIST1", "other-plan", other, take_over=True)
    taken = claims.owner("LIST1")
    assert taken is not None and taken["store"] == str(other.resolve())
    assert sorted(taken["before"]) == sorted([str(live.resolve()), str(backup.resolve())])
    assert "copies" not in taken
    assert claims.held_by_another("LIST1", live) == taken
