"""The cycle review: what a cycle's teams achieved and learned, for everyone in the
organization. Learning, not evaluation: it reads teams' objectives, never a person's score.

Reads only (the scores and close forms are written by the closing services). Every number is a
SQL aggregate, so the page's queries do not grow with the organization.

Definitions (the page and its downloads say the same):

- The objectives of a cycle: those not retired and past draft (a carried-over copy waits in the
  next cycle as a draft until it is reviewed).
- Committed hit: a committed objective scored 1.0, or whose close form says accomplished. The
  hit rate is out of the committed objectives that have a score or a close form.
- Aspirational average: the mean score of the scored aspirational objectives.
- Carried over twice: an objective of this cycle with two carry-over links through it: it came
  from a copy of a copy (A -> B -> this), it came from one and went on to the next cycle
  (A -> this -> C), or it went on twice (this -> C -> D).
- A miss (for the diagnostic): a committed objective that has a score or a close form and is
  not a hit; an aspirational one scored below 0.4 (or, unscored, whose close form says missed).
- A dependency broke when, at the end of the cycle (today, for an open cycle), it was declined,
  marked broken, still open after the day it was needed by (missed), or still open while what
  it needs was at risk or off track (at risk).
- A key result kept the rhythm when it had at least one check-in for every two weeks of the
  cycle and one in its last two weeks (the same two weeks after which a key result is stale).
"""

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.db.models import (
    Avg,
    Case,
    CharField,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from orgs.models import Team

from .models import CheckIn, Commitment, Health, KeyResult, Objective, ObjectiveClose

# The diagnostic's thresholds.
MIN_ASSESSED = 3  # fewer objectives with a score or a close form: too few to tell
MANY_MISSES = 0.4  # this share of the assessed objectives missed: "many misses"
GOOD_RHYTHM = 0.7  # this share of the missed objectives' KRs kept the rhythm: targets wrong
BROKEN_RHYTHM = 0.4  # at most this share kept it: the rhythm broke
ASPIRATIONAL_MISS = 0.4  # an aspirational objective scored below this missed
STALE_DAYS = 14

OUTCOMES = ("accomplished", "partly", "missed", "dropped")
CAP = 5000  # rows per section in a download


def cycle_objectives(org, cycle):
    return (Objective.objects.for_org(org).filter(cycle=cycle)
            .exclude(state__in=[Objective.State.DRAFT, Objective.State.RETIRED]))


_COMMITTED = Q(commitment=Commitment.COMMITTED)
_ASPIRATIONAL = Q(commitment=Commitment.ASPIRATIONAL)
_SCORED = Q(score__isnull=False)
_CLOSED = Q(close__outcome__in=OUTCOMES)
_HIT = _COMMITTED & (Q(score__gte=1.0) | Q(close__outcome=ObjectiveClose.Outcome.ACCOMPLISHED))
_ASSESSED = _SCORED | _CLOSED
MISS = ((_COMMITTED & _ASSESSED & ~Q(score__gte=1.0)
         & ~Q(close__outcome=ObjectiveClose.Outcome.ACCOMPLISHED))
        | (_ASPIRATIONAL & Q(score__lt=ASPIRATIONAL_MISS))
        | (_ASPIRATIONAL & Q(score__isnull=True, close__outcome=ObjectiveClose.Outcome.MISSED)))


def _measures():
    return {
        "objectives": Count("pk"),
        "scored": Count("pk", filter=_SCORED),
        "average": Avg("score"),
        "committed": Count("pk", filter=_COMMITTED),
        "committed_assessed": Count("pk", filter=_COMMITTED & _ASSESSED),
        "committed_hit": Count("pk", filter=_HIT),
        "aspirational": Count("pk", filter=_ASPIRATIONAL),
        "aspirational_scored": Count("pk", filter=_ASPIRATIONAL & _SCORED),
        "aspirational_average": Avg("score", filter=_ASPIRATIONAL),
        "assessed": Count("pk", filter=_ASSESSED),
        "misses": Count("pk", filter=MISS),
    }


def finish(row):
    """Add the rates and the kind flags to a row of measures (plain dict in, dict out)."""
    row = dict(row)
    for key in ("objectives", "scored", "committed", "committed_assessed", "committed_hit",
                "aspirational", "aspirational_scored", "assessed", "misses"):
        row[key] = row.get(key) or 0
    for key in ("average", "aspirational_average"):
        row.setdefault(key, None)
    ca = row["committed_assessed"]
    row["hit_rate"] = row["committed_hit"] / ca if ca else None
    n = row["objectives"]
    row["all_committed"] = n >= 2 and row["committed"] == n
    row["all_aspirational"] = n >= 2 and row["aspirational"] == n
    return row


def summary(org, cycle):
    """The whole cycle in one row of measures, with the number carried over twice."""
    row = finish(cycle_objectives(org, cycle).aggregate(**_measures()))
    row["carried_twice"] = carried_twice(org, cycle).count()
    return row


def carried_twice(org, cycle):
    """The cycle's objectives with two carry-over links through them (see the module)."""
    onward = Objective.objects.for_org(org).filter(carried_from=OuterRef("pk"))
    onward_twice = Objective.objects.for_org(org).filter(
        carried_from=OuterRef("pk"), carried_to__isnull=False)
    return (cycle_objectives(org, cycle)
            .annotate(_onward=Exists(onward), _onward_twice=Exists(onward_twice))
            .filter(Q(carried_from__carried_from__isnull=False)
                    | Q(carried_from__isnull=False, _onward=True)
                    | Q(_onward_twice=True))
            .select_related("team", "carried_from__cycle")
            .order_by("team__name", "title", "pk"))


# Scores by department and team ----------------------------------------------------------------

def departments(org):
    """The top level under the company: the teams at level 1 of the org tree."""
    return Team.objects.for_org(org).filter(level=1).order_by("name", "pk")


def _department_of(org):
    return Team.objects.for_org(org).filter(
        tree_id=OuterRef("team__tree_id"), level=1, lft__lte=OuterRef("team__lft"),
        rght__gte=OuterRef("team__rght")).values("pk")[:1]


def company_row(org, cycle):
    """The company's own objectives (the root of the org tree)."""
    return finish(cycle_objectives(org, cycle).filter(team__level=0).aggregate(**_measures()))


def department_rows(org, cycle, teams):
    """Each department of ``teams`` (level-1 teams) with the measures of every objective in its
    subtree (its own and its teams'), and how many teams it holds."""
    by_id = {
        r["department"]: r for r in
        cycle_objectives(org, cycle).filter(team__level__gte=1)
        .annotate(department=Subquery(_department_of(org)))
        .filter(department__in=[t.pk for t in teams])
        .values("department").annotate(**_measures()).order_by()
    }
    rows = []
    for t in teams:
        row = finish(by_id.get(t.pk, {}))
        row.update(team=t, teams=(t.rght - t.lft - 1) // 2)
        rows.append(row)
    return rows


def team_rows(org, cycle, department):
    """The teams of one department (itself included) that have objectives in the cycle, by
    name; a queryset of dicts, to paginate."""
    return (cycle_objectives(org, cycle)
            .filter(team__tree_id=department.tree_id, team__lft__gte=department.lft,
                    team__rght__lte=department.rght)
            .values("team", "team__name", "team__level")
            .annotate(**_measures()).order_by("team__name", "team"))


def all_team_rows(org, cycle):
    """Every team's row with its department's id (``department``; None for the company), for
    the downloads: one query, whatever the number of departments."""
    return (cycle_objectives(org, cycle).filter(team__level__gte=1)
            .annotate(department=Subquery(_department_of(org)))
            .values("department", "team", "team__name", "team__level")
            .annotate(**_measures()).order_by("team__name", "team"))


# Lessons ------------------------------------------------------------------------------------

def lessons(org, cycle, q=""):
    """Close forms of the cycle that wrote a lesson, searchable in their text, the objective's
    title and the team's name."""
    qs = (ObjectiveClose.objects.for_org(org)
          .filter(objective__cycle=cycle)
          .exclude(Q(learned="") & Q(differently=""))
          .select_related("objective__team"))
    q = (q or "").strip()
    if q:
        qs = qs.filter(Q(learned__icontains=q) | Q(differently__icontains=q)
                       | Q(objective__title__icontains=q) | Q(objective__team__name__icontains=q))
    return qs.order_by("objective__team__name", "objective__title", "pk")


# Dependencies that broke --------------------------------------------------------------------

BROKE_REASONS = {
    "declined": "Declined by the team asked",
    "broken": "Marked broken",
    "missed": "Not delivered by the day it was needed",
    "at_risk": "Open while what it needs was at risk or off track",
}


def reference_day(cycle, today=None):
    """The day the review looks from: the cycle's end for a closed cycle, else today."""
    today = today or timezone.localdate()
    return cycle.end_date if cycle.is_closed else min(today, cycle.end_date)


def broken_dependencies(org, cycle, today=None):
    """(counts by reason, queryset of the broken dependencies with ``reason`` and ``why``)."""
    from dependencies.models import Dependency, DependencyEvent

    today = today or timezone.localdate()
    due = (Q(needed_by__lte=cycle.end_date) if cycle.is_closed else Q(needed_by__lt=today))
    is_open = Q(status__in=Dependency.OPEN)
    weak = (Q(upstream_objective__effective_health__in=[Health.AT_RISK, Health.OFF_TRACK])
            | Q(upstream_key_result__effective_health__in=[Health.AT_RISK, Health.OFF_TRACK]))
    reason = Case(
        When(status=Dependency.Status.DECLINED, then=Value("declined")),
        When(status=Dependency.Status.BROKEN, then=Value("broken")),
        When(is_open & due, then=Value("missed")),
        When(is_open & weak, then=Value("at_risk")),
        default=Value(""), output_field=CharField())
    last_note = (DependencyEvent.objects.for_org(org).filter(dependency=OuterRef("pk"))
                 .exclude(note="").order_by("-created_at", "-pk").values("note")[:1])
    qs = (Dependency.objects.for_org(org).filter(cycle=cycle)
          .select_related("requesting_team", "providing_team")
          .annotate(reason=reason, last_note=Subquery(last_note))
          .exclude(reason=""))
    counts = qs.aggregate(**{k: Count("pk", filter=Q(reason=k)) for k in BROKE_REASONS})
    return counts, qs.order_by("needed_by", "pk")


# Retrospective improvements -----------------------------------------------------------------

def improvements(org, cycle):
    """(counts by status, queryset) of the improvements that the cycle's workflows'
    retrospectives agreed on: open ones first."""
    from retros.models import Improvement

    qs = (Improvement.objects.for_org(org)
          .filter(retrospective__workflow__cycle=cycle)
          .select_related("retrospective__workflow__objective", "owner"))
    counts = qs.aggregate(**{s: Count("pk", filter=Q(status=s)) for s in Improvement.Status})
    order = Case(When(status="open", then=0), When(status="done", then=1), default=2,
                 output_field=IntegerField())
    return counts, qs.order_by(order, "pk")


# The diagnostic -----------------------------------------------------------------------------

def _day_start(day):
    return timezone.make_aware(datetime.combine(day, time.min))


def rhythm(org, cycle, today=None):
    """How the missed objectives' key results (and all the cycle's, for comparison) were
    checked in on: {"missed_krs", "missed_kept", "krs", "kept", "needed"}."""
    start = _day_start(cycle.start_date)
    end = _day_start(reference_day(cycle, today) + timedelta(days=1))
    weeks = max(0, (end - start).days) / 7
    needed = max(1, int(weeks // 2))
    live = CheckIn.objects.for_org(org).live().filter(key_result=OuterRef("pk"), created_at__lt=end)
    count = lambda since: Coalesce(Subquery(  # noqa: E731
        live.filter(created_at__gte=since).order_by().values("key_result")
        .annotate(c=Count("pk")).values("c")), 0)
    krs = (KeyResult.objects.for_org(org)
           .filter(objective__in=cycle_objectives(org, cycle).values("pk"))
           .annotate(n=count(start), recent=count(end - timedelta(days=STALE_DAYS))))
    kept = Q(n__gte=needed, recent__gte=1)
    missed = Q(objective__in=cycle_objectives(org, cycle).filter(MISS).values("pk"))
    r = krs.aggregate(krs=Count("pk"), kept=Count("pk", filter=kept),
                      missed_krs=Count("pk", filter=missed),
                      missed_kept=Count("pk", filter=missed & kept))
    r["needed"] = needed
    return r


@dataclass(frozen=True)
class Diagnosis:
    outcome: str  # too_few, neither, targets, rhythm, mixed
    headline: str
    explanation: str


def diagnose(*, assessed, misses, missed_krs, missed_kept):
    """Which story the numbers tell (pure: plain numbers in, a Diagnosis out)."""
    if assessed < MIN_ASSESSED:
        return Diagnosis(
            "too_few", "Too early to tell",
            f"Only {assessed} objective{'s' if assessed != 1 else ''} "
            f"{'have' if assessed != 1 else 'has'} a score or a close form; the diagnostic "
            f"needs at least {MIN_ASSESSED}.")
    share = misses / assessed
    said = f"{misses} of {assessed} objectives missed ({share:.0%})"
    if share < MANY_MISSES:
        return Diagnosis(
            "neither", "Neither: most objectives met their bar",
            f"{said}, under the {MANY_MISSES:.0%} that would count as many misses.")
    if not missed_krs:
        return Diagnosis(
            "mixed", "Many misses, rhythm unknown",
            f"{said}, but they have no key results to read a check-in rhythm from.")
    kept = missed_kept / missed_krs
    rhythm_said = (f"{missed_kept} of their {missed_krs} key results kept the check-in rhythm "
                   f"({kept:.0%})")
    if kept >= GOOD_RHYTHM:
        return Diagnosis(
            "targets", "The targets were wrong",
            f"{said} while {rhythm_said}: teams watched them closely and still missed, so the "
            "targets or the measures were likely off.")
    if kept <= BROKEN_RHYTHM:
        return Diagnosis(
            "rhythm", "The rhythm broke",
            f"{said} and only {rhythm_said}: check-ins went stale, so problems surfaced late.")
    return Diagnosis(
        "mixed", "Many misses, a mixed rhythm",
        f"{said}; {rhythm_said}, between the {BROKEN_RHYTHM:.0%} of a broken rhythm and the "
        f"{GOOD_RHYTHM:.0%} of a good one. Some of each.")


def diagnostic(org, cycle, totals, today=None):
    r = rhythm(org, cycle, today)
    d = diagnose(assessed=totals["assessed"], misses=totals["misses"],
                 missed_krs=r["missed_krs"], missed_kept=r["missed_kept"])
    return d, r
