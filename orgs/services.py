"""Write use cases for organizations, members, teams and cycles."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email, validate_slug
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

import history

from . import permissions
from .db import lock_organization_id
from .models import Cycle, Invitation, Membership, Organization, Role, Team
from .validation import Fields, control_characters

INVITE_SALT = "orgs.invitation"
User = get_user_model()


def lock_organization(org):
    """Serialize writes to one organization's trees and network (mptt is not safe under
    concurrent writes). Call it first inside transaction.atomic(), before locking or changing
    any row: the lock order is in orgs/db.py and docs/architecture.md. An advisory lock, not a
    row lock, so inserts that point at the organization never wait for it; a no-op on SQLite,
    which serializes writers anyway."""
    lock_organization_id(org.pk)
    return org


@transaction.atomic
def create_organization(*, name, slug, admin_email, admin_password=None, admin_name=""):
    v = Fields(Organization)
    name = v.line("name", name)
    slug = _slug(v, "slug", slug)
    admin_email = _email(v, "admin_email", admin_email, model=User, field="email")
    people = Fields(User)
    admin_name = people.line("full_name", admin_name, required=False)
    v.errors.update({"admin_name": people.errors["full_name"]} if people.errors else {})
    v.done()
    if Organization.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"The address {slug!r} is taken."})
    org = Organization.objects.create(name=name, slug=slug)
    email = admin_email.strip().lower()
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email, admin_password, full_name=admin_name)
    with scope(organization=org):
        Team.objects.create(organization=org, name=name, kind=Team.Kind.COMPANY, lead=user)
        Membership.objects.create(organization=org, user=user, role=Role.ADMIN)
        # Strategy starts with a balanced scorecard's four perspectives (okrs owns them).
        from okrs.strategy import create_default_perspectives

        create_default_perspectives(org)
    return org, user


def _slug(v, name, value):
    value = v.line(name, value)
    try:
        validate_slug(value)
    except ValidationError as e:
        v.errors.setdefault(name, []).extend(e.messages)
    return value


def _email(v, name, value, *, model=None, field="email"):
    """An address, stripped and lower-cased; one line (it goes into email headers)."""
    other = Fields(model or v.model)
    value = other.line(field, value)
    if other.errors:
        v.errors.setdefault(name, []).extend(other.errors[field])
        return value
    value = value.lower()
    try:
        validate_email(value)
    except ValidationError as e:
        v.errors.setdefault(name, []).extend(e.messages)
    return value


# Invitations --------------------------------------------------------------------------------


def invitation_token(invitation):
    return signing.dumps({"i": invitation.pk, "o": invitation.organization_id}, salt=INVITE_SALT)


class InvitationError(Exception):
    pass


def read_invitation(token):
    """The pending invitation behind a signed link, or InvitationError saying why not."""
    max_age = timedelta(days=settings.INVITATION_MAX_AGE_DAYS)
    try:
        data = signing.loads(token, salt=INVITE_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise InvitationError("This invitation has expired. Ask for a new one.") from None
    except signing.BadSignature:
        raise InvitationError("This invitation link is not valid.") from None
    with scopes_disabled():
        invitation = (
            Invitation.objects.select_related("organization", "team")
            .filter(pk=data.get("i"), organization_id=data.get("o"))
            .first()
        )
    if invitation is None or invitation.revoked_at:
        raise InvitationError("This invitation was withdrawn. Ask for a new one.")
    if invitation.accepted_at:
        raise InvitationError("This invitation has already been used.")
    return invitation


def invite_member(*, actor, email, role, team=None):
    org = actor.organization
    if not permissions.can_manage_members(actor):
        raise PermissionDenied("Only org admins can invite people.")
    v = Fields(Invitation)
    email = _email(v, "email", email)
    v.choice("role", role)
    v.done()
    if team is not None and team.organization_id != org.pk:
        raise ValidationError({"team": "Choose a team of this organization."})
    if Membership.objects.for_org(org).filter(user__email=email).exists():
        raise ValidationError({"email": f"{email} is already a member."})
    with transaction.atomic():
        now = timezone.now()
        Invitation.objects.for_org(org).filter(
            email=email, accepted_at=None, revoked_at=None
        ).update(revoked_at=now)
        invitation = Invitation.objects.create(
            organization=org, email=email, role=role, team=team, invited_by=actor.user
        )
        link = settings.SITE_URL + reverse("accept_invitation", args=[invitation_token(invitation)])
        body = (
            f"{actor.user.display_name} invited you to {org.name} on OKR Alignment.\n"
            f"Your role there: {invitation.get_role_display()}.\n\n"
            f"Accept here (the link works for {settings.INVITATION_MAX_AGE_DAYS} days):\n{link}\n"
        )
        from nudges.outbox import Kind, queue

        queue(kind=Kind.INVITATION, key=f"invite:{invitation.pk}", organization=org, to=email,
              subject=f"Join {org.name} on OKR Alignment", text=body)
    return invitation


def revoke_invitation(*, actor, invitation):
    if not permissions.can_manage_members(actor):
        raise PermissionDenied("Only org admins can withdraw invitations.")
    # Conditional, so a withdrawal racing an acceptance leaves one of the two, never both.
    now = timezone.now()
    if Invitation.objects.for_org(actor.organization).filter(
            pk=invitation.pk, accepted_at=None, revoked_at=None).update(revoked_at=now):
        invitation.revoked_at = now
    return invitation


class AccountExists(InvitationError):
    """The invitation's email address already has an account: sign in to accept it."""


def _lock_pending(invitation):
    """The invitation row, locked until the transaction ends, or InvitationError when it was
    used or withdrawn meanwhile. Every acceptance takes this lock first, so two people (or two
    clicks) on one invitation run one after the other and the second sees it used."""
    with scopes_disabled():
        inv = Invitation.objects.select_for_update().filter(pk=invitation.pk).first()
    if inv is None or inv.revoked_at:
        raise InvitationError("This invitation was withdrawn. Ask for a new one.")
    if inv.accepted_at:
        raise InvitationError("This invitation has already been used.")
    return inv


def _accept(inv, user):
    with scope(organization=inv.organization):
        membership, _ = Membership.objects.get_or_create(
            organization=inv.organization, user=user, defaults={"role": inv.role}
        )
        if inv.team_id:
            membership.teams.add(inv.team_id)
        inv.accepted_at = timezone.now()
        inv.save(update_fields=["accepted_at"])
    return membership


@transaction.atomic
def accept_invitation(*, invitation, user):
    """Add the membership (keeping a higher role the person may already have)."""
    inv = _lock_pending(invitation)
    if user.email.lower() != inv.email.lower():
        raise PermissionDenied(f"This invitation is for {inv.email}.")
    return _accept(inv, user)


@transaction.atomic
def sign_up_with_invitation(*, invitation, full_name, password):
    """Create the invited person's account and membership in one step: either both exist
    afterwards or neither. Raises InvitationError when the invitation was used meanwhile and
    AccountExists when the address got an account meanwhile (from another invitation)."""
    people = Fields(User)
    full_name = people.line("full_name", full_name)
    people.done()
    inv = _lock_pending(invitation)
    email = inv.email.strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise AccountExists("You already have an account: sign in to accept the invitation.")
    try:
        with transaction.atomic():
            user = User.objects.create_user(email, password, full_name=full_name)
    except IntegrityError:
        # Another organization's invitation to the same address won the race.
        raise AccountExists(
            "You already have an account: sign in to accept the invitation.") from None
    membership = _accept(inv, user)
    return user, membership


# Members -----------------------------------------------------------------------------------


def _other_admins(membership):
    return (
        Membership.objects.for_org(membership.organization)
        .filter(role=Role.ADMIN)
        .exclude(pk=membership.pk)
        .exists()
    )


@transaction.atomic
def change_member(*, actor, membership, role, teams):
    if not permissions.can_manage_members(actor):
        raise PermissionDenied("Only org admins can change roles.")
    v = Fields(Membership)
    v.choice("role", role)
    v.done()
    if membership.role == Role.ADMIN and role != Role.ADMIN and not _other_admins(membership):
        raise ValidationError({"role": "An organization needs at least one admin."})
    if any(t.organization_id != actor.organization_id for t in teams):
        raise ValidationError({"teams": "Choose teams of this organization."})
    membership.role = role
    membership.save(update_fields=["role"])
    membership.teams.set(teams)
    return membership


@transaction.atomic
def remove_member(*, actor, membership):
    if not permissions.can_manage_members(actor):
        raise PermissionDenied("Only org admins can remove members.")
    if membership.role == Role.ADMIN and not _other_admins(membership):
        raise ValidationError("An organization needs at least one admin.")
    lock_organization(membership.organization)  # teams are tree rows
    history.update(Team.objects.for_org(membership.organization).filter(lead=membership.user),
                   lead=None)
    membership.delete()


# Teams --------------------------------------------------------------------------------------


def _check_team(org, *, name, kind, parent, lead, team=None):
    errors = {}
    if parent is not None and parent.organization_id != org.pk:
        errors["parent"] = "Choose a unit of this organization."
    elif parent is not None and team is not None and (
        parent.pk == team.pk or parent.is_descendant_of(team)
    ):
        errors["parent"] = "A unit cannot sit below itself or one of its own units."
    if kind == Team.Kind.COMPANY and parent is not None:
        errors["kind"] = "The company is the top of the tree and has no parent."
    if kind != Team.Kind.COMPANY and parent is None:
        errors["parent"] = "Choose the unit this one belongs to."
    if kind == Team.Kind.COMPANY:
        others = Team.objects.for_org(org).filter(kind=Team.Kind.COMPANY)
        if team is not None:
            others = others.exclude(pk=team.pk)
        if others.exists():
            errors.setdefault("kind", "The organization already has its company unit.")
    dupes = Team.objects.for_org(org).filter(name__iexact=name)
    if team is not None:
        dupes = dupes.exclude(pk=team.pk)
    if dupes.exists():
        errors["name"] = "Another unit already has this name."
    if lead is not None and not Membership.objects.for_org(org).filter(user=lead).exists():
        errors["lead"] = "The lead must be a member of the organization."
    if errors:
        raise ValidationError(errors)


TEAM_FIELDS = {"name", "kind", "team_type", "parent", "lead", "charter", "scorecard",
               "checkin_cadence"}


def _clean_team(fields):
    unknown = set(fields) - TEAM_FIELDS
    if unknown:
        raise TypeError(f"save_team() cannot set {', '.join(sorted(unknown))}")
    v = Fields(Team)
    fields = dict(fields)
    fields["name"] = v.line("name", fields.get("name"))
    v.choice("kind", fields.get("kind"))
    if "team_type" in fields:
        v.choice("team_type", fields["team_type"])
    if "charter" in fields:
        fields["charter"] = v.text("charter", fields["charter"])
    if "scorecard" in fields:
        fields["scorecard"] = _clean_scorecard(v, fields["scorecard"])
    if "checkin_cadence" in fields:
        fields["checkin_cadence"] = fields["checkin_cadence"] or ""
        v.choice("checkin_cadence", fields["checkin_cadence"])
    v.done()
    return fields


def _clean_scorecard(v, scorecard):
    """At most 8 metrics, each {"name": one line up to 80, "target": one line up to 40}."""
    message = "Give each metric a name and a target, one line each."
    if not isinstance(scorecard, list | tuple) or len(scorecard) > 8:
        v.refuse("scorecard", "Keep the scorecard short: at most 8 metrics.")
        return scorecard
    clean = []
    for row in scorecard:
        if not isinstance(row, dict) or set(row) - {"name", "target"}:
            v.refuse("scorecard", message)
            return scorecard
        name, target = row.get("name", ""), row.get("target", "")
        if not (isinstance(name, str) and isinstance(target, str)):
            v.refuse("scorecard", message)
            return scorecard
        name, target = name.strip(), target.strip()
        if (not name or len(name) > 80 or len(target) > 40
                or control_characters(name) or control_characters(target)):
            v.refuse("scorecard", message)
            return scorecard
        clean.append({"name": name, "target": target})
    return clean


def save_team(*, actor, team=None, **fields):
    """Create a team (team=None) or update one. Fields: name, kind, team_type, parent, lead,
    charter, scorecard, checkin_cadence ("" takes the team above's)."""
    org = actor.organization
    if not permissions.can_open_console(actor):
        raise PermissionDenied("Only org admins and alignment leads manage the org tree.")
    return _write_team(org, team, _clean_team(fields))


def _write_team(org, team, fields, *, within=None):
    """Save a unit's cleaned fields under the organization's lock. ``within``: the ids of the
    units a lead keeps; the unit's parent must be one of them (checked on the stored rows)."""
    with transaction.atomic():
        lock_organization(org)
        # mptt moves with the lft/rght/tree_id of the objects as loaded: read the team and its
        # new parent again now that no one else can move them (copies from before the lock may
        # be stale, and would corrupt the tree).
        if team is not None and team.organization_id == org.pk:
            team = Team.objects.for_org(org).get(pk=team.pk)
        parent = fields["parent"]
        if parent is not None and parent.organization_id == org.pk:
            fields["parent"] = Team.objects.for_org(org).get(pk=parent.pk)
        if within is not None and (fields["parent"] is None
                                   or fields["parent"].pk not in within):
            raise ValidationError({"parent": "Choose one of the units you lead."})
        _check_team(
            org,
            name=fields["name"],
            kind=fields["kind"],
            parent=fields["parent"],
            lead=fields["lead"],
            team=team,
        )
        # The misalignment findings name teams and their leads: recompute them on a change.
        renamed = team is not None and (team.name, team.lead_id, team.kind) != (
            fields["name"], getattr(fields["lead"], "pk", None), fields["kind"])
        if team is None:
            team = Team(organization=org)
        for key, value in fields.items():
            setattr(team, key, value)
        team.save()
        if renamed:
            from alignment import report

            report.mark_cycles_changed(org)
    return team


# Cycles -------------------------------------------------------------------------------------


def save_cycle(*, actor, cycle=None, name, start_date, end_date, status):
    org = actor.organization
    if not permissions.can_open_console(actor):
        raise PermissionDenied("Only org admins and alignment leads manage cycles.")
    v = Fields(Cycle)
    name = v.line("name", name)
    v.day("start_date", start_date, required=True)
    v.day("end_date", end_date, required=True)
    v.choice("status", status)
    v.done()
    if end_date <= start_date:
        raise ValidationError({"end_date": "The cycle must end after it starts."})
    dupes = Cycle.objects.for_org(org).filter(name__iexact=name)
    if cycle is not None:
        dupes = dupes.exclude(pk=cycle.pk)
    if dupes.exists():
        raise ValidationError({"name": "Another cycle already has this name."})
    with transaction.atomic():
        if cycle is None:
            cycle = Cycle(organization=org)
        cycle.name, cycle.start_date, cycle.end_date, cycle.status = (
            name,
            start_date,
            end_date,
            status,
        )
        # Closed through this form too: when and by whom, as the console's close page records.
        if status == Cycle.Status.CLOSED and cycle.closed_at is None:
            cycle.closed_at, cycle.closed_by = timezone.now(), actor.user
        elif status != Cycle.Status.CLOSED:
            cycle.closed_at = cycle.closed_by = None
        cycle.save()
    return cycle
