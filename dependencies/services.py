"""Write use cases of the network: sharing, dependencies and their answers, recovery actions.

Every write that changes the network takes the organization lock first (the lock order is in
docs/architecture.md); one that adds an edge checks for a loop while it holds the lock. Every
write that can move health marks the cycle for a recompute.
"""

from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

import history
from integrations import webhooks
from nudges import events
from okrs.models import CheckIn, KeyResult, Objective, Rollup
from orgs import permissions
from orgs.models import Cycle, Membership, Team
from orgs.services import lock_organization
from orgs.validation import Fields

from . import graph, network
from .models import (
    Contribution,
    Dependency,
    DependencyEvent,
    Notification,
    ObjectiveShare,
    RecoveryAction,
)

Status = Dependency.Status


def _owner_team_id(node):
    return node.team_id if isinstance(node, Objective) else node.owner_team_id


def _objective_of(node):
    return node if isinstance(node, Objective) else node.objective


def _check_open_cycle(cycle):
    if cycle.status == Cycle.Status.CLOSED:
        raise ValidationError("This cycle is closed; its network can no longer change.")


# Dependencies ----------------------------------------------------------------------------------


def request_dependency(*, membership, downstream, upstream, need, needed_by, fallback,
                       kind=Dependency.Kind.SUPPORTING):
    """``downstream`` (an objective or key result) depends on ``upstream`` (another team's);
    ``kind``: delegation, shared or supporting (``dependencies.kinds``)."""
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
    v.choice("kind", kind)
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
            need=need, needed_by=needed_by, fallback=fallback, kind=kind,
            created_by=membership.user,
        )
        _event(dependency, Status.REQUESTED, membership, "")
        network.mark_changed(cycle)
        events.notify(org, "request_raised", events.dependency_answerers(dependency), dependency,
                      membership.user)
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
ANSWER_EVENTS = {Status.COMMITTED: "request_answered", Status.DECLINED: "request_declined"}


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
        webhooks.emit(membership.organization, webhooks.Event.DEPENDENCY,
                      webhooks.dependency_data(current))
        network.mark_changed(current.cycle)
        if status in ANSWER_EVENTS:
            events.notify(membership.organization, ANSWER_EVENTS[status],
                          events.dependency_askers(current), current, membership.user, note=note)
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


def same_unit(a, b):
    """Whether two units name the same thing: case, spaces and a plural "s" aside
    ("customers" and "Customer" match; "MB" and "$M" do not)."""
    def norm(unit):
        unit = " ".join((unit or "").split()).casefold()
        return unit[:-1] if len(unit) > 2 and unit.endswith("s") else unit
    return norm(a) == norm(b)


def _unit_of(key_result):
    return key_result.unit.strip() or "no unit"


def _check_contribution(org, key_result, shared, rollup):
    """Why ``key_result`` cannot feed ``shared`` with ``rollup`` (a ValidationError), if so."""
    if shared.organization_id != org.pk:
        raise ValidationError({"feeds": "Choose a key result of this organization."})
    if shared.pk == key_result.pk:
        raise ValidationError({"feeds": "A key result cannot feed itself."})
    if shared.objective.cycle_id != key_result.objective.cycle_id:
        raise ValidationError({"feeds": "The shared key result must be in the same cycle."})
    if shared.objective.is_retired or key_result.objective.is_retired:
        raise ValidationError({"feeds": "That key result's objective is retired."})
    if shared.rollup and rollup and rollup != shared.rollup:
        raise ValidationError({"rollup": (
            f"“{shared.title}” already takes the {shared.get_rollup_display().lower()}; "
            "ask for the same, or keep its own check-ins.")})
    if rollup or shared.rollup:
        if shared.is_milestone:
            raise ValidationError({"rollup": "A milestone cannot add up values."})
        if key_result.is_milestone:
            raise ValidationError({"rollup": (
                "A milestone has no value to add up. Choose “Keep its own check-ins” to let "
                "only its health count.")})
        if KeyResult.Kind.NUMERIC != shared.kind or KeyResult.Kind.NUMERIC != key_result.kind:
            raise ValidationError({"rollup": (
                "Only key results that increase or decrease to a target add up values. Choose "
                "“Keep its own check-ins” to let only its health count.")})
        if not same_unit(key_result.unit, shared.unit):
            raise ValidationError({"feeds": (
                f"The units do not match: “{key_result.title}” counts {_unit_of(key_result)}, "
                f"“{shared.title}” counts {_unit_of(shared)}. Only key results in the same "
                "unit can add up.")})


def _contributors(org, shared):
    return KeyResult.objects.for_org(org).filter(feeds=shared)


def _refresh_shared_value(org, shared):
    """Right after a contributor joins or leaves: the shared key result's value is the sum or
    mean of the contributors it has now; with none left it stops adding up and shows its own
    latest check-in again (or its start value). The recompute that follows agrees."""
    current = KeyResult.objects.for_org(org).select_for_update(no_key=True).get(pk=shared.pk)
    values = [v for v in _contributors(org, current).values_list("current_value", flat=True)
              if v is not None]
    changes = {}
    if not _contributors(org, current).exists():
        if not current.rollup:
            return shared
        own = (CheckIn.objects.for_org(org).filter(key_result=current, value__isnull=False)
               .order_by("-created_at", "-pk").values_list("value", flat=True).first())
        changes = {"rollup": "", "current_value": own if own is not None
                   else current.start_value}
    elif current.rollup and values and not current.is_milestone:
        total = sum(values, Decimal(0))
        value = total if current.rollup == Rollup.SUM else total / len(values)
        changes = {"current_value": value.quantize(Decimal("0.0001"))}
    if changes:
        history.update(KeyResult.objects.for_org(org).filter(pk=current.pk), **changes)
        for field, value in changes.items():
            setattr(shared, field, value)
    return shared


def _accept(org, contribution, membership):
    """Make an accepted contribution real: the link, the roll-up, the value, a recompute."""
    key_result, shared = contribution.key_result, contribution.shared
    graph.check_no_loop(org, graph.node_of(key_result), graph.node_of(shared), field="feeds")
    history.update(KeyResult.objects.for_org(org).filter(pk=key_result.pk), feeds=shared)
    key_result.feeds = shared
    if contribution.rollup and not shared.rollup:
        history.update(KeyResult.objects.for_org(org).filter(pk=shared.pk),
                       rollup=contribution.rollup)
        shared.rollup = contribution.rollup
    contribution.status = Contribution.Status.ACCEPTED
    contribution.responded_by, contribution.responded_at = membership.user, timezone.now()
    _refresh_shared_value(org, shared)
    network.mark_changed(shared.objective.cycle)


def _request_title(contribution):
    """The title of the request's notifications, as ``nudges.events.describe`` writes it."""
    return " ".join((f"{contribution.key_result.owner_team.name} asks to count "
                     f"“{contribution.key_result.title}” in “{contribution.shared.title}”")
                    .split())[:200]


def _alert_owners(org, contribution, membership):
    """Tell the people who can answer, as any request (``nudges.events``: in the app, and by
    email and chat as each chose). Returns their user ids."""
    shared = contribution.shared
    ids = {shared.owner_id, shared.owner_team.lead_id, shared.objective.team.lead_id}
    ids -= {None, membership.user_id}
    members = {m.user_id: m for m in Membership.objects.for_org(org).filter(user_id__in=ids)
               .select_related("user")}
    people = [m for m in members.values() if permissions.can_answer_contribution(m, shared)]
    if not people:  # nobody leads the team that owns it: the alignment leads answer
        people = list(Membership.objects.for_org(org)
                      .filter(role__in=permissions.MANAGERS)
                      .exclude(user_id=membership.user_id).select_related("user"))
    rollup = shared.get_rollup_display() if shared.rollup else (
        contribution.get_rollup_display() if contribution.rollup else "")
    how = (f"its value would count in the {rollup.lower()}" if rollup
           else "only its health would count, not its value")
    note = f"If you accept, {how}. Nothing changes until you answer."
    if contribution.note:
        note += f"\nWhy: {contribution.note}"
    return events.notify(org, "request_raised", [m.user_id for m in people], contribution,
                         membership.user, note=note)


def request_contribution(*, membership, key_result, shared, rollup="", note=""):
    """Ask that ``key_result`` feed ``shared`` (usually another team's key result), and that
    the shared one's value become the sum or mean of its contributors (``rollup``) or keep its
    own check-ins (""). Nothing changes until the shared key result's owners accept; when the
    person asking may accept it, it is accepted at once."""
    org = membership.organization
    if not permissions.can_edit_objective(membership, key_result.objective):
        raise PermissionDenied("You can link key results only of teams you lead.")
    v = Fields(Contribution)
    rollup = rollup or ""
    v.choice("rollup", rollup)
    note = v.text("note", note)
    v.done()
    _check_contribution(org, key_result, shared, rollup)
    _check_open_cycle(key_result.objective.cycle)
    return _open_contribution(org, membership, key_result, shared, rollup, note)


def _open_contribution(org, membership, key_result, shared, rollup, note):
    with transaction.atomic():
        lock_organization(org)
        shared = KeyResult.objects.for_org(org).select_related(
            "objective__cycle", "objective__team", "owner_team").get(pk=shared.pk)
        _check_contribution(org, key_result, shared, rollup)  # as stored now, under the lock
        current = Contribution.objects.for_org(org).open().filter(
            key_result=key_result).select_related("shared").first()
        if current is not None:
            what = ("already feeds" if current.status == Contribution.Status.ACCEPTED
                    else "already waits for an answer from the owners of")
            raise ValidationError({"feeds": (
                f"“{key_result.title}” {what} “{current.shared.title}”. Stop that first.")})
        graph.check_no_loop(org, graph.node_of(key_result), graph.node_of(shared),
                            field="feeds")
        contribution = Contribution.objects.create(
            organization=org, key_result=key_result, shared=shared, rollup=rollup, note=note,
            requested_by=membership.user)
        if permissions.can_answer_contribution(membership, shared):
            _accept(org, contribution, membership)
            contribution.save()
        else:
            _alert_owners(org, contribution, membership)
    return contribution


def carry_contribution(*, membership, key_result, shared, rollup, note):
    """Carry-over: a key result fed ``shared``'s original last cycle and both were carried
    over, so ``key_result`` asks again to feed ``shared`` (accepted at once when ``membership``
    may answer for it, else its owners are asked, as any request). ``membership`` carried one of
    the two over: leading either end is enough to ask. Returns the contribution, or None when
    the link no longer fits (a retired end, a unit that no longer adds up, a loop)."""
    org = membership.organization
    try:
        _check_contribution(org, key_result, shared, rollup)
        with transaction.atomic():  # a refusal rolls back only this request
            return _open_contribution(org, membership, key_result, shared, rollup, note)
    except ValidationError:
        return None


def answer_contribution(*, membership, contribution, accept, note=""):
    """The shared key result's owners accept a contribution (it then feeds, and may add up
    into, their key result) or decline it (nothing changes)."""
    org = membership.organization
    if not permissions.can_answer_contribution(membership, contribution.shared):
        raise PermissionDenied("Only the owners of the shared key result, or an alignment "
                               "lead, can answer.")
    v = Fields(Contribution)
    note = v.text("response_note", note)
    v.done()
    _check_open_cycle(contribution.shared.objective.cycle)
    with transaction.atomic():
        lock_organization(org)
        current = (Contribution.objects.for_org(org).select_for_update(no_key=True)
                   .filter(pk=contribution.pk).first())
        if current is None or current.status != Contribution.Status.REQUESTED:
            raise ValidationError("This request was answered or withdrawn already.")
        current.key_result, current.shared = contribution.key_result, contribution.shared
        current.response_note = note
        if accept:
            _check_contribution(org, current.key_result, current.shared, current.rollup)
            _accept(org, current, membership)
        else:
            current.status = Contribution.Status.DECLINED
            current.responded_by, current.responded_at = membership.user, timezone.now()
        current.save()
        Notification.objects.for_org(org).filter(
            kind=Notification.Kind.REQUEST, key_result=current.shared,
            title=_request_title(current), read_at__isnull=True).update(read_at=timezone.now())
        events.notify(org, "request_answered" if accept else "request_declined",
                      [current.requested_by_id], current, membership.user, note=note)
    return current


def can_stop_contribution(membership, contribution):
    return (permissions.can_edit_objective(membership, contribution.key_result.objective)
            or permissions.can_answer_contribution(membership, contribution.shared))


def stop_contribution(*, membership, contribution):
    """Withdraw a request, or end an accepted contribution (either side may). An accepted one
    leaves the shared key result at once: its value is what its remaining contributors add up
    to, or its own latest check-in when none is left (and it stops adding up)."""
    org = membership.organization
    if not can_stop_contribution(membership, contribution):
        raise PermissionDenied("Only the leads of either key result's team can stop this.")
    with transaction.atomic():
        lock_organization(org)
        current = (Contribution.objects.for_org(org).select_for_update(no_key=True)
                   .filter(pk=contribution.pk).first())
        if current is None or not current.is_open:
            raise ValidationError("This contribution has ended already.")
        shared, key_result = contribution.shared, contribution.key_result
        was_accepted = current.status == Contribution.Status.ACCEPTED
        current.status = (Contribution.Status.REMOVED if was_accepted
                          else Contribution.Status.WITHDRAWN)
        current.save()
        if was_accepted:
            history.update(KeyResult.objects.for_org(org).filter(pk=key_result.pk, feeds=shared),
                           feeds=None)
            key_result.feeds = None
            _refresh_shared_value(org, shared)
            network.mark_changed(shared.objective.cycle)
    return current


def link_key_result(*, membership, key_result, feeds, rollup=None):
    """``key_result`` asks to feed ``feeds`` (see ``request_contribution``), or with None
    stops what it feeds or asked to feed. Returns the contribution, or None."""
    org = membership.organization
    if feeds is not None:
        return request_contribution(membership=membership, key_result=key_result, shared=feeds,
                                    rollup=rollup or "")
    if not permissions.can_edit_objective(membership, key_result.objective):
        raise PermissionDenied("You can link key results only of teams you lead.")
    current = (Contribution.objects.for_org(org).open().filter(key_result=key_result)
               .select_related("shared__objective__cycle", "key_result__objective").first())
    return stop_contribution(membership=membership, contribution=current) if current else None


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
    with transaction.atomic():
        action = RecoveryAction.objects.create(
            organization=org, objective=objective, title=title, owner=owner,
            due_date=due_date, created_by=membership.user)
        events.notify(org, "action_assigned", [owner], action, membership.user)
    return action


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
