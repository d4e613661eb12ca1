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


def test_a_list_claimed_after_the_copy_is_shared_too(tmp_path: Path) -> None:
    """A list first claimed after the copy (the unsubscribe list a copy's `serve` makes on the
    first unsubscribe) was the claimer's alone: the live source's consent flow was refused
    "Klaviyo list … belongs to plan 'brand' … from plan 'brand'"."""
    live, copy, other = (tmp_path / f"{n}.db" for n in ("live", "copy", "other"))
    for path in (live, copy, other):
        open_store(path).close()
    assert claims.add_copy(live, copy) == []  # no list claimed yet
    claims.check("NEW1", "brand", copy, take_over=False)
    claims.check("NEW1", "brand", live, take_over=False)  # the source's own plan
    assert claims.held_by_another("NEW1", copy) is None
    claims.check("NEW2", "brand", live, take_over=False)
    claims.check("NEW2", "brand", copy, take_over=False)  # and the other way round
    # a copy of the copy is the same plan too; another plan's store is still refused
    third = tmp_path / "third.db"
    open_store(third).close()
    claims.add_copy(copy, third)
    claims.check("NEW2", "brand", third, take_over=False)
    claims.check("NEW3", "brand", third, take_over=False)
    claims.check("NEW3", "brand", live, take_over=False)
    for list_id in ("NEW1", "NEW2", "NEW3"):
        with pytest.raises(Refused, match="belongs to plan 'brand'"):
            claims.check(list_id, "other-plan", other, take_over=False)


def test_a_store_overwritten_by_another_copy_leaves_its_old_plan(tmp_path: Path) -> None:
    names = ("brand", "backup", "other", "target")
    brand, backup, other, target = (tmp_path / f"{n}.db" for n in names)
    for path in (brand, backup, other, target):
        open_store(path).close()
    claims.add_copy(brand, backup)
    claims.add_copy(brand, target)
    claims.add_copy(other, target)  # `store copy --replace`: target is other's store now
    claims.check("LATER", "brand", brand, take_over=False)
    claims.check("LATER", "brand", backup, take_over=False)  # still the brand's own copy
    with pytest.raises(Refused, match="belongs to plan 'brand'"):
        claims.check("LATER", "other-plan", target, take_over=False)
