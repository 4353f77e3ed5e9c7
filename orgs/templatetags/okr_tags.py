from django import template

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
