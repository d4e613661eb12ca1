"""`warmup init`: scaffold a working plan folder — plan, scenario and the templates it needs.

The ramp is geometric: a small first day growing by the same factor each day up to the end
volume, which is how warm-up guides describe mailbox providers learning a new sender.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from warmup.clock import is_zone_name, local_today
from warmup.errors import InvalidInput
from warmup.plan.loader import LoadedPlan, load_plan
from warmup.plan.resources import bundled_dir

PLAN_FILE = "plan.yaml"
SCENARIO_FILE = "scenario.yaml"
START_COUNT = 50
START_PERCENT = 1.0
_NAME_BAD = re.compile(r"[^A-Za-z0-9_.-]+")
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")


@dataclass(frozen=True)
class EndVolume:
    """``all``, a count (``5000``) or a share of the eligible audience (``50%``)."""

    count: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, text: str) -> EndVolume:
        text = text.strip()
        if text == "all":
            return cls(percent=100.0)
        try:
            if text.endswith("%"):
                percent = float(text[:-1])
                if 0 < percent <= 100:
                    return cls(percent=percent)
            elif int(text) > 0:
                return cls(count=int(text))
        except ValueError:
            pass
        raise InvalidInput(
            f"--end-volume {text!r} is not a volume",
            hint="write all, a number of customers like 20000, or a share like 50%",
        )


def ramp(days: int, end: EndVolume) -> list[int | str]:
    """Each day's ``new:`` value, geometric from a small start to ``end`` (reached on the last
    day), never decreasing."""
    if days < 1:
        raise InvalidInput("--days must be at least 1", hint="pass --days 14 for a typical ramp")
    if end.count is not None:
        start = min(START_COUNT, end.count)
        factor = (end.count / start) ** (1 / (days - 1)) if days > 1 else 1.0
        counts = [round(start * factor**i) for i in range(days)]
        counts[-1] = end.count
        return [max(counts[: i + 1]) for i in range(days)]
    assert end.percent is not None
    start_pct = min(START_PERCENT, end.percent)
    factor = (end.percent / start_pct) ** (1 / (days - 1)) if days > 1 else 1.0
    values: list[int | str] = []
    for i in range(days):
        pct = end.percent if i == days - 1 else start_pct * factor**i
        values.append(_percent_text(pct))
    if end.percent == 100.0:
        values[-1] = "all"
    return values


def _percent_text(pct: float) -> str:
    # One decimal where it matters (the first days), whole numbers later: readable in YAML.
    return f"{pct:.1f}%" if pct < 10 else f"{round(pct)}%"


# Variant 2 mails each template on this many days in a row; the seed starts the warm-up that
# many days before Klaviyo's campaign (X = the days one template is used).
VARIANT_2_REUSE_DAYS = 2
# Seed 004, variant 2: "Days 4-14 … check the #558 Already in exclusion list node".
VARIANT_2_EXCLUSION_FIRST_DAY = 4


def template_for_day(variant: int, day: int) -> str:
    """Variant 1 mails a new template every day; variant 2 reuses each one for two days."""
    index = day if variant == 1 else (day + VARIANT_2_REUSE_DAYS - 1) // VARIANT_2_REUSE_DAYS
    return f"day-{index:02d}"


def _variant_rules(variant: int, days: int) -> str:
    if variant == 1:
        return ""
    first = (
        f"  exclusion_first_from_day: {VARIANT_2_EXCLUSION_FIRST_DAY}"
        "   # #558: the already-excluded go first from this day\n"
        if days >= VARIANT_2_EXCLUSION_FIRST_DAY
        # `validate` refuses a day that never comes, and no setting means "never": left out,
        # said why, for the team to decide
        else f"  # exclusion_first_from_day: {VARIANT_2_EXCLUSION_FIRST_DAY} (the seed's) is "
        f"past this {days}-day ramp: left out, #558 puts the already-excluded first every day\n"
    )
    return (
        first + f"  klaviyo_lead_days: {VARIANT_2_REUSE_DAYS}"
        "          # days before Klaviyo's campaign = days one template is used\n"
    )


def _bundled_email(name: str) -> Path:
    """The shipped email template a scaffolded one is copied from (the 14 shipped ones cycle)."""
    shipped = sorted((bundled_dir("templates") / "email").glob("day-*.j2"))
    index = int(name.removeprefix("day-"))
    return shipped[(index - 1) % len(shipped)]


def plan_text(
    *, name: str, variant: int, timezone: str, start: date, ramp_values: list[int | str]
) -> str:
    days = "\n".join(
        f"    - {{day: {i}, new: {_yaml_volume(v)}, template: {template_for_day(variant, i)}}}"
        for i, v in enumerate(ramp_values, start=1)
    )
    return f"""\
# Written by `warmup init`. Check it with `warmup validate {PLAN_FILE}`.
name: {name}
timezone: {timezone}
start_date: {start.isoformat()}
scenario: {SCENARIO_FILE}          # the Bloomreach warm-up scenario, variant {variant}
templates: templates

sender:
  from: "Newsletter <news@send.example.com>"      # the new provider's sending domain
  reply_to: "care@example.com"

unsubscribe:
  url: https://example.com/unsubscribe
  mailto: unsubscribe@example.com
  secret_env: WARMUP_UNSUBSCRIBE_SECRET   # name of the variable holding the signing secret

providers:
  new:
    kind: smtp                             # or {{kind: file, directory: out/}} to rehearse
    host: smtp.example.com
    port: 587
    tls: starttls
    username_env: WARMUP_SMTP_USER
    password_env: WARMUP_SMTP_PASSWORD
    max_connections: 4
    rate_per_second: 50
  klaviyo:
    api_key_env: KLAVIYO_API_KEY           # the NAME of the variable, never the key
    base_url: https://a.klaviyo.com
    revision: "2026-10-15"
    exclusion_list: {{name: "Warmup exclusions {name}"}}     # one list per plan
    unsubscribe_list: {{name: "Warmup unsubscribes {name}"}}
    list_mode: force_add

schedule:
  send_time: "10:00"
  skip_weekdays: []
  skip_dates: []
{_variant_rules(variant, len(ramp_values))}  days:
{days}

guardrails:
  min_sample: 200
  hold: {{hard_bounce_rate: 0.02, complaint_rate: 0.001, delivered_rate_below: 0.90}}
  rollback: {{hard_bounce_rate: 0.05, complaint_rate: 0.003, rollback_days: 2}}

import:
  segment: engaged-90
"""


def _yaml_volume(value: int | str) -> str:
    return str(value) if isinstance(value, int) or value == "all" else f'"{value}"'


def _check_options(name: str | None, timezone: str) -> None:
    # Checked before anything is written, so a typo never leaves a half-made folder behind.
    if name is not None and not _NAME_OK.match(name):
        raise InvalidInput(
            f"--name {name!r} is not a plan name",
            hint="use letters, digits, . _ - (starting with a letter or digit)",
        )
    if not is_zone_name(timezone):
        raise InvalidInput(
            f"--timezone {timezone!r} is not a time zone",
            hint="write an IANA name like Europe/Prague or America/New_York",
        )


def default_name(directory: Path) -> str:
    cleaned = _NAME_BAD.sub("-", directory.resolve().name).strip("-._")
    return cleaned or "warmup-plan"


def scaffold_plan(
    directory: Path | str,
    *,
    variant: int = 1,
    days: int = 14,
    end_volume: str = "all",
    timezone: str = "Europe/Prague",
    start_date: date | None = None,
    name: str | None = None,
    force: bool = False,
) -> LoadedPlan:
    """Write ``plan.yaml``, ``scenario.yaml`` and ``templates/`` into ``directory``; return the
    plan as loaded and validated. Existing files are refused unless ``force``."""
    directory = Path(directory)
    if variant not in (1, 2):
        raise InvalidInput(
            f"--variant {variant} does not exist",
            hint="pass --variant 1 (a new template daily) or --variant 2",
        )
    values = ramp(days, EndVolume.parse(end_volume))
    _check_options(name, timezone)
    # Tomorrow where the plan sends, whatever the machine's own zone says.
    start = start_date or local_today(timezone) + timedelta(days=1)
    text = plan_text(
        name=name or default_name(directory),
        variant=variant,
        timezone=timezone,
        start=start,
        ramp_values=values,
    )
    shipped = bundled_dir("templates")
    copies: dict[Path, Path] = {
        directory / SCENARIO_FILE: bundled_dir("scenarios") / f"variant-{variant}.yaml",
    }
    # Every Klaviyo webhook template (they include each other) and the emails' shared partials
    # (`_footer.txt.j2`, layouts) travel with the day templates.
    for source in [
        *sorted((shipped / "klaviyo").glob("*.j2")),
        *sorted((shipped / "email").glob("_*.j2")),
    ]:
        copies[directory / "templates" / source.parent.name / source.name] = source
    for day in range(1, days + 1):
        template = template_for_day(variant, day)
        copies[directory / "templates" / "email" / f"{template}.j2"] = _bundled_email(template)
    targets = [directory / PLAN_FILE, *copies]
    if not force:
        for target in targets:
            if target.exists():
                raise InvalidInput(
                    f"{target} already exists",
                    hint="pass --force to overwrite it, or choose another DIR",
                )
    for target, source in copies.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    (directory / PLAN_FILE).write_text(text, encoding="utf-8")
    return load_plan(directory / PLAN_FILE)
