"""Pydantic models of a plan file: what to ramp, on which days, through which providers.

Plans never name code and never hold secrets: credentials are *names* of environment variables.
Unknown keys are rejected everywhere (``extra="forbid"``).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Literal

import pendulum
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from warmup.providers.klaviyo import revisions as klaviyo_revisions
from warmup.providers.klaviyo.endpoints import REVISION as KLAVIYO_REVISION
from warmup.providers.klaviyo.endpoints import REVISION_FORMAT

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_LOCAL_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


EnvName = Annotated[str, Field(description="Name of an environment variable (never the value)")]


def _check_env_name(value: str | None) -> str | None:
    if value is not None and not _ENV_NAME.match(value):
        raise ValueError(
            f"{value!r} is not an environment variable name — write its NAME in capitals, "
            "like KLAVIYO_API_KEY; never put the secret itself in a plan"
        )
    return value


class SmtpProvider(StrictModel):
    kind: Literal["smtp"]
    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    tls: Literal["none", "starttls", "implicit"] = "starttls"
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    max_connections: int = Field(default=4, ge=1, le=64)
    rate_per_second: float = Field(default=50, gt=0)
    timeout_seconds: float = Field(default=30, gt=0)
    verify_tls: bool = True

    _env = field_validator("username_env", "password_env")(_check_env_name)


class FileProvider(StrictModel):
    kind: Literal["file"]
    directory: str = "outbox-eml"


NewProvider = Annotated[SmtpProvider | FileProvider, Field(discriminator="kind")]


class ListRef(StrictModel):
    """A Klaviyo list: by ``id``, by ``name`` (found or created; ``{date}`` and ``{day}`` are
    filled in), or one id ``per_day``."""

    id: str | None = None
    name: str | None = None
    per_day: dict[int, str] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ListRef:
        given = [k for k in ("id", "name", "per_day") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of `id:` (a list id like Y6nRLr), `name:` "
                "(found or created) or `per_day:` (day number → list id)"
            )
        return self


class KlaviyoProvider(StrictModel):
    api_key_env: EnvName = "KLAVIYO_API_KEY"
    base_url: str = "https://a.klaviyo.com"
    revision: str = KLAVIYO_REVISION
    exclusion_list: ListRef
    unsubscribe_list: ListRef
    # subscribe: consent flows through Klaviyo's subscription jobs (Lytics' default);
    # force_add: plain list membership, consent untouched (Lytics' "Force Add to List").
    list_mode: Literal["force_add", "subscribe"] = "force_add"
    # Also unsubscribe consent-rejects through Klaviyo's subscription API (not only the list).
    unsubscribe_via_api: bool = False
    # Per-endpoint rate limits divided by this, e.g. 0.5 to leave half the account's budget.
    rate_share: float = Field(default=1.0, gt=0, le=1)
    # A day's exclusions stay in a shared list until the day has ended in the plan's timezone
    # plus this many hours (Klaviyo campaigns scheduled late in the evening still send).
    exclusion_margin_hours: float = Field(default=2.0, ge=0, le=48)

    _env = field_validator("api_key_env")(_check_env_name)

    @field_validator("revision")
    @classmethod
    def _revision_format(cls, value: str) -> str:
        if not REVISION_FORMAT.match(value):
            raise ValueError(
                f"{value!r} is not a Klaviyo revision — write a release date such as "
                f'"{KLAVIYO_REVISION}" (YYYY-MM-DD)'
            )
        # Klaviyo refuses a retired or future revision on every call: catch it before day 1.
        problem = klaviyo_revisions.unusable(value, datetime.now(UTC).date())
        if problem is not None:
            raise ValueError(f'{problem} — write "{KLAVIYO_REVISION}" (the current stable one)')
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                f"{value!r} is not a URL — write https://a.klaviyo.com or the "
                "sandbox's http://127.0.0.1:PORT"
            )
        return value.rstrip("/")


class Providers(StrictModel):
    new: NewProvider
    klaviyo: KlaviyoProvider


class Sender(StrictModel):
    from_: str = Field(alias="from")
    reply_to: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Unsubscribe(StrictModel):
    url: str = "https://example.invalid/unsubscribe"
    mailto: str | None = None
    secret_env: EnvName = "WARMUP_UNSUBSCRIBE_SECRET"

    _env = field_validator("secret_env")(_check_env_name)


Volume = int | str


class DaySettings(StrictModel):
    day: int = Field(ge=1)
    new: Volume = Field(
        description="New provider's customer limit: a number, a percentage of "
        "the eligible audience like '20%', or 'all'"
    )
    template: str | None = None
    send_time: str | None = None

    @field_validator("new")
    @classmethod
    def _volume(cls, value: Volume) -> Volume:
        if isinstance(value, bool):
            raise ValueError("write a number, a percentage like '20%', or 'all'")
        if isinstance(value, int):
            if value < 0:
                raise ValueError("a limit cannot be negative")
            return value
        text = value.strip()
        if text == "all":
            return text
        match = _PERCENT.match(text)
        if match and 0 <= float(match.group(1)) <= 100:
            return text
        raise ValueError(
            f"{value!r} is not a volume — write a number like 5000, a percentage "
            "like '20%' (0–100), or 'all'"
        )

    @field_validator("send_time")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        if value is not None and not _LOCAL_TIME.match(value):
            raise ValueError(f'{value!r} is not a time of day — write it like "10:00"')
        return value

    def limit_for(self, eligible: int) -> int:
        """The new provider's customer limit given how many customers are eligible today."""
        if isinstance(self.new, int):
            return min(self.new, eligible)
        if self.new == "all":
            return eligible
        share = float(self.new.rstrip("%")) / 100
        return int(eligible * share)


class Schedule(StrictModel):
    send_time: str = "10:00"
    # How a local time the clocks skip or repeat that night is read (warmup.clock); unset, such
    # a send time is an error at `warmup validate`.
    clock_change: Literal["earlier", "later"] | None = None
    template: str | None = None
    skip_weekdays: list[str] = Field(default_factory=list)
    skip_dates: list[date] = Field(default_factory=list)
    days: list[DaySettings] = Field(min_length=1)

    @field_validator("send_time")
    @classmethod
    def _time(cls, value: str) -> str:
        if not _LOCAL_TIME.match(value):
            raise ValueError(f'{value!r} is not a time of day — write it like "10:00"')
        return value

    @field_validator("skip_weekdays")
    @classmethod
    def _weekdays(cls, value: list[str]) -> list[str]:
        for day in value:
            if day not in WEEKDAYS:
                raise ValueError(f"{day!r} is not a weekday — use {', '.join(WEEKDAYS)}")
        return value

    @model_validator(mode="after")
    def _days_in_order(self) -> Schedule:
        numbers = [d.day for d in self.days]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"days must be numbered 1, 2, 3… in order; found {numbers}")
        return self

    def day(self, number: int) -> DaySettings:
        return self.days[number - 1]

    def template_for(self, number: int) -> str | None:
        return self.day(number).template or self.template

    def send_time_for(self, number: int) -> str:
        return self.day(number).send_time or self.send_time


class HoldThresholds(StrictModel):
    hard_bounce_rate: float = Field(default=0.02, ge=0, le=1)
    complaint_rate: float = Field(default=0.001, ge=0, le=1)
    delivered_rate_below: float = Field(default=0.90, ge=0, le=1)


class RollbackThresholds(StrictModel):
    hard_bounce_rate: float = Field(default=0.05, ge=0, le=1)
    complaint_rate: float = Field(default=0.003, ge=0, le=1)
    rollback_days: int = Field(default=2, ge=1)


class Guardrails(StrictModel):
    min_sample: int = Field(default=200, ge=1)
    hold: HoldThresholds = HoldThresholds()
    rollback: RollbackThresholds = RollbackThresholds()


class EventSettings(StrictModel):
    """``warmup serve``: where the new provider's event webhooks get their signing secret."""

    # HMAC-SHA256 of each webhook's raw body, keyed with this variable's value.
    webhook_secret_env: EnvName = "WARMUP_WEBHOOK_SECRET"

    _env = field_validator("webhook_secret_env")(_check_env_name)


class CsvMapping(StrictModel):
    """Column names of a non-Klaviyo CSV, mapped onto the store's fields."""

    email: str = "Email"
    phone: str | None = "Phone Number"
    external_id: str | None = None
    first_name: str | None = "First Name"
    last_name: str | None = "Last Name"
    consent: str | None = "Email Marketing Consent"
    last_open: str | None = "Last Open"
    last_click: str | None = "Last Click"
    suppressions: str | None = "Email Suppressions"
    klaviyo_id: str | None = "Klaviyo ID"


class ImportSettings(StrictModel):
    segment: str = "engaged-90"
    columns: CsvMapping = CsvMapping()


class Plan(StrictModel):
    name: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    timezone: str
    start_date: date
    scenario: str
    templates: str | None = None
    store: str | None = None
    sender: Sender
    unsubscribe: Unsubscribe = Unsubscribe()
    providers: Providers
    schedule: Schedule
    guardrails: Guardrails = Guardrails()
    events: EventSettings = EventSettings()
    import_: ImportSettings = Field(default=ImportSettings(), alias="import")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            pendulum.timezone(value)
        except Exception:
            raise ValueError(
                f"{value!r} is not a time zone — write an IANA name like "
                "Europe/Prague or America/New_York"
            ) from None
        return value

    @property
    def day_count(self) -> int:
        return len(self.schedule.days)
