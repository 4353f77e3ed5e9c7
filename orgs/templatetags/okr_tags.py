from django import template
from django.utils.html import format_html

from okrs import kinds
from okrs.charts import plain_number
from okrs.progress import LABEL
from orgs import permissions

register = template.Library()


@register.filter
def can_open_console(membership):
    return membership is not None and permissions.can_open_console(membership)


@register.filter
def can_manage_members(membership):
    return membership is not None and permissions.can_manage_members(membership)


@register.filter
def can_edit_objective(membership, objective):
    return permissions.can_edit_objective(membership, objective)


@register.filter
def can_check_in(membership, key_result):
    return permissions.can_check_in(membership, key_result)


@register.filter
def health_label(value):
    return LABEL.get(value, "no data yet").capitalize()


@register.filter
def num(value):
    """A decimal without trailing zeros: 12.5000 -> 12.5, 40.0000 -> 40."""
    return "–" if value is None else plain_number(value)


@register.filter
def kind_explained(key_result):
    """What progress, health and the proposed score mean for this key result's kind."""
    return kinds.explain(key_result)


COMMITMENT_TITLES = {
    "committed": "Committed: the team will do it; 1.0 is expected, less needs a reason.",
    "aspirational": "Aspirational: a stretch; about 0.7 is a good result.",
}


@register.filter
def commitment_tag(objective):
    """The small tag saying whether an objective is committed or aspirational:
    ``{{ objective|commitment_tag }}`` (any object with ``commitment``)."""
    value = (objective.get("commitment") if isinstance(objective, dict)
             else getattr(objective, "commitment", "")) or "committed"
    return format_html('<span class="tag commitment-{}" title="{}">{}</span>', value,
                       COMMITMENT_TITLES.get(value, ""), value.capitalize())
