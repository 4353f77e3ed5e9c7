"""The strategy page, and the admin console's perspectives and strategic goals."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from orgs.confirm import ask_first, confirm_page, is_confirmed
from orgs.decorators import org_view, post_only
from orgs.forms import submit
from orgs.permissions import can_manage_strategy

from . import strategy
from .forms import PerspectiveForm, StrategicGoalForm
from .models import Perspective, StrategicGoal

CONSOLE_GOALS = 30


def _get(request, model, pk):
    """A row of this organization, or 404 whether it is missing or someone else's."""
    row = model.objects.for_org(request.org).filter(pk=pk).first()
    if row is None:
        raise Http404(f"No such {model._meta.verbose_name}.")
    return row


def _to_console(request):
    return redirect("console_strategy", request.org.slug)


@org_view
def strategy_page(request):
    """Everyone in the organization: the goals by perspective, with the company objectives that
    served each in the last cycles and their scores."""
    return render(request, "okrs/strategy.html", {
        **strategy.strategy_page(request.org), "nav": "strategy",
        "can_manage": can_manage_strategy(request.membership)})


@org_view(console=True)
@require_http_methods(["GET", "POST"])
def console_strategy(request):
    """The perspectives (add, rename, reorder, remove) and the goals, a page at a time."""
    form = PerspectiveForm(request.POST or None)
    added = submit(request, form, lambda data: strategy.add_perspective(
        membership=request.membership, **data))
    if added:
        messages.success(request, f"Perspective “{added.name}” added.")
        return _to_console(request)
    goals = (StrategicGoal.objects.for_org(request.org).select_related("perspective")
             .order_by("is_archived", "position", "pk"))
    return render(request, "orgs/console/strategy.html", {
        "form": form, "perspectives": list(Perspective.objects.for_org(request.org)
                                           [:strategy.MAX_PERSPECTIVES]),
        "goals": Paginator(goals, CONSOLE_GOALS).get_page(request.GET.get("page")),
        "section": "strategy"})


@org_view(console=True)
@require_http_methods(["GET", "POST"])
def console_perspective(request, perspective_pk):
    """Rename a perspective (its own small form), or move it up or down."""
    perspective = _get(request, Perspective, perspective_pk)
    action = request.POST.get("action")
    if action in ("up", "down"):
        strategy.move_perspective(membership=request.membership, perspective=perspective,
                                  up=action == "up")
        return _to_console(request)
    form = PerspectiveForm(request.POST or None, initial={"name": perspective.name})
    if submit(request, form, lambda data: strategy.rename_perspective(
            membership=request.membership, perspective=perspective, **data)):
        messages.success(request, f"Perspective renamed to “{perspective.name}”.")
        return _to_console(request)
    return render(request, "orgs/console/perspective_form.html", {
        "form": form, "perspective": perspective, "section": "strategy"})


@org_view(console=True)
@require_http_methods(["GET", "POST"])
def console_perspective_remove(request, perspective_pk):
    perspective = _get(request, Perspective, perspective_pk)
    if request.method == "GET":
        goals = StrategicGoal.objects.for_org(request.org).filter(perspective=perspective).count()
        return confirm_page(
            request, question=f"Remove the perspective “{perspective.name}”?",
            consequence=(f"Its {goals} goal{'s' if goals != 1 else ''} stay, without a "
                         "perspective." if goals else "No goal is in it."),
            action=request.path, button="Remove",
            cancel=reverse("console_strategy", args=[request.org.slug]),
            template="orgs/console/confirm.html", extra={"section": "strategy"})
    if not is_confirmed(request):
        return ask_first(request)
    strategy.remove_perspective(membership=request.membership, perspective=perspective)
    messages.success(request, f"Perspective “{perspective.name}” removed; its goals are "
                              "ungrouped.")
    return _to_console(request)


@org_view(console=True)
@require_http_methods(["GET", "POST"])
def console_goal_form(request, goal_pk=None):
    goal = _get(request, StrategicGoal, goal_pk) if goal_pk is not None else None
    initial = {"perspective": request.GET.get("perspective")}
    if goal is not None:
        initial = {"title": goal.title, "perspective": goal.perspective_id,
                   "horizon": goal.horizon, "description": goal.description}
    form = StrategicGoalForm(request.POST or None, org=request.org, initial=initial)
    saved = submit(request, form, lambda data: strategy.save_goal(
        membership=request.membership, goal=goal, **data))
    if saved:
        messages.success(request, f"Strategic goal “{saved.title}” saved.")
        return _to_console(request)
    return render(request, "orgs/console/goal_form.html", {
        "form": form, "goal": goal, "section": "strategy"})


@org_view(console=True)
def console_goal_archive(request, goal_pk):
    """Archive a goal (``archived=yes``) or bring it back (``archived=no``)."""
    goal = _get(request, StrategicGoal, goal_pk)
    if (refused := post_only(request)) is not None:
        return refused
    archived = request.POST.get("archived") != "no"
    try:
        strategy.set_goal_archived(membership=request.membership, goal=goal, archived=archived)
    except ValidationError as e:
        messages.error(request, " ".join(e.messages))
    else:
        messages.success(request, f"“{goal.title}” is archived." if archived
                         else f"“{goal.title}” is back on the strategy page.")
    return _to_console(request)
