"""Every role rule of the product, in one place. Views, services and templates ask these."""

from .models import Role, Team

MANAGERS = {Role.ADMIN, Role.ALIGNMENT_LEAD}
WRITERS = {Role.ADMIN, Role.ALIGNMENT_LEAD, Role.TEAM_LEAD}
CONTRIBUTORS = {Role.ADMIN, Role.ALIGNMENT_LEAD, Role.TEAM_LEAD, Role.MEMBER}


def can_open_console(membership):
    return membership.role in MANAGERS


def can_manage_members(membership):
    return membership.role == Role.ADMIN


def can_publish(membership):
    return membership.role in MANAGERS


def can_manage_strategy(membership):
    """Perspectives and strategic goals: org admins and alignment leads."""
    return membership.role in MANAGERS


def led_team_ids(membership):
    """Teams this person leads, and every unit below them (a department head leads its teams)."""
    if not hasattr(membership, "_led_team_ids"):
        rows = list(
            Team.objects.for_org(membership.organization).values_list(
                "id", "tree_id", "lft", "rght", "lead_id"
            )
        )
        led = [(t, lft, rght) for _, t, lft, rght, lead in rows if lead == membership.user_id]
        membership._led_team_ids = frozenset(
            pk
            for pk, t, lft, rght, _ in rows
            if any(t == lt and llft <= lft and rght <= lrght for lt, llft, lrght in led)
        )
    return membership._led_team_ids


def member_team_ids(membership):
    if not hasattr(membership, "_member_team_ids"):
        membership._member_team_ids = frozenset(membership.teams.values_list("id", flat=True))
    return membership._member_team_ids


def can_edit_team_okrs(membership, team_id):
    if membership.role in MANAGERS:
        return True
    return membership.role == Role.TEAM_LEAD and team_id in led_team_ids(membership)


# Units kept by their leads (/teams/<id>/edit/) ------------------------------------------------

# The roles a department head or team lead may give within their units: never an org-wide one.
UNIT_ROLES = (Role.TEAM_LEAD, Role.MEMBER, Role.VIEWER)


def can_keep_unit(membership, team_id):
    """A unit's charter, scorecard and members: its leads and the leads of the units above it
    (a department head keeps every team of the department), and the managers."""
    return can_edit_team_okrs(membership, team_id)


def can_restructure_unit(membership, team):
    """Rename a unit, move it, change its lead: the managers anywhere (the console), a lead
    only for units strictly below one they lead (their own unit's place is the console's)."""
    if membership.role in MANAGERS:
        return True
    return (membership.role == Role.TEAM_LEAD and team.parent_id is not None
            and team.parent_id in led_team_ids(membership))


def can_manage_unit_member(membership, member, unit_ids, team_ids=None):
    """Whether a lead may change ``member``'s role: managers always; a lead only for people
    with a unit role who are on at least one team, all of them within the lead's units
    (``unit_ids``). ``team_ids``: the member's teams, when about to change."""
    if membership.role in MANAGERS:
        return True
    if membership.role != Role.TEAM_LEAD or member.role not in UNIT_ROLES:
        return False
    teams = member_team_ids(member) if team_ids is None else set(team_ids)
    return bool(teams) and teams <= set(unit_ids)


def can_record_kpi_value(membership, team_id):
    """A KPI value by hand: the team's members and its leads (and those above)."""
    if membership.role not in CONTRIBUTORS:
        return False
    return can_keep_unit(membership, team_id) or team_id in member_team_ids(membership)


def editable_team_ids(membership, all_team_ids):
    return {pk for pk in all_team_ids if can_edit_team_okrs(membership, pk)}


def co_owner_team_ids(objective):
    """Teams that co-own the whole OKR (a "whole OKR" share): cached on the objective, so a page
    of its key results asks once."""
    if not hasattr(objective, "_co_owner_team_ids"):
        from dependencies.models import ObjectiveShare

        objective._co_owner_team_ids = frozenset(ObjectiveShare.objects.filter(
            organization_id=objective.organization_id, objective_id=objective.pk,
            kind=ObjectiveShare.Kind.WHOLE).values_list("team_id", flat=True))
    return objective._co_owner_team_ids


def preload_co_owners(objectives):
    """Cache ``co_owner_team_ids`` for a list of objectives in one query, so a list page that asks
    ``can_edit_objective`` per row does not query per row."""
    from dependencies.models import ObjectiveShare

    objectives = [o for o in objectives if not hasattr(o, "_co_owner_team_ids")]
    if not objectives:
        return
    teams = {o.pk: set() for o in objectives}
    for objective_id, team_id in ObjectiveShare.objects.filter(
            organization_id=objectives[0].organization_id, objective_id__in=list(teams),
            kind=ObjectiveShare.Kind.WHOLE).values_list("objective_id", "team_id"):
        teams[objective_id].add(team_id)
    for o in objectives:
        o._co_owner_team_ids = frozenset(teams[o.pk])


def can_edit_objective(membership, objective):
    if objective.is_retired:
        return False
    return can_edit_team_okrs(membership, objective.team_id) or any(
        can_edit_team_okrs(membership, t) for t in co_owner_team_ids(objective))


def can_unretire_objective(membership, objective):
    """Who may retire it may bring it back: the leads of its team or of a co-owning team."""
    return can_edit_team_okrs(membership, objective.team_id) or any(
        can_edit_team_okrs(membership, t) for t in co_owner_team_ids(objective))


def can_check_in(membership, key_result):
    """Leads of either team, the person who owns the KR, and members of its owner team."""
    if membership.role not in CONTRIBUTORS:
        return False
    if can_edit_team_okrs(membership, key_result.owner_team_id) or can_edit_team_okrs(
        membership, key_result.objective.team_id
    ):
        return True
    if key_result.owner_id == membership.user_id or (
        key_result.owner_team_id in member_team_ids(membership)
    ):
        return True
    co_owners = co_owner_team_ids(key_result.objective)
    return any(t in member_team_ids(membership) or can_edit_team_okrs(membership, t)
               for t in co_owners)


# The network (dependencies app) ---------------------------------------------------------------


def can_request_dependency(membership, team_id):
    """A dependency is recorded by the team that depends: its leads, or the managers."""
    return can_edit_team_okrs(membership, team_id)


def can_answer_dependency(membership, dependency):
    """The providing team's lead commits or declines (managers may act for them)."""
    return can_edit_team_okrs(membership, dependency.providing_team_id)


def can_close_dependency(membership, dependency):
    """Either side's lead records that it was delivered, or that it broke."""
    return can_edit_team_okrs(membership, dependency.providing_team_id) or can_edit_team_okrs(
        membership, dependency.requesting_team_id)


def can_withdraw_dependency(membership, dependency):
    return can_edit_team_okrs(membership, dependency.requesting_team_id)


def can_answer_contribution(membership, shared_key_result):
    """A key result that others want to feed (and add up into) is its owners' to accept: the
    lead of the team that owns it or of its objective's team (and the leads above), or an
    alignment lead or admin."""
    return can_edit_team_okrs(membership, shared_key_result.owner_team_id) or (
        can_edit_objective(membership, shared_key_result.objective))


def can_plan_recovery(membership, objective):
    """Recovery plans are the alignment lead's tool, on company and department objectives."""
    return membership.role in MANAGERS and objective.team.kind in (
        Team.Kind.COMPANY, Team.Kind.DEPARTMENT)
