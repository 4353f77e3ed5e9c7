"""A unit's own page, kept by its leads: ``/teams/<id>/edit/`` (charter, scorecard, members and
roles, units below), and the team page's KPI actions (a value by hand, a recovery objective)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from okrs import scorecards
from okrs.access import access_team
from okrs.models import KPI, Objective

from . import permissions, units
from .confirm import ask_first, confirm_page, is_confirmed
from .decorators import org_view, post_only
from .forms import submit
from .forms_units import (
    AddMemberForm,
    CharterForm,
    KPIForm,
    KPIValueForm,
    MemberRoleForm,
    SubUnitForm,
)
from .models import Membership
from .pickers import find_data

MEMBERS_PER_PAGE = 25


def _unit(request, team_pk):
    team = access_team(request.membership, team_pk)
    if not permissions.can_keep_unit(request.membership, team.pk):
        raise PermissionDenied("Only the leads of this unit, and of the units above it, edit it.")
    return team


def _kpi(request, kpi_pk, team=None):
    kpi = KPI.objects.for_org(request.org).select_related("team", "organization").filter(
        pk=kpi_pk).first()
    if kpi is None or (team is not None and kpi.team_id != team.pk):
        raise Http404("No such KPI.")
    return kpi


def _edit_url(request, team):
    return reverse("unit_edit", args=[request.org.slug, team.pk])


def _members(request, team):
    """A page of the unit's members, each with ``.manageable``: whether this person may change
    their role. Teams preloaded: no query per row."""
    rows = (team.memberships.select_related("user").prefetch_related("teams")
            .order_by("user__full_name", "user__email", "pk"))
    page = Paginator(rows, MEMBERS_PER_PAGE).get_page(request.GET.get("page"))
    keeps = units.unit_ids(request.membership) or ()  # managers: may manage anyone anyway
    for m in page.object_list:
        m._member_team_ids = frozenset(t.pk for t in m.teams.all())
        m.manageable = (m.user_id != request.user.pk and permissions.can_manage_unit_member(
            request.membership, m, keeps))
        m.role_form = MemberRoleForm(initial={"role": m.role}, membership=request.membership,
                                     prefix=f"m{m.pk}")
    return page


@org_view
@require_http_methods(["GET", "POST"])
def unit_edit(request, team_pk):
    team = _unit(request, team_pk)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    data = find_data(request)
    charter_form = CharterForm(data if action == "charter" else None,
                               initial={"charter": team.charter})
    kpi_form = KPIForm(data if action == "kpi" else None, prefix="kpi")
    add_form = AddMemberForm(data if action in ("member", "") and data is not None else None,
                             membership=request.membership)
    if action == "charter" and submit(request, charter_form, lambda d: units.save_charter(
            membership=request.membership, team=team, charter=d["charter"])):
        messages.success(request, f"{team.name}'s charter saved.")
        return redirect(_edit_url(request, team))
    if action == "kpi" and submit(request, kpi_form, lambda d: scorecards.save_kpi(
            membership=request.membership, team=team, **d)):
        messages.success(request, "KPI added to the scorecard.")
        return redirect(_edit_url(request, team) + "#scorecard")
    if action == "member" and not add_form.is_finding:
        added = submit(request, add_form, lambda d: _add_member(request, team, d))
        if added:
            messages.success(request, f"{added.user.display_name} is on {team.name}.")
            return redirect(_edit_url(request, team) + "#members")
    if action == "role":
        return _change_role(request, team)
    return render(request, "orgs/unit_edit.html", {
        "team": team, "charter_form": charter_form, "kpi_form": kpi_form, "add_form": add_form,
        "kpis": scorecards.scorecard(request.org, team),
        "max_kpis": KPI.MAX_PER_TEAM, "members": _members(request, team),
        "sub_teams": list(team.get_children().select_related("lead")[:50]),
        "can_restructure": permissions.can_restructure_unit(request.membership, team),
        "is_manager": request.membership.role in permissions.MANAGERS,
    })


def _member_of_org(request, user):
    member = Membership.objects.for_org(request.org).select_related("user").filter(
        user=user).first()
    if member is None:
        raise Http404("No such member.")
    return member


def _add_member(request, team, data):
    member = _member_of_org(request, data["person"])
    return units.add_unit_member(membership=request.membership, team=team, member=member,
                                 role=data["role"] or None)


def _change_role(request, team):
    member = team.memberships.select_related("user").filter(
        pk=request.POST.get("member", "0") if request.POST.get("member", "").isdigit()
        else 0).first()
    if member is None:
        raise Http404("No such member of this unit.")
    form = MemberRoleForm(request.POST, membership=request.membership, prefix=f"m{member.pk}")
    if form.is_valid():
        units.set_unit_member_role(membership=request.membership, member=member,
                                   role=form.cleaned_data["role"])
        messages.success(request, f"{member.user.display_name} is now "
                                  f"{member.get_role_display().lower()}.")
    else:
        messages.error(request, "Choose one of the roles offered.")
    return redirect(_edit_url(request, team) + "#members")


@org_view
def unit_member_remove(request, team_pk, membership_pk):
    team = _unit(request, team_pk)
    member = team.memberships.select_related("user").filter(pk=membership_pk).first()
    if member is None:
        raise Http404("No such member of this unit.")
    if request.method == "GET":
        return confirm_page(
            request, question=f"Take {member.user.display_name} off {team.name}?",
            consequence="They stay in the organization and keep their role; only this team "
                        "no longer lists them.",
            action=request.path, button="Take off the team", cancel=_edit_url(request, team))
    if (refused := post_only(request)) is not None:
        return refused
    if not is_confirmed(request):
        return ask_first(request)
    units.remove_unit_member(membership=request.membership, team=team, member=member)
    messages.success(request, f"{member.user.display_name} is off {team.name}.")
    return redirect(_edit_url(request, team) + "#members")


@org_view
@require_http_methods(["GET", "POST"])
def unit_kpi_edit(request, team_pk, kpi_pk):
    team = _unit(request, team_pk)
    kpi = _kpi(request, kpi_pk, team)
    form = KPIForm(request.POST or None, initial={
        "name": kpi.name, "unit": kpi.unit, "direction": kpi.direction,
        "healthy_at": kpi.healthy_at, "warning_at": kpi.warning_at})
    if submit(request, form, lambda d: scorecards.save_kpi(
            membership=request.membership, team=team, kpi=kpi, **d)):
        messages.success(request, f"{form.cleaned_data['name']} saved.")
        return redirect(_edit_url(request, team) + "#scorecard")
    return render(request, "orgs/unit_kpi_form.html", {"team": team, "kpi": kpi, "form": form})


@org_view
def unit_kpi_remove(request, team_pk, kpi_pk):
    team = _unit(request, team_pk)
    kpi = _kpi(request, kpi_pk, team)
    if request.method == "GET":
        return confirm_page(
            request, question=f"Remove {kpi.name} from {team.name}'s scorecard?",
            consequence="Its values go with it. A recovery objective drafted for it stays.",
            action=request.path, button="Remove the KPI", cancel=_edit_url(request, team))
    if (refused := post_only(request)) is not None:
        return refused
    if not is_confirmed(request):
        return ask_first(request)
    scorecards.remove_kpi(membership=request.membership, kpi=kpi)
    messages.success(request, f"{kpi.name} is off the scorecard.")
    return redirect(_edit_url(request, team) + "#scorecard")


@org_view
@require_http_methods(["GET", "POST"])
def unit_structure(request, team_pk):
    """Rename, move or re-lead a unit strictly below one the person leads."""
    team = _unit(request, team_pk)
    if not permissions.can_restructure_unit(request.membership, team):
        raise PermissionDenied("Its place, name and lead are kept by the unit above.")
    return _sub_unit_form(request, team=team, parent=team.parent, initial={
        "name": team.name, "team_type": team.team_type, "parent": team.parent_id,
        "lead": team.lead_id})


@org_view
@require_http_methods(["GET", "POST"])
def unit_new(request, team_pk):
    """Add a team below one of the person's units."""
    parent = _unit(request, team_pk)
    return _sub_unit_form(request, team=None, parent=parent, initial={"parent": parent.pk})


def _sub_unit_form(request, *, team, parent, initial):
    form = SubUnitForm(find_data(request), membership=request.membership,
                       unit_ids=units.unit_ids(request.membership), initial=initial)
    saved = submit(request, form, lambda d: units.save_sub_unit(
        membership=request.membership, team=team, **d))
    if saved:
        messages.success(request, f"{saved.name} saved.")
        return redirect(_edit_url(request, saved))
    return render(request, "orgs/unit_form.html", {"form": form, "team": team, "parent": parent})


# The team page's KPI actions ------------------------------------------------------------------


@org_view
def kpi_value(request, kpi_pk):
    kpi = _kpi(request, kpi_pk)
    if (refused := post_only(request)) is not None:
        return refused
    if not permissions.can_record_kpi_value(request.membership, kpi.team_id):
        raise PermissionDenied("Only the team's members and leads record its KPI values.")
    form = KPIValueForm(request.POST)
    url = reverse("team", args=[request.org.slug, kpi.team_id]) + "#scorecard"
    if submit(request, form, lambda d: scorecards.record_kpi_value(
            membership=request.membership, kpi=kpi, value=d["value"])):
        kpi.refresh_from_db()
        text = f"{kpi.name}: {form.cleaned_data['value'].normalize():f} recorded."
        if kpi.health in (KPI.Health.WARNING, KPI.Health.UNHEALTHY):
            text += f" It is {kpi.get_health_display().lower()}: draft a recovery objective."
        messages.success(request, text)
    else:
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
    return redirect(url)


@org_view
@require_http_methods(["GET", "POST"])
def kpi_recovery(request, kpi_pk):
    """The offered recovery objective: prefilled, with the suggested parent; one click drafts
    it in the current cycle."""
    kpi = _kpi(request, kpi_pk)
    if not permissions.can_keep_unit(request.membership, kpi.team_id):
        raise PermissionDenied("Only the leads of a unit draft its recovery objectives.")
    cycle = scorecards.current_cycle(request.org)
    existing = scorecards.open_recovery(kpi, cycle)
    if existing is not None:
        return redirect("objective", request.org.slug, existing.pk)
    draft = scorecards.recovery_draft(kpi)
    parent, reason = scorecards.suggest_parent_for_recovery(kpi, cycle) if cycle else (None, "")
    if request.method == "POST":
        use_parent = parent if request.POST.get("align") == "yes" else None
        title = request.POST.get("title", "").strip() or draft["title"]
        try:
            objective = scorecards.draft_recovery_objective(
                membership=request.membership, kpi=kpi, title=title,
                why=request.POST.get("why", draft["why"]), parent=use_parent)
        except scorecards.ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, "Recovery objective drafted. Give it two to four key "
                                      "results.")
            return redirect("objective", request.org.slug, objective.pk)
        draft = {"title": title, "why": request.POST.get("why", draft["why"])}
    return render(request, "orgs/kpi_recovery.html", {
        "kpi": kpi, "cycle": cycle, "draft": draft, "parent": parent, "reason": reason,
        "ready": kpi.health in (KPI.Health.WARNING, KPI.Health.UNHEALTHY)
        and cycle is not None and not cycle.is_closed,
        "objective_model": Objective})
