from django.utils.functional import SimpleLazyObject
from django_scopes import scope


def inbox_count(request):
    """How many items wait on the person ("Needs me" in the nav), counted only when a template
    asks: two queries (``inbox.total_for``)."""
    membership = getattr(request, "membership", None)
    if membership is None:
        return {}

    def count():
        from .inbox import total_for

        # Error pages render after the view closed its scope: open the same one again.
        with scope(organization=membership.organization):
            return total_for(membership)

    return {"inbox_count": SimpleLazyObject(count)}
