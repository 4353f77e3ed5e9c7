"""The end of a cycle: proposed and confirmed scores, score bands, the close form of an
objective, carrying an unfinished objective over, and closing the cycle.

Scoring opens two weeks before a cycle ends and stays open until the cycle is closed; a closed
cycle is read-only, so scores and close forms are written before closing. Carrying over writes
only into the next cycle, so it is allowed after closing too.
"""

from datetime import timedelta
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

import history as recorded
from dependencies import network
from integrations import webhooks
from orgs import permissions
from orgs.models import Cycle
from orgs.services import lock_organization
from orgs.validation import Fields

from . import kinds
from .models import CheckIn, Commitment, KeyResult, Objective, ObjectiveClose, ObjectiveParent
from .progress import NUMERIC, THRESHOLD_KINDS

SCORING_WINDOW = timedelta(days=14)
# A score the owner gives that is within this of the proposal confirms it.
SAME_SCORE = 0.005


# Pure rules -------------------------------------------------------------------------------------


def propose(kr):
    """The score the data proposes for a key result, 0.0-1.0 (two decimals), by its kind
    (``okrs.kinds.proposed_score``). A keep above / keep below key result reads its live
    check-ins: ``attach_check_ins`` loads them for many key results in one query; without it,
    they are read here. The other kinds read the values stored on the key result. None when its
    stored values cannot be read (the owner then gives a score and a reason)."""
    if kr.kind in THRESHOLD_KINDS:
        check_ins = getattr(kr, "live_check_ins", None)
        if check_ins is None:
            check_ins = list(CheckIn.objects.filter(key_result=kr, corrected_at__isnull=True)
                             .order_by("created_at", "pk"))
    else:
        check_ins = []
    try:
        return kinds.proposed_score(kr, check_ins)
    except (ValueError, TypeError, ArithmeticError, InvalidOperation):
        return None


def attach_check_ins(key_results):
    """Load the live check-ins (oldest first) of the keep above / keep below key results among
    ``key_results`` in one query, for ``propose``."""
    wanted = {kr.pk: kr for kr in key_results if kr.kind in THRESHOLD_KINDS}
    for kr in wanted.values():
        kr.live_check_ins = []
    if wanted:
        for c in (CheckIn.objects.filter(key_result__in=list(wanted), corrected_at__isnull=True)
                  .order_by("created_at", "pk")):
            wanted[c.key_result_id].live_check_ins.append(c)
    return key_results


def window_opens(cycle):
    """The first day of the cycle's scoring window: two weeks before it ends."""
    return cycle.end_date - SCORING_WINDOW


def in_scoring_window(cycle, today=None):
    """Scores and close forms can be written: the last two weeks of the cycle, and after it
    ends until it is closed."""
    today = today or timezone.localdate()
    return not cycle.is_closed and today >= window_opens(cycle)


def weighted_score(key_results):
    """The objective's score: the mean of its key results' scores, each by its weight, once
    every one is scored (None before, or with no key result)."""
    key_results = list(key_results)
    if not key_results or any(kr.score is None for kr in key_results):
        return None
    total = sum(Decimal(kr.weight) for kr in key_results)
    if total <= 0:
        return None
    mean = sum(Decimal(str(kr.score)) * Decimal(kr.weight) for kr in key_results) / total
    return round(float(min(Decimal(1), max(Decimal(0), mean))), 2)


def refresh_score(org, objective_id):
    """Store the objective's score again from its key results, after one was added, deleted or
    reweighted (a new key result is unscored: the objective has no score until it is). One
    query to read, one to write when the score moved."""
    rows = list(KeyResult.objects.for_org(org).filter(objective_id=objective_id)
                .values_list("score", "weight"))
    score = weighted_score(SimpleNamespace(score=s, weight=w) for s, w in rows)
    stale = Objective.objects.for_org(org).filter(pk=objective_id)
    stale = stale.filter(score__isnull=False) if score is None else stale.exclude(score=score)
    stale.update(score=score)


BANDS = {
    # (commitment, band): what the score says, in words.
    ("aspirational", "strong"): "A strong result: 0.7 or more on a stretch objective.",
    ("aspirational", "progress"): "Real progress: between 0.4 and 0.7 on a stretch objective.",
    ("aspirational", "missed"): "Missed: below 0.4 on a stretch objective.",
    ("committed", "done"): "Done, as committed.",
    ("committed", "short"): "Below 1.0 on a commitment: the close form says why.",
}


def band(commitment, score):
    """(key, words) for an objective's score, or None while it has no score. Aspirational: 0.7
    and above is strong, 0.4 to 0.7 progress, below 0.4 missed. Committed: 1.0 is done, below
    needs a reason."""
    if score is None:
        return None
    if commitment == Commitment.ASPIRATIONAL:
        key = "strong" if score >= 0.7 else "progress" if score >= 0.4 else "missed"
    else:
        key = "done" if score >= 1.0 - SAME_SCORE else "short"
    return key, BANDS[(commitment if commitment in ("aspirational", "committed")
                       else "committed", key)]


def is_unfinished(kr):
    """A key result that did not reach its target (a milestone not done)."""
    if kr.is_milestone:
        return not kr.is_done
    proposal = propose(kr)
    return proposal is None or proposal < 1.0


# Permissions ------------------------------------------------------------------------------------


def can_score(membership, kr):
    """Leads of the key result's owner team or of its objective's team (and the leads above
    them), alignment leads and admins."""
    return (not kr.objective.is_retired) and (
        permissions.can_edit_team_okrs(membership, kr.owner_team_id)
        or permissions.can_edit_team_okrs(membership, kr.objective.team_id))


def can_close_objective(membership, objective):
    return permissions.can_edit_objective(membership, objective)


def _check_window(cycle, today=None):
    if cycle.is_closed:
        raise ValidationError(
            "This cycle is closed; its scores and close forms can no longer change.")
    if not in_scoring_window(cycle, today):
        raise ValidationError(
            f"Scoring opens on {window_opens(cycle):%b %-d, %Y}, two weeks before "
            f"{cycle.name} ends.")


def _cycle_now(org, objective):
    """The objective's cycle as stored now: read under the organization lock, which closing a
    cycle takes too, so a score or close form never lands in a cycle closed a moment before."""
    return Cycle.objects.for_org(org).get(pk=objective.cycle_id)


# Scoring ----------------------------------------------------------------------------------------


def parse_score(value):
    """A score typed by a person: a number from 0 to 1 (a comma works as the decimal point).
    Returns a float with two decimals, or raises ValueError with the message to show."""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        number = Decimal(str(value))
    else:
        try:
            number = Decimal(str(value).strip().replace(",", "."))
        except (InvalidOperation, ValueError, TypeError):
            raise ValueError("Enter a score from 0 to 1, such as 0.7.") from None
    if not number.is_finite() or number < 0 or number > 1:
        raise ValueError("Enter a score from 0 to 1, such as 0.7.")
    return round(float(number), 2)


def score_key_results(*, membership, objective, scores, today=None):
    """Confirm or override the proposed scores of an objective's key results in one go.
    ``scores`` maps a key result's id to (score, reason); a blank score leaves that key result
    as it is. An override (a score other than the proposal) needs a reason. Field errors are
    named ``score_<id>`` and ``reason_<id>``. Returns the objective, with its score once every
    key result is scored."""
    org = membership.organization
    _check_window(objective.cycle, today)
    with transaction.atomic():
        lock_organization(org)
        _check_window(_cycle_now(org, objective), today)  # closed meanwhile?
        krs = {kr.pk: kr for kr in KeyResult.objects.for_org(org).filter(objective=objective)
               .select_related("objective__team", "objective__cycle")
               .select_for_update(no_key=True, of=("self",))}
        attach_check_ins(list(krs.values()))
        v = Fields(KeyResult)
        changed = []
        for pk, (score, reason) in scores.items():
            kr = krs.get(pk)
            if kr is None:
                raise ValidationError("That key result is not one of this objective's.")
            if score is None or score == "":
                continue
            if not can_score(membership, kr):
                raise PermissionDenied(
                    "You can score only the key results of teams you lead.")
            try:
                score = parse_score(score)
            except ValueError as e:
                v.refuse(f"score_{pk}", str(e))
                continue
            reason = v.line(f"reason_{pk}", reason or "", required=False, field="score_reason")
            proposal = propose(kr)
            overridden = proposal is None or abs(score - proposal) > SAME_SCORE
            if overridden and not reason:
                v.refuse(f"reason_{pk}", (
                    f"Say why the score differs from the proposed {proposal:.2f}."
                    if proposal is not None else "Say how you arrived at this score."))
                continue
            reason = reason if overridden else ""
            if kr.score == score and kr.score_reason == reason:
                continue  # already scored so: who scored it stays
            kr.proposed_score, kr.score, kr.score_reason = proposal, score, reason
            kr.scored_by, kr.scored_at = membership.user, timezone.now()
            changed.append(kr)
        v.done()
        KeyResult.objects.for_org(org).bulk_update(
            changed, ["proposed_score", "score", "score_reason", "scored_by", "scored_at"])
        objective.score = weighted_score(krs.values())
        Objective.objects.for_org(org).filter(pk=objective.pk).update(score=objective.score)
    return objective


def score_key_result(*, membership, key_result, score, reason="", today=None):
    """Score one key result (see ``score_key_results``); returns it as stored."""
    score_key_results(membership=membership, objective=key_result.objective,
                      scores={key_result.pk: (score, reason)}, today=today)
    return KeyResult.objects.for_org(membership.organization).get(pk=key_result.pk)


# The close form ---------------------------------------------------------------------------------


def close_objective(*, membership, objective, outcome, learned="", differently="", next_step,
                    today=None):
    """Write (or rewrite) an objective's close form: how it ended, what the team learned, what
    it would do differently and what happens next."""
    org = membership.organization
    if not can_close_objective(membership, objective):
        raise PermissionDenied("Only the team's leads close its objectives.")
    _check_window(objective.cycle, today)
    v = Fields(ObjectiveClose)
    v.choice("outcome", outcome)
    v.choice("next_step", next_step)
    learned = v.text("learned", learned, required=True)
    differently = v.text("differently", differently)
    v.done()
    with transaction.atomic():
        lock_organization(org)
        _check_window(_cycle_now(org, objective), today)  # closed meanwhile?
        close, _ = ObjectiveClose.objects.for_org(org).update_or_create(
            organization=org, objective=objective, defaults={
                "outcome": outcome, "learned": learned, "differently": differently,
                "next_step": next_step, "closed_by": membership.user,
                "closed_at": timezone.now()})
    return close


# Carrying over ----------------------------------------------------------------------------------


class NoNextCycle(ValidationError):
    """No cycle starts after this one ends: one must be opened first."""


def next_cycle(org, cycle):
    """The earliest cycle that starts when or after ``cycle`` ends (closed ones aside), or
    None."""
    return (Cycle.objects.for_org(org).filter(start_date__gte=cycle.end_date)
            .exclude(status=Cycle.Status.CLOSED).order_by("start_date", "pk").first())


def carried_copy(org, objective, cycle):
    """The live copy of ``objective`` in ``cycle``, if it was carried over there."""
    return (Objective.objects.for_org(org).live().filter(carried_from=objective, cycle=cycle)
            .first())


def carry_over(*, membership, objective, today=None):
    """Copy an unfinished objective and its unfinished key results into the next cycle, as a
    draft that goes through review as usual: linked to the original, each numeric key result
    starting from where it ended. Returns the copy."""
    org = membership.organization
    if not permissions.can_edit_team_okrs(membership, objective.team_id) or objective.is_retired:
        raise PermissionDenied("Only the team's leads carry its objectives over.")
    today = today or timezone.localdate()
    if today < window_opens(objective.cycle):
        raise ValidationError(
            f"Carrying over opens on {window_opens(objective.cycle):%b %-d, %Y}, two weeks "
            f"before {objective.cycle.name} ends.")
    target = next_cycle(org, objective.cycle)
    if target is None:
        raise NoNextCycle(
            f"No cycle starts after {objective.cycle.name} ends. Open the next cycle first, "
            "then carry this objective over.")
    with transaction.atomic():
        lock_organization(org)
        krs = attach_check_ins(list(KeyResult.objects.for_org(org).filter(objective=objective)
                                    .select_related("objective__cycle")))
        unfinished = [kr for kr in krs if is_unfinished(kr)]
        if krs and not unfinished:
            raise ValidationError("Every key result reached its target: nothing to carry over.")
        existing = carried_copy(org, objective, target)
        if existing is not None:
            raise ValidationError(f"It is already carried over to {target.name}.")
        # Its parent's copy, when the parent was carried over too; else the team re-aligns the
        # draft before proposing it.
        parent = carried_copy(org, objective.parent, target) if objective.parent_id else None
        copy = Objective.objects.create(
            organization=org, cycle=target, team=objective.team, parent=parent,
            title=objective.title, why=objective.why, success=objective.success,
            tradeoffs=objective.tradeoffs, is_local=objective.is_local, theme=objective.theme,
            commitment=objective.commitment, strategic_goal=objective.strategic_goal,
            progress_mode=objective.progress_mode,
            key_results_weight=objective.key_results_weight, weight=objective.weight,
            state=Objective.State.DRAFT, carried_from=objective,
            created_by=membership.user, updated_by=membership.user)
        copies = KeyResult.objects.bulk_create([
            KeyResult(organization=org, objective=copy, title=kr.title, kind=kr.kind,
                      start_value=kr.current_value if kr.kind == NUMERIC else None,
                      target_value=(kr.target_value if kr.kind == NUMERIC
                                    or kr.kind in THRESHOLD_KINDS else None),
                      current_value=kr.current_value if not kr.is_milestone else None,
                      unit=kr.unit, owner_team=kr.owner_team, owner=kr.owner, weight=kr.weight,
                      position=position, carried_from=kr)
            for position, kr in enumerate(unfinished)])
        if parent is not None:
            _carry_extra_parents(org, objective, copy, target)
        _carry_key_result_links(membership, objective, copy, target,
                                dict(zip(unfinished, copies, strict=True)))
        network.mark_changed(target)
    return copy


def _carry_extra_parents(org, objective, copy, target):
    """The parents ``objective`` also contributed to, as their copies in ``target`` where they
    were carried over too, each with its share; the others are left for the team to choose."""
    from .services import _set_extra_parents

    extras = []
    for link in ObjectiveParent.objects.for_org(org).filter(objective=objective).order_by("pk"):
        parent_copy = carried_copy(org, link.parent, target)
        if parent_copy is not None and parent_copy.pk != copy.parent_id:
            extras.append((parent_copy, link.share))
    if extras:
        _set_extra_parents(org, copy, extras)


def _carry_key_result_links(membership, objective, copy, target, copies):
    """The links of the carried key results that hold in ``target``: where the other end was
    carried over too (before or after this objective), the copies are linked as the originals
    were. A key result aligned to another team's objective aligns to its copy; one that
    fed another team's key result asks again to feed its copy (the request goes to that key
    result's owners, as any; accepted at once when the person carrying may answer it). Links
    whose other end was not carried over are left for the team to make again."""
    from dependencies.models import Contribution
    from dependencies.services import carry_contribution

    org = membership.organization
    live_in_target = KeyResult.objects.for_org(org).filter(objective__cycle=target).exclude(
        objective__state=Objective.State.RETIRED)
    originals = [kr.pk for kr in copies]
    # Aligned: these key results to a copy of the objective they aligned to, and copies of key
    # results that aligned to this objective to its copy.
    aligned = {kr.aligned_to_id for kr in copies if kr.aligned_to_id}
    if aligned:
        objective_copy = {o.carried_from_id: o for o in Objective.objects.for_org(org).live()
                          .filter(cycle=target, carried_from_id__in=aligned).only("pk",
                                                                                "carried_from")}
        for kr, kr_copy in copies.items():
            if kr.aligned_to_id in objective_copy:
                recorded.update(KeyResult.objects.for_org(org).filter(pk=kr_copy.pk),
                                aligned_to=objective_copy[kr.aligned_to_id])
    aligned_here = list(live_in_target.filter(carried_from__aligned_to=objective,
                                              aligned_to__isnull=True).values_list("pk", flat=True))
    if aligned_here:
        recorded.update(KeyResult.objects.for_org(org).filter(pk__in=aligned_here),
                        aligned_to=copy)
    # Fed: each accepted contribution with both ends carried over is asked for again.
    accepted = list(Contribution.objects.for_org(org).filter(
        Q(key_result_id__in=originals) | Q(shared_id__in=originals),
        status=Contribution.Status.ACCEPTED).values_list("key_result_id", "shared_id", "rollup"))
    ends = {pk for pair in accepted for pk in pair[:2]}
    copy_of = {kr.pk: kr_copy for kr, kr_copy in copies.items()}
    copy_of.update({c.carried_from_id: c for c in live_in_target.filter(
        carried_from_id__in=ends - set(copy_of)).select_related("objective__cycle")})
    for feeder, shared, rollup in accepted:
        if feeder in copy_of and shared in copy_of:
            carry_contribution(
                membership=membership, key_result=copy_of[feeder], shared=copy_of[shared],
                rollup=rollup, note=f"Carried over: it contributed in {objective.cycle.name}.")


HISTORY_BACK = 5


def history(org, objective):
    """The objective across cycles, oldest first: the objectives it continues (up to five
    back) and the copies that continue it (two levels on). Two queries, whatever the length;
    one for an objective that continues none (most of them)."""
    back = []
    if objective.carried_from_id is not None:
        related = ["cycle", "team"]
        path = "carried_from"
        for _ in range(HISTORY_BACK):
            related += [path, f"{path}__cycle"]
            path += "__carried_from"
        node = Objective.objects.for_org(org).select_related(*related).get(pk=objective.pk)
        for _ in range(HISTORY_BACK):
            if node.carried_from_id is None:
                break
            node = node.carried_from
            back.append(node)
    # Copies of it and copies of those: "carried from it or from one of its copies", so that
    # PostgreSQL reads both through the index on carried_from (an OR through a join read every
    # objective of every organization: 30-130 ms on the 5,000-person tenant).
    it_and_copies = Objective.objects.for_org(org).filter(
        Q(pk=objective.pk) | Q(carried_from=objective)).values("pk")
    on = list(Objective.objects.for_org(org).filter(carried_from__in=it_and_copies)
              .select_related("cycle").order_by("cycle__start_date", "pk")[:6])
    if not back and not on:
        return []
    return [*reversed(back), objective, *on]


# Closing the cycle -------------------------------------------------------------------------------


def close_cycle(*, membership, cycle, anyway=False):
    """Close a cycle: it becomes read-only. While key results are unscored or objectives have no
    close form, it closes only when asked to close anyway."""
    from .selectors import closing_status

    org = membership.organization
    if not permissions.can_open_console(membership):
        raise PermissionDenied("Only org admins and alignment leads close cycles.")
    with transaction.atomic():
        lock_organization(org)
        current = Cycle.objects.for_org(org).select_for_update(no_key=True).get(pk=cycle.pk)
        if current.is_closed:
            raise ValidationError(f"{current.name} is closed already.")
        status = closing_status(org, current)
        if status["outstanding"] and not anyway:
            raise ValidationError(
                f"{status['unscored']} key results are not scored and {status['unclosed']} "
                "objectives have no close form yet. Close anyway, or wait for them.")
        current.status, current.closed_at, current.closed_by = (
            Cycle.Status.CLOSED, timezone.now(), membership.user)
        current.save(update_fields=["status", "closed_at", "closed_by"])
        webhooks.emit(org, webhooks.Event.CYCLE_CLOSED, webhooks.cycle_data(current))
    return current


def attach_scorers(key_results):
    """Set ``.scorer`` (who scored it, or None) on each key result: one query for the list."""
    from django.contrib.auth import get_user_model

    key_results = list(key_results)
    ids = {kr.scored_by_id for kr in key_results if kr.scored_by_id}
    users = get_user_model().objects.in_bulk(ids) if ids else {}
    for kr in key_results:
        kr.scorer = users.get(kr.scored_by_id)
    return key_results
