"""Pages of cascading: the review queue, the misalignment report, re-cascade progress, the
alignment matrix, the network map and the organization's alignment settings."""

from collections import Counter, defaultdict
from types import SimpleNamespace

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import (
    Case,
    Count,
    F,
    FilteredRelation,
    IntegerField,
    Max,
    Min,
    Q,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from dependencies import selectors as network_selectors
from dependencies.models import Dependency, ObjectiveShare
from okrs import selectors as okr_selectors
from okrs.models import KeyResult, Objective, ObjectiveParent
from orgs.confirm import ask_first, confirm_page, is_confirmed
from orgs.decorators import org_view, post_only
from orgs.forms import apply_errors, submit
from orgs.models import Organization, Team, Theme
from orgs.permissions import (
    can_edit_objective,
    can_edit_team_okrs,
    can_publish,
    preload_co_owners,
)
from orgs.services import lock_organization

from . import cascade, netmap, report, rules
from .models import RecascadeFlag, ReviewComment

# An unknown stored value ranks as "no health" rather than failing the page.
REVIEW_STATES = ["proposed", "approved"]
WORST = defaultdict(int, {"off_track": 3, "at_risk": 2, "on_track": 1, "": 0, None: 0})


def _cycle(request):
    cycles = okr_selectors.cycles_for(request.org)
    return cycles, okr_selectors.pick_cycle(cycles, request.GET.get("cycle"))


def _objective(request, pk):
    o = (Objective.objects.for_org(request.org).select_related("team__lead", "cycle", "theme")
         .filter(pk=pk).first())
    if o is None:
        raise Http404("No such objective.")
    return o


# Review ----------------------------------------------------------------------------------------


PER_PAGE = 20


def _page_number(request):
    return request.GET.get("page")


def _counted_page(qs, per_page, number):
    """``Paginator(qs, per_page).get_page(number)`` in one query instead of two: the page's rows
    carry the total (a window count); an empty first page is an empty list, in that same one
    query. A number past the end (or not a number) falls back as ``get_page`` does."""
    paginator = Paginator(qs, per_page)
    try:
        number = max(1, int(number))
    except (TypeError, ValueError):
        number = 1
    start = (number - 1) * per_page
    rows = list(qs.annotate(_total=Window(Count("pk")))[start:start + per_page])
    if rows or number == 1:
        paginator.count = rows[0]._total if rows else 0  # a cached_property: set, not computed
        return paginator._get_page(rows, number, paginator)
    return paginator.get_page(number)


def _team_filter(request):
    """The team asked for in ``?team=``, if it belongs to this organization, and the teams to
    offer in the filter (mine, not every team of the organization)."""
    team = None
    if request.GET.get("team", "").isdigit():
        team = Team.objects.for_org(request.org).filter(pk=int(request.GET["team"])).first()
    return team, network_selectors.filter_teams(request.org, request.membership, team)


@org_view
def review_queue(request):
    """A page of the objectives waiting for review, filtered by team and state."""
    cycles, cycle = _cycle(request)
    items, approved, team, findings = None, 0, None, None
    team, team_choices = _team_filter(request)
    state = request.GET.get("state") if request.GET.get("state") in REVIEW_STATES else ""
    if cycle is not None:
        findings = report.summary(request.org, cycle)  # None: being prepared
        qs = Objective.objects.for_org(request.org).filter(cycle=cycle)
        approved = qs.filter(state="approved").count()
        qs = qs.filter(state__in=[state] if state else REVIEW_STATES)
        if team is not None:
            qs = qs.filter(team=team)
        items = _counted_page(qs.select_related("team", "parent")
                              .order_by("state", "team__name", "title", "pk"),
                              PER_PAGE, _page_number(request))
        threads = defaultdict(list)
        for c in ReviewComment.objects.for_org(request.org).filter(
                objective__in=[o.pk for o in items]).select_related("author"):
            threads[c.objective_id].append(c)
        found = report.for_objectives(request.org, cycle, [o.pk for o in items])
        for o in items:
            o.thread = threads[o.pk]
            o.findings = found[o.pk]
    return render(request, "alignment/review.html", {
        "cycles": cycles, "cycle": cycle, "items": items, "approved": approved,
        "team": team, "team_choices": team_choices, "state": state,
        "states": [(s, Objective.State(s).label) for s in REVIEW_STATES],
        "findings": findings, "can_review": can_publish(request.membership), "nav": "review"})


@org_view
def review_act(request, objective_pk):
    objective = _objective(request, objective_pk)
    if (response := post_only(request)) is not None:
        return response
    action, text = request.POST.get("action"), request.POST.get("text", "")
    m = request.membership
    calls = {
        "submit": lambda: cascade.submit_for_review(membership=m, objective=objective, note=text),
        "approve": lambda: cascade.approve(membership=m, objective=objective, note=text),
        "changes": lambda: cascade.request_changes(membership=m, objective=objective, text=text),
        "comment": lambda: cascade.comment(membership=m, objective=objective, text=text),
    }
    if action not in calls:
        messages.error(request, "Choose an action.")
    else:
        try:
            calls[action]()
        except ValidationError as e:
            messages.error(request, " ".join(e.messages))
        else:
            messages.success(request, {
                "submit": "Proposed: the alignment lead will review it.",
                "approve": "Approved. It is published with the cycle.",
                "changes": "Sent back to the team with your comment.",
                "comment": "Comment added."}[action])
    back = request.POST.get("next")
    if back == "queue":
        return redirect(reverse("review", args=[request.org.slug])
                        + f"?cycle={objective.cycle_id}#objective-{objective.pk}")
    return redirect(reverse("objective", args=[request.org.slug, objective.pk]) + "#review")


@org_view
def publish(request):
    if (response := post_only(request)) is not None:
        return response
    _, cycle = _cycle(request)
    cycle_id = request.POST.get("cycle")
    cycles = {str(c.pk): c for c in okr_selectors.cycles_for(request.org)}
    cycle = cycles.get(cycle_id)
    if cycle is None:
        raise Http404("No such cycle.")
    count = cascade.publish_cycle(membership=request.membership, cycle=cycle)
    messages.success(request, f"Published {count} objective{'s' if count != 1 else ''}.")
    return redirect(reverse("review", args=[request.org.slug]) + f"?cycle={cycle.pk}")


# Report and re-cascade -------------------------------------------------------------------------


REPORT_PREVIEW = 10
REPORT_PAGE = 50


@org_view
def misalignment_report(request):
    """The findings grouped by rule, with a count each: the first 10 of every rule, or, with
    ``?rule=``, one rule's findings a page at a time."""
    cycles, cycle = _cycle(request)
    rule = request.GET.get("rule") if request.GET.get("rule") in rules.TITLES else None
    groups, overview = [], {"unhealthy": (0, []), "types": {}}
    if rule:
        counts = report.summary(request.org, cycle)  # None: being prepared
        if counts is not None:
            shown = Paginator(report.of_rule(request.org, cycle, rule),
                              REPORT_PAGE).get_page(_page_number(request))
            groups.append((rules.TITLES[rule], rule, shown, shown.paginator.count))
    else:
        overview = _report_overview(request.org, cycle)
        counts, by_rule = overview["counts"], overview["by_rule"]
        for key, title in rules.TITLES.items():
            total, shown = by_rule.get(key, (0, []))
            groups.append((title, key, shown, total))
    return render(request, "alignment/report.html", {
        "cycles": cycles, "cycle": cycle, "counts": counts, "rules": groups, "rule": rule,
        "nav": "report", "similar": round(rules.SIMILAR * 100),
        "unhealthy": overview["unhealthy"], "types": overview["types"]})


# How long the report's first screen may outlive a write whose version bump was lost (the cache
# failed then, or another process keeps its own in-process cache).
REPORT_TTL = 600


def _report_overview(org, cycle):
    """What the report's first screen shows for the whole cycle: the stored counts, the first
    findings of each rule, and the scorecards' and team types' findings (part of issue 16, read
    from their tables, not by the rules engine). The same for every member, so it is computed
    once per change: cached under the organization's "report" version (``orgs/versions.py``),
    which the recompute's write of the stored report moves, as do the rows the other two
    read."""
    from okrs.scorecards import unaddressed_unhealthy
    from orgs import team_types, versions

    def compute():
        counts, by_rule = report.first_by_rule(org, cycle, REPORT_PREVIEW)
        return {"counts": counts, "by_rule": by_rule,
                "unhealthy": unaddressed_unhealthy(org, cycle),
                "types": team_types.findings(org, cycle)}

    if cycle is None:
        return compute()
    return versions.read_through(org.pk, "report", f"report:{org.pk}:{cycle.pk}", compute,
                                 REPORT_TTL)


class RealignForm(forms.Form):
    parent = forms.ModelChoiceField(queryset=Objective.objects.none(), label="Contribute to")


@org_view
def recascade_page(request):
    """A page of the re-cascade requests, filtered by team and answer; each offers the
    objectives it can be re-aligned to: those of its team's parent unit and of the company."""
    cycles, cycle = _cycle(request)
    flags = None
    team, team_choices = _team_filter(request)
    resolutions = RecascadeFlag.Resolution
    resolution = request.GET.get("state") if request.GET.get("state") in resolutions.values \
        else resolutions.OPEN
    if cycle is not None:
        qs = RecascadeFlag.objects.for_org(request.org).filter(objective__cycle=cycle,
                                                              resolution=resolution)
        if team is not None:
            qs = qs.filter(objective__team=team)
        # The page shows each flagged objective's title and team: not its derived risk data.
        flags = _counted_page(qs.select_related("objective__team")
                              .defer("objective__risk_above", "objective__impact",
                                     "objective__risk_causes")
                              .order_by("objective__team__name", "objective__title", "pk"),
                              PER_PAGE, _page_number(request))
        _attach_parents(request.org, cycle, list(flags))
        # The page asks who may answer, per row: co-owners matter only where the team's own
        # leads are not enough (an org admin or alignment lead answers every row: no query).
        preload_co_owners([f.objective for f in flags
                           if not can_edit_team_okrs(request.membership, f.objective.team_id)])
    return render(request, "alignment/recascade.html", {
        "cycles": cycles, "cycle": cycle, "flags": flags, "team": team,
        "team_choices": team_choices, "state": resolution, "states": resolutions.choices,
        "progress": _progress_page(request, cycle), "nav": "report"})


PROGRESS_PER_PAGE = 10


def _progress_page(request, cycle):
    """A page of the changes' progress, those with the most flags still open first (then the
    latest change): a cycle of many changes is read ten at a time."""
    rows = cascade.progress(request.org, cycle) if cycle else []
    rows.sort(key=lambda row: (-row["open"], -row["source"].pk))
    return Paginator(rows, PROGRESS_PER_PAGE).get_page(request.GET.get("changes_page"))


PARENTS_PER_FLAG = 15


def _attach_parents(org, cycle, flags):
    """``flag.parents``: live objectives of the flagged team's parent unit and of the company
    (15 at most each, one query for the page), the ones it can contribute to instead: its
    current parent is not one of them."""
    above = {f.objective.team.parent_id for f in flags if f.objective.team.parent_id}
    # Plain values, not model instances: a choice needs its id, title and team.
    rows = [SimpleNamespace(pk=pk, title=title, team_id=team_id,
                            team=SimpleNamespace(name=team_name, kind=kind))
            for pk, title, team_id, team_name, kind in (
                Objective.objects.for_org(org).filter(cycle=cycle).live()
                .filter(Q(team_id__in=above) | Q(team__kind=Team.Kind.COMPANY))
                .order_by("team__level", "title")
                .values_list("pk", "title", "team_id", "team__name", "team__kind")[:300])]
    # Each choice's <option> is rendered once for the page, not once per flag that offers it
    # (20 flags share the company's objectives); values and labels escaped by format_html.
    options = {p.pk: format_html('<option value="{}">{}: {}</option>', p.pk, p.team.name,
                                 p.title) for p in rows}
    for f in flags:
        mine = [p for p in rows if p.pk not in (f.objective_id, f.objective.parent_id) and (
            p.team_id == f.objective.team.parent_id or p.team.kind == Team.Kind.COMPANY)]
        f.parents = mine[:PARENTS_PER_FLAG]
        f.parent_options = mark_safe("".join(options[p.pk] for p in f.parents))
        # The three answer forms post to the same address: reversed once per flag.
        f.act_url = reverse("recascade_act", args=[org.slug, f.pk])


@org_view
def recascade_act(request, flag_pk):
    flag = (RecascadeFlag.objects.for_org(request.org)
            .select_related("objective__team", "objective__cycle", "objective__theme")
            .filter(pk=flag_pk).first())
    if flag is None:
        raise Http404("No such review request.")
    back = reverse("recascade", args=[request.org.slug]) + f"?cycle={flag.objective.cycle_id}"
    if request.method == "GET" and request.GET.get("action") == "retire":
        if not can_edit_objective(request.membership, flag.objective):
            raise PermissionDenied("Only its team's leads retire this objective.")
        return confirm_page(
            request, question=f"Retire “{flag.objective.title}”?",
            consequence="It leaves the tree and the progress roll-ups. Its key results and "
                        "check-in history are kept.",
            action=request.path, button="Retire it", cancel=back, fields={"action": "retire"})
    if (response := post_only(request)) is not None:
        return response
    m, action = request.membership, request.POST.get("action")
    if action == "retire" and not is_confirmed(request):
        return ask_first(request, fields=("action",))
    try:
        if action == "confirm":
            cascade.confirm_fits(membership=m, flag=flag, note=request.POST.get("note", ""))
        elif action == "realign":
            parent = (Objective.objects.for_org(request.org)
                      .filter(pk=_int(request.POST.get("parent"))).first())
            if parent is None:
                raise ValidationError("Choose the objective it contributes to now.")
            cascade.realign(membership=m, flag=flag, parent=parent)
        elif action == "retire":
            cascade.retire(membership=m, flag=flag)
        else:
            raise ValidationError("Choose confirm, re-align or retire.")
    except ValidationError as e:
        messages.error(request, " ".join(e.messages))
    else:
        messages.success(request, "Thanks: your answer is recorded.")
    return redirect(back)


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# Matrix and network ----------------------------------------------------------------------------


MATRIX_ROWS = 30


def _trees_reached(org, cycle, rows):
    """{objective id: the trees (company objectives) it serves} for the objectives that reach
    another tree than their own through an extra parent, theirs or an ancestor's; one query."""
    extra = defaultdict(list)
    for child, parent in ObjectiveParent.objects.for_org(org).filter(
            objective__cycle=cycle).values_list("objective_id", "parent_id"):
        extra[child].append(parent)
    if not extra:
        return {}
    by_id = {r[0]: r for r in rows}
    memo = {}

    def reach(pk, seen=frozenset()):
        if pk not in memo:
            row = by_id[pk]
            found = {row[4]}
            for up in (row[8], *extra.get(pk, ())):
                if up in by_id and up not in seen:
                    found |= reach(up, seen | {pk})
            memo[pk] = found
        return memo[pk]

    return {pk: reach(pk) for pk in by_id}


def matrix_data(org, cycle, *, open_unit=None, page=None):
    """Teams as rows, company objectives (or themes) as columns; each cell counts the team's
    objectives that serve the column, with their worst health. Above ``MATRIX_ROWS`` teams,
    a row stands for a department (the units right below the open one, the company unless
    ``open_unit`` names one) with the counts of every team inside it summed and their worst
    health; the rows are paged by ``MATRIX_ROWS``. An objective with several parents counts in
    the column of each company objective it reaches. Five queries."""
    thematic = org.alignment_model == Organization.AlignmentModel.THEMATIC
    # Plain tuples in no order (the few columns are sorted here): the cells only count.
    rows = list(Objective.objects.for_org(org).filter(cycle=cycle).live().order_by().values_list(
        "id", "title", "team_id", "team__kind", "tree_id", "level", "theme_id",
        "effective_health", "parent_id"))
    units = map_units(org)
    company = Team.Kind.COMPANY
    if thematic:
        columns = [{"id": t.pk, "title": t.name} for t in Theme.objects.for_org(org)]
    else:
        columns = [{"id": tree, "title": title, "objective": pk}
                   for pk, title, _, kind, tree, level, _, _, _ in sorted(rows,
                                                                          key=lambda r: r[1])
                   if level == 0 and kind == company]
    cells = defaultdict(lambda: {"count": 0, "worst": ""})
    trees = {} if thematic else _trees_reached(org, cycle, rows)
    for pk, _, team_id, kind, tree, level, theme_id, health, _ in rows:
        if kind == company or (not thematic and level == 0):
            continue
        for col in [theme_id] if thematic else trees.get(pk, (tree,)):
            cell = cells[(team_id, col)]
            cell["count"] += 1
            if WORST[health] > WORST[cell["worst"]]:
                cell["worst"] = health
    column_ids = {c["id"] for c in columns}
    used = {k[1] for k, v in cells.items() if v["count"]}
    for c in columns:
        c["empty"] = c["id"] not in used

    by_id = {u.id: u for u in units}
    opened = by_id.get(open_unit)  # only this organization's units are in ``units``
    if open_unit is not None and opened is None:
        raise Http404("No such unit.")
    if opened is not None and opened.is_company:
        opened = None

    def inside(u, top):
        return u.tree == top.tree and top.lft < u.lft and u.rght < top.rght

    below = [u for u in units if not u.is_company and (opened is None or inside(u, opened))]
    grouped = len(below) > MATRIX_ROWS
    if grouped:
        tops = {u.id for u in units if u.is_company}
        shown = [u for u in below if u.parent == (opened.id if opened else None)
                 or (opened is None and u.parent in tops)]
        group_of = {u.id: u.id for u in shown}
        for top in shown:
            if top.rght - top.lft > 1:
                for u in below:
                    if inside(u, top):
                        group_of[u.id] = top.id
    else:
        shown, group_of = list(below), {u.id: u.id for u in below}
    if opened is not None:  # the department's own objectives, first
        shown.insert(0, opened)
        group_of[opened.id] = opened.id
    summed = defaultdict(lambda: {"count": 0, "worst": ""})
    for (team_id, col), cell in cells.items():
        if team_id in group_of:
            into = summed[(group_of[team_id], col)]
            into["count"] += cell["count"]
            if WORST[cell["worst"]] > WORST[into["worst"]]:
                into["worst"] = cell["worst"]
    table = []
    for u in shown:
        row_cells = [summed.get((u.id, c["id"]), {"count": 0, "worst": ""}) for c in columns]
        table.append({"team": u, "cells": row_cells,
                      "teams": (u.rght - u.lft - 1) // 2 + 1,
                      "opens": grouped and u is not opened and u.rght - u.lft > 1,
                      "empty": not any(c["count"] for c in row_cells)})
    grouped = any(row["opens"] for row in table)
    table = Paginator(table, MATRIX_ROWS).get_page(page) if len(table) > MATRIX_ROWS else table
    trail, unit = [], opened
    while unit is not None and unit.parent is not None:
        trail.insert(0, unit)
        unit = by_id.get(unit.parent)
    return {"columns": columns, "rows": table, "thematic": thematic, "grouped": grouped,
            "opened": opened, "trail": trail, "paged": isinstance(table, Paginator.page_class)
            if hasattr(Paginator, "page_class") else not isinstance(table, list),
            "unmapped": sum(1 for _, _, _, kind, tree, _, theme_id, _, _ in rows
                            if kind != company
                            and (theme_id if thematic else tree) not in column_ids)}


def cached_matrix(org, cycle, open_unit=None, page=None):
    """``matrix_data``, the same for every reader: computed once per change of what it reads
    (objectives, their extra parents, teams, themes, health: the "matrix" version) and read
    from the cache until then. The organization's alignment model is part of the key."""
    from orgs import versions

    page = str(page or "")[:12]
    key = f"matrix:{org.pk}:{cycle.pk}:{org.alignment_model}:{open_unit or ''}:{page}"
    return versions.read_through(
        org.pk, "matrix", key,
        lambda: matrix_data(org, cycle, open_unit=open_unit, page=page or None), MAP_CACHE_TTL)


@org_view
def matrix(request):
    cycles, cycle = _cycle(request)
    unit = request.GET.get("unit", "")
    data = cached_matrix(request.org, cycle, int(unit) if unit.isdigit() else None,
                         _page_number(request)) if cycle else None
    return render(request, "alignment/matrix.html", {
        "cycles": cycles, "cycle": cycle, "m": data, "nav": "report"})


def map_units(org):
    return [netmap.Unit(pk, name, parent, tree, lft, rght, kind == Team.Kind.COMPANY,
                        "" if kind == Team.Kind.COMPANY else team_type)
            for pk, name, parent, tree, lft, rght, kind, team_type in Team.objects.for_org(org)
            .order_by("tree_id", "lft")
            .values_list("pk", "name", "parent_id", "tree_id", "lft", "rght", "kind",
                         "team_type")]


def network_data(org, cycle, slug, *, open_unit=None, units=None):
    """The map's nodes and edges. Above 30 teams, the units below the open one stand for
    every team inside them, and the links between two of them are summed into one line per
    kind. Links are read as plain values (no model instances): the cost is the rows, not
    the objects."""
    units = units if units is not None else map_units(org)
    _, shown, group_of, grouped = netmap.view_of(units, open_unit)
    has_children = {u.parent for u in units}
    edges = {}

    def add(a, b, kind, label, href, health, dep_kind=""):
        a, b = group_of.get(a), group_of.get(b)
        if a is None or b is None or a == b:
            return
        if kind != "dependency":  # sharing has no direction
            a, b = min(a, b), max(a, b)
        k = (a, b, kind, dep_kind)  # a line per kind of dependency
        if k in edges:
            e = edges[k]
            edges[k] = netmap.Edge(e.a, e.b, kind, e.label, e.href,
                                   max(e.health, health, key=WORST.__getitem__), e.count + 1,
                                   dep_kind)
        else:
            edges[k] = netmap.Edge(a, b, kind, label, href, health, dep_kind=dep_kind)

    def add_summed(a, b, kind, count, health, first, href):
        if kind != "dependency":  # sharing has no direction
            a, b = min(a, b), max(a, b)
        k = (a, b, kind)
        if k in edges:  # the same pair read the other way round, or from another source
            e = edges[k]
            edges[k] = netmap.Edge(e.a, e.b, kind, e.label, e.href,
                                   max(e.health, health, key=WORST.__getitem__),
                                   e.count + count)
        else:
            edges[k] = netmap.Edge(a, b, kind, "", href(first), health, count)

    def objective_url(pk):
        return reverse("objective", args=[slug, pk])

    def within(qs, a, b):
        # An opened unit: only the links between its own teams, read from the database
        # (not every link of the cycle, dropped here).
        if open_unit is None:
            return qs
        return qs.filter(**{f"{a}__in": list(group_of), f"{b}__in": list(group_of)})

    shares = (ObjectiveShare.objects.for_org(org).filter(objective__cycle=cycle)
              .exclude(objective__state="retired"))
    live_krs = (KeyResult.objects.for_org(org).filter(objective__cycle=cycle)
                .exclude(objective__state="retired"))
    dependencies = (Dependency.objects.for_org(org).filter(cycle=cycle)
                    .exclude(status__in=["withdrawn", "delivered"]))
    if grouped:
        # The upstream objective joined within the cycle: PostgreSQL then reads the cycle's
        # objectives by index instead of hashing every objective of every cycle.
        dependencies = dependencies.annotate(up_o=FilteredRelation(
            "upstream_objective", condition=Q(upstream_objective__cycle=cycle)))
        sources = (
            (shares, "objective__team_id", "team_id", F("kind"), F("objective__effective_health"),
             "objective_id", objective_url),
            (live_krs.exclude(owner_team_id=F("objective__team_id")), "objective__team_id",
             "owner_team_id", Value("objective"), F("objective__effective_health"),
             "objective_id", objective_url),
            (live_krs.filter(feeds__isnull=False), "owner_team_id", "feeds__owner_team_id",
             Value("key_result"), F("effective_health"), "feeds__objective_id", objective_url),
            (dependencies, "providing_team_id", "requesting_team_id", Value("dependency"),
             Coalesce("up_o__effective_health", "upstream_key_result__effective_health",
                      Value("")),
             "pk", lambda pk: reverse("dependency", args=[slug, pk])),
        )
        for qs, a, b, kind, health, pk, href in sources:
            for row in _summed_links(within(qs, a, b), group_of, a, b, kind, health, pk):
                add_summed(*row, href)
        return _nodes_and_edges(units, shown, group_of, grouped, has_children, edges, cycle,
                                slug)
    for owner, team, kind, title, pk, health in (
            within(shares, "objective__team_id", "team_id")
            .values_list("objective__team_id", "team_id", "kind", "objective__title",
                         "objective_id", "objective__effective_health")):
        add(owner, team, kind, title, objective_url(pk), health)
    for owner, team, title, pk, health in (
            within(live_krs.exclude(owner_team_id=F("objective__team_id")),
                   "objective__team_id", "owner_team_id")
            .values_list("objective__team_id", "owner_team_id", "objective__title",
                         "objective_id", "objective__effective_health")):
        add(owner, team, "objective", title, objective_url(pk), health)
    for team, fed, title, fed_title, pk, health in (
            within(live_krs.filter(feeds__isnull=False), "owner_team_id", "feeds__owner_team_id")
            .values_list("owner_team_id", "feeds__owner_team_id", "title", "feeds__title",
                         "feeds__objective_id", "effective_health")):
        add(team, fed, "key_result", f"{title} feeds {fed_title}", objective_url(pk), health)
    for provider, requester, need, pk, up_o, up_k, dep_kind in (
            within(dependencies, "providing_team_id", "requesting_team_id")
            .values_list("providing_team_id", "requesting_team_id", "need", "pk",
                                     "upstream_objective__effective_health",
                                     "upstream_key_result__effective_health", "kind")):
        add(provider, requester, "dependency", need, reverse("dependency", args=[slug, pk]),
            up_o if up_o is not None else up_k or "", dep_kind)
    return _nodes_and_edges(units, shown, group_of, grouped, has_children, edges, cycle, slug)


HEALTH_RANK = Case(When(h="off_track", then=Value(3)), When(h="at_risk", then=Value(2)),
                   When(h="on_track", then=Value(1)), default=Value(0),
                   output_field=IntegerField())
RANK_HEALTH = {3: "off_track", 2: "at_risk", 1: "on_track", 0: ""}


def _summed_links(qs, group_of, a, b, kind, health, pk):
    """The links of ``qs`` summed per pair of shown units and kind: rows of (unit a, unit b,
    kind, how many, worst health, the first link's id). SQL sums them per pair of teams (one
    query, a row per pair of teams that are linked); the pairs are then added up per pair of
    shown units here, with ``group_of`` (team -> the unit drawn for it). Links outside the open
    unit or inside one unit are dropped."""
    if not group_of:
        return []
    query = (qs.annotate(ta=F(a), tb=F(b), k=kind, h=health)
             .values_list("ta", "tb", "k").order_by()
             .annotate(n=Count("pk"), worst=Max(HEALTH_RANK), first=Min(pk))).query
    # Thousands of rows of plain numbers and one word: read with a cursor, without the ORM's
    # per-value converters (a third of this page's time when the rows came through them).
    sql, params = query.sql_with_params()
    with connections[qs.db].cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    summed = {}
    for ta, tb, k, n, worst, first in rows:
        ua, ub = group_of.get(ta), group_of.get(tb)
        if ua is None or ub is None or ua == ub:
            continue
        key = (ua, ub, k)
        if key in summed:
            _, _, _, n0, worst0, first0 = summed[key]
            summed[key] = (ua, ub, k, n0 + n, max(worst0, worst or 0), min(first0, first))
        else:
            summed[key] = (ua, ub, k, n, worst or 0, first)
    return [(ua, ub, k, n, RANK_HEALTH[worst], first)
            for ua, ub, k, n, worst, first in summed.values()]


def _nodes_and_edges(units, shown, group_of, grouped, has_children, edges, cycle, slug):
    links = defaultdict(int)
    worst = defaultdict(str)
    for e in edges.values():
        for t in (e.a, e.b):
            links[t] += 1
            if WORST[e.health] > WORST[worst[t]]:
                worst[t] = e.health
    size = Counter(group_of.values())
    map_url = reverse("network_map", args=[slug])

    def node(u):
        if grouped and u.id in has_children:
            return netmap.Node(u.id, f"{u.name} ({size[u.id] - 1} teams)",
                               f"{map_url}?cycle={cycle.pk}&unit={u.id}", worst[u.id],
                               links[u.id])
        return netmap.Node(u.id, u.name, reverse("team", args=[slug, u.id]), worst[u.id],
                           links[u.id], u.team_type)

    return [node(u) for u in shown], list(edges.values())


MAP_CACHE_TTL = 600


def map_drawing(org, cycle, requested=None):
    """The map of ``cycle`` (the unit ``requested`` opened, if it is one of this organization's),
    as plain data: the units, nodes, edges, the SVG, whether units stand for their teams and
    how many lines were left out. The same for every reader, so it is drawn once per change
    of what it shows (the "netmap" version: teams, objectives, key results, shares,
    dependencies and health) and read from the cache until then."""
    from orgs import versions

    def draw():
        units = map_units(org)
        by_id = {u.id: u for u in units}
        opened = by_id.get(requested)  # only this organization's units are in ``units``
        nodes, edges = network_data(org, cycle, org.slug,
                                    open_unit=opened.id if opened else None, units=units)
        grouped, hidden = any("&unit=" in n.href for n in nodes), 0
        if grouped:
            edges, hidden = netmap.busiest(edges)
        return {"units": units, "nodes": nodes, "edges": edges, "grouped": grouped,
                "hidden": hidden, "opened": opened.id if opened else None,
                "svg": netmap.render(nodes, edges, summed=grouped)}

    if requested is not None:
        # The key names only a unit of this organization: another id draws the company, under
        # the company's key, so invented ids cannot fill the cache with copies.
        ids = versions.read_through(org.pk, "netmap", f"netmap-units:{org.pk}",
                                    lambda: {u.id for u in map_units(org)}, MAP_CACHE_TTL)
        requested = requested if requested in ids else None
    key = f"netmap:{org.pk}:{cycle.pk}:{requested or ''}"
    return versions.read_through(org.pk, "netmap", key, draw, MAP_CACHE_TTL)


@org_view
def network_map(request):
    """The teams and their links; above 30 teams, the departments (a click opens one)."""
    cycles, cycle = _cycle(request)
    svg, nodes, edges, opened, trail, grouped, hidden = "", [], [], None, [], False, 0
    if cycle is not None:
        requested = int(request.GET["unit"]) if request.GET.get("unit", "").isdigit() else None
        drawn = map_drawing(request.org, cycle, requested)
        units, nodes, edges, svg = drawn["units"], drawn["nodes"], drawn["edges"], drawn["svg"]
        grouped, hidden = drawn["grouped"], drawn["hidden"]
        by_id = {u.id: u for u in units}
        opened = by_id.get(drawn["opened"])
        unit = opened
        while unit is not None and unit.parent is not None:
            trail.insert(0, unit)
            unit = by_id.get(unit.parent)
    return render(request, "alignment/netmap.html", {
        "cycles": cycles, "cycle": cycle, "svg": svg, "nodes": nodes, "edges": edges,
        "opened": opened, "trail": trail, "grouped": grouped, "hidden": hidden,
        "lonely": [n for n in nodes if n.links == 0], "nav": "report"})


# Settings --------------------------------------------------------------------------------------


# The escalation ladder's days (dependencies/ladder.py), in step order.
LADDER = ["ladder_lead_days", "ladder_head_days", "ladder_alignment_days", "ladder_admin_days"]


class SettingsForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = ["alignment_model", "local_share_limit", "escalate_after_days", "timezone",
                  "digest_weekday", "digest_hour", *LADDER]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in LADDER:  # left empty: kept as they are
            self.fields[name].required = False

    def clean(self):
        data = super().clean()
        for name in LADDER:
            if data.get(name) is None and name not in self.errors:
                data[name] = getattr(self.instance, name)
        days = [data.get(name) for name in LADDER]
        if None not in days and days != sorted(days):
            self.add_error(LADDER[-1], "Each step of the escalation ladder comes on or after "
                                       "the one before: lead, head, alignment lead, admin.")
        return data

    def clean_timezone(self):
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        value = self.cleaned_data["timezone"].strip()
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise forms.ValidationError(
                "Unknown time zone: use a name such as Europe/Berlin or Asia/Tokyo.") from None
        return value


class ThemeForm(forms.Form):
    name = forms.CharField(max_length=80)
    description = forms.CharField(max_length=300, required=False)


def _confirm_theme_removal(request):
    theme = Theme.objects.for_org(request.org).filter(pk=_int(request.GET.get("theme"))).first()
    if theme is None:
        raise Http404("No such theme.")
    used = Objective.objects.for_org(request.org).filter(theme=theme).count()
    here = reverse("alignment_settings", args=[request.org.slug])
    return confirm_page(
        request, question=f"Remove the theme “{theme.name}”?",
        consequence=("No objective uses it." if not used else
                     f"{used} objective{'s' if used != 1 else ''} lose{'s' if used == 1 else ''} "
                     "this theme and keep their parent, if any. In the thematic model they "
                     "then count as not aligned."),
        action=here, button="Remove theme", cancel=here,
        fields={"action": "delete_theme", "theme": theme.pk})


@org_view
def alignment_settings(request):
    if not can_publish(request.membership):
        raise PermissionDenied("Only alignment leads and org admins change these settings.")
    org = request.org
    if request.method == "GET" and request.GET.get("action") == "delete_theme":
        return _confirm_theme_removal(request)
    form = SettingsForm(instance=org)
    theme_form = ThemeForm()
    if request.method == "POST":
        if request.POST.get("action") == "theme":
            theme_form = ThemeForm(request.POST)
            theme = submit(request, theme_form, lambda data: cascade.add_theme(
                membership=request.membership, **data))
            if theme is not None:
                messages.success(request, f"Theme “{theme.name}” added.")
                return redirect("alignment_settings", org.slug)
        elif request.POST.get("action") == "delete_theme":
            if not is_confirmed(request):
                return ask_first(request, fields=("action", "theme"))
            lock_organization(org)  # the delete clears the theme on objectives: tree rows
            Theme.objects.for_org(org).filter(pk=_int(request.POST.get("theme"))).delete()
            report.mark_cycles_changed(org)
            messages.success(request, "Theme removed; its objectives keep their parent, if any.")
            return redirect("alignment_settings", org.slug)
        else:
            form = SettingsForm(request.POST, instance=Organization.objects.get(pk=org.pk))
            if form.is_valid():
                try:
                    lock_organization(org)
                    form.save()
                    report.mark_cycles_changed(org)  # the rules read these settings
                except ValidationError as e:
                    apply_errors(form, e)
                else:
                    messages.success(request, "Settings saved.")
                    return redirect("alignment_settings", org.slug)
    return render(request, "alignment/settings.html", {
        "form": form, "theme_form": theme_form, "themes": list(Theme.objects.for_org(org)),
        "nav": "report"})
