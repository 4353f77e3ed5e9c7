"""The cycle review page, and its Markdown and CSV downloads. Every member may read it."""

from functools import wraps

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.utils.text import slugify

from orgs.decorators import org_view
from orgs.models import Cycle

from . import review, review_export

DEPARTMENTS_PER_PAGE = 20
TEAMS_PER_PAGE = 20
LESSONS_PER_PAGE = 10
ROWS_PER_PAGE = 10  # carried over twice, broken dependencies, improvements


def access_cycle(request, pk):
    """The organization's cycle, 404 alike when missing or someone else's; then anything but
    a read is refused (405), after the lookup so a foreign id is a 404 whatever the method."""
    cycle = Cycle.objects.for_org(request.org).filter(pk=pk).first()
    if cycle is None:
        raise Http404("No such cycle.")
    if request.method not in ("GET", "HEAD"):
        raise MethodNotAllowed
    return cycle


class MethodNotAllowed(Exception):
    pass


def _read_only(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except MethodNotAllowed:
            return HttpResponseNotAllowed(["GET", "HEAD"])
    return wrapper


def _number(request, param):
    value = request.GET.get(param, "")
    return min(int(value), 10**6) if value.isdigit() else 1


def _page(request, items, per_page, param, anchor):
    """One page of ``items``, with ``prev_url`` / ``next_url`` that keep the other filters."""
    page = Paginator(items, per_page).get_page(_number(request, param))

    def url(n):
        query = request.GET.copy()
        query[param] = n
        return f"?{query.urlencode()}#{anchor}"

    page.prev_url = url(page.previous_page_number()) if page.has_previous() else None
    page.next_url = url(page.next_page_number()) if page.has_next() else None
    return page


class _Counted:
    """A queryset whose total is already known (from the section's counts), so paginating it
    does not count it again."""

    def __init__(self, queryset, total):
        self.queryset, self.total = queryset, total

    def count(self):
        return self.total

    def __getitem__(self, key):
        return self.queryset[key]


def _cached_page(request, org, cycle, anchor, items, param):
    """A page of a cycle-wide list (ROWS_PER_PAGE), its rows read once per change."""
    page = _page(request, items, ROWS_PER_PAGE, param, anchor)
    page.object_list = review.cached(org, cycle, f"{anchor}:{page.number}",
                                     lambda: list(page.object_list))
    return page


def _department(request):
    value = request.GET.get("department", "")
    if not value:
        return None
    department = (review.departments(request.org).filter(pk=value).first()
                  if value.isdigit() else None)
    if department is None:
        raise Http404("No such department.")
    return department


@org_view
@_read_only
def cycle_review(request, cycle_pk):
    """Scores by department and team, the committed hit rate, the aspirational average, what was
    carried over twice, the lessons (``?q=`` searches them), the dependencies that broke, the
    retrospectives' improvements, and the diagnostic. An htmx request for one region (its id in
    HX-Target) gets that region only."""
    org, cycle = request.org, access_cycle(request, cycle_pk)
    department, q = _department(request), request.GET.get("q", "").strip()[:100]
    ctx = {"cycle": cycle, "department": department, "q": q, "nav": "review_cycle"}
    if department is not None:
        ctx["teams"] = _page(request, review.team_rows(org, cycle, department), TEAMS_PER_PAGE,
                             "team_page", "teams")
        for row in ctx["teams"]:
            row.update(review.finish(row))
    ctx["lessons"] = _page(request, review.lessons(org, cycle, q), LESSONS_PER_PAGE,
                           "lessons_page", "lessons")
    target = request.htmx.target if request.htmx else None
    if target in ("teams", "lessons-results"):
        fragment = "teams" if target == "teams" else "lessons"
        response = render(request, f"okrs/review.html#{fragment}", ctx)
        patch_vary_headers(response, ["HX-Request", "HX-Target"])
        return response
    f = review.cached(org, cycle, "figures", lambda: review.figures(org, cycle))
    totals, counts, improvement_counts = f["totals"], f["broken_counts"], f["improvement_counts"]
    dept_page = _page(request, review.departments(org), DEPARTMENTS_PER_PAGE, "dept_page",
                      "scores")
    broken, improvements = review.broken_list(org, cycle), review.improvement_list(org, cycle)
    ctx.update({
        "totals": totals, "diagnosis": f["diagnosis"], "rhythm": f["rhythm"],
        "company": f["company"],
        "departments": dept_page,
        "department_rows": review.department_rows_from(f["departments"], list(dept_page)),
        "carried": _cached_page(request, org, cycle, "carried", _Counted(
            review.carried_twice(org, cycle), totals["carried_twice"]), "carried_page"),
        "broken_counts": counts,
        "broken": _cached_page(request, org, cycle, "dependencies", _Counted(
            broken, sum(counts.values())), "dep_page"),
        "improvement_counts": improvement_counts,
        "improvements": _cached_page(request, org, cycle, "improvements", _Counted(
            improvements, sum(improvement_counts.values())), "imp_page"),
        "reasons": review.BROKE_REASONS, "thresholds": {
            "many": f"{review.MANY_MISSES:.0%}", "good": f"{review.GOOD_RHYTHM:.0%}",
            "broken": f"{review.BROKEN_RHYTHM:.0%}", "min": review.MIN_ASSESSED,
            "aspirational_miss": f"{review.ASPIRATIONAL_MISS:.1f}"},
    })
    response = render(request, "okrs/review.html", ctx)
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


def full_review(org, cycle):
    """What the Markdown holds: every department and team, and the first rows of the longer
    sections (with their totals)."""
    n, lessons_n = review.DOWNLOAD_ROWS, review.DOWNLOAD_LESSONS
    totals = review.summary(org, cycle)
    diagnosis, _ = review.diagnostic(org, cycle, totals)
    company, departments = review.score_tables(org, cycle)
    broken_counts, broken = review.broken_dependencies(org, cycle)
    improvement_counts, improvements = review.improvements(org, cycle)
    lessons = review.lessons(org, cycle)
    return {
        "org_name": org.name, "cycle": cycle, "summary": totals, "diagnosis": diagnosis,
        "company": company, "departments": departments,
        "carried": list(review.carried_twice(org, cycle)[:n]),
        "lessons": list(lessons[:lessons_n]), "lessons_total": lessons.count(),
        "broken": list(broken[:n]), "broken_total": sum(broken_counts.values()),
        "improvements": list(improvements[:n]),
        "improvements_total": sum(improvement_counts.values()),
    }


def _download(text, content_type, filename):
    response = HttpResponse(text, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _filename(org, cycle, ext):
    return f"{slugify(org.slug)}-review-{slugify(cycle.name) or cycle.pk}.{ext}"


@org_view
@_read_only
def cycle_review_markdown(request, cycle_pk):
    cycle = access_cycle(request, cycle_pk)
    text = review.cached(request.org, cycle, "markdown",
                         lambda: review_export.markdown(full_review(request.org, cycle)))
    return _download(text, "text/markdown; charset=utf-8", _filename(request.org, cycle, "md"))


@org_view
@_read_only
def cycle_review_csv(request, cycle_pk):
    cycle = access_cycle(request, cycle_pk)

    def csv_text():
        company, departments = review.score_tables(request.org, cycle)
        return review_export.csv_text({"org_name": request.org.name, "company": company,
                                       "departments": departments})

    text = review.cached(request.org, cycle, "csv", csv_text)
    return _download(text, "text/csv; charset=utf-8", _filename(request.org, cycle, "csv"))
