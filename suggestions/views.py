from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from okrs.models import Objective
from orgs.decorators import org_view
from orgs.models import Cycle, Team

from . import selectors

MAX_TEXT = 3000  # what the form's fields can hold; the rest is ignored


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@org_view
@require_GET
@vary_on_headers("HX-Request")
def objective_suggestions(request):
    """The objective form asks, as the title (and why) is typed: likely parents and likely
    dependencies, each with the shared words. Scoped: a cycle, team or objective of another
    organization is a 404."""
    org, params = request.org, request.GET
    cycle = Cycle.objects.for_org(org).filter(pk=_int(params.get("cycle"))).first()
    if cycle is None:
        raise Http404("No such cycle.")
    team = objective = None
    if params.get("team"):
        team = Team.objects.for_org(org).filter(pk=_int(params.get("team"))).first()
        if team is None:
            raise Http404("No such team.")
    if params.get("objective"):
        objective = Objective.objects.for_org(org).filter(
            pk=_int(params.get("objective"))).only("id").first()
        if objective is None:
            raise Http404("No such objective.")
    toks = selectors.query_tokens(params.get("title", "")[:MAX_TEXT],
                                  params.get("why", "")[:MAX_TEXT])
    parents = dependencies = []
    if toks:
        index = selectors.corpus(org, cycle)
        parents = selectors.suggest_parents(org, cycle, toks, team=team, objective=objective,
                                            index=index)
        dependencies = selectors.suggest_dependencies(org, cycle, toks, team=team, index=index)
    return render(request, "suggestions/_suggestions.html", {
        "parents": parents, "dependencies": dependencies, "asked": bool(toks)})
