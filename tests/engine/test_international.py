"""Whoever the new provider cannot mail (a non-ASCII local part) stays on Klaviyo and takes no
slot of the day's limit."""

from __future__ import annotations

from pathlib import Path

import pendulum

from tests.support.storefill import fill_store, table, write_plan
from warmup.engine import run_day
from warmup.plan import load_plan
from warmup.plan.calendar import day_date
from warmup.store import open_store


def test_international_addresses_stay_on_klaviyo_and_use_no_slot(
    tmp_path: Path, store_path: Path
) -> None:
    fill_store(store_path, 300, seed=4)
    store = open_store(store_path)
    store.conn.execute(
        "UPDATE customers SET email = 'sofía.' || email WHERE id IN "
        "(SELECT id FROM customers ORDER BY last_engaged_at DESC LIMIT 30)"
    )
    store.close()
    loaded = load_plan(write_plan(tmp_path, days=[40, "all"]))
    for day in (1, 2):
        when = day_date(loaded.plan, day)
        run_day(
            loaded,
            day,
            now=pendulum.datetime(when.year, when.month, when.day, 23, tz=loaded.plan.timezone),
        )
        new = table(
            store_path,
            "SELECT c.email FROM allocations a JOIN customers c ON c.id = a.customer_id "
            "WHERE a.day = ? AND a.provider = 'new'",
            (day,),
        )
        assert new and not any("sofía" in str(email) for (email,) in new)
        if day == 1:  # the 30 most engaged are international: the slots go to the next 40
            assert len(new) == 40
