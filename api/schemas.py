"""The API's shapes, typed: ninja builds the OpenAPI schema from these, and the endpoints
validate what they send through them."""

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from ninja import Field, Schema

Health = Literal["on_track", "at_risk", "off_track"]
HealthOrNone = Literal["on_track", "at_risk", "off_track", ""]
ObjectiveState = Literal["draft", "proposed", "approved", "published", "retired"]
DependencyState = Literal["requested", "committed", "declined", "delivered", "broken",
                          "withdrawn"]


class Cycle(Schema):
    id: int
    name: str
    start_date: date
    end_date: date
    status: Literal["planning", "active", "closed"]


class Team(Schema):
    id: int
    name: str
    kind: Literal["company", "department", "team"]
    team_type: str
    parent_id: int | None
    lead_id: int | None
    charter: str


class KeyResult(Schema):
    id: int
    objective_id: int
    title: str
    kind: Literal["numeric", "keep_above", "keep_below", "milestone", "baseline"]
    start_value: float | None
    target_value: float | None
    current_value: float | None
    unit: str
    is_done: bool
    owner_team_id: int
    owner_id: int | None
    weight: float
    confidence: HealthOrNone = Field(description="The latest check-in's confidence.")
    effective_health: HealthOrNone
    last_check_in_at: datetime | None
    score: float | None
    version: int = Field(description="Send it back with a change: a stale one is refused.")


class Objective(Schema):
    id: int
    cycle_id: int
    team_id: int
    parent_id: int | None
    title: str
    why: str
    success: str
    tradeoffs: str
    state: ObjectiveState
    is_local: bool
    commitment: Literal["committed", "aspirational"]
    effective_health: HealthOrNone
    score: float | None
    created_at: datetime
    updated_at: datetime
    version: int = Field(description="Send it back with a change: a stale one is refused.")
    key_results: list[KeyResult]


class CheckIn(Schema):
    id: int
    key_result_id: int
    value: float | None
    is_done: bool | None
    confidence: Health
    note: str
    author_id: int | None
    source: Literal["person", "api", "data_source", "import"]
    created_at: datetime
    correction: Literal["", "edited", "deleted"]


class Dependency(Schema):
    id: int
    cycle_id: int
    downstream_objective_id: int | None
    downstream_key_result_id: int | None
    upstream_objective_id: int | None
    upstream_key_result_id: int | None
    requesting_team_id: int
    providing_team_id: int
    need: str
    needed_by: date
    fallback: str
    status: DependencyState
    response_note: str
    created_at: datetime
    updated_at: datetime


class Share(Schema):
    id: int
    objective_id: int
    team_id: int
    kind: Literal["whole", "objective"]
    created_at: datetime


class Workflow(Schema):
    id: int
    cycle_id: int
    objective_id: int
    lead_id: int | None
    is_closed: bool
    purpose: str
    impact: str
    signed_off_at: datetime | None
    kickoff_date: date | None
    sync_frequency: str
    created_at: datetime


class Finding(Schema):
    id: int
    cycle_id: int
    rule: str
    severity: Literal["high", "medium", "low"]
    message: str
    who: str
    objective_id: int | None
    key_result_id: int | None
    dependency_id: int | None


class Notification(Schema):
    id: int
    kind: str
    health: HealthOrNone
    title: str
    objective_id: int
    key_result_id: int | None
    url: str
    created_at: datetime
    read_at: datetime | None


def paged(item):
    """``{"items": [...], "next_cursor": ...}``: pass ``next_cursor`` back as ``cursor``."""
    return type(f"{item.__name__}Page", (Schema,), {
        "__annotations__": {"items": list[item], "next_cursor": str | None},
        "__doc__": f"A page of {item.__name__}s; `next_cursor` is null on the last page.",
    })


class Problem(Schema):
    """An error (RFC 9457 problem details), ``application/problem+json``."""
    type: str
    title: str
    status: int
    detail: str
    errors: dict[str, list[str]] | None = Field(
        None, description="A refused input: the messages by field (`__all__`: not one field).")


# Inputs ------------------------------------------------------------------------------------


class ObjectiveCreate(Schema):
    cycle_id: int
    team_id: int
    title: str
    why: str = ""
    success: str = ""
    tradeoffs: str = ""
    parent_id: int | None = None
    is_local: bool = False
    state: Literal["draft", "proposed"] = "draft"
    commitment: Literal["committed", "aspirational"] | None = None


class ObjectiveUpdate(Schema):
    """Only the fields sent change; ``version`` is the one you read."""
    version: int
    title: str | None = None
    why: str | None = None
    success: str | None = None
    tradeoffs: str | None = None
    team_id: int | None = None
    parent_id: int | None = None
    is_local: bool | None = None
    state: Literal["draft", "proposed", "approved", "published"] | None = None
    commitment: Literal["committed", "aspirational"] | None = None


class KeyResultCreate(Schema):
    objective_id: int
    title: str
    kind: Literal["numeric", "keep_above", "keep_below", "milestone", "baseline"] = "numeric"
    start_value: Decimal | None = None
    target_value: Decimal | None = None
    unit: str = ""
    owner_team_id: int | None = None
    owner_id: int | None = None
    weight: Decimal = Decimal("1")


class KeyResultUpdate(Schema):
    """Only the fields sent change; ``version`` is the one you read."""
    version: int
    title: str | None = None
    start_value: Decimal | None = None
    target_value: Decimal | None = None
    unit: str | None = None
    owner_team_id: int | None = None
    owner_id: int | None = None
    weight: Decimal | None = None


class CheckInCreate(Schema):
    value: Decimal | None = Field(None, description="Numeric key results: the current value.")
    is_done: bool | None = Field(None, description="Milestones: done or not.")
    confidence: Health | None = Field(
        None, description="Required with a personal token; a service token keeps the current "
                          "one when it is left out.")
    note: str = ""
    at: datetime | None = Field(None, description="When it was true; now when left out.")


class DependencyCreate(Schema):
    downstream_objective_id: int | None = None
    downstream_key_result_id: int | None = None
    upstream_objective_id: int | None = None
    upstream_key_result_id: int | None = None
    need: str
    needed_by: date
    fallback: str


class DependencyAnswer(Schema):
    status: Literal["committed", "declined", "delivered", "broken", "withdrawn"]
    note: str = ""


class ShareCreate(Schema):
    objective_id: int
    team_id: int
    kind: Literal["whole", "objective"]
