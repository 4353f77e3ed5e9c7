"""The inbox ("Needs me"): everything waiting on the person, with one action in place."""

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.html import escape
from django_htmx.http import retarget

from orgs.confirm import is_confirmed
from orgs.decorators import org_view, post_only

from . import inbox

PAGE = inbox.OLDEST


def _page(request):
    page = request.GET.get("page", "")
    return max(1, min(int(page), 10**6)) if page.isdigit() else 1


@org_view
def inbox_page(request):
    """All kinds, the oldest few of each; ``?kind=`` one kind a page at a time (htmx asks
    for the next page's rows with ``page``)."""
    kind = request.GET.get("kind")
    if request.htmx and "oldest" in request.GET:  # the home page's "Needs me" asks for these
        response = render(request, "nudges/_needs_me.html#oldest", {
            "oldest": inbox.oldest(request.membership), "loaded": True})
        patch_vary_headers(response, ["HX-Request"])
        return response
    if kind not in inbox.BY_KEY:
        data = inbox.items_for(request.membership)
        response = render(request, "nudges/inbox.html", {
            "groups": data["groups"], "total": data["total"],
            "nav": "inbox"})
        patch_vary_headers(response, ["HX-Request"])
        return response
    page = _page(request)
    ctx = inbox.Context(request.membership)
    count = inbox.cached_counts(request.membership, ctx, again=True, fresh=True)[kind]
    start = (page - 1) * PAGE
    items = inbox.items_of(ctx, kind, start=start, stop=start + PAGE)
    group = {"kind": inbox.BY_KEY[kind], "count": count, "items": items,
             "more": start + PAGE < count, "next_page": page + 1}
    if request.htmx and page > 1:
        response = render(request, "nudges/inbox.html#rows", {"group": group, "only": True})
    else:
        response = render(request, "nudges/inbox.html", {
            "groups": [group] if count else [], "total": count,
            "nav": "inbox", "only": group["kind"]})
    patch_vary_headers(response, ["HX-Request"])
    return response


@org_view
def inbox_act(request):
    """Answer one item: with htmx the item is replaced by what was done (or shows why not);
    without JavaScript, a redirect back to the inbox with the same message."""
    if (refused := post_only(request)) is not None:
        return refused
    kind, do = request.POST.get("kind", ""), request.POST.get("do", "")
    pk = request.POST.get("pk", "")
    if not pk.isdigit():
        raise Http404("No such item.")
    action = next((a for a in inbox.ACTIONS.get(kind, []) if a.do == do), None)
    if action is None:
        raise Http404("No such action.")
    note = request.POST.get("note", "")
    if action.confirm and not is_confirmed(request):
        # Without JavaScript the dialog never asked: the dependency's own page asks.
        if inbox.act_target_exists(request.membership, kind, int(pk)) is None:
            raise Http404("No such item.")
        return redirect(reverse("dependency_answer", args=[request.org.slug, int(pk)]) + "?"
                        + urlencode({"status": "declined", "note": note}))
    try:
        said = inbox.act(request.membership, kind, int(pk), do, note)
    except ValidationError as e:
        error = " ".join(e.messages)
        if request.htmx:
            response = HttpResponse(f'<span class="error">{escape(error)}</span>')
            return retarget(response, f"#inbox-error-{kind}-{pk}")
        messages.error(request, error)
        return redirect("inbox", request.org.slug)
    if said is None:
        raise Http404("No such item.")
    if request.htmx:
        response = render(request, "nudges/inbox.html#done", {"said": said})
        response["HX-Trigger"] = "inbox-changed"
        return response
    messages.success(request, said)
    return redirect("inbox", request.org.slug)

