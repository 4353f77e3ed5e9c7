from django import template

from history.selectors import type_words

register = template.Library()


@register.filter
def history_type(object_type):
    return type_words(object_type)
