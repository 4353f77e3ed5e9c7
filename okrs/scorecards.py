"""Scorecards: a team's KPIs, their values over time, their health, and the recovery objective
offered when one leaves its healthy band.

Values come in through ``record_kpi_value`` (a person on the team page) or
``record_source_kpi_value`` (no person typed it: the seam for a data source, the API or an
import; the caller has authenticated the sender). Both go through ``_take_value``, which moves
the KPI's current value and health and tells the team's lead when the KPI got worse.
"""

from collections import Counter
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

import history
from orgs import permissions
from orgs.models import Cycle, Team
from orgs.validation import Fields

from . import kpis
from .models import KPI, CheckIn, KPIValue, Objective

SPARK_VALUES = 20


# KPIs ----------------------------------------------------------------------------------------


def _clean_kpi(*, name, unit, direction, healthy_at, warning_at):
    v = Fields(KPI)
    name = v.line("name", name)
    unit = v.line("unit", unit or "", required=False)
    v.choice("direction", direction)
    healthy_at = v.decimal("healthy_at", healthy_at)
    warning_at = v.decimal("warning_at", warning_at)
    v.done()
    if (healthy_at is None) != (warning_at is None):
        raise ValidationError({"warning_at": "Give both bands, or neither."})
    if healthy_at is not None:
        sign = 1 if direction == KPI.Direction.HIGHER else -1
        if sign * warning_at > sign * healthy_at:
            raise ValidationError({"warning_at": (
                "The warning band starts where healthy ends: it must be at or below the "
                "healthy threshold." if sign > 0 else "The warning band starts where healthy "
                "ends: it must be at or above the healthy threshold.")})
    return dict(name=name, unit=unit, direction=direction, healthy_at=healthy_at,
                warning_at=warning_at)


def save_kpi(*, membership, team, kpi=None, name, unit="", direction=KPI.Direction.HIGHER,
             healthy_at=None, warning_at=None):
    """Add a KPI to ``team``'s scorecard (kpi=None) or change one: its name, unit, direction
    and bands. Its health is read again from its current value with the new bands."""
    org = membership.organization
    if team.organization_id != org.pk or (kpi is not None and kpi.team_id != team.pk):
        raise ValidationError("Choose a KPI of this team.")
    if not permissions.can_keep_unit(membership, team.pk):
        raise PermissionDenied("Only the leads of a unit, and the units above it, keep its "
                               "scorecard.")
    fields = _clean_kpi(name=name, unit=unit, direction=direction, healthy_at=healthy_at,
                        warning_at=warning_at)
    with transaction.atomic():
        Team.objects.for_org(org).select_for_update(no_key=True).filter(pk=team.pk).first()
        kpis_of_team = KPI.objects.for_org(org).filter(team=team)
        if kpi is None and kpis_of_team.count() >= KPI.MAX_PER_TEAM:
            raise ValidationError(f"Keep the scorecard short: at most {KPI.MAX_PER_TEAM} KPIs. "
                                  "Remove one first.")
        same = kpis_of_team.filter(name__iexact=fields["name"])
        if kpi is not None:
            same = same.exclude(pk=kpi.pk)
        if same.exists():
            raise ValidationError({"name": "This scorecard already has a KPI of that name."})
        if kpi is None:
            last = kpis_of_team.order_by("-position").values_list("position", flat=True).first()
            kpi = KPI(organization=org, team=team, position=(last or 0) + 1)
        else:
            kpi = KPI.objects.for_org(org).select_for_update(no_key=True).get(pk=kpi.pk)
        for key, value in fields.items():
            setattr(kpi, key, value)
        before = kpi.health
        kpi.health = _health(kpi, kpi.current_value)
        kpi.save()
        _tell_if_worse(kpi, before, actor=membership.user)
    return kpi


def remove_kpi(*, membership, kpi):
    """Take a KPI off the scorecard, with its values. A recovery objective drafted for it stays
    (it loses the link)."""
    if not permissions.can_keep_unit(membership, kpi.team_id):
        raise PermissionDenied("Only the leads of a unit keep its scorecard.")
    with transaction.atomic():
        KPI.objects.for_org(membership.organization).filter(pk=kpi.pk).delete()


def _health(kpi, value):
    return kpis.health_of(value, direction=kpi.direction, healthy_at=kpi.healthy_at,
                          warning_at=kpi.warning_at)


# Values --------------------------------------------------------------------------------------


def _clean_value(value, at):
    v = Fields(KPIValue)
    value = v.decimal("value", value, required=True)
    if at is not None and at > timezone.now() + timedelta(minutes=5):
        v.refuse("at", "A value cannot be from the future.")
    v.done()
    return value


def record_kpi_value(*, membership, kpi, value, at=None):
    """A person records a value on the team page: the team's members and leads (and the leads
    above) may."""
    if kpi.organization_id != membership.organization_id:
        raise ValidationError("Choose a KPI of this organization.")
    if not permissions.can_record_kpi_value(membership, kpi.team_id):
        raise PermissionDenied("Only the team's members and leads record its KPI values.")
    value = _clean_value(value, at)
    return _take_value(kpi, value=value, at=at or timezone.now(), author=membership.user,
                       source=CheckIn.Source.PERSON)


def record_source_kpi_value(*, kpi, source, value, at=None):
    """A value no person typed: a data source, the API or an import. The caller authenticated
    the sender; this checks the value and the source. The seam for KPI data sources."""
    if source not in (CheckIn.Source.API, CheckIn.Source.DATA_SOURCE, CheckIn.Source.IMPORT):
        raise ValidationError({"source": "A value without a person comes from the API, a data "
                                         "source or an import."})
    value = _clean_value(value, at)
    return _take_value(kpi, value=value, at=at or timezone.now(), author=None, source=source)


def _take_value(kpi, *, value, at, author, source):
    org = kpi.organization
    with transaction.atomic():
        kpi = KPI.objects.for_org(org).select_for_update(no_key=True).select_related(
            "team", "organization").get(pk=kpi.pk)
        row = KPIValue.objects.create(organization=org, kpi=kpi, value=value, at=at,
                                      author=author, source=source)
        if kpi.current_at is None or at >= kpi.current_at:  # a late, older value is history
            before = kpi.health
            kpi.current_value, kpi.current_at = value, at
            kpi.health = _health(kpi, value)
            kpi.save(update_fields=["current_value", "current_at", "health"])
            _tell_if_worse(kpi, before, actor=author)
    return row


def _tell_if_worse(kpi, before, *, actor):
    """The team's lead (or, with no lead, the alignment leads and admins) hears at once when a
    KPI gets worse: in the app, by email and chat as each chose (a risk alert)."""
    if not kpis.left_healthy_band(before, kpi.health):
        return []
    from nudges import events

    team = kpi.team
    people = events.leads_of(team) or events.managers(kpi.organization)
    return events.notify(kpi.organization, "kpi_left_band", people, kpi, actor)


# Recovery objectives -------------------------------------------------------------------------


def current_cycle(org):
    """The cycle a recovery objective goes into: the active one, else the next in planning."""
    from .selectors import open_cycle

    return open_cycle(org)


def suggest_parent_for_recovery(kpi, cycle=None):
    """(objective or None, why) for a recovery objective of ``kpi``'s team in ``cycle`` (by
    default the current one): the
    objective the team's other objectives serve most; else the one its parent unit's objectives
    serve most, else one of the parent unit's own; else the first company objective. The one
    function to rewire when suggestions learn from the organization's text."""
    org = kpi.organization
    cycle = cycle if cycle is not None else current_cycle(org)
    if cycle is None:
        return None, ""
    live = Objective.objects.for_org(org).filter(cycle=cycle).live()
    team = kpi.team

    def most_served(team_id):
        parents = Counter(live.filter(team_id=team_id, parent__isnull=False)
                          .values_list("parent_id", flat=True))
        if not parents:
            return None
        pk = max(parents, key=lambda p: (parents[p], -p))
        return live.filter(pk=pk).select_related("team").first()

    found = most_served(team.pk)
    if found is not None:
        return found, f"{team.name}'s other objectives contribute to it."
    if team.parent_id:
        found = most_served(team.parent_id)
        if found is not None:
            return found, f"{team.parent.name}'s objectives contribute to it."
        found = live.filter(team_id=team.parent_id).select_related("team").order_by(
            "title", "pk").first()
        if found is not None:
            return found, f"It is an objective of {team.parent.name}, the unit above."
    found = live.filter(team__kind=Team.Kind.COMPANY).select_related("team").order_by(
        "title", "pk").first()
    if found is not None:
        return found, "It is a company objective."
    return None, ""


def recovery_draft(kpi):
    """What the recovery objective would say: title, why, and the cycle it goes into."""
    value = kpis.plain(kpi.current_value) if kpi.current_value is not None else "no value"
    unit = kpi.unit if kpi.unit == "%" else (f" {kpi.unit}" if kpi.unit else "")
    health = kpi.get_health_display().lower() if kpi.health else "out of its bands"
    band = kpis.band_sentence(direction=kpi.direction, healthy_at=kpi.healthy_at,
                              warning_at=kpi.warning_at, unit=kpi.unit)
    return {
        "title": f"Bring {kpi.name} back to healthy"[:200],
        "why": f"{kpi.name} on {kpi.team.name}'s scorecard is {value}{unit}: {health}. {band}",
    }


def open_recovery(kpi, cycle):
    """The live recovery objective already drafted for ``kpi`` in ``cycle``, or None."""
    if cycle is None:
        return None
    return Objective.objects.for_org(kpi.organization).filter(
        recovery_kpi=kpi, cycle=cycle).live().first()


def draft_recovery_objective(*, membership, kpi, title, why="", parent=None):
    """Draft the recovery objective of a KPI out of its healthy band, in the current cycle,
    for the KPI's team, linked to the KPI. ``parent``: the objective it contributes to (the
    suggestion, or None for a local objective)."""
    from .services import create_objective

    org = membership.organization
    if kpi.organization_id != org.pk:
        raise ValidationError("Choose a KPI of this organization.")
    if not permissions.can_keep_unit(membership, kpi.team_id):
        raise PermissionDenied("Only the leads of a unit draft its recovery objectives.")
    kpi = KPI.objects.for_org(org).select_related("team").get(pk=kpi.pk)  # its health now
    if kpi.health not in (KPI.Health.WARNING, KPI.Health.UNHEALTHY):
        raise ValidationError(f"{kpi.name} is within its healthy band: nothing to recover.")
    cycle = current_cycle(org)
    if cycle is None or cycle.status == Cycle.Status.CLOSED:
        raise ValidationError("No cycle is open: ask an alignment lead to open one first.")
    with transaction.atomic():
        if open_recovery(kpi, cycle) is not None:
            raise ValidationError(f"{kpi.name} already has a recovery objective in "
                                  f"{cycle.name}.")
        objective = create_objective(
            membership=membership, cycle=cycle, team=kpi.team, title=title, why=why,
            parent=parent, is_local=parent is None, state=Objective.State.DRAFT)
        history.update(Objective.objects.for_org(org).filter(pk=objective.pk), recovery_kpi=kpi)
        objective.recovery_kpi = kpi
    return objective


# Reads ---------------------------------------------------------------------------------------


def scorecard(org, team, *, cycle=None):
    """The team's KPIs with ``.spark`` (points of the latest values, oldest first),
    ``.bands`` (in words) and ``.recovery`` (the live recovery objective in ``cycle``): three
    queries whatever the number of values."""
    from .charts import sparkline_points

    rows = list(KPI.objects.for_org(org).filter(team=team).order_by("position", "pk"))
    if not rows:
        return rows
    values = {k.pk: [] for k in rows}
    # The latest values of each KPI: a window over the team's few KPIs.
    from django.db.models import F, Window
    from django.db.models.functions import RowNumber

    recent = (KPIValue.objects.for_org(org).filter(kpi__in=rows)
              .annotate(n=Window(RowNumber(), partition_by=[F("kpi_id")],
                                 order_by=[F("at").desc(), F("pk").desc()]))
              .filter(n__lte=SPARK_VALUES).values_list("kpi_id", "value"))
    for kpi_id, value in recent:
        values[kpi_id].append(value)
    recovering = {}
    if cycle is not None:
        for o in (Objective.objects.for_org(org).filter(recovery_kpi__in=rows, cycle=cycle)
                  .live().order_by("pk")):
            recovering.setdefault(o.recovery_kpi_id, o)
    for k in rows:
        k.spark = sparkline_points(list(reversed(values[k.pk])), width=120, height=28)
        k.bands = kpis.band_sentence(direction=k.direction, healthy_at=k.healthy_at,
                                     warning_at=k.warning_at, unit=k.unit)
        k.recovery = recovering.get(k.pk)
    return rows



def unaddressed_unhealthy(org, cycle, *, limit=10):
    """(count, first KPIs): unhealthy KPIs whose team has no live objective in ``cycle``
    drafted to recover them, worst-kept teams first by name. Each KPI has its team loaded."""
    if cycle is None:
        return 0, []
    addressed = Objective.objects.for_org(org).filter(
        cycle=cycle, recovery_kpi__isnull=False).live().values("recovery_kpi_id")
    rows = (KPI.objects.for_org(org).filter(health=KPI.Health.UNHEALTHY)
            .exclude(pk__in=addressed).select_related("team", "team__lead")
            .order_by("team__name", "position", "pk"))
    return rows.count(), list(rows[:limit])
