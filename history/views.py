"""The history pages: each object's timeline, and the console's search with a CSV export."""

import csv

from django.core.paginator import Paginator
from django.http import Http404, HttpResponseNotAllowed, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from alignment.models import Workflow
from dependencies.access import access_dependency
from okrs.access import access_key_result, access_objective
from orgs.decorators import org_view
from orgs.models import Team

from . import selectors


def _page(request, *, object_type, obj, title, back_url):
    if request.method != "GET":  # after the lookup: a foreign id is a 404 whatever the method
        return HttpResponseNotAllowed(["GET"])
    page = selectors.timeline(request.org, object_type, obj.pk, request.GET.get("page"))
    return render(request, "history/timeline.html", {
        "title": title, "back_url": back_url, "entries": page, "object_type": object_type,
        "object_id": obj.pk})


@org_view
def objective_history(request, objective_pk):
    o = access_objective(request.membership, objective_pk)
    return _page(request, object_type="objective", obj=o, title=o.title,
                 back_url=reverse("objective", args=[request.org.slug, o.pk]))


@org_view
def key_result_history(request, key_result_pk):
    kr = access_key_result(request.membership, key_result_pk)
    return _page(request, object_type="key_result", obj=kr, title=kr.title,
                 back_url=reverse("objective", args=[request.org.slug, kr.objective_id]))


@org_view
def team_history(request, team_pk):
    team = Team.objects.for_org(request.org).filter(pk=team_pk).first()
    if team is None:
        raise Http404("No such team.")
    return _page(request, object_type="team", obj=team, title=team.name,
                 back_url=reverse("team", args=[request.org.slug, team.pk]))


@org_view
def dependency_history(request, dependency_pk):
    dependency = access_dependency(request.membership, dependency_pk)
    return _page(request, object_type="dependency", obj=dependency, title=dependency.need,
                 back_url=reverse("dependency", args=[request.org.slug, dependency.pk]))


@org_view
def workflow_history(request, workflow_pk):
    workflow = (Workflow.objects.for_org(request.org).select_related("objective")
                .filter(pk=workflow_pk).first())
    if workflow is None:
        raise Http404("No such workflow.")
    return _page(request, object_type="workflow", obj=workflow,
                 title=f"Alignment of {workflow.objective.title}",
                 back_url=reverse("workflow", args=[request.org.slug, workflow.pk]))


@org_view(console=True)
@require_GET
def console_history(request):
    entries = selectors.search(request.org, request.GET)
    page = Paginator(entries, selectors.PER_PAGE * 2).get_page(request.GET.get("page"))
    return render(request, "history/console.html", {
        "entries": page, "types": selectors.OBJECT_TYPES, "params": request.GET,
        "section": "history"})


class _Echo:
    def write(self, value):
        return value


@org_view(console=True)
@require_GET
def console_history_csv(request):
    """Every entry the search finds, streamed: one row per changed field (one for an entry
    without fields), read in chunks so memory stays flat however long the history."""
    entries = selectors.search(request.org, request.GET)
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(["when (UTC)", "who", "actor kind", "action", "object type",
                               "object id", "object", "field", "before", "after"])
        for e in entries.iterator(chunk_size=500):
            head = [e.at.strftime("%Y-%m-%d %H:%M:%S"), e.actor_label, e.actor_kind, e.action,
                    e.object_type, e.object_id, e.object_label]
            for f in e.fields or [{"label": "", "before": "", "after": ""}]:
                yield writer.writerow([_safe(v) for v in
                                       head + [f["label"], f["before"], f["after"]]])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{request.org.slug}-history.csv"'
    return response


def _safe(value):
    """A cell a spreadsheet will not run as a formula."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


console_history_csv.is_download = True  # a file, not a page: bench_pages leaves it out
