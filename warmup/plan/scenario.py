"""Pydantic models of a scenario file: the node graph a plan runs every sending day.

A scenario is a list of nodes; each node names the node(s) that follow it. Node ids are strings
(the shipped Bloomreach variants keep the seed's numbers: ``"7"``, ``"19"``, ``"225"``…).
Branching nodes (``condition``, ``audience``) have ``yes`` and ``no``; the others have ``next``.
A missing edge means the path ends there: the customer stays with Klaviyo for the day.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NodeId = Annotated[str, Field(min_length=1, max_length=64)]

_DURATION = re.compile(r"^(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?$")
_LOCAL_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _coerce_id(value: object) -> object:
    # YAML reads `7` as an int; ids are strings so that `7` and `"7"` are one node.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def parse_duration(text: str) -> timedelta:
    """``"90m"``, ``"1h30m"``, ``"45s"`` → timedelta."""
    match = _DURATION.match(text.strip())
    if not match or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration — write it like 30m, 2h or 1h30m")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


class NodeBase(StrictModel):
    id: NodeId
    title: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_to_str(cls, value: object) -> object:
        return _coerce_id(value)

    def edges(self) -> dict[str, str]:
        """Outgoing edges by label (``next``, ``yes``, ``no``)."""
        out: dict[str, str] = {}
        for label in ("next", "yes", "no"):
            target = getattr(self, label, None)
            if target is not None:
                out[label] = target
        return out


class LinearNode(NodeBase):
    next: NodeId | None = None

    @field_validator("next", mode="before")
    @classmethod
    def _next_to_str(cls, value: object) -> object:
        return _coerce_id(value)


class BranchNode(NodeBase):
    yes: NodeId | None = None
    no: NodeId | None = None

    @field_validator("yes", "no", mode="before")
    @classmethod
    def _branch_to_str(cls, value: object) -> object:
        return _coerce_id(value)


class TriggerNode(LinearNode):
    """Entry point. ``on: date`` enters every customer of the store at midnight (plan timezone)
    of each sending day; ``on: event`` enters the customer an event names (``unsubscribed``,
    ``complained``...)."""

    type: Literal["trigger"]
    on: Literal["date", "event"] = "date"
    events: list[Literal["unsubscribed", "complained", "hard_bounced"]] = Field(
        default_factory=list
    )

    @model_validator(mode="after")
    def _events_only_for_event_triggers(self) -> TriggerNode:
        if self.on == "event" and not self.events:
            raise ValueError("an `on: event` trigger needs `events:`, e.g. [unsubscribed]")
        if self.on == "date" and self.events:
            raise ValueError(
                "`events:` belongs to `on: event` triggers — remove it or set on: event"
            )
        return self


ConsentStatus = Literal["subscribed", "never_subscribed", "unsubscribed", "suppressed"]


class ConsentPredicate(StrictModel):
    channel: Literal["email", "sms"] = "email"
    status_in: list[ConsentStatus] = Field(min_length=1)


# Klaviyo's email events as warmup names them (warmup.engagement; plan `engagement.pull`).
EngagementEventKind = Literal["received", "opened", "clicked", "bounced", "marked_as_spam"]


class EngagementPredicate(StrictModel):
    """Count of the customer's pulled Klaviyo events of ``kinds`` in the ``within_days`` before
    the day's midnight, against ``at_least`` and/or ``at_most``."""

    kinds: list[EngagementEventKind] = Field(min_length=1)
    at_least: int | None = Field(default=None, ge=0)
    at_most: int | None = Field(default=None, ge=0)
    within_days: int = Field(default=90, ge=1, le=3650)

    @model_validator(mode="after")
    def _bound(self) -> EngagementPredicate:
        if self.at_least is None and self.at_most is None:
            raise ValueError(
                "an engagement test needs a bound — add `at_least: 1` (engaged) or "
                "`at_most: 0` (none of these events)"
            )
        return self


class ConditionNode(BranchNode):
    """A predicate over customer fields; every listed test must hold for ``yes``."""

    type: Literal["condition"]
    consent: ConsentPredicate | None = None
    email_valid: bool | None = None
    has_phone: bool | None = None
    attribute_equals: dict[str, str | int | float | bool] | None = None
    # Klaviyo's engagement as pulled into the store (plan `engagement.source: klaviyo`)
    engagement: EngagementPredicate | None = None

    @model_validator(mode="after")
    def _at_least_one_test(self) -> ConditionNode:
        if (
            self.consent is None
            and self.email_valid is None
            and self.has_phone is None
            and not self.attribute_equals
            and self.engagement is None
        ):
            raise ValueError(
                "a condition needs at least one test: consent, email_valid, has_phone, "
                "attribute_equals or engagement"
            )
        return self


class AudienceNode(BranchNode):
    """Membership test, or the day's allocation.

    ``source``:
    - ``segment``: member of ``segment`` (an imported Klaviyo segment/list);
    - ``past_audience``: received a warm-up email on an earlier day (``template`` narrows it to
      one template: ``today`` means the day's own template, as seed 004's #331);
    - ``exclusion_list``: already in the Klaviyo exclusion list (seed 004's #558);
    - ``allocation``: the new provider's share of the day's limit from the plan's schedule —
      ``yes`` goes to the new provider, ``no`` stays with Klaviyo. Customers are taken in order
      of arrival (a customer held by a ``wait`` arrives later, which is how #299 puts earlier
      days' customers first), then most engaged first, then a stable hash of (plan, email).
    """

    type: Literal["audience"]
    source: Literal["segment", "past_audience", "exclusion_list", "allocation"]
    segment: str | None = None
    template: str | None = None
    provider: Literal["new"] = "new"

    @model_validator(mode="after")
    def _params_fit_source(self) -> AudienceNode:
        if self.source == "segment" and not self.segment:
            raise ValueError("an audience with `source: segment` needs `segment: NAME`")
        if self.source != "segment" and self.segment:
            raise ValueError("`segment:` only goes with `source: segment`")
        if self.template is not None and self.source != "past_audience":
            raise ValueError("`template:` only goes with `source: past_audience`")
        return self


class WaitNode(LinearNode):
    """Park customers until a due time: ``until: send_time`` (the day's send time from the plan),
    ``until: "HH:MM"`` (local time of the day), or ``duration: 5m`` after arrival."""

    type: Literal["wait"]
    until: str | None = None
    duration: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> WaitNode:
        if (self.until is None) == (self.duration is None):
            raise ValueError(
                "a wait needs exactly one of `until:` (send_time or HH:MM) or `duration:` (like 5m)"
            )
        if (
            self.until is not None
            and self.until != "send_time"
            and not _LOCAL_TIME.match(self.until)
        ):
            raise ValueError(f'`until: {self.until}` — write send_time or a time like "10:00"')
        if self.duration is not None:
            parse_duration(self.duration)
        return self

    @property
    def delay(self) -> timedelta | None:
        return parse_duration(self.duration) if self.duration else None


class WebhookNode(LinearNode):
    """A Jinja-templated HTTP call (``templates/<template>``), batched up to ``batch_size``
    customers per request. ``list`` names which Klaviyo list of the plan it targets."""

    type: Literal["webhook"]
    template: str
    list: Literal["exclusion", "unsubscribe"] | None = None
    batch_size: int = Field(default=1, ge=1, le=10_000)


class EmailNode(LinearNode):
    """Send an email rendered from ``templates/email/<template>.j2`` through ``provider``.
    ``template: day`` takes the day's template from the plan's schedule."""

    type: Literal["email"]
    template: str = "day"
    provider: Literal["new"] = "new"


class ConsentRejectNode(LinearNode):
    """The customer's email consent becomes unsubscribed; no later day allocates them."""

    type: Literal["consent_reject"]
    channel: Literal["email", "sms"] = "email"


Node = Annotated[
    TriggerNode
    | ConditionNode
    | AudienceNode
    | WaitNode
    | WebhookNode
    | EmailNode
    | ConsentRejectNode,
    Field(discriminator="type"),
]
NODE_TYPES = ("trigger", "condition", "audience", "wait", "webhook", "email", "consent_reject")


class Scenario(StrictModel):
    name: str = Field(min_length=1)
    description: str | None = None
    nodes: list[Node] = Field(min_length=1)

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    @property
    def by_id(self) -> dict[str, Node]:
        return {node.id: node for node in self.nodes}

    def triggers(self) -> list[TriggerNode]:
        return [node for node in self.nodes if isinstance(node, TriggerNode)]
