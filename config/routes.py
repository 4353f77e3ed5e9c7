"""Every URL pattern of the project with its full route, for the code that walks them all: the
tenant-isolation test and the page benchmark."""

from django.urls import URLPattern, URLResolver, get_resolver


def all_patterns(patterns=None, prefix=""):
    """``(route, pattern)`` for every URL pattern, in URL order."""
    patterns = get_resolver().url_patterns if patterns is None else patterns
    for p in patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            yield from all_patterns(p.url_patterns, route)
        elif isinstance(p, URLPattern):
            yield route, p
