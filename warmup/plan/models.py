"""Pydantic models of a plan file: what to ramp, on which days, through which providers.

Plans never name code and never hold secrets: credentials are *names* of environment variables.
Unknown keys are rejected everywhere (``extra="forbid"``).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from warmup import klaviyo_revisions
from warmup.clock import is_zone_name
from warmup.klaviyo_revisions import PATTERN as REVISION_FORMAT
from warmup.klaviyo_revisions import STABLE_REVISION as KLAVIYO_REVISION

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_LOCAL_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")
_REVISION = re.compile(r"^(\d{4}-\d{2}-\d{2})(\.pre)?$")
# local@domain.tld: what a From header needs; the domain has at least one dot.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"^[^@\s<>\"(),;:]+@{_LABEL}(?:\.{_LABEL})+$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


EnvName = Annotated[str, Field(description="Name of an environment variable (never the value)")]


def _not_a_bool(value: object) -> object:
    # pydantic reads `true` as 1 where a number goes: `min_sample: true` passed as a sample of
    # one, `max_connections: yes` as one connection
    if isinstance(value, bool):
        raise ValueError(f"`{str(value).lower()}` is not a number — write the number itself")
    return value


WholeNumber = Annotated[int, BeforeValidator(_not_a_bool)]
Number = Annotated[float, BeforeValidator(_not_a_bool)]


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
    port: WholeNumber = Field(default=25, ge=1, le=65535)
    tls: Literal["none", "starttls", "implicit"] = "starttls"
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    max_connections: WholeNumber = Field(default=4, ge=1, le=64)
    rate_per_second: Number = Field(default=50, gt=0)
    timeout_seconds: Number = Field(default=30, gt=0)
    verify_tls: bool = True

    _env = field_validator("username_env", "password_env")(_check_env_name)


class FileProvider(StrictModel):
    kind: Literal["file"]
    directory: str = "outbox-eml"


_AWS_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


class SesProvider(StrictModel):
    """Amazon SES, API v2. Credentials are never in the plan: ``credentials: env`` reads the
    variables named here, ``profile`` a named profile of the AWS config files, ``chain`` the
    AWS SDK's default chain (environment, config files, container or instance role)."""

    kind: Literal["ses"]
    region: str
    configuration_set: str | None = None
    credentials: Literal["env", "profile", "chain"] = "env"
    access_key_id_env: EnvName = "AWS_ACCESS_KEY_ID"
    secret_access_key_env: EnvName = "AWS_SECRET_ACCESS_KEY"
    session_token_env: EnvName | None = None
    profile: str | None = None
    # The sandbox's http://127.0.0.1:PORT for rehearsals; None = SES's own endpoint.
    endpoint_url: str | None = None
    # Requests in flight at most; None = as many as the account's send rate needs (up to 32).
    max_connections: WholeNumber | None = Field(default=None, ge=1, le=64)
    # A cap below the account's maximum send rate (read from SES): None = the account's rate.
    rate_per_second: Number | None = Field(default=None, gt=0)
    timeout_seconds: Number = Field(default=30, gt=0)

    _env = field_validator("access_key_id_env", "secret_access_key_env", "session_token_env")(
        _check_env_name
    )

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _AWS_REGION.match(value):
            raise ValueError(f"{value!r} is not an AWS region — write one like eu-west-1")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(
                f"{value!r} is not a URL — leave it out for SES itself, or write the "
                "sandbox's http://127.0.0.1:PORT"
            )
        return None if value is None else value.rstrip("/")

    @model_validator(mode="after")
    def _profile(self) -> SesProvider:
        if (self.credentials == "profile") != (self.profile is not None):
            raise ValueError(
                "`profile:` names the AWS profile to use with `credentials: profile` "
                "(and only then)"
            )
        return self


class SendGridProvider(StrictModel):
    """SendGrid v3 Mail Send; the API key (``mail.send`` scope) from the named variable."""

    kind: Literal["sendgrid"]
    api_key_env: EnvName = "SENDGRID_API_KEY"
    # The sandbox's http://127.0.0.1:PORT for rehearsals.
    base_url: str = "https://api.sendgrid.com"
    # Personalizations per request: at most 1,000, SendGrid's limit.
    batch_size: WholeNumber = Field(default=1000, ge=1, le=1000)
    max_connections: WholeNumber = Field(default=4, ge=1, le=64)
    rate_per_second: Number | None = Field(default=None, gt=0)
    timeout_seconds: Number = Field(default=60, gt=0)

    _env = field_validator("api_key_env")(_check_env_name)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                f"{value!r} is not a URL — write https://api.sendgrid.com or the "
                "sandbox's http://127.0.0.1:PORT"
            )
        return value.rstrip("/")


NewProvider = Annotated[
    SmtpProvider | FileProvider | SesProvider | SendGridProvider, Field(discriminator="kind")
]


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


# Customer fields a profile property may copy (the customers table's own columns).
PropertyField = Literal["first_name", "last_name", "phone", "external_id", "email"]


class ProfileProperty(StrictModel):
    """Where one Klaviyo profile property's value comes from — exactly one of:
    ``column`` (a column of the export, kept among the customer's free attributes), ``field``
    (a customer field), ``warmup`` (``day``: the sending day the profile joined the list;
    ``date``: that day's date; ``plan``: the plan's name) or ``arm`` (a split node's id: the
    customer's arm of it, ``yes`` or ``no``)."""

    column: str | None = Field(default=None, min_length=1)
    field: PropertyField | None = None
    warmup: Literal["day", "date", "plan"] | None = None
    arm: str | None = Field(default=None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _arm_id(cls, data: object) -> object:
        # YAML reads a split node `7` as an int; node ids are strings
        if isinstance(data, dict) and isinstance(data.get("arm"), int):
            return {**data, "arm": str(data["arm"])}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> ProfileProperty:
        given = [self.column, self.field, self.warmup, self.arm]
        if sum(value is not None for value in given) != 1:
            raise ValueError(
                "a profile property needs exactly one source: `column: <export column>`, "
                "`field: first_name`, `warmup: day` (or date, plan) or `arm: <split node id>`"
            )
        return self


# A consent category's name: what a condition's `consent: {channel: NAME}` tests.
CONSENT_CATEGORY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
CONSENT_CHANNELS = ("email", "sms")


class ConsentListRef(StrictModel):
    """A Klaviyo list that stands for a consent category (seed 004): by ``id`` or ``name``
    (found, never created: an empty list would reject nobody and accept nobody)."""

    id: str | None = Field(default=None, min_length=1)
    name: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> ConsentListRef:
        if (self.id is None) == (self.name is None):
            raise ValueError("give exactly one of `id:` (a list id like Y6nRLr) or `name:`")
        return self


def _consent_categories(value: dict[str, ConsentListRef]) -> dict[str, ConsentListRef]:
    for name in value:
        if name in CONSENT_CHANNELS:
            raise ValueError(
                f"{name!r} is a channel warmup imports from the export, not a category — "
                "name the category after its list, e.g. newsletter"
            )
        if not CONSENT_CATEGORY.match(name):
            raise ValueError(
                f"{name!r} is not a consent category name — use lowercase letters, digits "
                "and _ (starting with a letter), at most 40"
            )
    return value


# Klaviyo's custom property names: not its own `$`-prefixed ones, at most 200 characters.
_PROPERTY_NAME = re.compile(r"^[^$\s][^\n]{0,199}$")


class KlaviyoProvider(StrictModel):
    api_key_env: EnvName = "KLAVIYO_API_KEY"
    base_url: str = "https://a.klaviyo.com"
    revision: str = KLAVIYO_REVISION
    # Unnamed (seed 002): "warmup {plan} {date}" — one exclusion list a day — and
    # "warmup {plan} unsubscribes", filled in by Plan._default_lists.
    exclusion_list: ListRef = Field(
        default_factory=lambda: ListRef(name=default_list_name("PLAN", "exclusion"))
    )
    unsubscribe_list: ListRef = Field(
        default_factory=lambda: ListRef(name=default_list_name("PLAN", "unsubscribe"))
    )
    # subscribe: consent flows through Klaviyo's subscription jobs (Lytics' default);
    # force_add: plain list membership, consent untouched (Lytics' "Force Add to List").
    list_mode: Literal["force_add", "subscribe"] = "force_add"
    # Also unsubscribe consent-rejects through Klaviyo's subscription API (not only the list).
    unsubscribe_via_api: bool = False
    # list_mode: subscribe — follow_list: the list's own opt-in process applies (a double
    # opt-in list mails a confirmation and holds people until they confirm); historical_import:
    # subscribe at once with the consent date, no confirmation mail (seed 002).
    subscribe_opt_in: Literal["follow_list", "historical_import"] = "follow_list"
    # Klaviyo profile property name -> its source (issue 17, seeds 000-003): written with the
    # profile when it joins a list through the bulk import, and given to webhook templates as
    # each profile's `properties` (warmup.plan.properties).
    profile_properties: dict[str, ProfileProperty] = Field(default_factory=dict)
    # Seed 004: "Klaviyo does consent categories through lists". Category -> its list; each
    # pull makes the list's members `subscribed` in that category, a member who left it
    # `unsubscribed`, and everyone whose email or SMS consent is withdrawn `unsubscribed` in all of
    # them (warmup.consent.categories). Conditions test it as `consent: {channel: NAME}`.
    consent_lists: dict[str, ConsentListRef] = Field(default_factory=dict)
    # Per-endpoint rate limits divided by this, e.g. 0.5 to leave half the account's budget.
    rate_share: Number = Field(default=1.0, gt=0, le=1)
    # A day's exclusions stay in a shared list until the day has ended in the plan's timezone
    # plus this many hours (Klaviyo campaigns scheduled late in the evening still send).
    exclusion_margin_hours: Number = Field(default=2.0, ge=0, le=48)

    _env = field_validator("api_key_env")(_check_env_name)
    _categories = field_validator("consent_lists")(_consent_categories)

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

    @field_validator("profile_properties")
    @classmethod
    def _property_names(cls, value: dict[str, ProfileProperty]) -> dict[str, ProfileProperty]:
        for name in value:
            if not _PROPERTY_NAME.match(name):
                raise ValueError(
                    f"{name!r} is not a Klaviyo custom property name — one line of at most "
                    "200 characters, not starting with $ (Klaviyo's own) or a space"
                )
        return value

    @field_validator("revision")
    @classmethod
    def _revision(cls, value: str) -> str:
        match = _REVISION.match(value)
        try:
            valid = match is not None and date.fromisoformat(match.group(1)) is not None
        except ValueError:
            valid = False
        if not valid:
            raise ValueError(
                f"{value!r} is not a Klaviyo API revision — write a date like "
                '"2026-07-15" (quoted), optionally with .pre'
            )
        return value


class Providers(StrictModel):
    new: NewProvider
    klaviyo: KlaviyoProvider


class Sender(StrictModel):
    from_: str = Field(alias="from")
    reply_to: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("from_", "reply_to")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        # Checked here, not at dispatch: by then Klaviyo's lists have already changed.
        if value is not None and not is_mail_address(value):
            raise ValueError(
                f"{value!r} is not an email address — write it like "
                '"Acme News <news@send.acme.example>" or news@send.acme.example'
            )
        return value


def is_mail_address(value: str) -> bool:
    """``local@domain.tld`` or ``Display Name <local@domain.tld>``, on one line."""
    from email.utils import parseaddr

    if any(c in value for c in "\r\n\0"):
        return False
    _, address = parseaddr(value)
    return bool(_ADDRESS.match(address)) and (
        address == value.strip() or value.strip().endswith(f"<{address}>")
    )


class Unsubscribe(StrictModel):
    url: str = "https://example.invalid/unsubscribe"
    mailto: str | None = None
    secret_env: EnvName = "WARMUP_UNSUBSCRIBE_SECRET"

    _env = field_validator("secret_env")(_check_env_name)

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        from urllib.parse import urlparse

        parsed = urlparse(value)
        # RFC 8058: the one-click link must be https; anything else (javascript:, http:) could
        # not be served safely and mail providers ignore it.
        if parsed.scheme != "https" or not parsed.hostname or any(c.isspace() for c in value):
            raise ValueError(
                f"{value!r} is not an https URL — write the address `warmup serve` answers "
                "behind TLS, like https://acme.example/unsubscribe"
            )
        if "#" in value:
            # the token is appended to the URL: after a fragment it never reaches the server
            raise ValueError(
                f"{value!r} has a #fragment, and the unsubscribe token would follow it (a "
                "browser never sends it) — write the URL without the `#…` part"
            )
        return value

    @field_validator("mailto")
    @classmethod
    def _mailto(cls, value: str | None) -> str | None:
        if value is not None and not _ADDRESS.match(value.removeprefix("mailto:").split("?")[0]):
            raise ValueError(
                f"{value!r} is not an email address — write it like unsubscribe@acme.example"
            )
        return value


Volume = int | str


class DaySettings(StrictModel):
    day: WholeNumber = Field(ge=1)
    new: Volume = Field(
        description="New provider's customer limit: a number, a percentage of "
        "the eligible audience like '20%', or 'all'"
    )
    template: str | None = None
    send_time: str | None = None

    @field_validator("new", mode="before")
    @classmethod
    def _not_bool(cls, value: object) -> object:
        # before pydantic reads `true` as the number 1
        if isinstance(value, bool):
            raise ValueError(
                f"`{str(value).lower()}` is not a volume — write a number like 5000, "
                "a percentage like '20%', or 'all'"
            )
        return value

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


class SendWindowSettings(StrictModel):
    """Spread each day's new-provider mail from ``start`` to ``end`` (plan's time zone)."""

    start: str
    end: str
    shape: Literal["even", "hourly_ramp"] = "even"

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str) -> str:
        if not _LOCAL_TIME.match(value):
            raise ValueError(f'{value!r} is not a time of day — write it like "16:00"')
        return value

    @model_validator(mode="after")
    def _order(self) -> SendWindowSettings:
        if self.end <= self.start:
            raise ValueError(
                f"the window ends ({self.end}) before it starts ({self.start}) — write "
                'an end later the same day, like {start: "10:00", end: "16:00"}'
            )
        return self


def _mailbox_cap(value: object) -> object:
    """One day's cap of a mailbox group: a number, a share of the day's new-provider limit
    like "40%", or null (no cap that day)."""
    if isinstance(value, dict):
        # a valid ramp was spread over the days before (Schedule._ramps): this one is not
        raise ValueError(ramp_problem(value) or "not a mailbox cap ramp")
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        match = _PERCENT.match(value.strip())
        if match and float(match.group(1)) <= 100:
            return value.strip()
    raise ValueError(
        f"{value!r} is not a mailbox cap — write a number like 500, a share of the day's "
        'new-provider limit like "40%", or null for no cap that day'
    )


def ramp_problem(value: dict[object, object]) -> str | None:
    """What is wrong with a cap ramp ``{from: CAP, to: CAP}``, or None."""
    write = 'write {from: "2%", to: "40%"} or {from: 100, to: 5000}'
    if set(value) != {"from", "to"}:
        keys = ", ".join(repr(k) for k in value)
        return f"a cap ramp has exactly the keys `from` and `to` (found {keys}) — {write}"
    ends = [value["from"], value["to"]]
    for end in ends:
        try:
            _mailbox_cap(end)
        except ValueError as exc:
            return f"{exc}; a cap ramp: {write}"
        if end is None:
            return f"a cap ramp runs from one cap to another, not from or to null — {write}"
    if isinstance(ends[0], str) != isinstance(ends[1], str):
        return f"a cap ramp runs between two numbers or two shares, not one of each — {write}"
    return None


def spread_ramp(value: dict[object, object], days: int) -> list[int | str]:
    """A valid ramp as one cap per day, evenly from ``from`` on day 1 to ``to`` on the last."""
    start, end = value["from"], value["to"]
    share = isinstance(start, str)
    first = float(str(start).strip().rstrip("%"))
    last = float(str(end).strip().rstrip("%"))
    caps: list[int | str] = []
    for day in range(days):
        at = first if days == 1 else first + (last - first) * day / (days - 1)
        caps.append(f"{round(at, 2):g}%" if share else round(at))
    return caps


MailboxCap = Annotated[int | str | None, BeforeValidator(_mailbox_cap)]
# One value for every day, or one per day (a ramp): `gmail: "40%"` or `gmail: [50, 100, …]`.
MailboxCaps = Annotated[
    list[MailboxCap], BeforeValidator(lambda v: v if isinstance(v, list) else [v])
]
_GROUP_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


def cap_count(cap: int | str | None, limit: int) -> int | None:
    """A cap as a number of customers, given the day's new-provider limit."""
    if cap is None:
        return None
    if isinstance(cap, int):
        return min(cap, limit)
    return int(limit * float(cap.rstrip("%")) / 100)


class Schedule(StrictModel):
    send_time: str = "10:00"
    # How a local time the clocks skip or repeat that night is read (warmup.clock); unset, such
    # a send time is an error at `warmup validate`.
    clock_change: Literal["earlier", "later"] | None = None
    # None: each day's mail goes as fast as the provider's rate allows.
    send_window: SendWindowSettings | None = None
    template: str | None = None
    skip_weekdays: list[str] = Field(default_factory=list)
    skip_dates: list[date] = Field(default_factory=list)
    days: list[DaySettings] = Field(min_length=1)
    # Seed 004, variant 1: each template is sent once (earlier recipients stay on the new
    # provider and would get a reused one again). `auto`: refuse reuse when the scenario keeps
    # earlier recipients without a per-template past audience (warmup.plan.seed_rules).
    template_reuse: Literal["auto", "refuse", "allow"] = "auto"
    # Seed 004, variant 2: "#558 Already in exclusion list" targets those customers first on
    # days 4-14 only; None keeps it on every day.
    exclusion_first_from_day: WholeNumber | None = Field(default=None, ge=1)
    # Seed 004, variant 2: the trigger starts X days before Klaviyo's campaign, X = the days one
    # template is used; a template used on more days than this is refused.
    klaviyo_lead_days: WholeNumber | None = Field(default=None, ge=1, le=60)
    # Per mailbox provider group (warmup.mailboxes): the most of each day's new-provider
    # customers that group may take; its overflow stays on Klaviyo.
    mailbox_caps: dict[str, MailboxCaps] = Field(default_factory=dict)

    @field_validator("mailbox_caps", mode="before")
    @classmethod
    def _ramps(cls, value: object, info: ValidationInfo) -> object:
        """``{from: "2%", to: "40%"}`` becomes one cap per day; a ramp with a mistake is left
        for the cap check, which says what is wrong at the group's line."""
        if not isinstance(value, dict):
            return value
        days = len(info.data.get("days") or []) or 1
        return {
            group: spread_ramp(caps, days)
            if isinstance(caps, dict) and ramp_problem(caps) is None
            else caps
            for group, caps in value.items()
        }

    @field_validator("mailbox_caps")
    @classmethod
    def _caps_per_day(
        cls, value: dict[str, list[int | str | None]], info: ValidationInfo
    ) -> dict[str, list[int | str | None]]:
        days = len(info.data.get("days") or [])
        for group, caps in value.items():
            if days and len(caps) not in (1, days):
                raise ValueError(
                    f"{group}: {len(caps)} caps for {days} days — write one value for every "
                    f'day (like "40%") or a list of exactly {days}, one per day'
                )
        return value

    def mailbox_cap(self, group: str, number: int) -> int | str | None:
        """Group ``group``'s cap on schedule day ``number`` as written (None: no cap)."""
        caps = self.mailbox_caps.get(group)
        if not caps:
            return None
        return caps[0] if len(caps) == 1 else caps[number - 1]

    @field_validator("exclusion_first_from_day", "klaviyo_lead_days", mode="before")
    @classmethod
    def _day_not_bool(cls, value: object, info: ValidationInfo) -> object:
        # before pydantic reads `true` as the number 1 (day 1, or a lead of one day)
        if isinstance(value, bool):
            what = (
                "a day number"
                if info.field_name == "exclusion_first_from_day"
                else ("a number of days")
            )
            raise ValueError(f"`{str(value).lower()}` is not {what} — write a number like 4")
        return value

    @field_validator("exclusion_first_from_day")
    @classmethod
    def _exclusion_first_day(cls, value: int | None, info: ValidationInfo) -> int | None:
        days = len(info.data.get("days") or [])
        if value is not None and days and value > days:
            raise ValueError(
                f"day {value} never comes: the schedule has {days} days, so the customers "
                "already in the exclusion list would never be targeted first — write a day "
                f"from 1 to {days}, or remove the line to target them first every day"
            )
        return value

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
        if set(WEEKDAYS) <= set(value):
            raise ValueError(
                "every weekday is skipped, so no day could ever send — "
                "leave at least one weekday out, e.g. skip_weekdays: [sat, sun]"
            )
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
    hard_bounce_rate: Number = Field(default=0.02, ge=0, le=1)
    complaint_rate: Number = Field(default=0.001, ge=0, le=1)
    delivered_rate_below: Number = Field(default=0.90, ge=0, le=1)


class RollbackThresholds(StrictModel):
    hard_bounce_rate: Number = Field(default=0.05, ge=0, le=1)
    complaint_rate: Number = Field(default=0.003, ge=0, le=1)
    rollback_days: WholeNumber = Field(default=2, ge=1)


class GroupHoldThresholds(StrictModel):
    """A mailbox group's own hold lines; each one left out is the plan's ``guardrails.hold``."""

    hard_bounce_rate: Number | None = Field(default=None, ge=0, le=1)
    complaint_rate: Number | None = Field(default=None, ge=0, le=1)
    delivered_rate_below: Number | None = Field(default=None, ge=0, le=1)


class GroupGuardrails(StrictModel):
    """``guardrails.groups.NAME``: when a mailbox group is held (warmup.mailboxes.holds)."""

    min_sample: WholeNumber | None = Field(default=None, ge=1)
    hold: GroupHoldThresholds = GroupHoldThresholds()


RelativeTier = Literal["engaged", "unengaged", "no_history"]
RELATIVE_TIERS: tuple[RelativeTier, ...] = ("engaged", "unengaged", "no_history")
# What the new providers report to warmup: deliveries, bounces, complaints (SMTP results, the
# SES/SendGrid events) — no opens or clicks, so only these can be held against Klaviyo's.
_NO_OPENS = (
    "the new provider reports no opens or clicks to warmup (SMTP has none; warmup stores no "
    "SES/SendGrid open or click events), so there is nothing to compare with Klaviyo's — "
    "use delivered_rate_below_by, bounce_rate_above_by or complaint_rate_above_by"
)


class RelativeHold(StrictModel):
    """Hold lines relative to Klaviyo's rate for the same engagement tier, in rate points
    (0.05 = 5 points): hold when the new provider's rate is more than this below (delivered)
    or above (bounces, complaints) Klaviyo's."""

    delivered_rate_below_by: Number | None = Field(default=None, ge=0, le=1)
    bounce_rate_above_by: Number | None = Field(default=None, ge=0, le=1)
    complaint_rate_above_by: Number | None = Field(default=None, ge=0, le=1)
    open_rate_below_by: float | None = None
    click_rate_below_by: float | None = None

    @field_validator("open_rate_below_by", "click_rate_below_by")
    @classmethod
    def _not_reported(cls, value: float | None) -> float | None:
        if value is not None:
            raise ValueError(_NO_OPENS)
        return value


class RelativeGuardrails(StrictModel):
    """``guardrails.relative``: the new provider against Klaviyo, tier by tier
    (warmup.guardrails.relative); needs ``engagement.source: klaviyo``."""

    # customer-days mailed per side and tier before a tier's rates count
    min_sample: WholeNumber = Field(default=100, ge=1)
    tiers: list[RelativeTier] = Field(default_factory=lambda: list(RELATIVE_TIERS), min_length=1)
    hold: RelativeHold = RelativeHold()


class Guardrails(StrictModel):
    min_sample: WholeNumber = Field(default=200, ge=1)
    hold: HoldThresholds = HoldThresholds()
    rollback: RollbackThresholds = RollbackThresholds()
    # a mailbox group's own hold lines (names as in schedule.mailbox_caps)
    groups: dict[str, GroupGuardrails] = Field(default_factory=dict)
    relative: RelativeGuardrails | None = None

    def for_group(self, name: str) -> Guardrails:
        """The lines a mailbox group is held by: its own where set, the plan's elsewhere."""
        own = self.groups.get(name)
        if own is None:
            return self
        lines = own.hold.model_dump(exclude_none=True)
        return self.model_copy(
            update={
                "min_sample": own.min_sample or self.min_sample,
                "hold": self.hold.model_copy(update=lines),
            }
        )


_TRUST_PREFIX = re.compile(r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?/")


class SnsSettings(StrictModel):
    """Amazon SNS notifications (SES bounces, complaints, deliveries) at ``/webhooks/ses``."""

    # Only these topics are accepted (empty: any topic whose message verifies).
    topic_arns: list[str] = []
    # FOR TESTS AND REHEARSALS ONLY: certificate/subscribe URLs starting with one of these are
    # trusted besides SNS's own https://sns.<region>.amazonaws.com hosts (the sandbox's
    # http://127.0.0.1:PORT/). Never set it for a real account.
    trust_url_prefixes_for_tests: list[str] = []

    @field_validator("trust_url_prefixes_for_tests")
    @classmethod
    def _prefixes_end_in_a_path(cls, values: list[str]) -> list[str]:
        # A URL is trusted when it starts with a prefix, so the prefix must reach the path:
        # ``http`` would trust any URL, ``http://127.0.0.1:8711`` also
        # ``http://127.0.0.1:8711@evil.example/``.
        for value in values:
            if not _TRUST_PREFIX.match(value):
                raise ValueError(
                    f"{value!r} is not a URL prefix up to a path — write the sandbox's base URL "
                    "with its slash, like http://127.0.0.1:8711/"
                )
        return values


class SendGridEventSettings(StrictModel):
    """SendGrid's signed Event Webhook at ``/webhooks/sendgrid``."""

    # The verification key SendGrid shows for the signed webhook (base64 DER, ECDSA P-256).
    public_key_env: EnvName = "SENDGRID_WEBHOOK_PUBLIC_KEY"
    # Requests whose signed timestamp is further than this from now are refused (replays).
    tolerance_seconds: WholeNumber = Field(default=300, ge=1, le=86400)

    _env = field_validator("public_key_env")(_check_env_name)


class EventSettings(StrictModel):
    """``warmup serve``: where the new provider's event webhooks get their signing secret."""

    # HMAC-SHA256 of each webhook's raw body, keyed with this variable's value.
    webhook_secret_env: EnvName = "WARMUP_WEBHOOK_SECRET"
    sns: SnsSettings = SnsSettings()
    sendgrid: SendGridEventSettings = SendGridEventSettings()

    _env = field_validator("webhook_secret_env")(_check_env_name)


class MailboxGroupSettings(StrictModel):
    """A plan's own mailbox provider group: its domains (``seznam.cz``, ``yahoo.*``) and the
    MX host suffixes that put a company domain in it (``seznam.cz``)."""

    domains: list[str] = Field(default_factory=list)
    mx: list[str] = Field(default_factory=list)

    @field_validator("domains")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        from warmup.mailboxes.groups import pattern_problem

        for pattern in value:
            problem = pattern_problem(pattern.lower())
            if problem:
                raise ValueError(problem)
        return value


class MailboxSettings(StrictModel):
    """How customers are put into mailbox provider groups (warmup.mailboxes)."""

    # false: no DNS; company domains are `other` (the dry run says how many).
    resolve_mx: bool = True
    # HOST or HOST:PORT (one port for all); empty: the system's resolver.
    nameservers: list[str] = Field(default_factory=list)
    timeout_seconds: Number = Field(default=2.0, gt=0, le=30)
    # the most one run spends on MX lookups; domains left over are tried on the next run
    lookup_budget_seconds: Number = Field(default=120.0, gt=0, le=3600)
    # how long an answer is re-used before the domain is asked again: MX hosts, and "no MX"
    # (shorter: an offline resolver's NXDOMAIN must not stay for good)
    cache_days: Number = Field(default=30.0, gt=0)
    no_mx_cache_days: Number = Field(default=1.0, gt=0)
    # a domain that surely has an MX, asked when answers say "no MX" (null: trust them)
    probe_domain: str | None = "gmail.com"
    groups: dict[str, MailboxGroupSettings] = Field(default_factory=dict)

    @field_validator("groups")
    @classmethod
    def _names(cls, value: dict[str, MailboxGroupSettings]) -> dict[str, MailboxGroupSettings]:
        for name in value:
            if not _GROUP_NAME.match(name) or name == "other":
                raise ValueError(
                    f"{name!r} cannot name a group — write lower-case letters, digits, - or _, "
                    "like seznam (`other` is what matches no group)"
                )
        return value

    @field_validator("nameservers")
    @classmethod
    def _servers(cls, value: list[str]) -> list[str]:
        from warmup.mailboxes.nameservers import parse_nameserver

        ports = {parse_nameserver(server)[1] for server in value}
        if len(ports) > 1:
            raise ValueError("the name servers use different ports — use one port for all")
        return value


class CsvMapping(StrictModel):
    """Column names of a non-Klaviyo CSV, mapped onto the store's fields."""

    email: str = "Email"
    phone: str | None = "Phone Number"
    external_id: str | None = None
    first_name: str | None = "First Name"
    last_name: str | None = "Last Name"
    consent: str | None = "Email Marketing Consent"
    # SMS consent (seed 004: Subscribed, Unsubscribed, Never Subscribed; Klaviyo leaves
    # never-subscribed empty): stored as the customer's `sms` consent. Klaviyo's header for it
    # is unconfirmed (klaviyo-api.md §6): name yours here.
    sms_consent: str | None = "SMS Marketing Consent"
    last_open: str | None = "Last Open"
    last_click: str | None = "Last Click"
    suppressions: str | None = "Email Suppressions"
    klaviyo_id: str | None = "Klaviyo ID"


class ImportSettings(StrictModel):
    segment: str = "engaged-90"
    columns: CsvMapping = CsvMapping()


EngagementKind = Literal["received", "opened", "clicked", "bounced", "marked_as_spam"]
ENGAGEMENT_KINDS: tuple[EngagementKind, ...] = (
    "received",
    "opened",
    "clicked",
    "bounced",
    "marked_as_spam",
)


DEFAULT_WEIGHTS: dict[EngagementKind, float] = {
    "opened": 1.0,
    "clicked": 2.0,
    "bounced": -5.0,
    "marked_as_spam": -20.0,
}


class EngagementSettings(StrictModel):
    """Engagement Klaviyo recorded (seed 004), pulled through its events API (warmup.engagement).

    ``source: export`` (the default) ranks by the export's Last Open / Last Click columns;
    ``source: klaviyo`` pulls the ``pull`` metrics before each day and ranks most engaged first
    by ``score`` = the sum of ``weights[kind]`` over each customer's events of the last
    ``window_days`` before the day's midnight (the export's last engagement breaks ties)."""

    source: Literal["export", "klaviyo"] = "export"
    pull: list[EngagementKind] = Field(default_factory=lambda: list(ENGAGEMENT_KINDS))
    window_days: WholeNumber = Field(default=90, ge=1, le=3650)
    weights: dict[EngagementKind, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    @model_validator(mode="after")
    def _weights_pulled(self) -> EngagementSettings:
        if "weights" not in self.model_fields_set:
            # the default weights count only what the plan pulls
            pulled = {k: w for k, w in self.weights.items() if k in self.pull}
            object.__setattr__(self, "weights", pulled)
        unpulled = [
            kind for kind, weight in self.weights.items() if weight and kind not in self.pull
        ]
        if self.source == "klaviyo" and unpulled:
            raise ValueError(
                f"weights count {', '.join(unpulled)} but `pull` does not fetch it — add it to "
                "`pull` or drop its weight"
            )
        return self


def default_list_name(plan: str, which: str) -> str:
    """The list warmup finds or creates when the plan names none: one exclusion list per
    sending day (its date filled in), one unsubscribe list; the plan's name makes them its own."""
    return f"warmup {plan} {{date}}" if which == "exclusion" else f"warmup {plan} unsubscribes"


LAST_START_YEAR = 9000
_PLAN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}\Z")


class Plan(StrictModel):
    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        # the name signs unsubscribe tokens and claims Klaviyo lists: keep it a plain word
        if not _PLAN_NAME.match(value):
            raise ValueError(
                f"{value[:80]!r} is not a plan name — write 1 to 80 letters, digits, `-`, `_` "
                "or `.`, starting with a letter or digit, like acme-newsletter"
            )
        return value

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
    engagement: EngagementSettings = EngagementSettings()
    # Mailbox provider groups; with `schedule.mailbox_caps` (or this) each day's allocation,
    # dry run, status and report go per group.
    mailboxes: MailboxSettings | None = None
    import_: ImportSettings = Field(default=ImportSettings(), alias="import")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _default_lists(cls, data: object) -> object:
        """A Klaviyo list the plan does not name is found or created under a name unique to
        the plan (seed 002's `warmup {plan} {date}` style)."""
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            return data
        providers = data.get("providers")
        if not isinstance(providers, dict) or not isinstance(providers.get("klaviyo"), dict):
            return data
        klaviyo: dict[str, object] = providers["klaviyo"]
        defaults = {
            "exclusion_list": {"name": default_list_name(data["name"], "exclusion")},
            "unsubscribe_list": {"name": default_list_name(data["name"], "unsubscribe")},
        }
        missing = {k: v for k, v in defaults.items() if klaviyo.get(k) is None}
        if not missing:
            return data
        return {**data, "providers": {**providers, "klaviyo": {**klaviyo, **missing}}}

    @field_validator("start_date")
    @classmethod
    def _start(cls, value: date) -> date:
        # the calendar counts days (and skipped dates) past it: keep far from date.max
        if value.year > LAST_START_YEAR:
            raise ValueError(
                f"{value} is too far in the future — write the date the warm-up starts, "
                "like 2027-01-04"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        if not is_zone_name(value):
            raise ValueError(
                f"{value!r} is not a time zone — write an IANA name like "
                "Europe/Prague or America/New_York"
            )
        return value

    @property
    def day_count(self) -> int:
        return len(self.schedule.days)
