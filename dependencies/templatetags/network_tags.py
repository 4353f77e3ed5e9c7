from django import template

from ..models import NetworkState

register = template.Library()


@register.simple_tag(takes_context=True)
def health_updating(context, cycle):
    """Whether ``cycle``'s health is being recomputed: a change is saved and its recompute has
    not finished yet (the cycle's ``NetworkState`` is dirty). One query, none without a cycle."""
    request = context.get("request")
    if not cycle or request is None or getattr(request, "org", None) is None:
        return False
    return (NetworkState.objects.for_org(request.org)
            .filter(cycle_id=getattr(cycle, "pk", cycle), dirty=True).exists())


@register.filter
def cause_sentence(path, team=None):
    """A stored cause path in one sentence that says which reason it is (``reasons``)."""
    from ..reasons import cause_sentence as sentence

    return sentence(path, team=team)
