"""Pages of cascading: the review queue, the misalignment report, re-cascade progress, the
alignment matrix, the network map and the organization's alignment settings."""

from collections import defaultdict

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse

from dependencies.models import Dependency, ObjectiveShare
from okrs import selectors as okr_selectors
from okrs.models import KeyResult, Objective
from orgs.decorators import org_view, post_only
from orgs.forms import apply_errors, submit
from orgs.models import Organization, Team, Theme
from orgs.permissions import can_publish
from orgs.services import lock_organization

from . import cascade, netmap, report, rules
from .models import RecascadeFlag, ReviewComment

# An unknown stored value ranks as "no health" rather than failing the page.
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


@org_view
def review_queue(request):
    cycles, cycle = _cycle(request)
    items, approved, findings = [], 0, None
    if cycle is not None:
        findings = report.summary(request.org, cycle)  # None: being prepared
        items = list(Objective.objects.for_org(request.org).filter(
            cycle=cycle, state__in=["proposed", "approved"]).select_related("team", "parent")
            .order_by("state", "team__name", "title"))
        threads = defaultdict(list)
        for c in ReviewComment.objects.for_org(request.org).filter(
                objective__in=items).select_related("author"):
            threads[c.objective_id].append(c)
        found = report.for_objectives(request.org, cycle, [o.pk for o in items])
        for o in items:
            o.thread = threads[o.pk]
            o.findings = found[o.pk]
        approved = sum(1 for o in items if o.state == "approved")
    return render(request, "alignment/review.html", {
        "cycles": cycles, "cycle": cycle, "items": items, "approved": approved,
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


@org_view
def misalignment_report(request):
    cycles, cycle = _cycle(request)
    counts, found = report.stored(request.org, cycle)  # counts None: being prepared
    by_rule = defaultdict(list)
    for f in found:
        by_rule[f.rule].append(f)
    return render(request, "alignment/report.html", {
        "cycles": cycles, "cycle": cycle, "found": found, "counts": counts,
        "rules": [(rules.TITLES[k], k, by_rule.get(k, [])) for k in rules.TITLES],
        "nav": "report", "similar": round(rules.SIMILAR * 100)})


class RealignForm(forms.Form):
    parent = forms.ModelChoiceField(queryset=Objective.objects.none(), label="Contribute to")


@org_view
def recascade_page(request):
    cycles, cycle = _cycle(request)
    flags = []
    if cycle is not None:
        flags = list(RecascadeFlag.objects.for_org(request.org)
                     .filter(objective__cycle=cycle, resolution="open")
                     .select_related("objective__team", "source"))
    parents = (Objective.objects.for_org(request.org).filter(cycle=cycle).live()
               .exclude(team__kind=Team.Kind.TEAM).select_related("team")
               .in_tree_order()) if cycle else []
    return render(request, "alignment/recascade.html", {
        "cycles": cycles, "cycle": cycle, "flags": flags, "parents": parents,
        "progress": cascade.progress(request.org, cycle) if cycle else [], "nav": "report"})


@org_view
def recascade_act(request, flag_pk):
    flag = (RecascadeFlag.objects.for_org(request.org)
            .select_related("objective__team", "objective__cycle", "objective__theme")
            .filter(pk=flag_pk).first())
    if flag is None:
        raise Http404("No such review request.")
    if (response := post_only(request)) is not None:
        return response
    m, action = request.membership, request.POST.get("action")
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
    return redirect(reverse("recascade", args=[request.org.slug])
                    + f"?cycle={flag.objective.cycle_id}")


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# Matrix and network ----------------------------------------------------------------------------


def matrix_data(org, cycle):
    """Teams as rows, company objectives (or themes) as columns; each cell counts the team's
    objectives that serve the column, with their worst health. Four queries."""
    thematic = org.alignment_model == Organization.AlignmentModel.THEMATIC
    rows = list(Objective.objects.for_org(org).filter(cycle=cycle).live().order_by("title").values(
        "id", "title", "team_id", "team__kind", "tree_id", "level", "theme_id",
        "effective_health"))
    teams = [t for t in Team.objects.for_org(org) if t.kind != Team.Kind.COMPANY]
    if thematic:
        columns = [{"id": t.pk, "title": t.name} for t in Theme.objects.for_org(org)]
        key = "theme_id"
    else:
        columns = [{"id": r["tree_id"], "title": r["title"], "objective": r["id"]}
                   for r in rows if r["level"] == 0 and r["team__kind"] == Team.Kind.COMPANY]
        key = "tree_id"
    cells = defaultdict(lambda: {"count": 0, "worst": ""})
    for r in rows:
        if r["team__kind"] == Team.Kind.COMPANY or (not thematic and r["level"] == 0):
            continue
        cell = cells[(r["team_id"], r[key])]
        cell["count"] += 1
        if WORST[r["effective_health"]] > WORST[cell["worst"]]:
            cell["worst"] = r["effective_health"]
    column_ids = {c["id"] for c in columns}
    table = []
    for t in teams:
        row_cells = [cells.get((t.pk, c["id"]), {"count": 0, "worst": ""}) for c in columns]
        table.append({"team": t, "cells": row_cells,
                      "empty": not any(c["count"] for c in row_cells)})
    for i, c in enumerate(columns):
        c["empty"] = not any(row["cells"][i]["count"] for row in table)
    return {"columns": columns, "rows": table, "thematic": thematic,
            "unmapped": sum(1 for r in rows if r["team__kind"] != Team.Kind.COMPANY
                            and r[key] not in column_ids)}


@org_view
def matrix(request):
    cycles, cycle = _cycle(request)
    data = matrix_data(request.org, cycle) if cycle else None
    return render(request, "alignment/matrix.html", {
        "cycles": cycles, "cycle": cycle, "m": data, "nav": "report"})


def network_data(org, cycle, slug):
    teams = [t for t in Team.objects.for_org(org).order_by("tree_id", "lft")
             if t.kind != Team.Kind.COMPANY]
    edges = {}

    def add(a, b, kind, label, href, health):
        if a == b:
            return
        if kind != "dependency":  # sharing has no direction
            a, b = min(a, b), max(a, b)
        k = (a, b, kind)
        if k in edges:
            e = edges[k]
            edges[k] = netmap.Edge(e.a, e.b, kind, e.label, e.href,
                                   max(e.health, health, key=WORST.__getitem__), e.count + 1)
        else:
            edges[k] = netmap.Edge(a, b, kind, label, href, health)

    def objective_url(pk):
        return reverse("objective", args=[slug, pk])

    for s in (ObjectiveShare.objects.for_org(org).filter(objective__cycle=cycle)
              .exclude(objective__state="retired").select_related("objective")):
        add(s.objective.team_id, s.team_id, s.kind, s.objective.title,
            objective_url(s.objective_id), s.objective.effective_health)
    for k in (KeyResult.objects.for_org(org).filter(objective__cycle=cycle)
              .exclude(objective__state="retired").select_related("objective", "feeds")):
        if k.owner_team_id != k.objective.team_id:
            add(k.objective.team_id, k.owner_team_id, "objective", k.objective.title,
                objective_url(k.objective_id), k.objective.effective_health)
        if k.feeds is not None:
            add(k.owner_team_id, k.feeds.owner_team_id, "key_result",
                f"{k.title} feeds {k.feeds.title}", objective_url(k.feeds.objective_id),
                k.effective_health)
    for d in (Dependency.objects.for_org(org).filter(cycle=cycle)
              .exclude(status__in=["withdrawn", "delivered"])
              .select_related("upstream_objective", "upstream_key_result")):
        add(d.providing_team_id, d.requesting_team_id, "dependency", d.need,
            reverse("dependency", args=[slug, d.pk]), d.upstream.effective_health)
    links = defaultdict(int)
    worst = defaultdict(str)
    for e in edges.values():
        for t in (e.a, e.b):
            links[t] += 1
            if WORST[e.health] > WORST[worst[t]]:
                worst[t] = e.health
    nodes = [netmap.Node(t.pk, t.name, reverse("team", args=[slug, t.pk]), worst[t.pk],
                         links[t.pk]) for t in teams]
    return nodes, list(edges.values())


@org_view
def network_map(request):
    cycles, cycle = _cycle(request)
    svg, nodes, edges = "", [], []
    if cycle is not None:
        nodes, edges = network_data(request.org, cycle, request.org.slug)
        svg = netmap.render(nodes, edges)
    return render(request, "alignment/netmap.html", {
        "cycles": cycles, "cycle": cycle, "svg": svg, "nodes": nodes, "edges": edges,
        "lonely": [n for n in nodes if n.links == 0], "nav": "report"})


# Settings --------------------------------------------------------------------------------------


class SettingsForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = ["alignment_model", "local_share_limit", "escalate_after_days", "timezone",
                  "digest_weekday", "digest_hour"]

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


@org_view
def alignment_settings(request):
    if not can_publish(request.membership):
        raise PermissionDenied("Only alignment leads and org admins change these settings.")
    org = request.org
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
