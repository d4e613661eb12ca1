from __future__ import annotations

import os
import socket
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from warmup.app.demo import run_demo
from warmup.cli import app
from warmup.dispatch.klaviyo import client_for
from warmup.errors import InvalidInput
from warmup.plan import LoadedPlan, load_plan
from warmup.providers.klaviyo.lists import find_list, iter_members
from warmup.store import open_store

runner = CliRunner()


def _refused(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, port)) != 0


@pytest.mark.slow
def test_demo_runs_three_days_for_real(tmp_path: Path) -> None:
    workspace = tmp_path / "demo"
    excluded: dict[int, set[str]] = {}
    urls: list[str] = []

    def say(line: str) -> None:
        if line.startswith("sandbox"):
            urls.append(line.split()[-1])

    def after_day(loaded: LoadedPlan, day: int) -> None:
        # While the sandbox still runs: what Klaviyo's exclusion list holds after the day. The
        # key is the plan's own setting: the demo hands it down, os.environ never holds it.
        assert "KLAVIYO_API_KEY" not in os.environ
        with closing(client_for(loaded)) as client:
            list_id = find_list(client, "Warmup exclusions")
            assert list_id is not None
            excluded[day] = {str(m.email) for m in iter_members(client, list_id)}

    result = run_demo(directory=workspace, customers=400, days=3, say=say, after_day=after_day)
    assert [d.status for d in result.days] == ["completed"] * 3
    assert [d.new for d in result.days] == [50, 50, 100]
    assert result.sink_messages == sum(d.delivered for d in result.days) == 200
    store = open_store(workspace / "demo.db", create=False)
    try:
        for day in (1, 2, 3):
            new = {
                str(e)
                for (e,) in store.conn.execute(
                    "SELECT c.email FROM allocations a JOIN customers c ON c.id = a.customer_id "
                    "WHERE a.day = ? AND a.provider = 'new'",
                    (day,),
                )
            }
            mailed = {
                str(e)
                for (e,) in store.conn.execute(
                    "SELECT c.email FROM outbox o JOIN customers c ON c.id = o.customer_id "
                    "WHERE o.day = ? AND o.kind = 'email' AND o.status = 'sent'",
                    (day,),
                )
            }
            # Klaviyo skips exactly the customers the new provider mailed that day.
            assert mailed == new == excluded[day], day
    finally:
        store.close()
    assert result.status is not None
    assert result.status.next_action.startswith("day 4 is due")
    assert "Funnel of day 3" in result.report_path.read_text()
    # the demo's secrets and store override are gone with it
    assert "KLAVIYO_API_KEY" not in os.environ
    assert os.environ["WARMUP_STORE"] != str(workspace / "demo.db")
    host, port = urls[0].removeprefix("http://").split(":")
    assert _refused(host, int(port))


def test_demo_stops_its_servers_on_ctrl_c(tmp_path: Path) -> None:
    seen: dict[str, str] = {}

    def say(line: str) -> None:
        key, _, rest = line.partition(" ")
        seen[key] = rest.strip()
        if key == "imported":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_demo(directory=tmp_path / "d", customers=50, days=1, say=say)
    sandbox_host, sandbox_port = seen["sandbox"].split()[-1].removeprefix("http://").split(":")
    sink_host, sink_port = seen["smtp"].split()[-1].split(":")
    assert _refused(sandbox_host, int(sandbox_port))
    assert _refused(sink_host, int(sink_port))
    assert "KLAVIYO_API_KEY" not in os.environ


def test_demo_command_prints_the_table_and_report(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["demo", "--dir", str(tmp_path / "w"), "--customers", "120", "--days", "1", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("plan acme-newsletter (Europe/Prague)")
    assert f"report: {tmp_path / 'w' / 'report.html'}" in result.output
    assert "  1  " in result.output and "completed" in result.output
    loaded = load_plan(tmp_path / "w" / "demo.yaml")
    assert loaded.plan.providers.klaviyo.base_url.startswith("http://127.0.0.1:")


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [({"days": 15}, "--days"), ({"days": 0}, "--days"), ({"customers": 0}, "--customers")],
)
def test_demo_rejects_bad_options(tmp_path: Path, kwargs: dict[str, int], named: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        run_demo(directory=tmp_path, **kwargs)  # type: ignore[arg-type]
    assert named in caught.value.render()


def test_demo_refuses_a_used_workspace(tmp_path: Path) -> None:
    (tmp_path / "demo.db").write_text("")
    result = runner.invoke(app, ["demo", "--dir", str(tmp_path), "--quiet"])
    assert result.exit_code == 2
    assert str(tmp_path / "demo.db") in result.output and "--dir" in result.output
