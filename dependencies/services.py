"""Write use cases of the network: sharing, dependencies and their answers, recovery actions.

Every write that changes the network takes the organization lock first (the lock order is in
docs/architecture.md); one that adds an edge checks for a loop while it holds the lock. Every
write that can move health marks the cycle for a recompute.
"""

from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from okrs.models import KeyResult, Objective
from orgs import permissions
from orgs.models import Cycle, Membership, Team
from orgs.services import lock_organization
from orgs.validation import Fields

from . import graph, network
from .models import Dependency, DependencyEvent, ObjectiveShare, RecoveryAction

Status = Dependency.Status


def _owner_team_id(node):
    return node.team_id if isinstance(node, Objective) else node.owner_team_id


def _objective_of(node):
    return node if isinstance(node, Objective) else node.objective


def _check_open_cycle(cycle):
    if cycle.status == Cycle.Status.CLOSED:
        raise ValidationError("This cycle is closed; its network can no longer change.")


# Dependencies ----------------------------------------------------------------------------------


def request_dependency(*, membership, downstream, upstream, need, needed_by, fallback):
    """``downstream`` (an objective or key result) depends on ``upstream`` (another team's)."""
    org = membership.organization
    for node, field in ((downstream, "downstream"), (upstream, "upstream")):
        if node.organization_id != org.pk:
            raise ValidationError({field: "Choose an objective or key result of this "
                                          "organization."})
    down_objective, up_objective = _objective_of(downstream), _objective_of(upstream)
    requesting_team_id = _owner_team_id(downstream)
    if not permissions.can_request_dependency(membership, requesting_team_id):
        raise PermissionDenied("Only the leads of the team that depends can record this.")
    v = Fields(Dependency)
    need = v.line("need", need, required=False)
    fallback = v.text("fallback", fallback)
    needed_by = v.day("needed_by", needed_by, required=True)
    v.done()
    errors = {}
    if up_objective.cycle_id != down_objective.cycle_id:
        errors["upstream"] = "Both ends of a dependency must be in the same cycle."
    elif up_objective.is_retired or down_objective.is_retired:
        errors["upstream"] = "A retired objective can take no new dependencies."
    elif _owner_team_id(upstream) == requesting_team_id:
        errors["upstream"] = ("That belongs to your own team. A dependency is on another "
                              "team's work.")
    if not need:
        errors["need"] = "Say what exactly you need."
    if not fallback:
        errors["fallback"] = "Say what you will do if it slips."
    cycle = down_objective.cycle
    if needed_by and not errors and not (cycle.start_date <= needed_by <= cycle.end_date):
        errors["needed_by"] = (f"Pick a date inside the cycle ({cycle.start_date:%d %b} to "
                               f"{cycle.end_date:%d %b %Y}).")
    if errors:
        raise ValidationError(errors)
    _check_open_cycle(cycle)
    with transaction.atomic():
        lock_organization(org)
        graph.check_no_loop(org, graph.node_of(upstream), graph.node_of(downstream),
                            field="upstream")
        dependency = Dependency.objects.create(
            organization=org, cycle=cycle,
            downstream_objective=downstream if isinstance(downstream, Objective) else None,
            downstream_key_result=downstream if isinstance(downstream, KeyResult) else None,
            upstream_objective=upstream if isinstance(upstream, Objective) else None,
            upstream_key_result=upstream if isinstance(upstream, KeyResult) else None,
            requesting_team_id=requesting_team_id, providing_team_id=_owner_team_id(upstream),
            need=need, needed_by=needed_by, fallback=fallback,
            created_by=membership.user,
        )
        _event(dependency, Status.REQUESTED, membership, "")
        network.mark_changed(cycle)
    return dependency


def _event(dependency, status, membership, note):
    DependencyEvent.objects.create(organization=dependency.organization, dependency=dependency,
                                   status=status, note=note, actor=membership.user)


# Which answer may follow which state, and who may give it.
TRANSITIONS = {
    Status.COMMITTED: ({Status.REQUESTED, Status.DECLINED}, permissions.can_answer_dependency),
    Status.DECLINED: ({Status.REQUESTED, Status.COMMITTED}, permissions.can_answer_dependency),
    Status.DELIVERED: ({Status.COMMITTED, Status.BROKEN}, permissions.can_close_dependency),
    Status.BROKEN: ({Status.COMMITTED}, permissions.can_close_dependency),
    Status.WITHDRAWN: ({Status.REQUESTED, Status.COMMITTED, Status.DECLINED},
                       permissions.can_withdraw_dependency),
}
NEEDS_REASON = {Status.DECLINED, Status.BROKEN}


def allowed_answers(membership, dependency):
    return [s for s, (sources, may) in TRANSITIONS.items()
            if dependency.status in sources and may(membership, dependency)]


def answer_dependency(*, membership, dependency, status, note=""):
    """Commit, decline (with a reason), deliver, break or withdraw a dependency."""
    if status not in TRANSITIONS:
        raise ValidationError({"status": "Choose one of the offered answers."})
    sources, may = TRANSITIONS[status]
    if not may(membership, dependency):
        raise PermissionDenied("Your role does not allow this answer on this dependency.")
    v = Fields(Dependency)
    note = v.text("note", note, field="response_note")
    v.done()
    if status in NEEDS_REASON and not note:
        raise ValidationError({"note": "Give a reason, so the other team can plan around it."})
    _check_open_cycle(dependency.cycle)
    with transaction.atomic():
        lock_organization(membership.organization)
        current = Dependency.objects.for_org(membership.organization).select_for_update(
            no_key=True).get(pk=dependency.pk)
        if current.status not in sources:
            raise ValidationError(
                f"This dependency is {current.get_status_display().lower()} now; that answer "
                "no longer applies.")
        current.status = status
        if status in (Status.COMMITTED, Status.DECLINED):
            current.response_note = note
            current.responded_by, current.responded_at = membership.user, timezone.now()
        current.save()
        _event(current, status, membership, note)
        network.mark_changed(current.cycle)
    return current


def is_escalated(dependency, *, today=None):
    """Declined, or still unanswered after the organization's escalation delay."""
    if dependency.status == Status.DECLINED:
        return True
    if dependency.status != Status.REQUESTED:
        return False
    today = today or timezone.localdate()
    days = dependency.organization.escalate_after_days
    return timezone.localdate(dependency.created_at) + timedelta(days=days) <= today


def escalated(org, *, today=None):
    """The cycle-independent escalation queue of the alignment lead: bounded queries."""
    today = today or timezone.localdate()
    cutoff = timezone.now() - timedelta(days=org.escalate_after_days)
    rows = (Dependency.objects.for_org(org).with_ends()
            .filter(status__in=[Status.REQUESTED, Status.DECLINED])
            .exclude(status=Status.REQUESTED, created_at__gt=cutoff)
            .exclude(cycle__status=Cycle.Status.CLOSED))
    rows = [d for d in rows if is_escalated(d, today=today)]
    for d in rows:
        d.escalated = True
    return rows


# Sharing ---------------------------------------------------------------------------------------


def share_objective(*, membership, objective, team, kind):
    org = membership.organization
    if not permissions.can_edit_objective(membership, objective):
        raise PermissionDenied("You can share objectives only of teams you lead.")
    if team.organization_id != org.pk:
        raise ValidationError({"team": "Choose a team of this organization."})
    if team.pk == objective.team_id:
        raise ValidationError({"team": "That team already owns this objective."})
    if kind not in ObjectiveShare.Kind.values:
        raise ValidationError({"kind": "Choose how the objective is shared."})
    _check_open_cycle(objective.cycle)
    with transaction.atomic():
        lock_organization(org)
        share, _ = ObjectiveShare.objects.for_org(org).update_or_create(
            objective=objective, team=team,
            defaults={"organization": org, "kind": kind, "created_by": membership.user})
        network.mark_changed(objective.cycle)
    return share


def unshare_objective(*, membership, share):
    if not permissions.can_edit_objective(membership, share.objective):
        raise PermissionDenied("You can change sharing only of objectives of teams you lead.")
    _check_open_cycle(share.objective.cycle)
    with transaction.atomic():
        lock_organization(membership.organization)
        ObjectiveShare.objects.for_org(membership.organization).filter(pk=share.pk).delete()
        network.mark_changed(share.objective.cycle)


def link_key_result(*, membership, key_result, feeds, rollup=None):
    """Say that ``key_result`` contributes to the shared key result ``feeds`` (or None to unlink).
    ``rollup`` (sum, mean or "") is set on the shared key result when given."""
    org = membership.organization
    if not permissions.can_edit_objective(membership, key_result.objective):
        raise PermissionDenied("You can link key results only of teams you lead.")
    if rollup is not None:
        v = Fields(KeyResult)
        v.choice("rollup", rollup)
        v.done()
    if feeds is not None:
        if feeds.organization_id != org.pk:
            raise ValidationError({"feeds": "Choose a key result of this organization."})
        if feeds.pk == key_result.pk:
            raise ValidationError({"feeds": "A key result cannot feed itself."})
        if feeds.objective.cycle_id != key_result.objective.cycle_id:
            raise ValidationError({"feeds": "The shared key result must be in the same cycle."})
        if feeds.objective.is_retired:
            raise ValidationError({"feeds": "That key result's objective is retired."})
    _check_open_cycle(key_result.objective.cycle)
    with transaction.atomic():
        lock_organization(org)
        if feeds is not None:
            graph.check_no_loop(org, graph.node_of(key_result), graph.node_of(feeds),
                                field="feeds")
        KeyResult.objects.for_org(org).filter(pk=key_result.pk).update(feeds=feeds)
        key_result.feeds = feeds
        if feeds is not None and rollup is not None:
            if rollup and feeds.is_milestone:
                raise ValidationError({"rollup": "A milestone cannot add up values."})
            KeyResult.objects.for_org(org).filter(pk=feeds.pk).update(rollup=rollup)
            feeds.rollup = rollup
        network.mark_changed(key_result.objective.cycle)
    return key_result


# Recovery plans --------------------------------------------------------------------------------


def add_recovery_action(*, membership, objective, title, owner, due_date):
    org = membership.organization
    if not permissions.can_plan_recovery(membership, objective):
        raise PermissionDenied("Recovery plans are for alignment leads, on company and "
                               "department objectives.")
    v = Fields(RecoveryAction)
    title = v.line("title", title, required=False)
    v.day("due_date", due_date, required=True)
    v.done()
    errors = {}
    if not title:
        errors["title"] = "Say what will be done."
    if not Membership.objects.for_org(org).filter(user=owner).exists():
        errors["owner"] = "The owner must be a member of the organization."
    if objective.is_retired:
        errors["title"] = "This objective is retired."
    if errors:
        raise ValidationError(errors)
    return RecoveryAction.objects.create(
        organization=org, objective=objective, title=title, owner=owner,
        due_date=due_date, created_by=membership.user)


def set_recovery_action_done(*, membership, action, done):
    if not (permissions.can_plan_recovery(membership, action.objective)
            or action.owner_id == membership.user_id):
        raise PermissionDenied("Only the action's owner or an alignment lead can update it.")
    v = Fields(RecoveryAction)
    v.flag("done", done)
    v.done()
    RecoveryAction.objects.for_org(membership.organization).filter(pk=action.pk).update(
        is_done=done)
    action.is_done = done
    return action


def teams_for_sharing(membership, objective):
    return [t for t in Team.objects.for_org(membership.organization) if t.pk != objective.team_id]
