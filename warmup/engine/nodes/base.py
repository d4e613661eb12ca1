"""What every node type supplies, and the model bases its scenario entry is built on.

A node type is one module of ``warmup.engine.nodes`` holding its pydantic model (with its
checks) and one ``NodeType`` object: how it routes (a branch's SQL test), how long it holds a
customer, what it writes when a customer reaches it (on a sending day, and from an event),
how ``warmup explain`` describes it and how the diagrams draw it. The defaults here are a
linear node that does nothing; each type overrides what it does.

This module imports nothing from ``warmup.plan``: the plan's scenario model is built from the
registry, so the registry must load first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from warmup.engine.context import DayContext
    from warmup.plan import LoadedPlan
    from warmup.store.backends import Backend

NodeId = Annotated[str, Field(min_length=1, max_length=64)]
SqlPart = tuple[str, list[Any]]

PENDING = ""  # label of an allocation node whose rank is not known yet
UNSAFE = "unsafe"  # label of an allocation node a customer may never pass (consent, bad email)

_DURATION = re.compile(r"^(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?$")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def coerce_id(value: object) -> object:
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
    # Each model narrows it to its own Literal: the discriminator of the scenario's node list.
    type: str

    @field_validator("id", mode="before")
    @classmethod
    def _id_to_str(cls, value: object) -> object:
        return coerce_id(value)

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
        return coerce_id(value)


class BranchNode(NodeBase):
    yes: NodeId | None = None
    no: NodeId | None = None

    @field_validator("yes", "no", mode="before")
    @classmethod
    def _branch_to_str(cls, value: object) -> object:
        return coerce_id(value)


@dataclass(frozen=True)
class Drawing:
    """How the diagrams draw a node type: Mermaid brackets, Graphviz shape, SVG box fill."""

    mermaid: tuple[str, str] = ('["', '"]')
    dot: str = "box"
    fill: str = "#ffffff"


@dataclass(frozen=True)
class Due:
    """A day's action node reached by a set of paths: what its rows need besides the node."""

    node_id: str
    not_before: str | None  # when the customers reached it, if after midnight
    after_node: str | None  # the path's gate before it (the exclusion-list webhook)


@dataclass(frozen=True)
class Reached:
    """Customers of the day's frozen journeys whose paths reach a node by now: a condition on
    ``journeys j`` (``where``, ``params``), for the node's own INSERT…SELECT."""

    ctx: DayContext
    due: Due
    where: str
    params: list[Any]
    now: str

    def customer_ids(self) -> SqlPart:
        """A SELECT of one ``customer_id`` column: who reached the node."""
        return (
            f"SELECT j.customer_id FROM journeys j WHERE j.day = ? AND {self.where}",
            [self.ctx.day, *self.params],
        )


@dataclass(frozen=True)
class EventVisit:
    """One customer an event flow walks through a node."""

    ctx: DayContext
    event_id: int
    customer_id: int
    now: str


@dataclass(frozen=True)
class Facts:
    """What ``warmup explain`` knows about one customer on one day, for a node's reason."""

    loaded: LoadedPlan
    conn: Backend
    day: int
    # rows by column name (Backend.name_rows)
    customer: Any
    consents: dict[str, str]
    journey: Any
    day_row: Any

    @property
    def attributes(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.customer["attributes"] or "{}")
        return parsed

    @property
    def day_start(self) -> datetime:
        """Midnight of the day's date in the plan's timezone: the date the run stored, or the
        calendar's for a day not run yet."""
        from warmup.plan.calendar import day_date, local_time  # the plan loads after the registry

        stored = self.day_row["date"] if self.day_row is not None else None
        when = date.fromisoformat(stored) if stored else day_date(self.loaded.plan, self.day)
        return local_time(self.loaded.plan, when)


def arrow(label: str) -> str:
    return f"→ {label}" if label in ("yes", "no") else ""


SqlFunction = tuple[str, int, Callable[..., Any]]
PythonValue = tuple[str, str, Callable[[str, str | None], object]]


class NodeType:
    """Everything the engine, the explainer and the diagrams know about one node type.

    Subclasses set ``model`` and ``drawing`` and override the hooks they need."""

    model: ClassVar[type[NodeBase]]
    drawing: ClassVar[Drawing] = Drawing()

    @property
    def name(self) -> str:
        """The ``type:`` a scenario file writes: the model's discriminator literal."""
        name: str = self.model.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]
        return name

    def is_allocation(self, node: NodeBase) -> bool:
        """The day's allocation: the node that splits the walk into ranked stages."""
        return False

    def is_date_trigger(self, node: NodeBase) -> bool:
        return False

    def predicate(self, node: NodeBase, ctx: DayContext) -> SqlPart | None:
        """A branch's test over ``c`` (customers) and ``e`` (email consent), true for ``yes``;
        None for a linear node."""
        return None

    def sql_functions(self, ctx: DayContext) -> list[SqlFunction]:
        """SQL functions the predicate calls, registered on the day's connection."""
        return []

    def python_values(self, node: NodeBase, ctx: DayContext) -> list[PythonValue]:
        """(function, salt, fn(salt, email)) of each ``sql_functions`` call the node's
        predicate makes: on PostgreSQL, which runs no Python, the values are computed for every
        customer beforehand and the predicate reads them (engine.sql.python_value)."""
        return []

    def leave_at(self, node: NodeBase, ctx: DayContext, arrive: datetime) -> datetime:
        """When a customer who arrived at ``arrive`` moves on."""
        return arrive

    def is_gate(self, node: NodeBase) -> bool:
        """Whether later actions of the same path wait for this node's row."""
        return False

    def writes(self, node: NodeBase) -> bool:
        """Whether reaching the node on a sending day writes something (``write_day``)."""
        return False

    def waits_for_gate(self, node: NodeBase) -> bool:
        """Whether the node's row waits for the path's last gate row (``after_key``)."""
        return False

    def write_day(self, node: NodeBase, reached: Reached) -> int:
        """Write the node's durable effect for every customer ``reached`` names; rows written."""
        return 0

    def on_event(self, node: NodeBase, visit: EventVisit) -> None:
        """The node's effect when an event flow walks one customer through it."""

    def explain(self, node: NodeBase, facts: Facts, label: str) -> str:
        """Why the customer took ``label`` out of the node (empty: nothing to say)."""
        return ""
