from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django_scopes import scope

from .models import Membership, Organization
from .permissions import can_open_console


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
                return view_func(request, *args, **kwargs)

        wrapper.is_org_view = True
        return wrapper

    return decorator(view) if view is not None else decorator
