from django import template

from orgs import team_types

register = template.Library()


@register.filter
def sharing_hint(team):
    """The sentence on the sharing kind that usually fits ``team``'s type."""
    return team_types.sharing_hint(team)
