"""Hostile plans and scenarios: each is refused with `FILE:LINE:COL: what — what to write`,
exit 2, never "unexpected" (a corpus found these accepted, or crashing with exit 1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from warmup.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

BASE = """\
name: hostile
timezone: Europe/Prague
start_date: 2026-12-01
scenario: {scenario}
templates: {templates}
sender:
  from: "Acme News <news@send.acme.example>"
unsubscribe:
  url: https://acme.example/unsubscribe
providers:
  new: {{kind: file, directory: out}}
  klaviyo:
    revision: "2026-07-15"
    exclusion_list: {{name: x}}
    unsubscribe_list: {{name: u}}
schedule:
  skip_dates: []
  days:
    - {{day: 1, new: 50, template: day-01}}
"""


def write(tmp: Path, replace: tuple[str, str] | None = None, *, scenario: str = "") -> Path:
    text = BASE.format(
        scenario=scenario or REPO / "scenarios" / "variant-1.yaml",
        templates=REPO / "templates",
    )
    if replace is not None:
        assert replace[0] in text, replace
        text = text.replace(*replace)
    plan = tmp / "plan.yaml"
    plan.write_text(text, encoding="utf-8")
    return plan


def refused(plan: Path, where: str, *texts: str) -> str:
    result = runner.invoke(app, ["validate", str(plan)])
    out = result.output
    assert result.exit_code == 2, out
    assert "unexpected" not in out and "Traceback" not in out, out
    assert where in out, out
    for text in texts:
        assert text in out, out
    return out


def test_the_base_plan_is_valid(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(write(tmp_path))])
    assert result.exit_code == 0, result.output


# (id, (old, new) in the base plan, where the error points, words it holds)
CASES = [
    ("impossible-date", ("start_date: 2026-12-01", "start_date: 2026-13-45"), ":3:13", "date"),
    ("impossible-skip-date", ("skip_dates: []", "skip_dates: [2026-02-30]"), ":17:16", "date"),
    ("unknown-tag", ("name: hostile", "name: !custom hostile"), ":1:7", "tag"),
    ("revision-word", ('revision: "2026-07-15"', "revision: yesterday"), ":13:15", "revision"),
    ("new-true", ("new: 50,", "new: true,"), ":19:21", "number"),
    (
        "sender-not-address",
        ('"Acme News <news@send.acme.example>"', "not an address"),
        ":7:",
        "email",
    ),
    (
        "unsubscribe-javascript",
        ("https://acme.example/unsubscribe", "javascript:alert(1)"),
        ":9:",
        "https",
    ),
    ("unsubscribe-http", ("https://acme.example/", "http://acme.example/"), ":9:", "https"),
]


@pytest.mark.parametrize(("name", "change", "where", "word"), CASES, ids=[c[0] for c in CASES])
def test_hostile_values_are_located(
    tmp_path: Path, name: str, change: tuple[str, str], where: str, word: str
) -> None:
    plan = write(tmp_path, change)
    refused(plan, f"{plan}{where}", word, " — ")


def test_alias_bomb_is_bounded(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]")
    plan = write(tmp_path)
    plan.write_text(plan.read_text() + "\n".join(lines) + "\n", encoding="utf-8")
    refused(plan, f"{plan}:", "aliases")


def test_a_huge_file_is_refused_before_reading(tmp_path: Path) -> None:
    plan = write(tmp_path)
    with plan.open("a", encoding="utf-8") as handle:
        handle.write("# " + "x" * (2 * 1024 * 1024) + "\n")
    refused(plan, str(plan), "at most")


@pytest.mark.parametrize(
    ("name", "payload", "where"),
    [
        ("latin-1", "name: caf\xe9".encode("latin-1"), ":1:10"),
        ("nul", b"name: hos\x00tile", ":1:10"),
        ("binary", b"\x89PNG\r\n\x1a\n\x00\x00", ":1:1"),
    ],
)
def test_bad_bytes_are_located(tmp_path: Path, name: str, payload: bytes, where: str) -> None:
    plan = write(tmp_path)
    plan.write_bytes(payload + b"\n" + plan.read_bytes().split(b"\n", 1)[1])
    refused(plan, f"{plan}{where}", " — ")


def test_store_that_cannot_be_a_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WARMUP_STORE")
    (tmp_path / "folder").mkdir()
    (tmp_path / "notes.txt").write_text("not a database", encoding="utf-8")
    for store, word in (
        (tmp_path / "folder", "folder"),
        ("/dev/null", "regular file"),
        (tmp_path / "notes.txt", "not a SQLite"),
    ):
        plan = write(tmp_path, ("templates:", f"store: {store}\ntemplates:"))
        refused(plan, f"{plan}:5:8", word)


def test_store_env_that_cannot_be_a_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARMUP_STORE", str(tmp_path))
    refused(write(tmp_path), "WARMUP_STORE", "folder")


def _scenario(tmp: Path, old: str, new: str) -> Path:
    text = (REPO / "scenarios" / "variant-1.yaml").read_text(encoding="utf-8")
    assert old in text
    path = tmp / "scenario.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.parametrize(
    ("template", "word"),
    [("missing.json.j2", "does not exist"), ("../../../etc/passwd", "outside the templates")],
)
def test_scenario_template_errors_are_blamed_on_the_scenario(
    tmp_path: Path, template: str, word: str
) -> None:
    scenario = _scenario(
        tmp_path, "template: klaviyo/add-profiles-to-list.json.j2", f"template: {template}"
    )
    plan = write(tmp_path, scenario=str(scenario))
    out = refused(plan, f"{scenario}:{_line_of(scenario, template)}:", word)
    assert f"{plan}:" not in out


@pytest.mark.parametrize(
    ("name", "change", "where", "word"),
    [
        ("far-start", ("start_date: 2026-12-01", "start_date: 9999-12-31"), ":3:13", "future"),
        (
            "every-weekday",
            ("skip_dates: []", "skip_dates: []\n  skip_weekdays: [mon,tue,wed,thu,fri,sat,sun]"),
            ":18:",
            "every weekday",
        ),
        ("nul-template", ("template: day-01}", 'template: "day-01\\0"}'), ":19:", "file name"),
        ("long-template", ("template: day-01}", f"template: {'d' * 300}}}"), ":19:", "file name"),
        (
            "unsubscribe-fragment",
            ("https://acme.example/unsubscribe", "https://acme.example/unsubscribe#top"),
            ":9:",
            "fragment",
        ),
        ("name-pattern", ("name: hostile", "name: -my plan!"), ":1:7", "write 1 to 80 letters"),
        ("name-long", ("name: hostile", f"name: {'n' * 81}"), ":1:7", "write 1 to 80 letters"),
    ],
)
def test_more_hostile_values_are_located(
    tmp_path: Path, name: str, change: tuple[str, str], where: str, word: str
) -> None:
    plan = write(tmp_path, change)
    refused(plan, f"{plan}{where}", word, " — ")


def test_a_nul_in_a_scenario_template_name_is_located(tmp_path: Path) -> None:
    scenario = _scenario(
        tmp_path,
        "template: klaviyo/add-profiles-to-list.json.j2",
        'template: "klaviyo/add\\0.json.j2"',
    )
    plan = write(tmp_path, scenario=str(scenario))
    refused(plan, f"{scenario}:{_line_of(scenario, 'add')}:", "file name")


def _own_templates(tmp: Path) -> Path:
    import shutil

    copy = tmp / "templates"
    shutil.copytree(REPO / "templates", copy)
    return copy


@pytest.mark.parametrize("which", ["email/day-01.j2", "klaviyo/add-profiles-to-list.json.j2"])
def test_a_template_that_is_not_utf8_is_located(tmp_path: Path, which: str) -> None:
    templates = _own_templates(tmp_path)
    (templates / which).write_bytes(b"ok line\n\xffbad\n")
    plan = write(tmp_path, ("templates: " + str(REPO / "templates"), f"templates: {templates}"))
    refused(plan, f"{templates / which}:2:1", "0xFF", "UTF-8")


@pytest.mark.parametrize(
    ("body", "word"),
    [("{{ profiles | nosuchfilter }}", "nosuchfilter"), ("not json at all {{ 1 }}", "JSON")],
)
def test_webhook_templates_are_rendered_at_validate(tmp_path: Path, body: str, word: str) -> None:
    templates = _own_templates(tmp_path)
    hook = templates / "klaviyo" / "add-profiles-to-list.json.j2"
    hook.write_text(body + "\n", encoding="utf-8")
    plan = write(tmp_path, ("templates: " + str(REPO / "templates"), f"templates: {templates}"))
    refused(plan, str(hook), word, " — ")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_devices_are_refused_without_reading_them(tmp_path: Path, device: str) -> None:
    refused(Path(device), device, "regular file")
    refused(write(tmp_path, scenario=device), device, "regular file")
