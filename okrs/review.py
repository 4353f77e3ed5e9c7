"""The cycle review: what a cycle's teams achieved and learned, for everyone in the
organization. Learning, not evaluation: it reads teams' objectives, never a person's score.

Reads only (the scores and close forms are written by the closing services). Every number is a
SQL aggregate (departments add up their teams' rows here), so the page's queries do not grow
with the organization. docs/cycle-review.md says the same for readers.

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

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.utils import timezone

from orgs.models import Team

from .models import Commitment, Health, KeyResult, Objective, ObjectiveClose

# The diagnostic's thresholds.
MIN_ASSESSED = 3  # fewer objectives with a score or a close form: too few to tell
MANY_MISSES = 0.4  # this share of the assessed objectives missed: "many misses"
GOOD_RHYTHM = 0.7  # this share of the missed objectives' KRs kept the rhythm: targets wrong
BROKEN_RHYTHM = 0.4  # at most this share kept it: the rhythm broke
ASPIRATIONAL_MISS = 0.4  # an aspirational objective scored below this missed
STALE_DAYS = 14

OUTCOMES = ("accomplished", "partly", "missed", "dropped")
CAP = 5000  # departments and teams in a download
DOWNLOAD_ROWS = 100  # carried over, broken dependencies, improvements in the Markdown
DOWNLOAD_LESSONS = 200


def cycle_objectives(org, cycle):
    return (Objective.objects.for_org(org).filter(cycle=cycle)
            .exclude(state__in=[Objective.State.DRAFT, Objective.State.RETIRED]))


def _conditions(p=""):
    """The review's conditions on an objective, through the lookup prefix ``p`` (e.g.
    "objective__" from a key result)."""
    def q(**kw):
        return Q(**{p + k: v for k, v in kw.items()})
    committed = q(commitment=Commitment.COMMITTED)
    aspirational = q(commitment=Commitment.ASPIRATIONAL)
    scored = q(score__isnull=False)
    assessed = scored | q(close__outcome__in=OUTCOMES)
    accomplished = q(close__outcome=ObjectiveClose.Outcome.ACCOMPLISHED)
    hit = committed & (q(score__gte=1.0) | accomplished)
    miss = ((committed & assessed & ~q(score__gte=1.0) & ~accomplished)
            | (aspirational & q(score__lt=ASPIRATIONAL_MISS))
            | (aspirational & q(score__isnull=True, close__outcome=ObjectiveClose.Outcome.MISSED)))
    return {"committed": committed, "aspirational": aspirational, "scored": scored,
            "assessed": assessed, "hit": hit, "miss": miss}


_C = _conditions()
MISS = _C["miss"]
COUNTS = ("objectives", "scored", "committed", "committed_assessed", "committed_hit",
          "aspirational", "aspirational_scored", "assessed", "misses")
SUMS = ("score_sum", "aspirational_sum")


def _measures():
    return {
        "objectives": Count("pk"),
        "scored": Count("pk", filter=_C["scored"]),
        "score_sum": Sum("score"),
        "committed": Count("pk", filter=_C["committed"]),
        "committed_assessed": Count("pk", filter=_C["committed"] & _C["assessed"]),
        "committed_hit": Count("pk", filter=_C["hit"]),
        "aspirational": Count("pk", filter=_C["aspirational"]),
        "aspirational_scored": Count("pk", filter=_C["aspirational"] & _C["scored"]),
        "aspirational_sum": Sum("score", filter=_C["aspirational"]),
        "assessed": Count("pk", filter=_C["assessed"]),
        "misses": Count("pk", filter=MISS),
    }


def finish(row):
    """Add the averages, rates and kind flags to a row of measures (plain dict in, dict
    out)."""
    row = dict(row)
    for key in COUNTS:
        row[key] = row.get(key) or 0
    for key in SUMS:
        row[key] = row.get(key) or 0.0
    row["average"] = row["score_sum"] / row["scored"] if row["scored"] else None
    row["aspirational_average"] = (row["aspirational_sum"] / row["aspirational_scored"]
                                   if row["aspirational_scored"] else None)
    ca = row["committed_assessed"]
    row["hit_rate"] = row["committed_hit"] / ca if ca else None
    n = row["objectives"]
    row["all_committed"] = n >= 2 and row["committed"] == n
    row["all_aspirational"] = n >= 2 and row["aspirational"] == n
    return row


def merge(rows):
    """The measures of several rows together (a department of its teams' rows)."""
    total = {key: 0 for key in COUNTS + SUMS}
    for row in rows:
        for key in total:
            total[key] += row.get(key) or 0
    return total


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


def _team_rows(org, cycle):
    return (cycle_objectives(org, cycle)
            .values("team", "team__name", "team__tree_id", "team__lft", "team__rght")
            .annotate(**_measures()).order_by("team__name", "team"))


def _within(departments):
    q = Q(pk__in=[])
    for d in departments:
        q |= Q(team__tree_id=d.tree_id, team__lft__gte=d.lft, team__rght__lte=d.rght)
    return q


def _department_of(row, departments):
    for d in departments:
        if d.tree_id == row["team__tree_id"] and d.lft <= row["team__lft"] <= d.rght:
            return d
    return None


def company_row(org, cycle):
    """The company's own objectives (the root of the org tree)."""
    return finish(cycle_objectives(org, cycle).filter(team__level=0).aggregate(**_measures()))


def department_rows(org, cycle, teams):
    """Each department of ``teams`` (level-1 teams, a page of them) with the measures of every
    objective in its subtree (its own and its teams', at any depth), and how many teams it
    holds. One query: the per-team rows of those subtrees, added up here."""
    by_department = {t.pk: [] for t in teams}
    if teams:
        for row in _team_rows(org, cycle).filter(_within(teams)):
            d = _department_of(row, teams)
            if d is not None:
                by_department[d.pk].append(row)
    rows = []
    for t in teams:
        row = finish(merge(by_department[t.pk]))
        row.update(team=t, teams=(t.rght - t.lft - 1) // 2)
        rows.append(row)
    return rows


def team_rows(org, cycle, department):
    """The teams of one department (itself included) that have objectives in the cycle, by
    name; a queryset of dicts, to paginate."""
    return _team_rows(org, cycle).filter(_within([department]))


def all_team_rows(org, cycle, departments):
    """For the downloads: {department id: [its teams' rows]}, in one query."""
    departments = sorted(departments, key=lambda d: (d.tree_id, d.lft))
    starts = [(d.tree_id, d.lft) for d in departments]
    found = {d.pk: [] for d in departments}
    for row in _team_rows(org, cycle).filter(team__level__gte=1):
        i = bisect_right(starts, (row["team__tree_id"], row["team__lft"])) - 1
        if i >= 0 and departments[i].tree_id == row["team__tree_id"] and (
                row["team__rght"] <= departments[i].rght):
            found[departments[i].pk].append(finish(row))
    return found


def score_tables(org, cycle):
    """For the downloads: (the company's row, every department's row with its teams' rows in
    ``team_rows``), from three queries."""
    depts = list(departments(org)[:CAP])
    by_department = all_team_rows(org, cycle, depts)
    rows = []
    for d in depts:
        row = finish(merge(by_department[d.pk]))
        row.update(team=d, teams=(d.rght - d.lft - 1) // 2, team_rows=by_department[d.pk])
        rows.append(row)
    return company_row(org, cycle), rows


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
    qs = _broken(org, cycle, today)
    counts = qs.aggregate(**{k: Count("pk", filter=Q(reason=k)) for k in BROKE_REASONS})
    return counts, broken_list(org, cycle, today)


def _broken(org, cycle, today=None):
    from dependencies.models import Dependency

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
    return (Dependency.objects.for_org(org).filter(cycle=cycle)
            .annotate(reason=reason).exclude(reason=""))


def broken_list(org, cycle, today=None):
    """The broken dependencies in the order shown, each with its last note (``last_note``)."""
    from dependencies.models import DependencyEvent

    last_note = (DependencyEvent.objects.for_org(org).filter(dependency=OuterRef("pk"))
                 .exclude(note="").order_by("-created_at", "-pk").values("note")[:1])
    return (_broken(org, cycle, today).select_related("requesting_team", "providing_team")
            .annotate(last_note=Subquery(last_note)).order_by("needed_by", "pk"))


# Retrospective improvements -----------------------------------------------------------------

def improvements(org, cycle):
    """(counts by status, queryset) of the improvements that the cycle's workflows'
    retrospectives agreed on: open ones first."""
    from retros.models import Improvement

    qs = Improvement.objects.for_org(org).filter(retrospective__workflow__cycle=cycle)
    counts = qs.aggregate(**{s: Count("pk", filter=Q(status=s)) for s in Improvement.Status})
    return counts, improvement_list(org, cycle)


def improvement_list(org, cycle):
    from retros.models import Improvement

    order = Case(When(status="open", then=0), When(status="done", then=1), default=2,
                 output_field=IntegerField())
    return (Improvement.objects.for_org(org).filter(retrospective__workflow__cycle=cycle)
            .select_related("retrospective__workflow__objective", "owner").order_by(order, "pk"))


# The diagnostic -----------------------------------------------------------------------------

def _day_start(day):
    return timezone.make_aware(datetime.combine(day, time.min))


def _window(cycle, today=None):
    """(start, end, check-ins needed): the cycle so far, and one check-in per two weeks."""
    start = _day_start(cycle.start_date)
    end = _day_start(reference_day(cycle, today) + timedelta(days=1))
    weeks = max(0, (end - start).days) / 7
    return start, end, max(1, int(weeks // 2))


def rhythm(org, cycle, today=None):
    """How the missed objectives' key results were checked in on: {"missed_krs",
    "missed_kept", "needed"}. One query over those key results and their check-ins."""
    start, end, needed = _window(cycle, today)
    live = Q(check_ins__corrected_at__isnull=True, check_ins__created_at__lt=end)
    missed = cycle_objectives(org, cycle).filter(MISS).values("pk")
    krs = (KeyResult.objects.for_org(org).filter(objective__in=missed)
           .values("pk")
           .annotate(n=Count("check_ins", filter=live & Q(check_ins__created_at__gte=start)),
                     recent=Count("check_ins", filter=live & Q(
                         check_ins__created_at__gte=end - timedelta(days=STALE_DAYS)))))
    r = krs.aggregate(missed_krs=Count("pk"),
                      missed_kept=Count("pk", filter=Q(n__gte=needed, recent__gte=1)))
    r = {k: v or 0 for k, v in r.items()}
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
        have = ("No objective has" if assessed == 0 else
                f"Only {assessed} objective{'s have' if assessed != 1 else ' has'}")
        return Diagnosis(
            "too_few", "Too early to tell",
            f"{have} a score or a close form yet; the diagnostic needs at least "
            f"{MIN_ASSESSED}.")
    share = misses / assessed
    said = f"{misses} of {assessed} objectives missed ({share:.0%})"
    if not many_misses(assessed, misses):
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


def many_misses(assessed, misses):
    return assessed >= MIN_ASSESSED and misses / assessed >= MANY_MISSES


def diagnostic(org, cycle, totals, today=None):
    """(Diagnosis, rhythm numbers). The rhythm is read only when there are many misses: it is
    what tells their two stories apart."""
    if many_misses(totals["assessed"], totals["misses"]):
        r = rhythm(org, cycle, today)
    else:
        r = {"missed_krs": 0, "missed_kept": 0, "needed": _window(cycle, today)[2]}
    d = diagnose(assessed=totals["assessed"], misses=totals["misses"],
                 missed_krs=r["missed_krs"], missed_kept=r["missed_kept"])
    return d, r


# Computed once per change --------------------------------------------------------------------

# The cycle-wide figures (and the downloads) are cached under the organization's review version
# (``orgs.versions``: any write to what the review reads moves it; a closed cycle listens only
# to what can still change it) and the day the review looks from, which moves what counts as
# missed in an open cycle. The expiry bounds how long an entry can outlive a write whose bump
# was lost (the cache failed at that moment, or another process has its own in-process cache).
CACHE_TTL = 600


def cached(org, cycle, name, compute, today=None):
    """``compute()``, or what it returned for the same data and day."""
    from orgs import versions

    topic = "review_closed" if cycle.is_closed else "review"
    key = f"review:{org.pk}:{cycle.pk}:{reference_day(cycle, today)}:{name}"
    return versions.read_through(org.pk, topic, key, compute, CACHE_TTL)


def figures(org, cycle, today=None):
    """What the page shows for the whole cycle, as plain data: the summary, the diagnostic, the
    company's row, every department's measures (by id; the page shows a page of them), and the
    counts of broken dependencies and improvements."""
    totals = summary(org, cycle)
    diagnosis, rhythm_numbers = diagnostic(org, cycle, totals, today)
    depts = list(departments(org)[:CAP])
    by_department = all_team_rows(org, cycle, depts)
    broken_counts, _ = broken_dependencies(org, cycle, today)
    improvement_counts, _ = improvements(org, cycle)
    return {
        "totals": totals, "diagnosis": diagnosis, "rhythm": rhythm_numbers,
        "company": company_row(org, cycle),
        "departments": {d.pk: merge(by_department[d.pk]) for d in depts},
        "broken_counts": broken_counts, "improvement_counts": improvement_counts,
    }


def department_rows_from(measures, teams):
    """``department_rows`` from the cached measures of every department."""
    rows = []
    for t in teams:
        row = finish(measures.get(t.pk, {}))
        row.update(team=t, teams=(t.rght - t.lft - 1) // 2)
        rows.append(row)
    return rows
