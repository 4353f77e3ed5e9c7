from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect, retarget

from alignment import report as alignment_report
from alignment import selectors as alignment_selectors
from dependencies import selectors as network_selectors
from dependencies.forms import RecoveryActionForm, ShareForm
from nudges import inbox
from orgs.confirm import ask_first, confirm_page, is_confirmed
from orgs.decorators import org_view
from orgs.forms import submit
from orgs.permissions import (
    can_edit_objective,
    can_edit_team_okrs,
    can_manage_strategy,
    can_open_console,
    can_plan_recovery,
    can_unretire_objective,
    led_team_ids,
)
from orgs.pickers import find_data

from . import sections, selectors, services, strategy, views_closing
from .access import access_check_in, access_key_result, access_objective, access_team
from .charts import plain_number
from .forms import (
    AlignKeyResultForm,
    CheckInForm,
    CorrectionForm,
    DeleteCheckInForm,
    KeyResultForm,
    ObjectiveForm,
)


def _cycle_context(request):
    cycles = selectors.cycles_for(request.org)
    return cycles, selectors.pick_cycle(cycles, request.GET.get("cycle"))


def _objective_url(request, objective):
    return reverse("objective", args=[request.org.slug, objective.pk])


def _done(request, url):
    """After a successful non-fragment form: a real redirect, or a client redirect for htmx."""
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _closed(request, objective):
    """A change form of a closed cycle's objective, opened by its address: nothing to change
    there, so back to the objective's page (it says the cycle is closed). A post still goes
    to the service, which refuses it."""
    if request.method == "GET" and objective.cycle.is_closed:
        return _done(request, _objective_url(request, objective))
    return None


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
    ctx["inbox"] = inbox.summary(request.membership)
    m = request.membership
    can_add = can_open_console(m) or any(can_edit_team_okrs(m, pk) for pk in led_team_ids(m))
    response = render(request, "okrs/home.html", {
        "cycles": cycles, "cycle": cycle, "can_add": can_add and not (cycle and cycle.is_closed),
        "open_cycle": selectors.open_cycle(request.org, cycles), "nav": "home", **ctx})
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
    branch, others, others_total, more = None, [], 0, False
    page = _page(request)
    goals, from_goals = None, request.GET.get("start") == "goals"
    if from_goals and cycle and not request.GET.get("branch"):
        # Start from strategic goals: the goals on top, this cycle's company objectives below.
        goals, nodes = strategy.tree_from_goals(request.org, cycle)
        _count_findings(request.org, cycle, [o for g in goals for o in g.nodes] + nodes)
        return render(request, "okrs/tree.html", {
            "cycles": cycles, "cycle": cycle, "nodes": nodes, "goals": goals,
            "from_goals": True, "open_cycle": selectors.open_cycle(request.org, cycles),
            "can_manage_strategy": can_manage_strategy(request.membership), "nav": "tree"})
    if request.GET.get("branch", "").isdigit():
        branch = access_objective(request.membership, int(request.GET["branch"]))
        cycle = branch.cycle
        nodes, more = selectors.tree_level(request.org, cycle, parent=branch, page=page)
    elif cycle:
        nodes, _ = selectors.tree_level(request.org, cycle)
        others, others_total = selectors.tree_others(request.org, cycle, page=page)
        more = page * selectors.TREE_OTHERS < others_total
    else:
        nodes = []
    _count_findings(request.org, cycle, nodes + others)
    return render(request, "okrs/tree.html", {
        "cycles": cycles, "cycle": cycle, "nodes": nodes, "branch": branch, "others": others,
        "open_cycle": selectors.open_cycle(request.org, cycles),
        "others_total": others_total, "page": page, "nav": "tree",
        "has_more": more and branch is None, "branch_more": more and branch is not None,
        "next_page": page + 1})


def _page(request):
    page = int(request.GET["page"]) if request.GET.get("page", "").isdigit() else 1
    return max(1, min(page, 10**6))


@org_view
def tree_children(request, objective_pk):
    objective = access_objective(request.membership, objective_pk)
    if not request.htmx:
        return redirect(_objective_url(request, objective))
    page = _page(request)
    nodes, more = selectors.tree_level(request.org, objective.cycle, parent=objective, page=page)
    _count_findings(request.org, objective.cycle, nodes)
    template = "okrs/tree.html#children" if page == 1 else "okrs/tree.html#more_children"
    response = render(request, template, {"nodes": nodes, "branch": objective,
                                          "branch_more": more, "next_page": page + 1})
    patch_vary_headers(response, ["HX-Request"])
    return response


@org_view
def team_detail(request, team_pk):
    team = access_team(request.membership, team_pk)
    cycles, cycle = _cycle_context(request)
    ctx = selectors.team_page(request.org, team, cycle)
    if cycle is not None:
        ctx["network"] = network_selectors.team_links(request.org, team, cycle)
    ctx["cadence"], ctx["cadence_from"] = inbox.cadence_of(team, ctx.get("ancestors", []))
    ctx.update(_scorecard_context(request, team, cycles))
    return render(request, "okrs/team.html", {
        "team": team, "cycles": cycles, "cycle": cycle,
        "open_cycle": selectors.open_cycle(request.org, cycles),
        "can_add": cycle is not None and not cycle.is_closed
        and can_edit_team_okrs(request.membership, team.pk), **ctx,
        "scoring": views_closing.team_scoring(request.membership, team, cycle,
                                              ctx["objectives"]),
    })


def _scorecard_context(request, team, cycles):
    """The team page's scorecard (okrs/scorecards.py) and what its type means for sharing."""
    from orgs import team_types
    from orgs.permissions import can_keep_unit, can_record_kpi_value

    from . import scorecards

    return {"kpis": scorecards.scorecard(request.org, team,
                                         cycle=selectors.open_cycle(request.org, cycles)),
            "can_keep": can_keep_unit(request.membership, team.pk),
            "can_record": can_record_kpi_value(request.membership, team.pk),
            "type_hint": team_types.sharing_hint(team)}


@org_view
def objective_detail(request, objective_pk):
    objective = access_objective(request.membership, objective_pk)
    closed = objective.cycle.is_closed  # read-only: nothing offered, the banner says why
    can_edit = can_edit_objective(request.membership, objective) and not closed
    # The share form loads when opened (htmx), or with the whole page by its link.
    sharing = request.GET.get("section") == "share" and can_edit and not objective.is_retired
    if sharing and request.htmx:
        return _vary(render(request, "dependencies/_objective_network.html#share_form", {
            "objective": objective, "share_form": ShareForm(org=request.org,
                                                            objective=objective)}))
    # What every reader sees alike, once per change (okrs/sections.py); then the reader's part.
    ctx = sections.objective_sections(request.org, objective)
    network = network_selectors.for_reader(ctx.pop("network"), request.membership)
    history, alignment_rows = ctx.pop("cycle_history"), ctx.pop("alignment_rows")
    plan = can_plan_recovery(request.membership, objective) and not closed
    return _vary(render(request, "okrs/objective.html", {
        "objective": objective, "can_edit": can_edit, "cycle": objective.cycle,
        "open_cycle": selectors.open_cycle(request.org) if closed else None,
        # The add form is open while there is no key result; else it loads when opened.
        "kr_form": KeyResultForm(membership=request.membership)
        if can_edit and not objective.key_results.all() else None, "network": network,
        # Its three reasons, from what the page has loaded: no query of their own.
        "reasons": network_selectors.explain_objective(objective, ctx["children"],
                                                       network["depends_on"]),
        "share_form": ShareForm(org=request.org, objective=objective) if sharing else None,
        "can_unretire": objective.is_retired and not closed
        and can_unretire_objective(request.membership, objective),
        "can_plan_recovery": plan,
        "recovery_form": RecoveryActionForm(org=request.org)
        if plan and not objective.is_retired else None,
        "alignment": alignment_selectors.objective_alignment(
            request.org, objective, request.membership, rows=alignment_rows), **ctx,
        **views_closing.objective_closing(request, objective, history=history),
    }))


def _vary(response):
    """The objective page's address answers a fragment to htmx (``?section=share``)."""
    patch_vary_headers(response, ("HX-Request",))
    return response


@org_view
@require_http_methods(["GET", "POST"])
def objective_create(request):
    cycles, cycle = _cycle_context(request)
    teams = services.teams_for_objectives(request.membership)
    if cycle is None or not teams.exists():
        messages.info(request, "Ask an alignment lead to open a cycle and to make you a team lead.")
        return redirect("home", request.org.slug)
    if cycle.is_closed and request.method == "GET":
        return redirect(reverse("home", args=[request.org.slug]) + f"?cycle={cycle.pk}")
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
    if (closed := _closed(request, objective)) is not None:
        return closed
    initial = {"title": objective.title, "why": objective.why, "team": objective.team_id,
               "parent": objective.parent_id, "is_local": objective.is_local,
               "state": objective.state, "version": objective.version,
               "commitment": objective.commitment,
               "theme": objective.theme_id, "success": objective.success,
               "tradeoffs": objective.tradeoffs, "progress_mode": objective.progress_mode,
               "key_results_weight": objective.key_results_weight, "weight": objective.weight,
               "strategic_goal": objective.strategic_goal_id}
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
    if (closed := _closed(request, objective)) is not None:
        return closed
    if request.method == "POST" and not is_confirmed(request):
        return ask_first(request)
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
    if (closed := _closed(request, objective)) is not None:
        return closed
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
    if (closed := _closed(request, objective)) is not None:
        return closed
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
def key_result_align(request, key_result_pk):
    """Align a key result directly to another team's objective, or clear it."""
    key_result = access_key_result(request.membership, key_result_pk, write=True)
    objective = key_result.objective
    if (closed := _closed(request, objective)) is not None:
        return closed
    form = AlignKeyResultForm(find_data(request), org=request.org, key_result=key_result,
                              initial={"aligned_to": key_result.aligned_to_id})
    saved = submit(request, form, lambda data: services.align_key_result(
        membership=request.membership, key_result=key_result, objective=data["aligned_to"]))
    if saved is not None:
        messages.success(request, f"“{saved.title}” now counts in “{saved.aligned_to.title}”."
                         if saved.aligned_to_id else f"“{saved.title}” is no longer aligned "
                         "to another team's objective.")
        return _done(request, _objective_url(request, objective) + f"#kr-{saved.pk}")
    return render(request, "okrs/key_result_align.html", {
        "form": form, "objective": objective, "key_result": key_result})


@org_view
@require_http_methods(["GET", "POST"])
def check_in(request, key_result_pk):
    key_result = access_key_result(request.membership, key_result_pk, check_in=True)
    if (closed := _closed(request, key_result.objective)) is not None:
        return closed
    selectors.attach_contributors(request.org, [key_result])
    form = CheckInForm(request.POST or None, key_result=key_result, initial={
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


@org_view
@require_http_methods(["GET", "POST"])
def key_result_delete(request, key_result_pk):
    """Delete a key result added by mistake (a plain POST; GET leads back to its objective)."""
    key_result = access_key_result(request.membership, key_result_pk, write=True)
    url = _objective_url(request, key_result.objective)
    if not is_confirmed(request):
        if request.method == "POST":
            return ask_first(request)
        return confirm_page(
            request, question=f"Delete the key result “{key_result.title}”?",
            consequence="It has no check-ins, so nothing else is lost; this cannot be undone.",
            action=request.path, button="Delete key result", cancel=url)
    if request.method == "POST":
        try:
            services.delete_key_result(membership=request.membership, key_result=key_result)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, f"“{key_result.title}” is deleted.")
    return _done(request, url)


@org_view
@require_http_methods(["GET", "POST"])
def objective_unretire(request, objective_pk):
    """Bring a retired objective back (a plain POST; GET leads back to it)."""
    objective = access_objective(request.membership, objective_pk)
    if not can_unretire_objective(request.membership, objective):
        raise PermissionDenied("You can bring back objectives only of teams you lead.")
    if request.method == "POST":
        try:
            objective = services.unretire_objective(membership=request.membership,
                                                    objective=objective)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, f"“{objective.title}” is back, "
                             f"{objective.get_state_display().lower()}.")
    return _done(request, _objective_url(request, objective))


@org_view
@require_http_methods(["GET", "POST"])
def check_in_correct(request, check_in_pk):
    """Correct a mistaken check-in: the form shows its values; saving keeps the mistaken one in
    the history, marked corrected, and reports the corrected values for the same moment."""
    check_in = access_check_in(request.membership, check_in_pk)
    key_result = check_in.key_result
    form = CorrectionForm(request.POST or None, key_result=key_result, initial={
        "value": plain_number(check_in.value), "is_done": "yes" if check_in.is_done else "no",
        "confidence": check_in.confidence, "note": check_in.note})
    if check_in.corrected_at is None and submit(
            request, form, lambda data: services.correct_check_in(
                membership=request.membership, check_in=check_in, **data)):
        messages.success(request, "Check-in corrected. The history keeps the old one, "
                                  "marked corrected.")
        return _done(request, _objective_url(request, key_result.objective))
    return render(request, "okrs/check_in_correct.html", {
        "form": form, "check_in": check_in, "key_result": key_result,
        "delete_form": DeleteCheckInForm()})


@org_view
@require_http_methods(["GET", "POST"])
def check_in_delete(request, check_in_pk):
    """Delete a mistaken check-in (a plain POST; GET leads to the correction page)."""
    check_in = access_check_in(request.membership, check_in_pk)
    if request.method != "POST" and "reason" not in request.GET:
        return redirect("check_in_correct", request.org.slug, check_in.pk)
    if not is_confirmed(request):
        if request.method == "POST":
            return ask_first(request, fields=("reason",))
        return confirm_page(
            request, question="Delete this check-in?",
            consequence="The history keeps it, marked deleted with your name and reason, and "
                        "the key result goes back to the check-in before it.",
            action=request.path, button="Delete this check-in",
            fields={"reason": request.GET.get("reason", "")},
            cancel=reverse("check_in_correct", args=[request.org.slug, check_in.pk]))
    form = DeleteCheckInForm(request.POST)
    if submit(request, form, lambda data: services.delete_check_in(
            membership=request.membership, check_in=check_in, reason=data["reason"])):
        messages.success(request, "Check-in deleted. The history keeps it, marked deleted.")
        return _done(request, _objective_url(request, check_in.key_result.objective))
    for error in form.errors.values():
        messages.error(request, " ".join(error))
    return redirect("check_in_correct", request.org.slug, check_in.pk)
