from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods
from django_scopes import scopes_disabled

from . import pickers, ratelimit, services, signin
from .confirm import ask_first, confirm_page, is_confirmed
from .decorators import org_view
from .forms import (
    CycleForm,
    InviteForm,
    MemberForm,
    OutboxPasswordResetForm,
    SignupForm,
    TeamForm,
    apply_errors,
    submit,
)
from .models import Cycle, Invitation, Membership, Team
from .permissions import can_manage_members
from .pickers import find_data

User = get_user_model()
MEMBERS_PER_PAGE = 50


def _memberships(user):
    with scopes_disabled():
        return list(
            Membership.objects.filter(user=user).select_related("organization")
            .order_by("organization__name")
        )


@login_required
def root(request):
    memberships = _memberships(request.user)
    last = request.session.get("last_org")
    for m in memberships:
        if m.organization.slug == last:
            return redirect("home", m.organization.slug)
    if len(memberships) == 1:
        return redirect("home", memberships[0].organization.slug)
    return redirect("switch_org")


@login_required
def switch_org(request):
    return render(request, "orgs/switch.html", {"memberships": _memberships(request.user)})


def _invitation_unusable(request, reason, status=410):
    return render(request, "orgs/invitation_invalid.html", {"reason": reason}, status=status)


@require_http_methods(["GET", "POST"])
def accept_invitation(request, token):
    try:
        invitation = services.read_invitation(token)
    except services.InvitationError as e:
        return _invitation_unusable(request, str(e))
    if request.user.is_authenticated:
        return _join_as_member(request, invitation)
    return _sign_up(request, invitation)


def _join_as_member(request, invitation):
    if request.user.email != invitation.email:
        return _invitation_unusable(request, (
            f"This invitation is for {invitation.email}, but you are signed in as "
            f"{request.user.email}. Sign out and open the link again."), status=403)
    if request.method != "POST":
        return render(request, "orgs/accept_invitation.html", {"invitation": invitation})
    try:
        services.accept_invitation(invitation=invitation, user=request.user)
    except services.InvitationError as e:  # a second click, or another tab, was first
        return _invitation_unusable(request, str(e))
    messages.success(request, f"Welcome to {invitation.organization.name}.")
    return redirect("home", invitation.organization.slug)


def _sign_up(request, invitation):
    # A POST goes to the service, which decides under the invitation's lock: a sign-up that
    # lost the race to another one is told the invitation was used, not asked to sign in.
    if request.method == "GET" and User.objects.filter(email__iexact=invitation.email).exists():
        return _sign_in_to_accept(request)
    form = SignupForm(request.POST or None, email=invitation.email)
    if request.method == "POST" and form.is_valid():
        try:
            user, _ = services.sign_up_with_invitation(
                invitation=invitation, full_name=form.cleaned_data["full_name"],
                password=form.cleaned_data["password1"])
        except services.AccountExists:
            return _sign_in_to_accept(request)
        except services.InvitationError as e:
            return _invitation_unusable(request, str(e))
        except ValidationError as e:
            apply_errors(form, e)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to {invitation.organization.name}.")
            return redirect("home", invitation.organization.slug)
    return render(request, "orgs/accept_invitation.html", {"invitation": invitation,
                                                            "form": form})


def _sign_in_to_accept(request):
    messages.info(request, "You already have an account: sign in to accept the invitation.")
    return redirect_to_login(request.get_full_path())


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset page, with a cap on emails per address and per client address. Over the
    cap the page answers exactly the same ("check your email"); only the email is not sent.
    The email itself goes through the outbox (OutboxPasswordResetForm)."""

    form_class = OutboxPasswordResetForm

    def form_valid(self, form):
        if ratelimit.password_reset_allowed(self.request, form.cleaned_data["email"]):
            return super().form_valid(form)
        return HttpResponseRedirect(self.get_success_url())


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Choosing a new password through the emailed link proves the person holds the address:
    it also ends a sign-in pause on that account (not one on their network address)."""

    def form_valid(self, form):
        response = super().form_valid(form)
        signin.clear_account_failures(form.user.email)
        return response


# The admin console -----------------------------------------------------------------------------


def _get(request, model, pk):
    """A row of this organization, or 404 whether it is missing or someone else's."""
    row = model.objects.for_org(request.org).filter(pk=pk).first()
    if row is None:
        raise Http404(f"No such {model._meta.verbose_name}.")
    return row


@org_view(console=True)
def console_home(request):
    return redirect("console_members", request.org.slug)


@org_view(console=True)
@require_http_methods(["GET", "POST"])
def console_members(request):
    if request.method == "POST" and not can_manage_members(request.membership):
        raise PermissionDenied("Only org admins can invite people.")
    form = InviteForm(find_data(request), org=request.org)
    invitation = submit(request, form, lambda data: services.invite_member(
        actor=request.membership, **data))
    if invitation:
        messages.success(request, f"Invitation sent to {invitation.email}.")
        return redirect("console_members", request.org.slug)
    members = (
        Membership.objects.for_org(request.org).select_related("user")
        .prefetch_related("teams").order_by("user__full_name", "user__email")
    )
    invitations = Invitation.objects.for_org(request.org).filter(
        accepted_at=None, revoked_at=None).select_related("invited_by", "team")
    page = Paginator(members, MEMBERS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "orgs/console/members.html", {
        "form": form, "members": page, "invitations": invitations,
        "can_manage": can_manage_members(request.membership), "section": "members"})


@org_view(console=True)
@require_http_methods(["GET", "POST"])
def console_member_edit(request, membership_pk):
    member = _get(request, Membership, membership_pk)
    form = MemberForm(pickers.find_data(request), org=request.org, initial={
        "role": member.role, "teams": list(member.teams.values_list("pk", flat=True))})
    if submit(request, form, lambda data: services.change_member(
            actor=request.membership, membership=member, role=data["role"],
            teams=list(data["teams"]))):
        messages.success(request, f"{member.user.display_name} updated.")
        return redirect("console_members", request.org.slug)
    return render(request, "orgs/console/member_form.html", {
        "form": form, "member": member, "section": "members"})


@org_view(console=True)
@require_http_methods(["GET", "POST"])
def console_member_remove(request, membership_pk):
    member = _get(request, Membership, membership_pk)
    error = None
    if request.method == "POST" and not is_confirmed(request):
        return ask_first(request)
    if request.method == "POST":
        try:
            services.remove_member(actor=request.membership, membership=member)
        except ValidationError as e:
            error = e.messages[0]
        else:
            messages.success(request, f"{member.user.display_name} was removed.")
            return redirect("console_members", request.org.slug)
    return render(request, "orgs/console/member_remove.html", {
        "member": member, "error": error, "section": "members"})


@org_view(console=True)
def console_invitation_revoke(request, invitation_pk):
    invitation = _get(request, Invitation, invitation_pk)
    if not can_manage_members(request.membership):
        raise PermissionDenied("Only org admins can withdraw invitations.")
    if request.method == "GET":
        members = reverse("console_members", args=[request.org.slug])
        return confirm_page(
            request, question=f"Withdraw the invitation to {invitation.email}?",
            consequence="The link in the email stops working. You can invite them again.",
            action=request.path, button="Withdraw", cancel=members,
            template="orgs/console/confirm.html", extra={"section": "members"})
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not is_confirmed(request):
        return ask_first(request)
    services.revoke_invitation(actor=request.membership, invitation=invitation)
    messages.success(request, f"The invitation to {invitation.email} is withdrawn.")
    return redirect("console_members", request.org.slug)


CONSOLE_UNITS = 30


@org_view(console=True)
def console_teams(request):
    """The org tree one level at a time: the units right below the open one (the top of the
    tree unless ``?unit=`` names one of this organization's units), a page at a time, with a
    breadcrumb; or, with ``?q=``, the units whose name matches, a page at a time. Over htmx,
    only the level is sent."""
    units = Team.objects.for_org(request.org)
    query = request.GET.get("q", "").strip()[:120]
    unit = request.GET.get("unit", "")
    opened = units.filter(pk=int(unit)).first() if unit.isdigit() and not query else None
    if unit.isdigit() and not query and opened is None:
        raise Http404("No such unit.")
    roots = list(units.filter(parent=None).order_by("tree_id")[:2])
    single = len(roots) == 1  # one company: its level is the top of the tree
    if opened is None and single and not query:
        opened = roots[0]
    if query:
        listed = units.filter(name__icontains=query).select_related("lead", "parent")
    else:
        listed = units.filter(parent=opened).select_related("lead")
    page = Paginator(listed.order_by("tree_id", "lft"), CONSOLE_UNITS).get_page(
        request.GET.get("page"))
    trail = list(opened.get_ancestors(include_self=True)) if opened is not None else []
    context = {"page": page, "opened": opened, "query": query, "section": "teams",
               "trail": trail[1:] if single else trail, "top": roots[0] if single else None}
    if request.htmx:
        response = render(request, "orgs/console/_teams_level.html", context)
    else:
        response = render(request, "orgs/console/teams.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@org_view(console=True)
@require_http_methods(["GET", "POST"])
def console_team_form(request, team_pk=None):
    team = _get(request, Team, team_pk) if team_pk is not None else None
    initial = {"parent": request.GET.get("parent")}
    if team is not None:
        initial = {"name": team.name, "kind": team.kind, "team_type": team.team_type,
                   "parent": team.parent_id, "lead": team.lead_id, "charter": team.charter,
                   "checkin_cadence": team.checkin_cadence}
    form = TeamForm(find_data(request), org=request.org, initial=initial)
    saved = submit(request, form, lambda data: services.save_team(
        actor=request.membership, team=team, **data))
    if saved:
        messages.success(request, f"{saved.name} saved.")
        return redirect("console_teams", request.org.slug)
    return render(request, "orgs/console/team_form.html", {
        "form": form, "team": team, "section": "teams"})


@org_view(console=True)
def console_cycles(request):
    cycles = Cycle.objects.for_org(request.org).order_by("-start_date")
    return render(request, "orgs/console/cycles.html", {"cycles": cycles, "section": "cycles"})


@org_view(console=True)
@require_http_methods(["GET", "POST"])
def console_cycle_form(request, cycle_pk=None):
    cycle = _get(request, Cycle, cycle_pk) if cycle_pk is not None else None
    initial = {}
    if cycle is not None:
        initial = {"name": cycle.name, "start_date": cycle.start_date,
                   "end_date": cycle.end_date, "status": cycle.status}
    form = CycleForm(request.POST or None, initial=initial)
    saved = submit(request, form, lambda data: services.save_cycle(
        actor=request.membership, cycle=cycle, **data))
    if saved:
        messages.success(request, f"{saved.name} saved.")
        return redirect("console_cycles", request.org.slug)
    return render(request, "orgs/console/cycle_form.html", {
        "form": form, "cycle": cycle, "section": "cycles"})
