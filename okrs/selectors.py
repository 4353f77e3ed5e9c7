"""Reads shared by the pages: which cycle, which objectives, and their progress and health.

Every function loads what a page shows in a fixed number of queries, whatever the data size.
"""

from collections import defaultdict
from dataclasses import replace
from decimal import Decimal

from django.db.models import Case, Count, F, IntegerField, Prefetch, Q, Value, When, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from orgs.models import Cycle, Team
from orgs.permissions import led_team_ids, member_team_ids

from . import progress
from .charts import sparkline_points
from .models import CheckIn, KeyResult, Objective, ObjectiveParent, primary_share


def cycles_for(org):
    return list(Cycle.objects.for_org(org).order_by("-start_date"))


def pick_cycle(cycles, requested=None):
    """The cycle asked for, else the active one (latest first), else the newest."""
    if requested:
        for c in cycles:
            if str(c.pk) == str(requested):
                return c
    for c in cycles:
        if c.status == Cycle.Status.ACTIVE:
            return c
    return cycles[0] if cycles else None


def open_cycle(org, cycles=None):
    """The cycle people work in now, for a closed cycle's banner: the active one (latest
    first), else the next in planning; None when every cycle is closed. From ``cycles`` when
    the page has them, else one query."""
    if cycles is None:
        cycles = Cycle.objects.for_org(org).exclude(status=Cycle.Status.CLOSED).order_by(
            "-start_date")[:20]
    cycles = [c for c in cycles if not c.is_closed]
    return next((c for c in cycles if c.status == Cycle.Status.ACTIVE),
                cycles[-1] if cycles else None)


def assess(objectives, *, now=None):
    """Attach ``.assessment`` to each objective and each of its (prefetched) key results."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    for objective in objectives:
        cycle = objective.cycle
        elapsed = progress.elapsed_share(cycle.start_date, cycle.end_date, today)
        parts, own = [], []
        for kr in objective.key_results.all():
            try:
                kr.assessment = progress.assess_key_result(
                    kind=kr.kind, start=kr.start_value, target=kr.target_value,
                    current=kr.current_value, is_done=kr.is_done,
                    confidence=kr.confidence or None, last_check_in=kr.last_check_in_at,
                    elapsed=elapsed, now=now,
                )
            except (ValueError, TypeError, ArithmeticError):
                # A row the services would refuse (written by another path): show what is
                # known instead of failing the page.
                kr.assessment = progress.Assessment(
                    None, progress.worst(kr.confidence if kr.confidence in progress.SEVERITY
                                         else None),
                    reasons=("Its stored values cannot be read.",))
            parts.append((kr.assessment, kr.weight))
            own.append(kr.owner_team_id == objective.team_id)
        objective.own_assessment = progress.assess_objective(parts, own=own)
        objective.assessment = with_aligned(objective, objective.own_assessment)
    return objectives


def with_aligned(objective, own):
    """The objective's assessment as shown: with its aligned objectives' progress when it counts
    them (stored by the propagation run, ``Objective.rolled_progress``), else its own."""
    if not objective.counts_aligned or objective.rolled_progress is None:
        return own
    percent = round(objective.rolled_progress * 100)
    return replace(own, progress=objective.rolled_progress, reasons=(
        f"Progress counts its key results (weight {objective.key_results_weight.normalize()}) "
        f"and its aligned objectives, each by its weight: {percent}% done.",
        *own.reasons[1:]))


def _objectives(org, cycle):
    return (
        Objective.objects.for_org(org)
        .filter(cycle=cycle)
        .live()
        .with_key_results()
        .annotate(live_children=Count("children", filter=~Q(children__state="retired")))
    )


TREE_OTHERS = 20
TREE_BRANCH = 25


def tree_level(org, cycle, parent=None, *, page=1):
    """One level of the alignment tree: the company objectives at the roots, or the live
    children of ``parent``, ``TREE_BRANCH`` at a time (a company objective can have hundreds
    aligned). Deeper levels load one branch at a time. Returns (objectives, whether there are
    more after this page)."""
    qs = _objectives(org, cycle)
    if parent is not None:
        qs = qs.filter(parent=parent)
    else:
        qs = qs.filter(parent__isnull=True, team__kind=Team.Kind.COMPANY)
    start = (page - 1) * TREE_BRANCH
    rows = list(qs.order_by("team__level", "team__name", "title", "pk")
                [start:start + TREE_BRANCH + 1])
    return attach_also(org, assess(rows[:TREE_BRANCH])), len(rows) > TREE_BRANCH


def attach_also(org, objectives):
    """``.also``: the parents each objective also contributes to, besides its primary one, as
    [(id, title)] for the tree's "also contributes to" marker. One query."""
    also = defaultdict(list)
    if objectives:
        for child, parent, title in (ObjectiveParent.objects.for_org(org)
                                     .filter(objective__in=[o.pk for o in objectives])
                                     .order_by("parent__title", "pk")
                                     .values_list("objective_id", "parent_id", "parent__title")):
            also[child].append((parent, title))
    for o in objectives:
        o.also = also.get(o.pk, [])
    return objectives


def tree_others(org, cycle, *, page=1):
    """The other roots, one page of ``TREE_OTHERS`` at a time: local objectives and team
    objectives with no parent, and those whose parent is retired (so retiring an objective does
    not hide the live ones below it). Returns (objectives, how many there are in all)."""
    roots = Q(parent__isnull=True) & ~Q(team__kind=Team.Kind.COMPANY)
    qs = (_objectives(org, cycle).filter(roots | Q(parent__state=Objective.State.RETIRED))
          .annotate(others_total=Window(Count("pk"))))
    start = (page - 1) * TREE_OTHERS
    rows = list(qs.order_by("team__level", "team__name", "title", "pk")
                [start:start + TREE_OTHERS])
    # The total comes with the rows (a window count); a page past the end is empty.
    return attach_also(org, assess(rows)), rows[0].others_total if rows else 0


def my_team_ids(membership):
    return member_team_ids(membership) | led_team_ids(membership)


HOME_COMPANY = 10
HOME_PAGE = 20
HOME_TEAMS = 30


def home(org, membership, cycle, *, page=1):
    """What the home page shows, bounded whatever the organization's size: up to 10 company
    objectives, one page of my teams' objectives (20, the rest loads on demand), the recent
    check-ins, and my teams (with the departments while there is room). What needs me comes
    from the inbox's selector (nudges/inbox.py).
    """
    company, mine, mine_total, company_total = [], [], 0, 0
    team_ids = my_team_ids(membership)
    if cycle is not None:
        company_qs = _objectives(org, cycle).filter(
            parent__isnull=True, team__kind=Team.Kind.COMPANY).order_by("title")
        company = assess(list(company_qs[:HOME_COMPANY]))
        mine_qs = (Objective.objects.for_org(org).filter(cycle=cycle, team_id__in=team_ids)
                   .live().exclude(team__kind=Team.Kind.COMPANY))
        totals = Objective.objects.for_org(org).filter(cycle=cycle).live().aggregate(
            company=Count("pk", filter=Q(parent__isnull=True, team__kind=Team.Kind.COMPANY)),
            mine=Count("pk", filter=Q(pk__in=mine_qs.values("pk"))))
        company_total, mine_total = totals["company"], totals["mine"]
        start = (page - 1) * HOME_PAGE
        mine = assess(list(_objectives(org, cycle).filter(pk__in=mine_qs.values("pk"))
                           .order_by("team__name", "title", "pk")[start:start + HOME_PAGE]))
    recent = list(
        CheckIn.objects.for_org(org).live()
        .select_related("key_result__objective__team", "author")
        .order_by("-created_at", "-pk")[:8]
    )
    direct = Q(memberships=membership) | Q(lead_id=membership.user_id)
    teams = _home_teams(org, direct)
    return {"company_objectives": company, "company_total": company_total,
            "my_objectives": mine, "my_total": mine_total, "page": page,
            "has_more": page * HOME_PAGE < mine_total, "next_page": page + 1,
            "recent_check_ins": recent, "my_teams": team_ids, **teams}


def _home_teams(org, direct):
    """My teams (on them or leading them), then the departments, up to 30, and how many teams
    the organization has: a count and one slice, so 500 teams cost what 5 do."""
    rows = list(Team.objects.for_org(org).filter(direct | Q(level__lte=1))
                .annotate(is_mine=Case(When(direct, then=Value(0)), default=Value(1),
                                       output_field=IntegerField()))
                .distinct().order_by("is_mine", "tree_id", "lft")[:HOME_TEAMS])
    rows.sort(key=lambda t: (t.tree_id, t.lft))
    return {"teams": rows, "team_total": Team.objects.for_org(org).count()}


def objective_page(org, objective):
    """Children with their progress, ancestors for the breadcrumb, and check-in history."""
    assess([objective])
    return objective_sections(org, objective)


def objective_sections(org, objective, present=None):
    """``objective_page`` but the objective's own assessment: what every reader sees alike.
    ``present``: which lists have rows, when the caller knows (``okrs.sections``); the others
    are not read."""
    has = (lambda name: True) if present is None else present.get
    children = assess(list(
        Objective.objects.for_org(org).filter(parent=objective).live().with_key_results()
        .annotate(live_children=Count("children", filter=~Q(children__state="retired")))
        .order_by("team__name", "title")
    )) if has("children") else []
    ancestors = list(objective.get_ancestors().select_related("team")) \
        if objective.parent_id else []
    attach_history(org, objective.key_results.all(), read=has("check_ins"))
    attach_contributors(org, objective.key_results.all())
    return {"children": children, "ancestors": ancestors,
            **parent_links(org, objective, children, present)}


LINKS_SHOWN = 30  # extra children and key results aligned here: the first this many


def parent_links(org, objective, children, present=None):
    """Several parents on an objective's page: the parents it also contributes to (with its
    share in each, and the primary parent's), the objectives that contribute to it as an extra
    parent (with their share here), the key results of other teams aligned to it, and the share
    here of each primary child that has extra parents, and the objectives its own key results
    are aligned to. Six queries at most, whatever the counts; ``present`` (``objective_sections``)
    says which need none."""
    has = (lambda name: True) if present is None else present.get
    links = list(ObjectiveParent.objects.for_org(org).filter(objective=objective)
                 .select_related("parent__team").order_by("parent__title", "pk")) \
        if has("links") else []
    primary = primary_share([link.share for link in links])
    extra = list(ObjectiveParent.objects.for_org(org).filter(parent=objective)
                 .exclude(objective__state=Objective.State.RETIRED)
                 .order_by("objective__title", "pk").values_list("objective_id", "share")
                 [:LINKS_SHOWN + 1]) if has("links") else []
    share_of = dict(extra[:LINKS_SHOWN])
    extra_children = assess(list(
        Objective.objects.for_org(org).filter(pk__in=share_of).with_key_results()
        .order_by("team__name", "title"))) if share_of else []
    for o in extra_children:
        o.share_here = share_of[o.pk]
    left = defaultdict(lambda: Decimal(1))
    for child_id, share in (ObjectiveParent.objects.for_org(org)
                            .filter(objective__in=[c.pk for c in children])
                            .values_list("objective_id", "share")):
        left[child_id] -= share
    for child in children:
        child.share_here = left[child.pk] if child.pk in left else None
    # Its own key results aligned to other teams' objectives: those objectives, one query.
    targets = {kr.aligned_to_id for kr in objective.key_results.all() if kr.aligned_to_id}
    targets = Objective.objects.for_org(org).select_related("team").in_bulk(targets) \
        if targets else {}
    for kr in objective.key_results.all():
        kr.aligned_objective = targets.get(kr.aligned_to_id)
    aligned = list(KeyResult.objects.for_org(org).filter(aligned_to=objective)
                   .exclude(objective__state=Objective.State.RETIRED)
                   .select_related("objective", "owner_team")
                   .order_by("owner_team__name", "title", "pk")[:LINKS_SHOWN + 1]) \
        if has("aligned") else []
    return {"also_parents": links, "primary_share": primary if links else None,
            "extra_children": extra_children, "more_extra_children": len(extra) > LINKS_SHOWN,
            "aligned_key_results": aligned[:LINKS_SHOWN],
            "more_aligned_key_results": len(aligned) > LINKS_SHOWN}


# What the objective page shows of a check-in in a key result's history, and of its author and
# corrector (``display_name``): not the people's other columns (passwords, settings).
HISTORY_FIELDS = ("key_result_id", "value", "is_done", "confidence", "note", "created_at",
                  "correction", "corrected_at", "correction_note", "corrects_id",
                  "author__full_name", "author__email",
                  "corrected_by__full_name", "corrected_by__email")


def attach_history(org, key_results, limit=12, *, read=True):
    """Attach ``.history`` (newest first) and ``.sparkline`` to each key result: one query, which
    reads only the latest ``limit`` check-ins of each key result, however long its history.
    ``read=False``: the caller knows there is none."""
    key_results = list(key_results)
    by_kr = defaultdict(list)
    newest_first = [F("created_at").desc(), F("pk").desc()]
    rows = () if not read else (
        CheckIn.objects.for_org(org)
        .filter(key_result__in=[kr.pk for kr in key_results])
        .annotate(rank=Window(RowNumber(), partition_by=F("key_result"), order_by=newest_first))
        .filter(rank__lte=limit)
        .select_related("author", "corrected_by")
        .only(*HISTORY_FIELDS)
        .order_by(*newest_first)
    )
    for row in rows:
        by_kr[row.key_result_id].append(row)
    for kr in key_results:
        kr.history = by_kr[kr.pk]
        # The line follows the check-ins that stand; corrected ones stay listed, marked.
        values = [c.value for c in reversed(kr.history) if c.corrected_at is None]
        if kr.start_value is not None and values:
            values = [kr.start_value, *values]
        kr.sparkline = sparkline_points(values) if not kr.is_milestone else ""
    return key_results


TEAM_RETIRED = 10


def team_page(org, team, cycle):
    objectives = []
    contributed = []
    retired = []
    if cycle is not None:
        # The latest few retired this cycle, each a link to its page (where it can come back).
        retired = list(Objective.objects.for_org(org).filter(
            cycle=cycle, team=team, state=Objective.State.RETIRED).order_by(
            "-updated_at", "-pk")[:TEAM_RETIRED])
        objectives = assess(list(_objectives(org, cycle).filter(team=team).order_by("title")))
        # KRs this team owns under other teams' objectives: how it shares objectives.
        shared = (
            Objective.objects.for_org(org).filter(cycle=cycle).live().exclude(team=team)
            .filter(key_results__owner_team=team).distinct()
            .select_related("team", "cycle")
            .prefetch_related(Prefetch("key_results", queryset=KeyResult.objects.select_related(
                "owner_team", "owner")))
        )
        contributed = assess(list(shared))
    members = list(team.memberships.select_related("user").order_by("user__full_name"))
    return {
        "objectives": objectives,
        "contributed": contributed,
        "retired": retired,
        "members": members,
        "sub_teams": list(team.get_children().select_related("lead")),
        "ancestors": list(team.get_ancestors()),
    }


def attach_contributors(org, key_results):
    """Attach ``.contributing`` (the key results that feed it, accepted) and
    ``.rollup_sentence`` ("Its value is the sum of 3 contributing key results.", or "") to
    each key result: one query for the list, none when no key result adds up. A key result
    whose value adds up shows no sparkline of its own check-ins: it would not be its value."""
    from .services import rollup_sentence

    key_results = list(key_results)
    rolled = [kr.pk for kr in key_results if kr.rollup and not kr.is_milestone]
    by_shared = defaultdict(list)
    if rolled:
        for c in (KeyResult.objects.for_org(org).filter(feeds__in=rolled)
                  .select_related("owner_team").order_by("title", "pk")):
            by_shared[c.feeds_id].append(c)
    for kr in key_results:
        kr.contributing = by_shared.get(kr.pk, [])
        kr.rollup_sentence = rollup_sentence(org, kr, kr.contributing)
        if kr.rollup_sentence:
            kr.sparkline = ""
    return key_results



# The end of a cycle ---------------------------------------------------------------------------


def key_results_to_score(org, user, *, today=None):
    """The key results this person owes a score: in a cycle whose scoring window is open (its
    last two weeks, and after it ends until it is closed), not scored yet, of a live objective,
    owned by a team they lead or under an objective of a team they lead. ``user`` is a user or
    their membership. A query, not loaded: the digest counts it, the inbox slices it."""
    from orgs.models import Membership


    today = today or timezone.localdate()
    membership = user if isinstance(user, Membership) else (
        Membership.objects.for_org(org).filter(user=user).first())
    if membership is None:
        return KeyResult.objects.for_org(org).none()
    led = led_team_ids(membership)
    if not led:
        return KeyResult.objects.for_org(org).none()
    return (key_results_to_score_of_teams(org, led, today=today)
            .select_related("objective__cycle", "owner_team")
            .order_by("objective__cycle__end_date", "objective__title", "position", "pk"))


def key_results_to_score_of_teams(org, led, *, today):
    """``key_results_to_score`` for the teams ``led`` (ids), unordered: the inbox counts it."""
    from .scoring import SCORING_WINDOW

    # The cycles in their scoring window, and the objectives of the teams led in them, as
    # subqueries on the key result's own indexed columns: an OR across the join to objectives
    # made PostgreSQL read every key result of the organization (46 ms at 10,000; now 1-2 ms).
    cycles = Cycle.objects.for_org(org).filter(
        end_date__lte=today + SCORING_WINDOW).exclude(status=Cycle.Status.CLOSED).values("pk")
    theirs = Objective.objects.for_org(org).filter(cycle_id__in=cycles, team_id__in=led)
    return (KeyResult.objects.for_org(org)
            .filter(score__isnull=True, objective__cycle_id__in=cycles)
            .exclude(objective__state=Objective.State.RETIRED)
            .filter(Q(owner_team_id__in=led) | Q(objective_id__in=theirs.values("pk"))))


CLOSING_TEAMS = 20


def closing_status(org, cycle, *, limit=CLOSING_TEAMS):
    """What stops a cycle from closing cleanly, and who owes it: key results not scored yet (by
    owner team), live objectives with no close form (by team), the teams with the most first
    (``limit`` of them, each with its lead), and the totals. Four queries, whatever the size."""
    live = Objective.objects.for_org(org).filter(cycle=cycle).live()
    unscored = (KeyResult.objects.for_org(org).filter(objective__in=live, score__isnull=True)
                .order_by().values("owner_team").annotate(n=Count("pk")))
    unclosed = (live.filter(close__isnull=True).order_by().values("team")
                .annotate(n=Count("pk")))
    by_team = defaultdict(lambda: {"unscored": 0, "unclosed": 0})
    for row in unscored:
        by_team[row["owner_team"]]["unscored"] = row["n"]
    for row in unclosed:
        by_team[row["team"]]["unclosed"] = row["n"]
    ranked = sorted(by_team.items(), key=lambda item: (
        -(item[1]["unscored"] + item[1]["unclosed"]), item[0]))
    teams = Team.objects.for_org(org).select_related("lead").in_bulk(
        [pk for pk, _ in ranked[:limit]])
    rows = [{"team": teams[pk], **counts} for pk, counts in ranked[:limit] if pk in teams]
    total_unscored = sum(c["unscored"] for c in by_team.values())
    total_unclosed = sum(c["unclosed"] for c in by_team.values())
    return {"teams": rows, "team_total": len(by_team), "unscored": total_unscored,
            "unclosed": total_unclosed, "outstanding": total_unscored + total_unclosed,
            "objectives": live.count()}
