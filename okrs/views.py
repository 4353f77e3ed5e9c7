from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect, retarget

from alignment import report as alignment_report
from alignment import selectors as alignment_selectors
from dependencies import selectors as network_selectors
from dependencies.forms import RecoveryActionForm, ShareForm
from orgs.decorators import org_view
from orgs.forms import submit
from orgs.permissions import (
    can_edit_objective,
    can_edit_team_okrs,
    can_open_console,
    can_plan_recovery,
    led_team_ids,
)
from orgs.pickers import find_data

from . import selectors, services
from .access import access_key_result, access_objective, access_team
from .charts import plain_number
from .forms import CheckInForm, KeyResultForm, ObjectiveForm


def _cycle_context(request):
    cycles = selectors.cycles_for(request.org)
    return cycles, selectors.pick_cycle(cycles, request.GET.get("cycle"))


def _objective_url(request, objective):
    return reverse("objective", args=[request.org.slug, objective.pk])


def _done(request, url):
    """After a successful non-fragment form: a real redirect, or a client redirect for htmx."""
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _save(request, form, action):
    """``submit`` for an edit form with a hidden version. After a StaleEdit the form is shown
    again with the person's values and the current version, so saving again goes through."""

    def run(data):
        try:
            return action(data)
        except services.StaleEdit as stale:
            form.data = form.data.copy()
            form.data[form.add_prefix("version")] = stale.version
            raise

    return submit(request, form, run)


@org_view
def home(request):
    """Company objectives, my teams' OKRs (a page at a time: htmx asks for the next page with
    ``?page=N`` and gets its rows), what needs me, recent check-ins and my teams."""
    cycles, cycle = _cycle_context(request)
    page = int(request.GET["page"]) if request.GET.get("page", "").isdigit() else 1
    ctx = selectors.home(request.org, request.membership, cycle, page=max(1, min(page, 10**6)))
    if request.htmx and "page" in request.GET:
        response = render(request, "okrs/home.html#my_rows", {"cycle": cycle, **ctx})
        patch_vary_headers(response, ["HX-Request"])
        return response
    ctx["findings"] = alignment_report.summary(request.org, cycle)  # None: being prepared
    m = request.membership
    can_add = can_open_console(m) or any(can_edit_team_okrs(m, pk) for pk in led_team_ids(m))
    response = render(request, "okrs/home.html", {
        "cycles": cycles, "cycle": cycle, "can_add": can_add, "nav": "home", **ctx})
    patch_vary_headers(response, ["HX-Request"])
    return response


def _count_findings(org, cycle, nodes):
    """Attach ``finding_count`` (the stored misalignment findings) to tree nodes."""
    counts = alignment_report.count_by_objective(org, cycle, [o.pk for o in nodes])
    for o in nodes:
        o.finding_count = counts.get(o.pk, 0)


@org_view
def tree(request):
    """The company objectives, one level only; each branch opens on demand (htmx asks
    ``tree_children``; without JavaScript, ``?branch=<pk>`` shows that objective's children).
    The other roots (local, unaligned, or under a retired parent) come a page at a time."""
    cycles, cycle = _cycle_context(request)
    branch, others, others_total = None, [], 0
    page = int(request.GET["page"]) if request.GET.get("page", "").isdigit() else 1
    page = max(1, min(page, 10**6))
    if request.GET.get("branch", "").isdigit():
        branch = access_objective(request.membership, int(request.GET["branch"]))
        cycle = branch.cycle
        nodes = selectors.tree_level(request.org, cycle, parent=branch)
    elif cycle:
        nodes = selectors.tree_level(request.org, cycle)
        others, others_total = selectors.tree_others(request.org, cycle, page=page)
    else:
        nodes = []
    _count_findings(request.org, cycle, nodes + others)
    return render(request, "okrs/tree.html", {
        "cycles": cycles, "cycle": cycle, "nodes": nodes, "branch": branch, "others": others,
        "others_total": others_total, "page": page, "nav": "tree",
        "has_more": page * selectors.TREE_OTHERS < others_total, "next_page": page + 1})


@org_view
def tree_children(request, objective_pk):
    objective = access_objective(request.membership, objective_pk)
    if not request.htmx:
        return redirect(_objective_url(request, objective))
    nodes = selectors.tree_level(request.org, objective.cycle, parent=objective)
    _count_findings(request.org, objective.cycle, nodes)
    response = render(request, "okrs/tree.html#children", {"nodes": nodes})
    patch_vary_headers(response, ["HX-Request"])
    return response


@org_view
def team_detail(request, team_pk):
    team = access_team(request.membership, team_pk)
    cycles, cycle = _cycle_context(request)
    ctx = selectors.team_page(request.org, team, cycle)
    if cycle is not None:
        ctx["network"] = network_selectors.team_links(request.org, team, cycle)
    return render(request, "okrs/team.html", {
        "team": team, "cycles": cycles, "cycle": cycle,
        "can_add": cycle is not None and can_edit_team_okrs(request.membership, team.pk), **ctx,
    })


@org_view
def objective_detail(request, objective_pk):
    objective = access_objective(request.membership, objective_pk)
    ctx = selectors.objective_page(request.org, objective)
    can_edit = can_edit_objective(request.membership, objective)
    return render(request, "okrs/objective.html", {
        "objective": objective, "can_edit": can_edit,
        "kr_form": KeyResultForm(membership=request.membership),
        "network": network_selectors.objective_network(request.org, objective,
                                                       request.membership),
        "share_form": ShareForm(org=request.org, objective=objective) if can_edit else None,
        "can_plan_recovery": can_plan_recovery(request.membership, objective),
        "recovery_form": RecoveryActionForm(org=request.org),
        "alignment": alignment_selectors.objective_alignment(request.org, objective,
                                                             request.membership), **ctx,
    })


@org_view
@require_http_methods(["GET", "POST"])
def objective_create(request):
    cycles, cycle = _cycle_context(request)
    teams = services.teams_for_objectives(request.membership)
    if cycle is None or not teams:
        messages.info(request, "Ask an alignment lead to open a cycle and to make you a team lead.")
        return redirect("home", request.org.slug)
    form = ObjectiveForm(find_data(request), membership=request.membership, cycle=cycle,
                         teams=teams, initial={"team": request.GET.get("team"),
                                               "parent": request.GET.get("parent")})
    objective = submit(request, form, lambda data: services.create_objective(
        membership=request.membership, cycle=cycle,
        **{k: v for k, v in data.items() if k != "version"}))
    if objective:
        messages.success(request, "Objective added. Now give it two to four key results.")
        if objective.team.is_company:
            count = objective.cycle.objectives.filter(team__kind="company").live().count()
            if count > 5:
                messages.warning(request, f"{objective.cycle.name} now has {count} company "
                                 "objectives. Above 5, focus thins out: 2 or 3 is the sweet "
                                 "spot.")
        return _done(request, _objective_url(request, objective))
    return render(request, "okrs/objective_form.html", {"form": form, "cycle": cycle})


@org_view
@require_http_methods(["GET", "POST"])
def objective_edit(request, objective_pk):
    objective = access_objective(request.membership, objective_pk, write=True)
    initial = {"title": objective.title, "why": objective.why, "team": objective.team_id,
               "parent": objective.parent_id, "is_local": objective.is_local,
               "state": objective.state, "version": objective.version,
               "theme": objective.theme_id, "success": objective.success,
               "tradeoffs": objective.tradeoffs}
    form = ObjectiveForm(find_data(request), initial=initial, membership=request.membership,
                         cycle=objective.cycle, objective=objective,
                         teams=services.teams_for_objectives(request.membership))
    if _save(request, form, lambda data: services.update_objective(
            membership=request.membership, objective=objective,
            **(data | {"version": data["version"] or 0}))):
        messages.success(request, "Objective saved.")
        return _done(request, _objective_url(request, objective))
    template = "okrs/objective_form.html" + ("#form" if request.htmx else "")
    return render(request, template, {"form": form, "cycle": objective.cycle,
                                      "objective": objective})


@org_view
@require_http_methods(["GET", "POST"])
def objective_retire(request, objective_pk):
    objective = access_objective(request.membership, objective_pk, write=True)
    if request.method == "POST":
        try:
            services.retire_objective(membership=request.membership, objective=objective)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return _done(request, _objective_url(request, objective))
        messages.success(request, f"“{objective.title}” is retired.")
        return _done(request, reverse("team", args=[request.org.slug, objective.team_id]))
    children = objective.get_children().live().count()
    return render(request, "okrs/objective_retire.html", {
        "objective": objective, "live_children": children})


def _key_result_response(request, objective, *, new_kr_form=False):
    """After a KR change: the KR list and, out of band, the objective's summary (and, after an
    add, an empty add form, so a second click cannot add the same KR twice)."""
    objective = access_objective(request.membership, objective.pk)
    ctx = selectors.objective_page(request.org, objective)
    kr_form = KeyResultForm(membership=request.membership) if new_kr_form else None
    response = render(request, "okrs/objective.html#key_results", {
        "objective": objective, "can_edit": can_edit_objective(request.membership, objective),
        "oob": True, "kr_form": kr_form, **ctx})
    response["HX-Trigger"] = "okrs:changed"
    return response


@org_view
@require_http_methods(["GET", "POST"])
def key_result_create(request, objective_pk):
    objective = access_objective(request.membership, objective_pk, write=True)
    form = KeyResultForm(find_data(request), membership=request.membership)
    if submit(request, form, lambda data: services.create_key_result(
            membership=request.membership, objective=objective,
            **{k: v for k, v in data.items() if k != "version"})):
        if request.htmx:
            return _key_result_response(request, objective, new_kr_form=True)
        messages.success(request, "Key result added.")
        return redirect(_objective_url(request, objective))
    if request.htmx:
        response = render(request, "okrs/key_result_form.html#form",
                          {"form": form, "objective": objective})
        return retarget(response, "#kr-new-form") if request.method == "POST" else response
    return render(request, "okrs/key_result_form.html", {"form": form, "objective": objective})


@org_view
@require_http_methods(["GET", "POST"])
def key_result_edit(request, key_result_pk):
    key_result = access_key_result(request.membership, key_result_pk, write=True)
    selectors.attach_contributors(request.org, [key_result])
    objective = key_result.objective
    initial = {f: getattr(key_result, f) for f in ("title", "kind", "unit", "version")}
    initial.update({f: plain_number(getattr(key_result, f)) for f in (
        "start_value", "target_value", "weight")})
    initial.update(owner_team=key_result.owner_team_id, owner=key_result.owner_id)
    form = KeyResultForm(find_data(request), initial=initial, membership=request.membership)
    form.fields["kind"].disabled = True
    if _save(request, form, lambda data: services.update_key_result(
            membership=request.membership, key_result=key_result,
            version=data["version"] or 0, title=data["title"],
            start_value=data["start_value"], target_value=data["target_value"],
            unit=data["unit"], owner_team=data["owner_team"] or objective.team,
            owner=data["owner"], weight=data["weight"])):
        messages.success(request, "Key result saved.")
        return _done(request, _objective_url(request, objective))
    return render(request, "okrs/key_result_form.html", {
        "form": form, "objective": objective, "key_result": key_result})


@org_view
@require_http_methods(["GET", "POST"])
def check_in(request, key_result_pk):
    key_result = access_key_result(request.membership, key_result_pk, check_in=True)
    selectors.attach_contributors(request.org, [key_result])
    form = CheckInForm(request.POST or None, initial={
        "value": plain_number(key_result.current_value),
        "confidence": key_result.confidence or "on_track"})
    extra = {}
    if key_result.rollup_sentence:
        del form.fields["value"]  # its contributors' check-ins make its value
        if request.POST.get("value", "").strip():
            extra["value"] = request.POST["value"]  # refused by the service, with the reason
    if submit(request, form, lambda data: services.record_check_in(
            membership=request.membership, key_result=key_result, **data, **extra)):
        if request.htmx:
            return _key_result_response(request, key_result.objective)
        messages.success(request, "Check-in saved.")
        return redirect(_objective_url(request, key_result.objective))
    if request.htmx:
        response = render(request, "okrs/check_in_form.html#form",
                          {"form": form, "key_result": key_result})
        return retarget(response, f"#kr-{key_result.pk}-form")
    return render(request, "okrs/check_in_form.html", {"form": form, "key_result": key_result})
