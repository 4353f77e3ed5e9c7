"""Strategy above the quarter: perspectives and strategic goals (writes), and what the strategy
page and the tree read of them.

Perspectives group strategic goals (a balanced scorecard's four by default); company objectives
link to a goal; the strategy page shows, for each goal, the company objectives that served it in
the last few cycles, with their scores.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Max, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from orgs import permissions
from orgs.models import Cycle, Team
from orgs.services import lock_organization
from orgs.validation import Fields

from .models import Objective, Perspective, StrategicGoal

DEFAULT_PERSPECTIVES = ("Financial", "Customer", "Internal process", "Learning and growth")
MAX_PERSPECTIVES = 10
MAX_GOALS = 30  # active goals: "a few long-term goals"; archive one to add another
STRATEGY_CYCLES = 4  # the strategy page's columns: the last cycles, newest first
PER_CELL = 5  # company objectives shown per goal and cycle
UNSERVED_AFTER = 2  # a goal no company objective served in this many cycles is flagged


def _check_manager(membership):
    if not permissions.can_manage_strategy(membership):
        raise PermissionDenied("Only org admins and alignment leads change the strategy.")


# Perspectives ----------------------------------------------------------------------------------


def create_default_perspectives(org):
    """The four perspectives a new organization starts with (none when it has some)."""
    if Perspective.objects.for_org(org).exists():
        return
    Perspective.objects.bulk_create([
        Perspective(organization=org, name=name, position=i)
        for i, name in enumerate(DEFAULT_PERSPECTIVES)])


def _clean_name(org, name, *, perspective=None):
    v = Fields(Perspective)
    name = v.line("name", name)
    v.done()
    taken = Perspective.objects.for_org(org).filter(name__iexact=name)
    if perspective is not None:
        taken = taken.exclude(pk=perspective.pk)
    if taken.exists():
        raise ValidationError({"name": f"There is a perspective named “{name}” already."})
    return name


def add_perspective(*, membership, name):
    _check_manager(membership)
    org = membership.organization
    with transaction.atomic():
        lock_organization(org)
        name = _clean_name(org, name)
        existing = Perspective.objects.for_org(org)
        if existing.count() >= MAX_PERSPECTIVES:
            raise ValidationError({"name": f"An organization keeps at most {MAX_PERSPECTIVES} "
                                           "perspectives. Remove one first."})
        last = existing.aggregate(last=Max("position"))["last"]
        return Perspective.objects.create(organization=org, name=name,
                                          position=0 if last is None else last + 1)


def rename_perspective(*, membership, perspective, name):
    _check_manager(membership)
    org = membership.organization
    with transaction.atomic():
        lock_organization(org)
        name = _clean_name(org, name, perspective=perspective)
        Perspective.objects.for_org(org).filter(pk=perspective.pk).update(name=name)
        perspective.name = name
    return perspective


def move_perspective(*, membership, perspective, up):
    """One place up (or down) in the order; the positions are renumbered 0..n-1."""
    _check_manager(membership)
    org = membership.organization
    with transaction.atomic():
        lock_organization(org)
        order = list(Perspective.objects.for_org(org).order_by("position", "pk"))
        at = next((i for i, p in enumerate(order) if p.pk == perspective.pk), None)
        if at is None:
            return
        to = at - 1 if up else at + 1
        if 0 <= to < len(order):
            order[at], order[to] = order[to], order[at]
        for i, p in enumerate(order):
            if p.position != i:
                Perspective.objects.for_org(org).filter(pk=p.pk).update(position=i)


def remove_perspective(*, membership, perspective):
    """Its goals stay, ungrouped."""
    _check_manager(membership)
    org = membership.organization
    with transaction.atomic():
        lock_organization(org)
        StrategicGoal.objects.for_org(org).filter(perspective=perspective).update(
            perspective=None)
        Perspective.objects.for_org(org).filter(pk=perspective.pk).delete()


# Strategic goals -------------------------------------------------------------------------------


def save_goal(*, membership, goal=None, title, perspective=None, horizon="", description=""):
    """Add a goal (``goal`` None) or change one."""
    _check_manager(membership)
    org = membership.organization
    v = Fields(StrategicGoal)
    title = v.line("title", title)
    horizon = v.line("horizon", horizon, required=False)
    description = v.text("description", description)
    if perspective is not None and perspective.organization_id != org.pk:
        v.refuse("perspective", "Choose a perspective of this organization.")
    v.done()
    with transaction.atomic():
        lock_organization(org)
        goals = StrategicGoal.objects.for_org(org)
        if goal is None:
            if goals.filter(is_archived=False).count() >= MAX_GOALS:
                raise ValidationError(
                    f"An organization keeps at most {MAX_GOALS} strategic goals at a time. "
                    "Archive one that is done or no longer pursued, then add this one.")
            last = goals.aggregate(last=Max("position"))["last"]
            return StrategicGoal.objects.create(
                organization=org, title=title, perspective=perspective, horizon=horizon,
                description=description, position=0 if last is None else last + 1)
        goals.filter(pk=goal.pk).update(title=title, perspective=perspective, horizon=horizon,
                                        description=description)
        goal.title, goal.perspective, goal.horizon = title, perspective, horizon
        goal.description = description
        return goal


def set_goal_archived(*, membership, goal, archived):
    """An archived goal leaves the strategy page and the objective form; the objectives that
    served it keep the link. Restoring it counts against the limit again."""
    _check_manager(membership)
    org = membership.organization
    with transaction.atomic():
        lock_organization(org)
        if not archived and goal.is_archived and StrategicGoal.objects.for_org(org).filter(
                is_archived=False).count() >= MAX_GOALS:
            raise ValidationError(f"An organization keeps at most {MAX_GOALS} strategic goals "
                                  "at a time. Archive another one first.")
        StrategicGoal.objects.for_org(org).filter(pk=goal.pk).update(is_archived=archived)
        goal.is_archived = archived
    return goal


def check_goal(org, team, goal):
    """The objective services' check of a strategic goal: this organization's, live, and on a
    company objective only. Returns the errors (field -> message)."""
    if goal is None:
        return {}
    if goal.organization_id != org.pk:
        return {"strategic_goal": "Choose a strategic goal of this organization."}
    if not team.is_company:
        return {"strategic_goal": "Only company objectives link to a strategic goal."}
    return {}


# Reads -----------------------------------------------------------------------------------------


def active_goals(org):
    return (StrategicGoal.objects.for_org(org).filter(is_archived=False)
            .select_related("perspective").order_by(
                F("perspective__position").asc(nulls_last=True), "perspective_id", "position",
                "pk"))


@dataclass
class GoalRow:
    goal: StrategicGoal
    # One entry per cycle of the page, newest first: the company objectives that served it.
    cells: list = field(default_factory=list)
    is_unserved: bool = False


@dataclass
class PerspectiveGroup:
    perspective: Perspective | None  # None: goals with no perspective
    goals: list = field(default_factory=list)


def strategy_page(org, *, today=None):
    """The strategy page's data in a fixed number of queries: the last cycles (those that have
    started, newest first), the active goals grouped by perspective, and for each goal and cycle
    the company objectives that served it (a few per cell) with their score, or their progress
    while the cycle is open."""
    from .selectors import assess

    today = today or timezone.localdate()
    cycles = list(Cycle.objects.for_org(org).filter(start_date__lte=today)
                  .order_by("-start_date", "-pk")[:STRATEGY_CYCLES])
    perspectives = list(Perspective.objects.for_org(org).order_by("position", "pk")
                        [:MAX_PERSPECTIVES])
    goals = list(active_goals(org)[:MAX_GOALS])
    served = defaultdict(list)
    if goals and cycles:
        newest_first = [F("cycle__start_date").desc(), F("title").asc(), F("pk").asc()]
        objectives = list(
            Objective.objects.for_org(org).live()
            .filter(cycle__in=cycles, strategic_goal__in=goals, team__kind=Team.Kind.COMPANY)
            .annotate(rank=Window(RowNumber(), partition_by=[F("strategic_goal"), F("cycle")],
                                  order_by=newest_first))
            .filter(rank__lte=PER_CELL).with_key_results().order_by(*newest_first))
        open_ones = [o for o in objectives if not o.cycle.is_closed]
        assess(open_ones)
        for o in objectives:
            served[(o.strategic_goal_id, o.cycle_id)].append(o)
    recent = cycles[:UNSERVED_AFTER]
    rows = {}
    for goal in goals:
        cells = [served[(goal.pk, c.pk)] for c in cycles]
        rows[goal.pk] = GoalRow(goal=goal, cells=cells, is_unserved=bool(recent) and not any(
            served[(goal.pk, c.pk)] for c in recent))
    groups = [PerspectiveGroup(p, [rows[g.pk] for g in goals if g.perspective_id == p.pk])
              for p in perspectives]
    ungrouped = [rows[g.pk] for g in goals if g.perspective_id is None]
    if ungrouped:
        groups.append(PerspectiveGroup(None, ungrouped))
    return {"cycles": cycles, "groups": groups, "goal_count": len(goals),
            "unserved_window": len(recent)}


TREE_GOAL_OBJECTIVES = 50  # company objectives of a cycle under their goals, at most


def tree_from_goals(org, cycle):
    """The alignment tree's top level when it starts from strategic goals: the active goals
    (grouped and ordered as on the strategy page), each with this cycle's company objectives
    beneath, then the company objectives that serve no goal. Returns (goals with ``.nodes``,
    unlinked objectives); the objectives come as the tree's own rows (``tree_level``)."""
    from .selectors import _objectives, assess

    goals = list(active_goals(org)[:MAX_GOALS])
    rows = list(_objectives(org, cycle).filter(parent__isnull=True, team__kind=Team.Kind.COMPANY)
                .order_by("title", "pk")[:TREE_GOAL_OBJECTIVES])
    assess(rows)
    by_goal = defaultdict(list)
    for o in rows:
        by_goal[o.strategic_goal_id].append(o)
    for g in goals:
        g.nodes = by_goal.pop(g.pk, [])
    unlinked = [o for key, nodes in by_goal.items() for o in nodes]
    unlinked.sort(key=lambda o: (o.title, o.pk))
    return goals, unlinked
