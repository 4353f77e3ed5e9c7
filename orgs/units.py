"""A unit kept by its leads (``/teams/<id>/edit/``): a department head or team lead changes,
for the units they lead, the charter, the members and their roles, and the units below with
their leads. The console keeps the organization-wide settings (the tree's top, admins and
alignment leads, cycles); the scorecard's KPIs are okrs.scorecards'."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

import history

from . import permissions
from .models import Membership, Role, Team
from .services import _clean_team, _write_team, lock_organization
from .validation import Fields


def unit_ids(membership):
    """The units ``membership`` keeps: the led subtrees, or None for the managers (every
    unit, not listed: an organization may have thousands)."""
    if membership.role in permissions.MANAGERS:
        return None
    if membership.role != Role.TEAM_LEAD:
        return set()
    return set(permissions.led_team_ids(membership))


def _check_keeps(membership, team):
    if team.organization_id != membership.organization_id:
        raise ValidationError("Choose a unit of this organization.")
    if not permissions.can_keep_unit(membership, team.pk):
        raise PermissionDenied("Only the leads of a unit, and of the units above it, keep it.")


def save_charter(*, membership, team, charter):
    _check_keeps(membership, team)
    v = Fields(Team)
    charter = v.text("charter", charter)
    v.done()
    with transaction.atomic():
        history.update(Team.objects.for_org(membership.organization).filter(pk=team.pk),
                       charter=charter)
    team.charter = charter
    return team


def save_sub_unit(*, membership, team=None, parent, name, lead=None,
                  team_type=Team.TeamType.PRODUCT):
    """Add a unit below one the person keeps (team=None), or rename, move or re-lead one
    strictly below a unit they lead. A new unit is a team; a moved one keeps its kind. The
    parent must be one of the person's units, so nothing leaves their subtree."""
    org = membership.organization
    if team is not None:
        if team.organization_id != org.pk or not permissions.can_restructure_unit(
                membership, team):
            raise PermissionDenied("Only the leads of the unit above may rename or move it.")
    if parent is not None and parent.organization_id != org.pk:
        raise ValidationError({"parent": "Choose one of the units you lead."})
    fields = _clean_team({
        "name": name, "kind": team.kind if team is not None else Team.Kind.TEAM,
        "team_type": team_type, "parent": parent, "lead": lead})
    within = unit_ids(membership)
    if within is not None and (parent is None or parent.pk not in within):
        raise ValidationError({"parent": "Choose one of the units you lead."})
    return _write_team(org, team, fields, within=within)


def _check_member(membership, member, team=None):
    org = membership.organization
    if member.organization_id != org.pk:
        raise ValidationError("Choose a member of this organization.")
    if team is not None:
        _check_keeps(membership, team)


def add_unit_member(*, membership, team, member, role=None):
    """Put ``member`` on ``team`` (one of the person's units); with ``role``, also give them
    one of the unit roles (team lead, member, viewer), when their teams all lie within the
    person's units and their role is no org-wide one."""
    _check_member(membership, member, team)
    if role is not None and role != member.role:
        _set_role(membership, member, role, extra_team=team)
    with transaction.atomic():
        member.teams.add(team)
    member.__dict__.pop("_member_team_ids", None)
    return member


def remove_unit_member(*, membership, team, member):
    """Take ``member`` off ``team``; they stay in the organization."""
    _check_member(membership, member, team)
    with transaction.atomic():
        member.teams.remove(team)
    return member


def set_unit_member_role(*, membership, member, role):
    _check_member(membership, member)
    _set_role(membership, member, role)
    return member


def _set_role(membership, member, role, *, extra_team=None):
    allowed = permissions.UNIT_ROLES if membership.role not in permissions.MANAGERS else Role
    v = Fields(Membership)
    v.choice("role", role, allowed=[str(r) for r in allowed] if allowed is not Role else None)
    v.done()
    teams = set(permissions.member_team_ids(member))
    if extra_team is not None:
        teams.add(extra_team.pk)  # joining one of your units
    if not permissions.can_manage_unit_member(membership, member, unit_ids(membership) or (),
                                              teams):
        raise PermissionDenied(f"{member.user.display_name} has a role or teams outside your "
                               "units: ask an org admin.")
    if member.user_id == membership.user_id:
        raise PermissionDenied("Ask someone else to change your own role.")
    with transaction.atomic():
        lock_organization(membership.organization)
        history.update(Membership.objects.for_org(membership.organization).filter(
            pk=member.pk), role=role)
    member.role = role
