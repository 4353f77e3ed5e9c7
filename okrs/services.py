"""Write use cases for objectives, key results and check-ins.

Each checks permission and cross-references (everything in one organization, parents in the same
cycle, no loops), runs in one transaction, and refuses an edit made from a stale form.
"""

from decimal import ROUND_DOWN, Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

import history

# The network recomputes health after any change that can move it (dependencies.network).
from dependencies import graph, network
from dependencies.models import Dependency
from integrations import webhooks
from orgs import permissions
from orgs.models import Cycle, Membership, Organization, Role, Team
from orgs.services import lock_organization
from orgs.validation import Fields

from . import scoring
from .models import CheckIn, Health, KeyResult, Objective, ObjectiveParent
from .progress import numeric_progress


class StaleEdit(ValidationError):
    """Someone saved the same object since this form was opened. ``version`` is the current one:
    a form shown again with it saves over what the person has now been told about."""

    def __init__(self, message, *, version):
        super().__init__(message)
        self.version = version


def _check_cycle_open(cycle):
    """Every write to a cycle's objectives, key results and check-ins goes through here."""
    if cycle.status == Cycle.Status.CLOSED:
        raise ValidationError(
            "This cycle is closed; its objectives, key results and check-ins can no longer "
            "change."
        )


def _check_alignment(org, *, cycle, team, parent, is_local, objective=None, theme=None):
    errors = {}
    thematic = org.alignment_model == Organization.AlignmentModel.THEMATIC
    if theme is not None and theme.organization_id != org.pk:
        errors["theme"] = "Choose a theme of this organization."
    if cycle.organization_id != org.pk:
        errors["cycle"] = "Choose a cycle of this organization."
    if team.organization_id != org.pk:
        errors["team"] = "Choose a team of this organization."
    if parent is not None:
        if parent.organization_id != org.pk:
            errors["parent"] = "Choose an objective of this organization."
        elif parent.cycle_id != cycle.pk:
            errors["parent"] = "The parent objective must be in the same cycle."
        elif parent.is_retired:
            errors["parent"] = "That objective is retired; choose a live one."
        elif objective is not None and objective.pk and (
            parent.pk == objective.pk or parent.is_descendant_of(objective)
        ):
            errors["parent"] = (
                "An objective cannot contribute to itself or to one of the objectives that "
                "contribute to it."
            )
        if is_local:
            errors["is_local"] = "A local objective has no parent: clear one or the other."
    elif thematic and not team.is_company and not is_local and theme is None:
        errors["theme"] = (
            "Choose the company theme this objective serves, or mark it as a local team priority."
        )
    elif not thematic and not team.is_company and not is_local:
        errors["parent"] = (
            "Choose the objective this one contributes to, or mark it as a local team priority."
        )
    if team.is_company and parent is not None:
        errors["parent"] = "Company objectives are the roots of the tree and have no parent."
    if (
        is_local
        and org.alignment_model == Organization.AlignmentModel.STRICT
        and "is_local" not in errors
    ):
        errors["is_local"] = (
            "This organization aligns strictly: every team objective contributes to a parent."
        )
    if errors:
        raise ValidationError(errors)


def _clean_objective(title, why, success, tradeoffs, state, is_local):
    """The objective's own fields, cleaned (``None`` for success and trade-offs: unchanged)."""
    v = Fields(Objective)
    v.flag("is_local", is_local)
    title = v.line("title", title)
    why = v.text("why", why)
    if success is not None:
        success = v.text("success", success)
    if tradeoffs is not None:
        tradeoffs = v.text("tradeoffs", tradeoffs)
    v.choice("state", state)
    v.done()
    return title, why, success, tradeoffs


def _clean_progress(progress_mode, key_results_weight, weight):
    """How the objective's progress is counted (``None``: unchanged, or the default)."""
    v = Fields(Objective)
    if progress_mode is not None and progress_mode != "":
        progress_mode = v.choice("progress_mode", progress_mode)
    else:
        progress_mode = None
    key_results_weight = v.decimal("key_results_weight", key_results_weight, positive=True)
    weight = v.decimal("weight", weight, positive=True)
    v.done()
    return {name: value for name, value in (
        ("progress_mode", progress_mode), ("key_results_weight", key_results_weight),
        ("weight", weight)) if value is not None}


def _clean_commitment(commitment):
    """Committed or aspirational (``None`` or "": unchanged, or committed for a new one)."""
    if commitment is None or commitment == "":
        return {}
    v = Fields(Objective)
    v.choice("commitment", commitment)
    v.done()
    return {"commitment": commitment}


def _check_state(membership, state, previous=None):
    if state == Objective.State.RETIRED:
        raise ValidationError({"state": "Use Retire to retire an objective."})
    if (
        state == Objective.State.PUBLISHED
        and previous != Objective.State.PUBLISHED
        and not permissions.can_publish(membership)
    ):
        raise ValidationError({"state": "Only alignment leads and org admins publish objectives."})
    if state == Objective.State.APPROVED and previous != Objective.State.APPROVED:
        raise ValidationError({"state": "Approval happens in the alignment lead's review queue."})


def _as_stored(org, parent):
    """``parent`` as stored now. Call it under the organization lock: mptt inserts and moves use
    the target's lft/rght/tree_id as loaded, and a copy read before the lock (by the form) may be
    stale by someone else's move, which would corrupt the tree."""
    if parent is None or parent.organization_id != org.pk:
        return parent  # _check_alignment refuses a foreign one
    return Objective.objects.for_org(org).get(pk=parent.pk)


KEEP = object()  # update_objective: leave this field as it is


def _check_strategic_goal(org, team, goal, current=None):
    """A company objective may serve one of the organization's live strategic goals (an
    archived one only if it already did)."""
    from .strategy import check_goal

    errors = check_goal(org, team, goal)
    if not errors and goal is not None and goal.is_archived and goal.pk != current:
        errors = {"strategic_goal": "That strategic goal is archived; choose a live one."}
    if errors:
        raise ValidationError(errors)


def create_objective(*, membership, cycle, team, title, why="", parent=None, is_local=False,
                     state=Objective.State.DRAFT, theme=None, success="", tradeoffs="",
                     progress_mode=None, key_results_weight=None, weight=None,
                     commitment=None, strategic_goal=None, extra_parents=()):
    """``extra_parents``: [(objective, share or None)], the parents it also contributes to
    besides ``parent`` (``set_extra_parents``)."""
    org = membership.organization
    if not permissions.can_edit_team_okrs(membership, team.pk):
        raise PermissionDenied("You can add objectives only for teams you lead.")
    title, why, success, tradeoffs = _clean_objective(title, why, success, tradeoffs, state,
                                                     is_local)
    counting = _clean_progress(progress_mode, key_results_weight, weight)
    counting.update(_clean_commitment(commitment))
    _check_state(membership, state)
    _check_cycle_open(cycle)
    with transaction.atomic():
        lock_organization(org)
        parent = _as_stored(org, parent)
        _check_alignment(org, cycle=cycle, team=team, parent=parent, is_local=is_local,
                         theme=theme)
        _check_strategic_goal(org, team, strategic_goal)
        objective = Objective.objects.create(
            organization=org, cycle=cycle, team=team, parent=parent, title=title, why=why,
            theme=theme, success=success, tradeoffs=tradeoffs, strategic_goal=strategic_goal,
            is_local=is_local, state=state, created_by=membership.user,
            updated_by=membership.user, **counting,
        )
        if extra_parents:
            _set_extra_parents(org, objective, extra_parents)
        network.mark_changed(cycle)
        if state == Objective.State.PUBLISHED:
            webhooks.emit_published(org, [objective])
    return objective


def update_objective(*, membership, objective, version, title, why, team, parent, is_local,
                     state, theme=None, success=None, tradeoffs=None, progress_mode=None,
                     key_results_weight=None, weight=None, commitment=None,
                     strategic_goal=KEEP, extra_parents=KEEP):
    """``extra_parents``: [(objective, share or None)] replaces the parents it also
    contributes to; KEEP leaves them (less the new primary parent, if it was one of them)."""
    org = membership.organization
    if not permissions.can_edit_objective(membership, objective):
        raise PermissionDenied("You can edit objectives only of teams you lead.")
    if team.pk != objective.team_id and not permissions.can_edit_team_okrs(membership, team.pk):
        raise ValidationError({"team": "You can move an objective only to a team you lead."})
    title, why, success, tradeoffs = _clean_objective(title, why, success, tradeoffs, state,
                                                     is_local)
    counting = _clean_progress(progress_mode, key_results_weight, weight)
    counting.update(_clean_commitment(commitment))
    _check_state(membership, state, objective.state)
    with transaction.atomic():
        lock_organization(org)
        current = Objective.objects.for_org(org).select_for_update(no_key=True).get(
            pk=objective.pk)
        parent = _as_stored(org, parent)
        if current.version != version:
            who = current.updated_by.display_name if current.updated_by else "Someone"
            raise StaleEdit(
                f"{who} changed this objective while you were editing it. Your changes are "
                "below; review the current version and save again.",
                version=current.version,
            )
        _check_cycle_open(current.cycle)
        _check_alignment(org, cycle=current.cycle, team=team, parent=parent,
                         is_local=is_local, objective=current, theme=theme)
        if strategic_goal is KEEP:  # not asked: kept, unless the objective left the company
            strategic_goal = current.strategic_goal if team.is_company else None
        _check_strategic_goal(org, team, strategic_goal, current=current.strategic_goal_id)
        if parent is not None and parent.pk != current.parent_id:
            # A dependency or a shared key result may already lead from the parent back here.
            graph.check_no_loop(org, graph.node_of(current), graph.node_of(parent),
                                field="parent")
        substance = [what for what, old, new in (("title", current.title, title),
                                                 ("why it matters", current.why, why))
                     if old.strip() != new.strip()]
        old_title = current.title
        current.title, current.why, current.team, current.parent = title, why, team, parent
        current.is_local, current.state, current.theme = is_local, state, theme
        current.strategic_goal = strategic_goal
        if success is not None:
            current.success = success
        if tradeoffs is not None:
            current.tradeoffs = tradeoffs
        for name, value in counting.items():
            setattr(current, name, value)
        current.version += 1
        current.updated_by = membership.user
        current.save()
        if extra_parents is KEEP:
            extra_parents = [(link.parent, link.share) for link in ObjectiveParent.objects
                             .for_org(org).filter(objective=current).select_related("parent")
                             if link.parent_id != current.parent_id]
        _set_extra_parents(org, current, extra_parents)
        network.mark_changed(current.cycle)
        if state == Objective.State.PUBLISHED and objective.state != state:
            webhooks.emit_published(org, [current])
        if substance and current.state != Objective.State.DRAFT:
            _recascade(membership, current,
                       f"“{old_title}” changed its {' and '.join(substance)}.")
    return current


SHARE_STEP = Decimal("0.0001")


def _extra_shares(given):
    """The shares of the extra parents: each given one (0-1) as it is; the others, and the
    primary parent, split what is left equally. Returns (shares, primary share) or raises."""
    total = sum((s for s in given if s is not None), Decimal(0))
    blank = sum(1 for s in given if s is None)
    left = Decimal(1) - total
    if any(s is not None and not (0 < s < 1) for s in given):
        raise ValidationError({"also_contributes_to": "Each share is more than 0% and less "
                                                      "than 100%."})
    if left <= 0 or (blank and left / (blank + 1) < SHARE_STEP):
        raise ValidationError({"also_contributes_to": (
            "The other parents' shares add up to 100% or more: leave a share for the main "
            "parent.")})
    equal = (left / (blank + 1)).quantize(SHARE_STEP, rounding=ROUND_DOWN)
    shares = [equal if s is None else s.quantize(SHARE_STEP) for s in given]
    return shares, Decimal(1) - sum(shares, Decimal(0))


def _set_extra_parents(org, objective, extras):
    """Make ``extras`` ([(parent, share or None)]) the parents ``objective`` also contributes
    to. Call it under the organization lock, after the objective (and its primary parent) is
    saved: a new link must not close a loop through any parent link, a dependency or a shared
    key result."""
    field = "also_contributes_to"
    extras = [(_as_stored(org, p), None if s is None else Decimal(s)) for p, s in extras]
    if extras and objective.parent_id is None:
        raise ValidationError({field: "Choose the main parent (Contributes to) first: these "
                                      "come in addition to it."})
    seen = set()
    for parent, _ in extras:
        if parent.organization_id != org.pk:
            raise ValidationError({field: "Choose objectives of this organization."})
        if parent.pk == objective.pk:
            raise ValidationError({field: "An objective cannot contribute to itself."})
        if parent.pk == objective.parent_id:
            raise ValidationError({field: f"“{parent.title}” is already its main parent."})
        if parent.pk in seen:
            raise ValidationError({field: f"“{parent.title}” is listed twice."})
        if parent.cycle_id != objective.cycle_id:
            raise ValidationError({field: f"“{parent.title}” is in another cycle."})
        if parent.is_retired:
            raise ValidationError({field: f"“{parent.title}” is retired; choose a live one."})
        seen.add(parent.pk)
    shares, _ = _extra_shares([s for _, s in extras]) if extras else ([], Decimal(1))
    links = ObjectiveParent.objects.for_org(org).filter(objective=objective)
    existing = {link.parent_id: link for link in links}
    links.exclude(parent_id__in=seen).delete()
    for (parent, _), share in zip(extras, shares, strict=True):
        link = existing.get(parent.pk)
        if link is None:
            graph.check_no_loop(org, graph.node_of(objective), graph.node_of(parent),
                                field=field)
            ObjectiveParent.objects.create(organization=org, objective=objective,
                                           parent=parent, share=share)
        elif link.share != share:
            link.share = share
            link.save(update_fields=["share"])


def align_key_result(*, membership, key_result, objective):
    """Align ``key_result`` directly to another team's ``objective`` (same cycle), or clear it
    (``objective=None``). It then counts there like an aligned objective."""
    org = membership.organization
    if not permissions.can_edit_objective(membership, key_result.objective):
        raise PermissionDenied("You can align key results only of teams you lead.")
    _check_cycle_open(key_result.objective.cycle)
    field = "aligned_to"
    with transaction.atomic():
        lock_organization(org)
        current = KeyResult.objects.for_org(org).select_for_update(no_key=True).select_related(
            "objective").get(pk=key_result.pk)
        if objective is not None:
            objective = _as_stored(org, objective)
            if objective.organization_id != org.pk:
                raise ValidationError({field: "Choose an objective of this organization."})
            if objective.cycle_id != current.objective.cycle_id:
                raise ValidationError({field: "Choose an objective of the same cycle."})
            if objective.is_retired:
                raise ValidationError({field: "That objective is retired; choose a live one."})
            if objective.team_id in (current.objective.team_id, current.owner_team_id):
                raise ValidationError({field: "Choose another team's objective: on its own "
                                              "team's, add it as a key result instead."})
            if objective.pk != current.aligned_to_id:
                graph.check_no_loop(org, graph.node_of(current), graph.node_of(objective),
                                    field=field)
        current.aligned_to = objective
        current.version += 1
        current.save(update_fields=["aligned_to", "version"])
        network.mark_changed(current.objective.cycle)
    return current


def _recascade(membership, objective, change):
    # Everything aligned below a company or department objective that moved is flagged for its
    # owners (alignment.cascade); imported here to keep okrs free of a module-level cycle.
    from alignment.cascade import flag_descendants

    flag_descendants(membership=membership, objective=objective, change=change)


def retire_objective(*, membership, objective):
    if not permissions.can_edit_objective(membership, objective):
        raise PermissionDenied("You can retire objectives only of teams you lead.")
    _check_cycle_open(objective.cycle)
    with transaction.atomic():
        lock_organization(membership.organization)
        updated = history.update(Objective.objects.for_org(membership.organization).filter(
            pk=objective.pk
        ).exclude(state=Objective.State.RETIRED),
            state=Objective.State.RETIRED, retired_from=F("state"), version=F("version") + 1,
            updated_by=membership.user, updated_at=timezone.now(),
        )
        if updated:
            network.mark_changed(objective.cycle)
            _recascade(membership, objective, _retired_change(objective))
    return updated == 1


def unretire_objective(*, membership, objective):
    """Bring a retired objective back, in the state it had when it was retired. The re-cascade
    flags its retirement raised below it are closed: nothing changed for them after all."""
    org = membership.organization
    if not permissions.can_unretire_objective(membership, objective):
        raise PermissionDenied("You can bring back objectives only of teams you lead.")
    _check_cycle_open(objective.cycle)
    with transaction.atomic():
        lock_organization(org)
        current = Objective.objects.for_org(org).select_for_update(no_key=True).get(
            pk=objective.pk)
        if not current.is_retired:
            return current
        if current.parent is not None and current.parent.is_retired:
            raise ValidationError(
                f"It contributes to “{current.parent.title}”, which is retired too: bring that "
                "one back first, or re-align this one after bringing it back.")
        current.state = current.retired_from or Objective.State.DRAFT
        current.retired_from = ""
        current.version += 1
        current.updated_by = membership.user
        current.save()
        _close_retirement_flags(membership, current)
        network.mark_changed(current.cycle)
    return current


def _close_retirement_flags(membership, objective):
    from alignment.models import RecascadeFlag

    RecascadeFlag.objects.for_org(membership.organization).filter(
        source=objective, resolution=RecascadeFlag.Resolution.OPEN,
        change=_retired_change(objective)).update(
        resolution=RecascadeFlag.Resolution.CONFIRMED, resolved_by=membership.user,
        resolved_at=timezone.now(), note=f"“{objective.title}” was brought back."[:500])


def _retired_change(objective):
    return f"“{objective.title}” was retired."


# Key results -----------------------------------------------------------------------------------


def _check_key_result(org, *, title, kind, start_value, target_value, unit, weight, owner_team,
                      owner):
    """Clean a key result's fields; returns (title, start_value, target_value, unit, weight)."""
    v = Fields(KeyResult)
    title = v.line("title", title)
    v.choice("kind", kind)
    start_value = v.decimal("start_value", start_value)
    target_value = v.decimal("target_value", target_value)
    unit = v.line("unit", unit, required=False)
    weight = v.decimal("weight", weight, required=True, positive=True)
    v.done()
    errors = {}
    if owner_team.organization_id != org.pk:
        errors["owner_team"] = "Choose a team of this organization."
    if owner is not None and not Membership.objects.for_org(org).filter(user=owner).exists():
        errors["owner"] = "The owner must be a member of the organization."
    if kind in (KeyResult.Kind.KEEP_ABOVE, KeyResult.Kind.KEEP_BELOW) and target_value is None:
        side = "above" if kind == KeyResult.Kind.KEEP_ABOVE else "below"
        errors["target_value"] = f"Give the threshold as the target: the value to stay {side}."
    if kind == KeyResult.Kind.NUMERIC:
        if start_value is None:
            errors["start_value"] = "A numeric key result needs a start value."
        if target_value is None:
            errors["target_value"] = "A numeric key result needs a target."
        if start_value is not None and target_value is not None:
            try:
                numeric_progress(start_value, target_value, start_value)
            except ValueError as e:
                errors["target_value"] = str(e)
    if errors:
        raise ValidationError(errors)
    # Only "numeric" has a start; milestones and baselines have no target either.
    if kind != KeyResult.Kind.NUMERIC:
        start_value = None
    if kind in (KeyResult.Kind.MILESTONE, KeyResult.Kind.BASELINE):
        target_value = None
    return title, start_value, target_value, unit, weight


def create_key_result(*, membership, objective, title, kind, start_value=None, target_value=None,
                      unit="", owner_team=None, owner=None, weight=1):
    org = membership.organization
    if not permissions.can_edit_objective(membership, objective):
        raise PermissionDenied("You can add key results only to objectives of teams you lead.")
    _check_cycle_open(objective.cycle)
    owner_team = owner_team or objective.team
    title, start_value, target_value, unit, weight = _check_key_result(
        org, title=title, kind=kind, start_value=start_value, target_value=target_value,
        unit=unit, weight=weight, owner_team=owner_team, owner=owner)
    with transaction.atomic():
        lock_organization(org)
        position = KeyResult.objects.for_org(org).filter(objective=objective).count()
        key_result = KeyResult.objects.create(
            organization=org, objective=objective, title=title, kind=kind,
            start_value=start_value, target_value=target_value, current_value=start_value,
            unit=unit, owner_team=owner_team, owner=owner, weight=weight, position=position,
        )
        scoring.refresh_score(org, objective.pk)
        network.mark_changed(objective.cycle)
    return key_result


def _check_rollup_units(org, key_result, unit):
    """A key result that adds up with others keeps their unit: its contributors' if its value
    is their sum or mean, the shared key result's if it adds up into one."""
    from dependencies.services import same_unit

    others = []
    if key_result.rollup:
        others = list(KeyResult.objects.for_org(org).filter(feeds=key_result))
    if key_result.feeds_id:
        others += list(KeyResult.objects.for_org(org).filter(pk=key_result.feeds_id)
                       .exclude(rollup=""))
    for other in others:
        if not same_unit(unit, other.unit):
            raise ValidationError({"unit": (
                f"Its value adds up with “{other.title}”, which counts "
                f"{other.unit.strip() or 'no unit'}. Stop that contribution before you change "
                "the unit.")})


def update_key_result(*, membership, key_result, version, title, start_value, target_value,
                      unit, owner_team, owner, weight):
    org = membership.organization
    if not permissions.can_edit_objective(membership, key_result.objective):
        raise PermissionDenied("You can edit key results only of teams you lead.")
    _check_cycle_open(key_result.objective.cycle)
    title, start_value, target_value, unit, weight = _check_key_result(
        org, title=title, kind=key_result.kind, start_value=start_value,
        target_value=target_value, unit=unit, weight=weight, owner_team=owner_team, owner=owner)
    with transaction.atomic():
        lock_organization(org)
        current = KeyResult.objects.for_org(org).select_for_update(no_key=True).get(
            pk=key_result.pk)
        if current.version != version:
            raise StaleEdit(
                "This key result was changed while you were editing it. Review it and save again.",
                version=current.version,
            )
        if unit != current.unit:
            _check_rollup_units(org, current, unit)
        current.title, current.unit, current.owner_team = title, unit, owner_team
        current.owner, current.weight = owner, weight
        old_target = current.target_value
        current.start_value, current.target_value = start_value, target_value
        current.version += 1
        current.save()
        scoring.refresh_score(org, current.objective_id)
        network.mark_changed(key_result.objective.cycle)
        if (old_target is not None
                and target_value is not None and old_target != target_value):
            _recascade(membership, key_result.objective,
                       f"The key result “{current.title}” of “{key_result.objective.title}” "
                       f"now targets {target_value.normalize():f} instead of "
                       f"{old_target.normalize():f}.")
    return current


def rollup_sentence(org, key_result, contributors=None):
    """"Its value is the sum of 3 contributing key results." for a key result whose value
    comes from the key results that feed it (accepted contributions), else "". Pass the
    contributors when they are loaded already."""
    if not key_result.rollup or key_result.is_milestone:
        return ""
    if contributors is None:
        count = KeyResult.objects.for_org(org).filter(feeds=key_result).count()
    else:
        count = len(contributors)
    if not count:
        return ""
    how = "sum" if key_result.rollup == "sum" else "mean"
    return (f"Its value is the {how} of {count} contributing key "
            f"result{'s' if count != 1 else ''}.")


def _clean_check_in(key_result, *, confidence, value, is_done, note, at=None, dated=True):
    """A check-in's fields, cleaned as the key result's kind asks: (value, is_done, note, at).
    ``dated``: check its moment (a correction keeps the moment of the check-in it replaces)."""
    v = Fields(CheckIn)
    v.choice("confidence", confidence)
    note = v.text("note", note)
    if dated:
        at = v.check_in_moment("at", at, key_result.objective.cycle)
    rolled_up = rollup_sentence(key_result.organization_id, key_result)
    if key_result.is_milestone:
        if not isinstance(is_done, bool):
            v.refuse("is_done", "Say whether the milestone is done.")
        value = None
    elif rolled_up:
        # Its value comes from its contributors: a value typed here would be overwritten by
        # the next recompute. Confidence and a note are still its owner's to give.
        if value not in (None, ""):
            v.refuse("value", f"{rolled_up} Check in on those; here, give your confidence "
                              "and a note.")
        value = None
    else:
        value = v.decimal("value", value)
        if value is None and "value" not in v.errors:
            v.refuse("value", "Enter the current value.")
    v.done()
    return value, is_done, note, at


def _check_check_in_allowed(membership, key_result):
    if not permissions.can_check_in(membership, key_result):
        raise PermissionDenied("You can check in only on key results of your teams.")
    if key_result.objective.is_retired:
        raise ValidationError("This objective is retired; check-ins are closed.")
    _check_cycle_open(key_result.objective.cycle)


def delete_key_result(*, membership, key_result):
    """Delete a key result added by mistake. One with check-ins keeps its history and is not
    deleted; nor is one that dependencies or other key results point at."""
    org = membership.organization
    objective = key_result.objective
    if not permissions.can_edit_objective(membership, objective):
        raise PermissionDenied("You can delete key results only of teams you lead.")
    _check_cycle_open(objective.cycle)
    with transaction.atomic():
        lock_organization(org)
        current = KeyResult.objects.for_org(org).select_for_update(no_key=True).get(
            pk=key_result.pk)
        reasons = []
        check_ins = CheckIn.objects.for_org(org).filter(key_result=current).count()
        if check_ins:
            reasons.append(f"it has {check_ins} check-in{'s' if check_ins > 1 else ''}, and a "
                           "key result's history is kept")
        deps = Dependency.objects.for_org(org).filter(
            Q(downstream_key_result=current) | Q(upstream_key_result=current)).count()
        if deps:
            reasons.append(f"{deps} dependenc{'ies name' if deps > 1 else 'y names'} it")
        contributors = KeyResult.objects.for_org(org).filter(feeds=current).count()
        if contributors:
            reasons.append(f"{contributors} key result"
                           f"{'s contribute' if contributors > 1 else ' contributes'} to it")
        if current.feeds_id:
            reasons.append(f"it contributes to “{current.feeds.title}”")
        if reasons:
            advice = "Edit it instead." if check_ins else "Remove those links first."
            raise ValidationError(f"“{current.title}” cannot be deleted: "
                                  f"{'; '.join(reasons)}. {advice}")
        current.delete()
        scoring.refresh_score(org, objective.pk)
        network.mark_changed(objective.cycle)


def record_check_in(*, membership, key_result, confidence, value=None, is_done=None, note="",
                    at=None, source=CheckIn.Source.PERSON):
    """Append a check-in and copy its value and confidence onto the key result. ``source``:
    ``API`` when a person's token reported it."""
    _check_check_in_allowed(membership, key_result)
    value, is_done, note, at = _clean_check_in(key_result, confidence=confidence, value=value,
                                               is_done=is_done, note=note, at=at)
    return _append_check_in(membership.organization, key_result, value=value, is_done=is_done,
                            confidence=confidence, note=note, at=at, author=membership.user,
                            source=source)


def record_source_check_in(*, key_result, source, value=None, is_done=None, confidence=None,
                           note="", at=None):
    """Append a check-in that no person typed: from a KR's data source, an organization's
    service token or an import (``source``). The caller has authenticated the sender; the
    key result must still take check-ins (not retired, its cycle open). Without a
    ``confidence`` it keeps the key result's current one (on track for a first check-in)."""
    if key_result.objective.is_retired:
        raise ValidationError("This objective is retired; check-ins are closed.")
    _check_cycle_open(key_result.objective.cycle)
    confidence = confidence or key_result.confidence or Health.ON_TRACK
    value, is_done, note, at = _clean_check_in(key_result, confidence=confidence, value=value,
                                               is_done=is_done, note=note, at=at)
    return _append_check_in(key_result.organization, key_result, value=value, is_done=is_done,
                            confidence=confidence, note=note, at=at, author=None,
                            source=source)


def _append_check_in(org, key_result, *, value, is_done, confidence, note, at, author, source):
    objective = key_result.objective
    with transaction.atomic():
        lock_organization(org)
        check_in = CheckIn.objects.create(
            organization=org, key_result=key_result, value=value, is_done=is_done,
            confidence=confidence, note=note, author=author, created_at=at, source=source,
        )
        webhooks.emit(org, webhooks.Event.CHECK_IN, webhooks.check_in_data(check_in))
        changes = {"confidence": confidence, "last_check_in_at": at}
        if key_result.is_milestone:
            changes["is_done"] = bool(is_done)
        elif value is not None:  # None: a rolled-up key result, its contributors give it
            changes["current_value"] = value
        # A check-in dated before the latest one joins the history without replacing what the
        # key result shows now.
        latest = KeyResult.objects.for_org(org).filter(pk=key_result.pk).filter(
            Q(last_check_in_at__isnull=True) | Q(last_check_in_at__lte=at)).update(**changes)
        if latest:  # one history entry, from the values in hand: no read
            history.record_change(key_result, {f: (getattr(key_result, f), v)
                                               for f, v in changes.items()},
                                  actor=history.actor_of_check_in(author, source))
            for field, new in changes.items():
                setattr(key_result, field, new)
            network.mark_changed(objective.cycle)
    return check_in


# Corrections -----------------------------------------------------------------------------------


def _claim_mistake(membership, check_in, how, reason):
    """Mark ``check_in`` corrected (``how``: edited or deleted), by whom and when. Call it under
    the organization lock; refuses one that someone corrected already."""
    org = membership.organization
    current = CheckIn.objects.for_org(org).select_for_update(no_key=True).get(pk=check_in.pk)
    if current.corrected_at is not None:
        who = current.corrected_by.display_name if current.corrected_by else "Someone"
        raise ValidationError(f"{who} already {current.get_correction_display().lower()} this "
                              "check-in. Reload the page to see the history as it is now.")
    current.correction, current.corrected_at = how, timezone.now()
    current.corrected_by, current.correction_note = membership.user, reason
    current.save(update_fields=["correction", "corrected_at", "corrected_by",
                                "correction_note"])
    return current


def _clean_reason(reason):
    v = Fields(CheckIn)
    reason = v.line("reason", reason or "", required=False, field="correction_note")
    v.done()
    return reason


def _recompute_key_result(org, key_result):
    """Copy the latest check-in that stands onto the key result (its start when none does).
    A rolled-up key result keeps the value its contributors give it."""
    kr = KeyResult.objects.for_org(org).select_for_update(no_key=True).get(pk=key_result.pk)
    latest = CheckIn.objects.for_org(org).live().filter(key_result=kr).order_by(
        "-created_at", "-pk").first()
    kr.confidence = latest.confidence if latest else ""
    kr.last_check_in_at = latest.created_at if latest else None
    fields = ["confidence", "last_check_in_at"]
    if kr.is_milestone:
        kr.is_done = bool(latest and latest.is_done)
        fields.append("is_done")
    elif not kr.rollup:
        kr.current_value = latest.value if latest else kr.start_value
        fields.append("current_value")
    kr.save(update_fields=fields)
    network.mark_changed(key_result.objective.cycle)
    return kr


def correct_check_in(*, membership, check_in, confidence, value=None, is_done=None, note="",
                     reason=""):
    """Replace a mistaken check-in: the old one stays in the history, marked corrected by whom
    and when; the new one reports on the same moment. The key result shows the latest check-in
    that stands."""
    org = membership.organization
    key_result = check_in.key_result
    _check_check_in_allowed(membership, key_result)
    value, is_done, note, _ = _clean_check_in(key_result, confidence=confidence, value=value,
                                              is_done=is_done, note=note, dated=False)
    reason = _clean_reason(reason)
    with transaction.atomic():
        lock_organization(org)
        old = _claim_mistake(membership, check_in, CheckIn.Correction.EDITED, reason)
        new = CheckIn.objects.create(
            organization=org, key_result=key_result, value=value, is_done=is_done,
            confidence=confidence, note=note, author=membership.user,
            created_at=old.created_at, corrects=old)
        _recompute_key_result(org, key_result)
    return new


def delete_check_in(*, membership, check_in, reason=""):
    """Withdraw a mistaken check-in: it stays in the history, marked deleted by whom and when,
    and no longer counts; the key result shows the latest one that stands."""
    org = membership.organization
    key_result = check_in.key_result
    _check_check_in_allowed(membership, key_result)
    reason = _clean_reason(reason)
    with transaction.atomic():
        lock_organization(org)
        old = _claim_mistake(membership, check_in, CheckIn.Correction.DELETED, reason)
        _recompute_key_result(org, key_result)
    return old


def teams_for_objectives(membership):
    """The teams this person may add objectives for, in tree order, as a query (not loaded: an
    org admin may choose any of thousands). The same rule as ``can_edit_team_okrs``."""
    teams = Team.objects.for_org(membership.organization).order_by("tree_id", "lft")
    if membership.role in permissions.MANAGERS:
        return teams
    if membership.role == Role.TEAM_LEAD:
        return teams.filter(pk__in=permissions.led_team_ids(membership))
    return teams.none()
