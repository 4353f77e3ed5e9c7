"""The REST API, version 1: one organization per URL (``/api/v1/orgs/<slug>/...``).

Every endpoint goes through ``org_endpoint`` (context.py), reads rows through
``Model.objects.for_org(org)`` and the same access helpers as the pages, and writes through the
same services, so the API allows what the UI allows and refuses with the same messages.
"""

from datetime import datetime
from typing import Literal

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404, HttpResponse
from ninja import Field, NinjaAPI, Path, Query, Router
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as InputError

from alignment.models import Finding, Workflow
from dependencies import services as dependency_services
from dependencies.access import access_dependency, access_node, notifications_of
from dependencies.models import Dependency, ObjectiveShare
from okrs import services as okr_services
from okrs.access import access_key_result, access_objective
from okrs.models import CheckIn, KeyResult, Objective
from okrs.selectors import my_team_ids
from orgs import permissions
from orgs.db import WriteConflict
from orgs.models import Cycle, Membership, Team

from . import schemas as s
from .auth import AUTH
from .context import one, org_endpoint, page
from .problems import problem, pydantic_errors, validation_errors

api = NinjaAPI(
    title="OKR Alignment API",
    version="1",
    description=(
        "Read and change one organization's OKRs. Authenticate with a token from "
        "“API tokens” (`Authorization: Bearer okrp_…`), or a signed-in session (send the "
        "CSRF token in `X-CSRFToken` with writes). Lists are paged with an opaque `cursor`; "
        "reads carry an `ETag` (send it back in `If-None-Match` for a 304). Errors are "
        "`application/problem+json`."),
    urls_namespace="api-v1",
    docs_url=None,  # the docs live at /api/docs/ (api/views.py)
    auth=AUTH,
)
router = Router()
ERRORS = {401: s.Problem, 403: s.Problem, 404: s.Problem, 422: s.Problem, 429: s.Problem}
WRITE_ERRORS = {**ERRORS, 409: s.Problem}


# Errors -----------------------------------------------------------------------------------------


@api.exception_handler(okr_services.StaleEdit)
def _stale(request, exc):
    return problem(409, " ".join(exc.messages),
                   errors={"version": [f"The current version is {exc.version}."]})


@api.exception_handler(ValidationError)
def _invalid(request, exc):
    detail, errors = validation_errors(exc)
    return problem(422, detail, errors=errors)


@api.exception_handler(InputError)
def _bad_input(request, exc):
    return problem(422, "The request does not match the schema.",
                   errors=pydantic_errors(exc.errors))


@api.exception_handler(PermissionDenied)
def _denied(request, exc):
    return problem(403, str(exc) or "You may not do this.")


@api.exception_handler(Http404)
def _missing(request, exc):
    return problem(404, str(exc) or "Not found.")


@api.exception_handler(ObjectDoesNotExist)
def _missing_row(request, exc):
    return problem(404, "Not found.")


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    detail = str(exc) if str(exc) not in ("", "Unauthorized") else (
        "Send a token (Authorization: Bearer …) or sign in.")
    return problem(401, detail, headers={"WWW-Authenticate": "Bearer"})


@api.exception_handler(HttpError)
def _http_error(request, exc):
    return problem(exc.status_code, str(exc))


@api.exception_handler(WriteConflict)
def _conflict(request, exc):
    return problem(503, "Someone else was saving at the same moment. Try again.",
                   headers={"Retry-After": "2"})


# Helpers ----------------------------------------------------------------------------------------


def _org(request):
    return request.caller.org


def _get(qs, pk, what):
    row = qs.filter(pk=pk).first()
    if row is None:
        raise Http404(f"No such {what}.")
    return row


def _team(org, pk, field="team_id"):
    team = Team.objects.for_org(org).filter(pk=pk).first()
    if team is None:
        raise ValidationError({field: "Choose a team of this organization."})
    return team


def _since(qs, field, since):
    return qs.filter(**{f"{field}__gte": since}) if since else qs


class Paging(s.Schema):
    cursor: str | None = None
    limit: int = 50


# Cycles and teams ------------------------------------------------------------------------------


@router.get("/cycles/", tags=["cycles"], response={200: s.paged(s.Cycle), **ERRORS})
@org_endpoint()
def list_cycles(request, org_slug: Path[str], paging: Query[Paging],
                status: Literal["planning", "active", "closed"] | None = None):
    """The organization's cycles."""
    qs = Cycle.objects.for_org(_org(request))
    if status:
        qs = qs.filter(status=status)
    return page(request, s.Cycle, qs, cursor=paging.cursor, limit=paging.limit)


@router.get("/cycles/{int:cycle_id}/", tags=["cycles"], response={200: s.Cycle, **ERRORS})
@org_endpoint()
def get_cycle(request, org_slug: Path[str], cycle_id: int):
    return one(request, s.Cycle, _get(Cycle.objects.for_org(_org(request)), cycle_id, "cycle"))


@router.get("/teams/", tags=["teams"], response={200: s.paged(s.Team), **ERRORS})
@org_endpoint()
def list_teams(request, org_slug: Path[str], paging: Query[Paging], parent: int | None = None):
    """The org tree's units: ``parent`` lists the units right below one."""
    qs = Team.objects.for_org(_org(request))
    if parent is not None:
        qs = qs.filter(parent_id=parent)
    return page(request, s.Team, qs, cursor=paging.cursor, limit=paging.limit)


@router.get("/teams/{int:team_id}/", tags=["teams"], response={200: s.Team, **ERRORS})
@org_endpoint()
def get_team(request, org_slug: Path[str], team_id: int):
    return one(request, s.Team, _get(Team.objects.for_org(_org(request)), team_id, "team"))


# Objectives ----------------------------------------------------------------------------------


class ObjectiveFilters(s.Schema):
    mine: bool = Field(False, description="Only the teams you belong to or lead.")
    team: int | None = None
    cycle: int | None = None
    state: s.ObjectiveState | None = None
    health: s.Health | None = Field(None, description="The effective health.")
    updated_since: datetime | None = None


@router.get("/objectives/", tags=["objectives"], response={200: s.paged(s.Objective), **ERRORS})
@org_endpoint()
def list_objectives(request, org_slug: Path[str], filters: Query[ObjectiveFilters],
                    paging: Query[Paging]):
    """Objectives with their key results, oldest change first (``updated_since`` picks up
    where a sync left off)."""
    qs = Objective.objects.for_org(_org(request)).with_key_results()
    if filters.mine:
        qs = qs.filter(team_id__in=my_team_ids(request.caller.person("“mine”")))
    if filters.team is not None:
        qs = qs.filter(team_id=filters.team)
    if filters.cycle is not None:
        qs = qs.filter(cycle_id=filters.cycle)
    if filters.state:
        qs = qs.filter(state=filters.state)
    if filters.health:
        qs = qs.filter(effective_health=filters.health)
    qs = _since(qs, "updated_at", filters.updated_since)
    return page(request, s.Objective, qs, cursor=paging.cursor, limit=paging.limit,
                key="updated_at")


@router.get("/objectives/{int:objective_id}/", tags=["objectives"],
            response={200: s.Objective, **ERRORS})
@org_endpoint()
def get_objective(request, org_slug: Path[str], objective_id: int):
    caller = request.caller
    objective = _get(Objective.objects.for_org(caller.org).with_key_results(), objective_id,
                     "objective")
    return one(request, s.Objective, objective)


def _parent(org, pk):
    if pk is None:
        return None
    parent = Objective.objects.for_org(org).filter(pk=pk).first()
    if parent is None:
        raise ValidationError({"parent_id": "Choose an objective of this organization."})
    return parent


@router.post("/objectives/", tags=["objectives"], response={201: s.Objective, **WRITE_ERRORS})
@org_endpoint(write=True)
def create_objective(request, org_slug: Path[str], data: s.ObjectiveCreate):
    """Add an objective (team leads for their teams, alignment leads and admins)."""
    caller = request.caller
    org, membership = caller.org, caller.person()
    cycle = Cycle.objects.for_org(org).filter(pk=data.cycle_id).first()
    if cycle is None:
        raise ValidationError({"cycle_id": "Choose a cycle of this organization."})
    objective = okr_services.create_objective(
        membership=membership, cycle=cycle, team=_team(org, data.team_id), title=data.title,
        why=data.why, success=data.success, tradeoffs=data.tradeoffs,
        parent=_parent(org, data.parent_id), is_local=data.is_local, state=data.state,
        commitment=data.commitment)
    objective = Objective.objects.for_org(org).with_key_results().get(pk=objective.pk)
    return one(request, s.Objective, objective, status=201)


@router.patch("/objectives/{int:objective_id}/", tags=["objectives"],
              response={200: s.Objective, **WRITE_ERRORS})
@org_endpoint(write=True)
def update_objective(request, org_slug: Path[str], objective_id: int, data: s.ObjectiveUpdate):
    """Change an objective: send ``version`` as read, and only the fields that change."""
    caller = request.caller
    org, membership = caller.org, caller.person()
    current = access_objective(membership, objective_id, write=True)
    sent = data.model_dump(exclude_unset=True)
    team = _team(org, sent["team_id"]) if sent.get("team_id") is not None else current.team
    parent = (_parent(org, sent["parent_id"]) if "parent_id" in sent else current.parent)
    okr_services.update_objective(
        membership=membership, objective=current, version=data.version,
        title=sent.get("title", current.title), why=sent.get("why", current.why), team=team,
        parent=parent, is_local=sent.get("is_local", current.is_local),
        state=sent.get("state") or current.state, theme=current.theme,
        success=sent.get("success"), tradeoffs=sent.get("tradeoffs"),
        commitment=sent.get("commitment"))
    objective = Objective.objects.for_org(org).with_key_results().get(pk=current.pk)
    return one(request, s.Objective, objective)


@router.delete("/objectives/{int:objective_id}/", tags=["objectives"],
               response={204: None, **WRITE_ERRORS})
@org_endpoint(write=True)
def retire_objective(request, org_slug: Path[str], objective_id: int):
    """Retire an objective: it leaves the alignment tree and the pages, its history and its
    key results' check-ins stay, and its team can bring it back in the app. Everything aligned
    below a company or department objective is flagged for its owners, as in the app.
    Retiring one that is retired already changes nothing."""
    membership = request.caller.person()
    current = access_objective(membership, objective_id)
    if not current.is_retired:
        okr_services.retire_objective(membership=membership, objective=current)
    elif not permissions.can_unretire_objective(membership, current):  # who could retire it
        raise PermissionDenied("You can retire objectives only of teams you lead.")
    return HttpResponse(status=204)


# Key results and check-ins --------------------------------------------------------------------


class KeyResultFilters(s.Schema):
    objective: int | None = None
    team: int | None = None
    cycle: int | None = None
    health: s.Health | None = Field(None, description="The effective health.")


@router.get("/key-results/", tags=["key results"], response={200: s.paged(s.KeyResult), **ERRORS})
@org_endpoint()
def list_key_results(request, org_slug: Path[str], filters: Query[KeyResultFilters],
                     paging: Query[Paging]):
    """Key results; ``team`` matches the owner team or the objective's team."""
    qs = KeyResult.objects.for_org(_org(request))
    if filters.objective is not None:
        qs = qs.filter(objective_id=filters.objective)
    if filters.team is not None:
        qs = qs.filter(Q(owner_team_id=filters.team) | Q(objective__team_id=filters.team))
    if filters.cycle is not None:
        qs = qs.filter(objective__cycle_id=filters.cycle)
    if filters.health:
        qs = qs.filter(effective_health=filters.health)
    return page(request, s.KeyResult, qs, cursor=paging.cursor, limit=paging.limit)


@router.get("/key-results/{int:key_result_id}/", tags=["key results"],
            response={200: s.KeyResult, **ERRORS})
@org_endpoint()
def get_key_result(request, org_slug: Path[str], key_result_id: int):
    return one(request, s.KeyResult, _get(KeyResult.objects.for_org(_org(request)),
                                          key_result_id, "key result"))


def _owner(org, pk):
    if pk is None:
        return None
    membership = Membership.objects.for_org(org).select_related("user").filter(
        user_id=pk).first()
    if membership is None:
        raise ValidationError({"owner_id": "The owner must be a member of the organization."})
    return membership.user


@router.post("/key-results/", tags=["key results"], response={201: s.KeyResult, **WRITE_ERRORS})
@org_endpoint(write=True)
def create_key_result(request, org_slug: Path[str], data: s.KeyResultCreate):
    caller = request.caller
    org, membership = caller.org, caller.person()
    objective = Objective.objects.for_org(org).select_related("cycle", "team").filter(
        pk=data.objective_id).first()
    if objective is None:
        raise ValidationError({"objective_id": "Choose an objective of this organization."})
    key_result = okr_services.create_key_result(
        membership=membership, objective=objective, title=data.title, kind=data.kind,
        start_value=data.start_value, target_value=data.target_value, unit=data.unit,
        owner_team=_team(org, data.owner_team_id, "owner_team_id") if data.owner_team_id
        else None, owner=_owner(org, data.owner_id), weight=data.weight)
    return one(request, s.KeyResult, key_result, status=201)


@router.patch("/key-results/{int:key_result_id}/", tags=["key results"],
              response={200: s.KeyResult, **WRITE_ERRORS})
@org_endpoint(write=True)
def update_key_result(request, org_slug: Path[str], key_result_id: int, data: s.KeyResultUpdate):
    """Change a key result: send ``version`` as read, and only the fields that change."""
    caller = request.caller
    org, membership = caller.org, caller.person()
    current = access_key_result(membership, key_result_id, write=True)
    sent = data.model_dump(exclude_unset=True)
    owner_team = (_team(org, sent["owner_team_id"], "owner_team_id")
                  if sent.get("owner_team_id") is not None else current.owner_team)
    owner = _owner(org, sent["owner_id"]) if "owner_id" in sent else current.owner
    key_result = okr_services.update_key_result(
        membership=membership, key_result=current, version=data.version,
        title=sent.get("title", current.title),
        start_value=sent.get("start_value", current.start_value),
        target_value=sent.get("target_value", current.target_value),
        unit=sent.get("unit", current.unit), owner_team=owner_team, owner=owner,
        weight=sent.get("weight") or current.weight)
    return one(request, s.KeyResult, key_result)


@router.delete("/key-results/{int:key_result_id}/", tags=["key results"],
               response={204: None, **WRITE_ERRORS})
@org_endpoint(write=True)
def delete_key_result(request, org_slug: Path[str], key_result_id: int):
    """Delete a key result added by mistake. One with check-ins (its history is kept), or that
    a dependency or another key result points at, is refused with 422 and the reason."""
    membership = request.caller.person()
    current = access_key_result(membership, key_result_id, write=True)
    okr_services.delete_key_result(membership=membership, key_result=current)
    return HttpResponse(status=204)


class CheckInFilters(s.Schema):
    key_result: int | None = None
    team: int | None = None
    cycle: int | None = None
    updated_since: datetime | None = None


@router.get("/check-ins/", tags=["check-ins"], response={200: s.paged(s.CheckIn), **ERRORS})
@org_endpoint()
def list_check_ins(request, org_slug: Path[str], filters: Query[CheckInFilters],
                   paging: Query[Paging]):
    """Check-ins, oldest first, corrected ones included (``correction`` says so)."""
    qs = CheckIn.objects.for_org(_org(request))
    if filters.key_result is not None:
        qs = qs.filter(key_result_id=filters.key_result)
    if filters.team is not None:
        qs = qs.filter(key_result__owner_team_id=filters.team)
    if filters.cycle is not None:
        qs = qs.filter(key_result__objective__cycle_id=filters.cycle)
    qs = _since(qs, "created_at", filters.updated_since)
    return page(request, s.CheckIn, qs, cursor=paging.cursor, limit=paging.limit,
                key="created_at")


@router.post("/key-results/{int:key_result_id}/check-ins/",
             response={201: s.CheckIn, **WRITE_ERRORS})
@org_endpoint(write=True, service_may_write=True)
def create_check_in(request, org_slug: Path[str], key_result_id: int, data: s.CheckInCreate):
    """Check in on a key result. With a personal token it is that person's check-in (the same
    rules as in the app); with a service token it is the organization's, with no author."""
    caller = request.caller
    fields = dict(value=data.value, is_done=data.is_done, confidence=data.confidence,
                  note=data.note, at=data.at)
    if caller.is_service:
        key_result = _get(KeyResult.objects.for_org(caller.org).select_related(
            "objective__cycle", "objective__team"), key_result_id, "key result")
        check_in = okr_services.record_source_check_in(
            key_result=key_result, source=CheckIn.Source.API, **fields)
    else:
        key_result = access_key_result(caller.membership, key_result_id, check_in=True)
        check_in = okr_services.record_check_in(
            membership=caller.membership, key_result=key_result, source=CheckIn.Source.API,
            **fields)
    return one(request, s.CheckIn, check_in, status=201)


# Dependencies and shares --------------------------------------------------------------------


class DependencyFilters(s.Schema):
    cycle: int | None = None
    team: int | None = None
    state: s.DependencyState | None = None
    updated_since: datetime | None = None


@router.get("/dependencies/", tags=["dependencies"],
            response={200: s.paged(s.Dependency), **ERRORS})
@org_endpoint()
def list_dependencies(request, org_slug: Path[str], filters: Query[DependencyFilters],
                      paging: Query[Paging]):
    """Dependencies; ``team`` matches either side, ``state`` the status."""
    qs = Dependency.objects.for_org(_org(request))
    if filters.cycle is not None:
        qs = qs.filter(cycle_id=filters.cycle)
    if filters.team is not None:
        qs = qs.filter(Q(requesting_team_id=filters.team) | Q(providing_team_id=filters.team))
    if filters.state:
        qs = qs.filter(status=filters.state)
    qs = _since(qs, "updated_at", filters.updated_since)
    return page(request, s.Dependency, qs, cursor=paging.cursor, limit=paging.limit,
                key="updated_at")


@router.get("/dependencies/{int:dependency_id}/", tags=["dependencies"],
            response={200: s.Dependency, **ERRORS})
@org_endpoint()
def get_dependency(request, org_slug: Path[str], dependency_id: int):
    return one(request, s.Dependency, _get(Dependency.objects.for_org(_org(request)),
                                           dependency_id, "dependency"))


def _node(membership, objective_id, key_result_id, field):
    if (objective_id is None) == (key_result_id is None):
        raise ValidationError({field: "Give either an objective or a key result."})
    try:
        if objective_id is not None:
            return access_node(membership, "o", objective_id)
        return access_node(membership, "k", key_result_id)
    except Http404:
        raise ValidationError({field: "Choose an objective or key result of this "
                                      "organization."}) from None


@router.post("/dependencies/", tags=["dependencies"], response={201: s.Dependency, **WRITE_ERRORS})
@org_endpoint(write=True)
def create_dependency(request, org_slug: Path[str], data: s.DependencyCreate):
    """Record that a team's objective or key result needs another team's."""
    membership = request.caller.person()
    dependency = dependency_services.request_dependency(
        membership=membership,
        downstream=_node(membership, data.downstream_objective_id,
                         data.downstream_key_result_id, "downstream"),
        upstream=_node(membership, data.upstream_objective_id, data.upstream_key_result_id,
                       "upstream"),
        need=data.need, needed_by=data.needed_by, fallback=data.fallback)
    return one(request, s.Dependency, dependency, status=201)


@router.post("/dependencies/{int:dependency_id}/answer/",
             response={200: s.Dependency, **WRITE_ERRORS})
@org_endpoint(write=True)
def answer_dependency(request, org_slug: Path[str], dependency_id: int, data: s.DependencyAnswer):
    """Commit, decline (with a reason), deliver, break or withdraw a dependency."""
    membership = request.caller.person()
    dependency = access_dependency(membership, dependency_id)
    dependency_services.answer_dependency(membership=membership, dependency=dependency,
                                          status=data.status, note=data.note)
    return one(request, s.Dependency, Dependency.objects.for_org(membership.organization).get(
        pk=dependency.pk))


@router.get("/shares/", tags=["shares"], response={200: s.paged(s.Share), **ERRORS})
@org_endpoint()
def list_shares(request, org_slug: Path[str], paging: Query[Paging], objective: int | None = None,
                team: int | None = None):
    """Objectives shared with other teams (the whole OKR, or only the objective)."""
    qs = ObjectiveShare.objects.for_org(_org(request))
    if objective is not None:
        qs = qs.filter(objective_id=objective)
    if team is not None:
        qs = qs.filter(team_id=team)
    return page(request, s.Share, qs, cursor=paging.cursor, limit=paging.limit)


@router.post("/shares/", tags=["shares"], response={201: s.Share, **WRITE_ERRORS})
@org_endpoint(write=True)
def create_share(request, org_slug: Path[str], data: s.ShareCreate):
    caller = request.caller
    membership = caller.person()
    objective = Objective.objects.for_org(caller.org).select_related("cycle", "team").filter(
        pk=data.objective_id).first()
    if objective is None:
        raise ValidationError({"objective_id": "Choose an objective of this organization."})
    share = dependency_services.share_objective(
        membership=membership, objective=objective, team=_team(caller.org, data.team_id),
        kind=data.kind)
    return one(request, s.Share, share, status=201)


# Read-only: workflows, findings, notifications -------------------------------------------------


@router.get("/workflows/", tags=["workflows"], response={200: s.paged(s.Workflow), **ERRORS})
@org_endpoint()
def list_workflows(request, org_slug: Path[str], paging: Query[Paging], cycle: int | None = None):
    """Cross-team alignment workflows (read only)."""
    qs = Workflow.objects.for_org(_org(request))
    if cycle is not None:
        qs = qs.filter(cycle_id=cycle)
    return page(request, s.Workflow, qs, cursor=paging.cursor, limit=paging.limit)


@router.get("/workflows/{int:workflow_id}/", tags=["workflows"],
            response={200: s.Workflow, **ERRORS})
@org_endpoint()
def get_workflow(request, org_slug: Path[str], workflow_id: int):
    return one(request, s.Workflow, _get(Workflow.objects.for_org(_org(request)), workflow_id,
                                         "workflow"))


@router.get("/findings/", tags=["findings"], response={200: s.paged(s.Finding), **ERRORS})
@org_endpoint()
def list_findings(request, org_slug: Path[str], cycle: int, paging: Query[Paging],
                  severity: Literal["high", "medium", "low"] | None = None):
    """A cycle's misalignment findings, as the last recompute stored them (empty while the
    report is being prepared)."""
    org = _org(request)
    _get(Cycle.objects.for_org(org), cycle, "cycle")
    qs = Finding.objects.for_org(org).filter(cycle_id=cycle)
    if severity:
        qs = qs.filter(severity=severity)
    return page(request, s.Finding, qs, cursor=paging.cursor, limit=paging.limit)


@router.get("/notifications/", tags=["notifications"],
            response={200: s.paged(s.Notification), **ERRORS})
@org_endpoint()
def list_notifications(request, org_slug: Path[str], paging: Query[Paging],
                       unread: bool = False):
    """The caller's own notifications (a personal token or a session; not a service token)."""
    membership = request.caller.person("Reading notifications")
    qs = notifications_of(membership)
    if unread:
        qs = qs.filter(read_at__isnull=True)
    return page(request, s.Notification, qs, cursor=paging.cursor, limit=paging.limit)


api.add_router("/orgs/{org_slug}/", router)
