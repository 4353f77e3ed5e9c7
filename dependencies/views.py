import hashlib

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from okrs import selectors as okr_selectors
from orgs.confirm import ask_first, confirm_page, is_confirmed
from orgs.decorators import org_view, post_only
from orgs.forms import submit
from orgs.models import Team
from orgs.permissions import (
    can_edit_objective,
    can_open_console,
    can_plan_recovery,
    can_request_dependency,
)
from orgs.pickers import find_data

from . import ladder, selectors, services
from .access import (
    access_contribution,
    access_dependency,
    access_node,
    access_recovery_action,
    access_share,
    notifications_of,
)
from .forms import (
    AnswerForm,
    ContributionAnswerForm,
    DependencyForm,
    LinkForm,
    RecoveryActionForm,
    ShareForm,
)
from .models import Contribution, Dependency
from .propagation import RULES
from .selectors import at_risk_from_upstream


def _errors(form):
    return " ".join(e for errs in form.errors.values() for e in errs)


def _objective_url(request, objective_id, anchor=""):
    return reverse("objective", args=[request.org.slug, objective_id]) + anchor


def _network_filters(request, my_teams):
    """The network page's GET filters, each checked: a team of this organization, a known
    state, two yes/no boxes. Anything else is ignored."""
    get = request.GET
    team = None
    if get.get("team", "").isdigit():
        team = Team.objects.for_org(request.org).filter(pk=int(get["team"])).first()
    mine = bool(my_teams) and team is None and get.get("show") != "all"
    status = get.get("state") if get.get("state") in Dependency.Status.values else ""
    return {"team": team, "mine": mine, "state": status,
            "escalated": get.get("escalated") == "1", "at_risk": get.get("at_risk") == "1"}


@org_view
def network_overview(request):
    """What is at risk because of something upstream, and the dependencies of the cycle: a
    page of each, filtered by team, state, escalated and at risk."""
    cycles = okr_selectors.cycles_for(request.org)
    cycle = okr_selectors.pick_cycle(cycles, request.GET.get("cycle"))
    my_teams = okr_selectors.my_team_ids(request.membership)
    # People with teams see theirs first; the alignment lead, with none, sees everything.
    f = _network_filters(request, my_teams)
    team_ids = [f["team"].pk] if f["team"] else my_teams if f["mine"] else None
    ctx = {"cycles": cycles, "cycle": cycle, "nav": "network", "rules": RULES,
           "my_teams": my_teams, "f": f, "mine": f["mine"],
           "statuses": Dependency.Status.choices,
           "team_choices": selectors.filter_teams(request.org, request.membership, f["team"])}
    if cycle is not None:
        console = can_open_console(request.membership)
        ctx["lists"] = _lists(request, ctx, team_ids, console)
        if console:
            ctx["blockers"], ctx["blocker_count"] = ladder.escalated_blockers(request.org)
            ctx["skipped"] = selectors.skipped_rows(request.org, cycle)
    return render(request, "dependencies/network.html", ctx)


# How long the network page's lists may outlive a write whose version bump was lost (the cache
# failed then, or another process keeps its own in-process cache).
LISTS_TTL = 300


def _lists(request, ctx, team_ids, console):
    """The HTML of the network page's three lists (escalations, at risk because of something
    else, the page of dependencies), each the same for everyone who asks with the same filters
    and teams: rendered once per change of what they show, cached under the organization's
    "network" version (``orgs/versions.py``: dependencies, objectives, key results, teams,
    cycles, and every health change), the day (escalation counts in days) and the query."""
    from django.template.loader import render_to_string

    from orgs import versions

    org, cycle, f = request.org, ctx["cycle"], ctx["f"]

    def compute():
        data = dict(ctx, at_risk=at_risk_from_upstream(
            org, cycle, team_ids=team_ids, page=request.GET.get("risk_page")),
            dependencies=selectors.dependency_page(
                org, cycle, team_ids=team_ids, status=f["state"], escalated=f["escalated"],
                at_risk=f["at_risk"], page=request.GET.get("page")))
        if console:
            data["escalations"], data["escalation_count"] = selectors.escalations(org)
        return {name: render_to_string(f"dependencies/network.html#{name}", data,
                                       request=request) if name != "escalations" or console
                else "" for name in ("escalations", "at_risk", "dependencies")}

    query = hashlib.sha1(repr((sorted(request.GET.lists()), team_ids, f["mine"])).encode())
    key = (f"network:{org.pk}:{cycle.pk}:{timezone.localdate()}:{org.escalate_after_days}:"
           f"{int(console)}:{query.hexdigest()[:16]}")
    return versions.read_through(org.pk, "network", key, compute, LISTS_TTL)


@org_view
def dependency_create(request, kind, pk):
    """Record that an objective ("o") or key result ("k") depends on another team's work."""
    downstream = access_node(request.membership, kind, pk)
    objective = downstream if kind == "o" else downstream.objective
    team_id = objective.team_id if kind == "o" else downstream.owner_team_id
    if not can_request_dependency(request.membership, team_id):
        raise PermissionDenied("Only the leads of the team that depends can record this.")
    own_team = objective.team if kind == "o" else downstream.owner_team
    # A kind chosen (``?kind=``, or the radios through htmx) asks for the plan B in its words;
    # what was typed comes back with it.
    initial = {k: request.GET[k] for k in ("kind", "upstream", "need", "needed_by", "fallback")
               if request.GET.get(k)}
    form = DependencyForm(find_data(request), org=request.org, cycle=objective.cycle,
                          own_team=own_team, initial=initial, url=request.path)

    def save(data):
        up_kind, _, up_pk = data["upstream"].partition(":")
        try:
            upstream = access_node(request.membership, up_kind, int(up_pk))
        except (Http404, ValueError):
            raise ValidationError({"upstream": "Choose an objective or key result."}) from None
        return services.request_dependency(
            membership=request.membership, downstream=downstream, upstream=upstream,
            need=data["need"], needed_by=data["needed_by"], fallback=data["fallback"],
            kind=data["kind"])

    dependency = submit(request, form, save)
    if dependency is not None:
        messages.success(request, f"Request sent to {dependency.providing_team.name}.")
        return redirect("dependency", request.org.slug, dependency.pk)
    return render(request, "dependencies/dependency_form.html", {
        "form": form, "downstream": downstream, "objective": objective, "kind": kind})


@org_view
def dependency_detail(request, dependency_pk):
    dependency = access_dependency(request.membership, dependency_pk)
    selectors.annotate([dependency], request.membership)
    cycle = dependency.cycle
    if cycle.is_closed:  # read-only: no answer offered, the banner says why
        dependency.answers = []
    return render(request, "dependencies/dependency.html", {
        "dependency": dependency, "events": list(dependency.events.select_related("actor")),
        "form": AnswerForm(), "cycle": cycle,
        "ladder": ladder.steps_of(request.org, dependency=dependency),
        "open_cycle": okr_selectors.open_cycle(request.org) if cycle.is_closed else None})


# Answers that end or break a dependency ask first: (question, what happens, button).
ASK_FIRST = {
    "declined": ("Decline this request?", "The requesting team is told, with your reason, and "
                 "plans without it.", "Decline"),
    "withdrawn": ("Withdraw this request?", "The providing team is told, and the request is "
                  "closed.", "Withdraw the request"),
    "broken": ("Mark this dependency broken?", "Both teams are told, with your reason. A broken "
               "dependency stays in the network as a risk to the work that needs it.",
               "Mark broken"),
}


def _confirm_answer(request, dependency):
    status = request.GET["status"]
    selectors.annotate([dependency], request.membership)
    if status not in dependency.answers:
        raise PermissionDenied("Your role does not allow this answer on this dependency.")
    question, consequence, button = ASK_FIRST[status]
    note = request.GET.get("note", "")[:1000]
    if note:
        consequence += f" Your note: “{note}”"
    return confirm_page(
        request, question=question, consequence=consequence, action=request.path,
        button=button, fields={"status": status, "note": note},
        cancel=reverse("dependency", args=[request.org.slug, dependency.pk]))


@org_view
def dependency_answer(request, dependency_pk):
    dependency = access_dependency(request.membership, dependency_pk)
    if request.method == "GET" and request.GET.get("status") in ASK_FIRST:
        return _confirm_answer(request, dependency)
    if (refused := post_only(request)) is not None:
        return refused
    form = AnswerForm(request.POST)
    if form.is_valid() and form.cleaned_data["status"] in ASK_FIRST and not (
            form.cleaned_data["status"] in services.NEEDS_REASON
            and not form.cleaned_data["note"].strip()) and not is_confirmed(request):
        return ask_first(request, fields=("status", "note"))
    result = submit(request, form, lambda data: services.answer_dependency(
        membership=request.membership, dependency=dependency, status=data["status"],
        note=data["note"]))
    if result is not None:
        messages.success(request, f"Marked {result.get_status_display().lower()}.")
        return redirect("dependency", request.org.slug, dependency.pk)
    selectors.annotate([dependency], request.membership)
    return render(request, "dependencies/dependency.html", {
        "dependency": dependency, "events": list(dependency.events.select_related("actor")),
        "form": form, "failed_status": request.POST.get("status")}, status=400)


@org_view
def why_at_risk(request, kind, pk):
    node = access_node(request.membership, kind, pk)
    node, sections = selectors.why(request.org, kind, node)
    objective = node if kind == "o" else node.objective
    return render(request, "dependencies/why.html", {
        "node": node, "kind": kind, "objective": objective, "sections": sections,
        "team": node.team.name if kind == "o" else node.owner_team.name, "rules": RULES})


@org_view
def share_add(request, objective_pk):
    objective = access_node(request.membership, "o", objective_pk)
    if (refused := post_only(request)) is not None:
        return refused
    if not can_edit_objective(request.membership, objective):
        raise PermissionDenied("You can share objectives only of teams you lead.")
    form = ShareForm(request.POST, org=request.org, objective=objective)
    share = submit(request, form, lambda data: services.share_objective(
        membership=request.membership, objective=objective, team=data["team"],
        kind=data["kind"]))
    if share is not None:
        messages.success(request, f"Shared with {share.team.name}.")
    else:
        messages.error(request, f"Not shared: {_errors(form)}")
    return redirect(_objective_url(request, objective.pk, "#network"))


@org_view
def share_remove(request, share_pk):
    share = access_share(request.membership, share_pk)
    if not can_edit_objective(request.membership, share.objective):
        raise PermissionDenied("You can change sharing only of objectives of teams you lead.")
    back = _objective_url(request, share.objective_id, "#network")
    if request.method == "GET":
        return confirm_page(
            request, question=f"Stop sharing “{share.objective.title}” with {share.team.name}?",
            consequence=f"{share.team.name} is no longer linked to this objective and loses "
                        "any co-ownership of it. Key results it owns here stay as they are.",
            action=request.path, button="Stop sharing", cancel=back)
    if (refused := post_only(request)) is not None:
        return refused
    if not is_confirmed(request):
        return ask_first(request)
    try:
        services.unshare_objective(membership=request.membership, share=share)
    except ValidationError as e:
        messages.error(request, " ".join(e.messages))
    else:
        messages.success(request, f"No longer shared with {share.team.name}.")
    return redirect(back)


@org_view
def key_result_link(request, key_result_pk):
    """Ask that a key result feed another team's: a request its owners answer. While one is
    open, the page shows it (and how to stop it) instead of the form."""
    key_result = access_node(request.membership, "k", key_result_pk)
    if not can_edit_objective(request.membership, key_result.objective):
        raise PermissionDenied("You can link key results only of teams you lead.")
    current = (Contribution.objects.for_org(request.org).open().filter(key_result=key_result)
               .select_related("shared__objective", "shared__owner_team").first())
    form = LinkForm(find_data(request), org=request.org, key_result=key_result)

    def save(data):
        if not data["feeds"]:
            raise ValidationError({"feeds": "Choose the shared key result it contributes to."})
        feeds = access_node(request.membership, "k", data["feeds"].pk)
        return services.request_contribution(
            membership=request.membership, key_result=key_result, shared=feeds,
            rollup=data["rollup"])

    contribution = None if current else submit(request, form, save)
    if contribution is not None:
        if contribution.status == Contribution.Status.ACCEPTED:
            messages.success(request, "Contribution saved. Health is being recomputed.")
        else:
            messages.success(request, f"Asked {contribution.shared.owner_team.name} to accept. "
                             "Nothing changes until they do.")
        return redirect(_objective_url(request, key_result.objective_id, f"#kr-{key_result.pk}"))
    last = None if current else (
        Contribution.objects.for_org(request.org).filter(key_result=key_result)
        .select_related("shared", "responded_by").first())
    return render(request, "dependencies/key_result_link.html", {
        "form": form, "key_result": key_result, "current": current, "last": last})


@org_view
def contribution_answer(request, contribution_pk):
    contribution = access_contribution(request.membership, contribution_pk)
    if (refused := post_only(request)) is not None:
        return refused
    form = ContributionAnswerForm(request.POST)
    result = submit(request, form, lambda data: services.answer_contribution(
        membership=request.membership, contribution=contribution,
        accept=data["answer"] == "accept", note=data["note"]))
    if result is not None:
        messages.success(request, f"{result.get_status_display()}: “{result.key_result.title}”"
                         f" {'now feeds' if result.status == 'accepted' else 'does not feed'}"
                         f" “{result.shared.title}”.")
    else:
        messages.error(request, f"Not answered: {_errors(form)}")
    return redirect(_objective_url(request, contribution.shared.objective_id,
                                   f"#kr-{contribution.shared_id}"))


@org_view
def contribution_stop(request, contribution_pk):
    contribution = access_contribution(request.membership, contribution_pk)
    if not is_confirmed(request):
        if request.method == "POST":
            return ask_first(request, fields=("back",))
        if request.method != "GET":
            return post_only(request)
        accepted = contribution.status == Contribution.Status.ACCEPTED
        back = request.GET.get("back") == "shared"
        return confirm_page(
            request,
            question=(f"Stop “{contribution.key_result.title}” feeding "
                      f"“{contribution.shared.title}”?" if accepted else
                      f"Withdraw the request to feed “{contribution.shared.title}”?"),
            consequence=("The shared key result goes back to its own check-ins, or to the "
                         "contributors it has left." if accepted else
                         "Its owners are no longer asked; nothing else changes."),
            action=request.path, button="Stop contributing" if accepted else "Withdraw",
            fields={"back": "shared"} if back else {},
            cancel=_objective_url(request, contribution.shared.objective_id if back
                                  else contribution.key_result.objective_id, "#network"))
    try:
        services.stop_contribution(membership=request.membership, contribution=contribution)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"“{contribution.key_result.title}” no longer feeds "
                         f"“{contribution.shared.title}”.")
    back = request.POST.get("back") == "shared"
    objective_id = (contribution.shared.objective_id if back
                    else contribution.key_result.objective_id)
    return redirect(_objective_url(request, objective_id, "#network"))


@org_view
def recovery_add(request, objective_pk):
    objective = access_node(request.membership, "o", objective_pk)
    if (refused := post_only(request)) is not None:
        return refused
    if not can_plan_recovery(request.membership, objective):
        raise PermissionDenied("Recovery plans are for alignment leads.")
    form = RecoveryActionForm(request.POST, org=request.org)
    action = submit(request, form, lambda data: services.add_recovery_action(
        membership=request.membership, objective=objective, title=data["title"],
        owner=data["owner"], due_date=data["due_date"]))
    if action is not None:
        messages.success(request, "Recovery action added.")
    else:
        messages.error(request, f"Not added: {_errors(form)}")
    return redirect(_objective_url(request, objective.pk, "#recovery"))


@org_view
def recovery_done(request, action_pk):
    action = access_recovery_action(request.membership, action_pk)
    if (refused := post_only(request)) is not None:
        return refused
    services.set_recovery_action_done(membership=request.membership, action=action,
                                      done=request.POST.get("done") == "1")
    return redirect(_objective_url(request, action.objective_id, "#recovery"))


@org_view
def notifications(request):
    rows = notifications_of(request.membership).select_related("objective__team")
    page = Paginator(rows, 30).get_page(request.GET.get("page"))
    return render(request, "dependencies/notifications.html", {"page": page, "nav": "alerts"})


@org_view
def notifications_read(request):
    if (refused := post_only(request)) is not None:
        return refused
    notifications_of(request.membership).unread().update(read_at=timezone.now())
    return redirect("notifications", request.org.slug)
