"""The top bar's search: a dropdown of the best few per kind as you type (htmx), and a page
that works without JavaScript, one kind at a time a page at a time."""

from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from orgs.decorators import org_view

from . import selectors

DROPDOWN = 5  # per kind, as you type
PAGE = 20  # per kind, on the page


def _number(value):
    return min(int(value), 10**4) if value.isdigit() and int(value) > 0 else 1


@org_view
def search(request):
    q = request.GET.get("q", "").strip()[:100]
    kinds = dict(selectors.KINDS)
    kind = request.GET.get("kind", "")
    if kind not in kinds:
        kind = ""
    page = _number(request.GET.get("page", ""))
    dropdown = bool(request.htmx) and request.GET.get("page") is None and not kind
    per = DROPDOWN if dropdown else (PAGE if kind else DROPDOWN * 2)
    offset = (page - 1) * PAGE if kind else 0
    groups = []
    for name, label in selectors.KINDS:
        if kind and name != kind:
            continue
        hits, more = selectors.find(request.org, name, q, offset=offset, limit=per)
        if hits or kind:
            groups.append({"kind": name, "label": label, "hits": hits, "more": more})
    context = {"q": q, "groups": groups, "kind": kind, "kind_label": kinds.get(kind, ""),
               "page": page, "searched": bool(selectors.words(q)), "nav": "search"}
    template = "search/search.html#dropdown" if dropdown else "search/search.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response
