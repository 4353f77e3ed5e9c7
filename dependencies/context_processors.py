from django.utils.functional import SimpleLazyObject
from django_scopes import scope


def unread_alerts(request):
    """How many unread alerts the person has in the current organization, counted only when a
    template asks."""
    membership = getattr(request, "membership", None)
    if membership is None:
        return {}

    def count():
        from .models import Notification

        # Error pages render after the view closed its scope: open the same one again.
        with scope(organization=membership.organization):
            return Notification.objects.for_org(membership.organization).filter(
                user_id=membership.user_id, read_at__isnull=True).count()

    return {"unread_alerts": SimpleLazyObject(count)}
