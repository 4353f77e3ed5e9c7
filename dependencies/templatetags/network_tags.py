from django import template

from .. import network
from ..models import NetworkState

register = template.Library()


@register.simple_tag(takes_context=True)
def health_updating(context, cycle):
    """Whether ``cycle``'s health is being recomputed: a change is saved and its recompute has
    not finished yet (the cycle's ``NetworkState`` is dirty). One query, none without a cycle.
    A mark left for minutes without a broker asks for a recompute (``network.catch_up``)."""
    request = context.get("request")
    if not cycle or request is None or getattr(request, "org", None) is None:
        return False
    cycle_id = getattr(cycle, "pk", cycle)
    dirty = (NetworkState.objects.for_org(request.org).filter(cycle_id=cycle_id, dirty=True)
             .values_list("changed_at", flat=True))
    if not dirty:
        return False
    network.catch_up(cycle_id, dirty[0])
    return True


@register.filter
def cause_sentence(path, team=None):
    """A stored cause path in one sentence that says which reason it is (``reasons``)."""
    from ..reasons import cause_sentence as sentence

    return sentence(path, team=team)
