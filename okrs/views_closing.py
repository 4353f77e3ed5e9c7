"""The end of a cycle's pages: scoring an objective's key results, its close form, carrying it
over, and (in the console) closing the cycle."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from orgs.confirm import is_confirmed
from orgs.decorators import org_view
from orgs.forms import submit
from orgs.models import Cycle
from orgs.permissions import can_edit_team_okrs, can_open_console

from . import scoring, selectors
from .access import access_objective
from .forms import CloseForm, ScoreForm
from .models import ObjectiveClose


def _objective_url(request, objective):
    return reverse("objective", args=[request.org.slug, objective.pk])


@org_view
@require_http_methods(["GET", "POST"])
def objective_score(request, objective_pk):
    """The scoring form of an objective: each key result the person may score, with the score
    the data proposes; they confirm it or give their own with a reason."""
    objective = access_objective(request.membership, objective_pk)
    rows = [kr for kr in objective.key_results.all()
            if scoring.can_score(request.membership, kr)]
    if not rows:
        raise PermissionDenied("You can score only the key results of teams you lead.")
    if request.method == "GET" and not scoring.in_scoring_window(objective.cycle):
        return redirect(_objective_url(request, objective))
    scoring.attach_scorers(rows)
    scoring.attach_check_ins(rows)
    for kr in rows:
        kr.proposal = scoring.propose(kr)
    form = ScoreForm(request.POST or None, rows=rows)
    if submit(request, form, lambda data: scoring.score_key_results(
            membership=request.membership, objective=objective, scores=form.scores())):
        messages.success(request, "Scores saved. Next, the close form: how it ended and what "
                                  "you learned.")
        return redirect(_objective_url(request, objective))
    return render(request, "okrs/score_form.html", {
        "objective": objective, "form": form, "rows": rows,
        "others": [kr for kr in objective.key_results.all() if kr not in rows]})


@org_view
@require_http_methods(["GET", "POST"])
def objective_close(request, objective_pk):
    """The close form: how the objective ended, what the team learned, what it would do
    differently and what happens next."""
    objective = access_objective(request.membership, objective_pk, write=True)
    if request.method == "GET" and not scoring.in_scoring_window(objective.cycle):
        return redirect(_objective_url(request, objective))
    close = ObjectiveClose.objects.for_org(request.org).filter(objective=objective).first()
    initial = {} if close is None else {
        "outcome": close.outcome, "learned": close.learned, "differently": close.differently,
        "next_step": close.next_step}
    form = CloseForm(request.POST or None, initial=initial)
    saved = submit(request, form, lambda data: scoring.close_objective(
        membership=request.membership, objective=objective, **data))
    if saved:
        messages.success(request, "Close form saved.")
        if saved.next_step == ObjectiveClose.NextStep.CARRY_OVER:
            return redirect("objective_carry_over", request.org.slug, objective.pk)
        return redirect(_objective_url(request, objective))
    return render(request, "okrs/close_form.html", {"objective": objective, "form": form})


@org_view
@require_http_methods(["GET", "POST"])
def objective_carry_over(request, objective_pk):
    """What carrying over copies and where to (GET), and the copy (POST)."""
    objective = access_objective(request.membership, objective_pk)
    if not can_edit_team_okrs(request.membership, objective.team_id):
        raise PermissionDenied("Only the team's leads carry its objectives over.")
    target = scoring.next_cycle(request.org, objective.cycle)
    error = None
    if request.method == "POST":
        try:
            copy = scoring.carry_over(membership=request.membership, objective=objective)
        except ValidationError as e:
            error = " ".join(e.messages)
        else:
            messages.success(request, f"Carried over to {copy.cycle.name} as a draft. Align it "
                                      "and propose it for review there.")
            return redirect(_objective_url(request, copy))
    copy = scoring.carried_copy(request.org, objective, target) if target else None
    return render(request, "okrs/carry_over.html", {
        "objective": objective, "target": target, "copy": copy, "error": error,
        "unfinished": [kr for kr in scoring.attach_check_ins(list(objective.key_results.all()))
                       if scoring.is_unfinished(kr)],
        "can_open_cycle": can_open_console(request.membership)})


@org_view(console=True)
@require_http_methods(["GET", "POST"])
def console_cycle_close(request, cycle_pk):
    """Closing a cycle: what is not scored or closed yet and who owes it, then close (anyway)."""
    cycle = Cycle.objects.for_org(request.org).filter(pk=cycle_pk).first()
    if cycle is None:
        raise Http404("No such cycle.")
    error = None
    if is_confirmed(request):
        try:
            scoring.close_cycle(membership=request.membership, cycle=cycle,
                                anyway=request.POST.get("anyway") == "yes")
        except ValidationError as e:
            error = " ".join(e.messages)
        else:
            messages.success(request, f"{cycle.name} is closed. Its pages now show final "
                                      "scores.")
            return redirect("console_cycles", request.org.slug)
    elif request.method == "POST":
        error = "Confirm to close the cycle."
    status = None if cycle.is_closed else cached_closing_status(request.org, cycle)
    return render(request, "orgs/console/cycle_close.html", {
        "cycle": cycle, "status": status, "error": error, "section": "cycles"})


CLOSING_TTL = 600


def cached_closing_status(org, cycle):
    """``selectors.closing_status`` (counts over every key result and objective of the cycle),
    computed once per change of what it reads: scores, close forms, objectives, key results,
    teams and their leads move the organization's "review" version. Closing itself counts
    afresh (``scoring.close_cycle``)."""
    from orgs import versions

    return versions.read_through(org.pk, "review", f"closing:{org.pk}:{cycle.pk}",
                                 lambda: selectors.closing_status(org, cycle), CLOSING_TTL)


def objective_closing(request, objective, *, history=None):
    """The end-of-cycle part of an objective's page: whether scoring is open and who may do
    what, its close form, its history across cycles (``history``: already read by
    ``scoring.history``). Three queries at most."""
    cycle = objective.cycle
    window = scoring.in_scoring_window(cycle)
    m = request.membership
    close = ObjectiveClose.objects.for_org(request.org).filter(objective=objective).select_related(
        "closed_by").first() if (window or cycle.is_closed) else None
    may_lead = can_edit_team_okrs(m, objective.team_id) and not objective.is_retired
    krs = scoring.attach_scorers(objective.key_results.all())
    if history is None:
        history = scoring.history(request.org, objective)
    carried = any(h.carried_from_id == objective.pk for h in history)
    return {
        "scoring_open": window and not objective.is_retired,
        "can_score": window and any(scoring.can_score(m, kr) for kr in krs),
        "can_close_form": window and scoring.can_close_objective(m, objective),
        "can_carry_over": may_lead and not carried and (window or cycle.is_closed) and (
            not krs or any(scoring.is_unfinished(kr)
                           for kr in scoring.attach_check_ins(list(krs)))),
        "objective_close": close,
        "cycle_history": history,
    }


def team_scoring(membership, team, cycle, objectives):
    """The team page's "Score your key results" prompt: in the scoring window, for its leads,
    the team's objectives with key results still to score (from the loaded objectives)."""
    if cycle is None or not scoring.in_scoring_window(cycle) or not can_edit_team_okrs(
            membership, team.pk):
        return None
    rows = [(o, sum(1 for kr in o.key_results.all() if kr.score is None)) for o in objectives]
    return {"objectives": [(o, n) for o, n in rows if n], "ends": cycle.end_date}
