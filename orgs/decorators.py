import logging
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import render
from django_scopes import scope

from .db import WriteConflict, atomic_with_retry
from .models import Membership, Organization
from .permissions import can_open_console

log = logging.getLogger(__name__)

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def post_only(request):
    """After a view has looked up its objects (so a foreign id is a 404 whatever the method),
    refuse anything but POST: returns the 405 response, or None to go on."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    return None


def org_view(view=None, *, console=False):
    """Resolve ``request.org`` and ``request.membership`` from the URL's org slug.

    Anonymous visitors go to sign-in; anyone who is not a member gets 404, the same answer as for
    an organization that does not exist. The organization scope stays open for the whole view,
    template rendering included, so a query that forgets its organization fails loudly.
    ``console=True`` limits the view to org admins and alignment leads (403 for other members).

    A POST (PUT, PATCH, DELETE) runs in one transaction, run again from the start when it
    collides with another writer (deadlock, serialization failure: see orgs/db.py); when it
    keeps colliding the answer is a 503 page asking to try again, never a 500.
    """

    def decorator(view_func):
        @wraps(view_func)
        def wrapper(request, org_slug, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            org = Organization.objects.filter(slug=org_slug).first()
            if org is None:
                raise Http404("No such organization.")
            with scope(organization=org):
                membership = (
                    Membership.objects.for_org(org)
                    .select_related("user", "organization")
                    .filter(user=request.user)
                    .first()
                )
                if membership is None:
                    raise Http404("No such organization.")
                if console and not can_open_console(membership):
                    raise PermissionDenied("Only org admins and alignment leads can open this.")
                if request.session.get("last_org") != org.slug:
                    request.session["last_org"] = org.slug
                request.org = org
                request.membership = membership
                if request.method in UNSAFE_METHODS:
                    return _write(request, view_func, args, kwargs)
                return view_func(request, *args, **kwargs)

        wrapper.is_org_view = True
        return wrapper

    return decorator(view) if view is not None else decorator


def _write(request, view_func, args, kwargs):
    """Run a writing view in one transaction, retried as a whole on a collision."""
    storage = getattr(request, "_messages", None)
    queued = list(getattr(storage, "_queued_messages", ()))

    def forget_messages(_attempt):
        # "Saved." from an attempt that was rolled back must not show twice.
        if hasattr(storage, "_queued_messages"):
            storage._queued_messages[:] = queued

    try:
        return atomic_with_retry(lambda: view_func(request, *args, **kwargs),
                                 on_retry=forget_messages)
    except WriteConflict:
        log.warning("Gave up on %s %s for %s after repeated collisions", request.method,
                    request.path, request.org.slug, exc_info=True)
        forget_messages(None)
        if request.htmx:
            # htmx swaps this status (base.html's htmx-config) into the page's main region, so
            # a click that could not be saved says so instead of doing nothing.
            response = render(request, "503.html#notice", status=503)
            response["HX-Retarget"], response["HX-Reswap"] = "#main", "innerHTML"
        else:
            response = render(request, "503.html", status=503)
        response["Retry-After"] = "2"
        return response
