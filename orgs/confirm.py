"""Destructive actions ask first.

With JavaScript, a button or form that carries ``data-confirm="Remove ...?"`` opens the
browser's dialog (static/js/confirm.js); on OK the script adds ``confirm=yes`` to the form and
it is sent; on Cancel nothing is sent. Without JavaScript the form arrives without that field:
the view answers with a redirect to a confirmation page (a GET of the same action, its fields in
the query string) that says what will happen and posts the same fields with ``confirm=yes``.

A view does::

    if not is_confirmed(request):
        return ask_first(request, fields=("action", "theme"))

and on GET (or when asked for by the query string) renders ``confirm_page(...)``.
"""

from urllib.parse import urlencode

from django.shortcuts import redirect, render
from django_htmx.http import HttpResponseClientRedirect

FIELD = "confirm"


def is_confirmed(request):
    return request.method == "POST" and request.POST.get(FIELD) == "yes"


def ask_first(request, *, url=None, fields=()):
    """The answer to a destructive POST that did not say ``confirm=yes``: go to the page that
    asks. ``fields`` are the POST fields the confirmation page must send again."""
    params = {f: request.POST.get(f, "") for f in fields if request.POST.get(f, "") != ""}
    target = (url or request.path) + (f"?{urlencode(params)}" if params else "")
    return HttpResponseClientRedirect(target) if request.htmx else redirect(target)


def confirm_page(request, *, question, consequence, action, button, cancel, fields=None,
                 template="_confirm.html", extra=None):
    """The page that asks: ``question`` ("Remove the theme “Enterprise”?"), ``consequence``
    (what will happen, one or two sentences), a form posting ``fields`` and ``confirm=yes`` to
    ``action``, with ``button`` as its label, and a way back to ``cancel``."""
    return render(request, template, {
        "question": question, "consequence": consequence, "action": action, "button": button,
        "cancel": cancel, "fields": sorted((fields or {}).items()), **(extra or {})})
