"""``{% route %}`` writes the same links as ``{% url %}``, reversing each route once."""

import pytest
from django.template import Context, Template
from django.urls import NoReverseMatch, set_script_prefix

from okrs.templatetags import page_tags


def both(tag_args, **context):
    url = Template("{% url " + tag_args + " %}").render(Context(context))
    route = Template("{% load page_tags %}{% route " + tag_args + " %}").render(Context(context))
    return url, route


@pytest.mark.parametrize("tag_args", [
    "'objective' slug 42",
    "'objective' slug '42'",
    "'team' slug 7",
    "'why_at_risk' slug 'o' 42",  # a converter of its own: reversed as before
    "'key_result_history' slug 90071",
    "'home' slug",
])
def test_it_writes_what_url_writes(tag_args):
    url, route = both(tag_args, slug="org-a")
    assert route == url and url.startswith("/o/org-a/")


def test_it_follows_the_script_prefix():
    set_script_prefix("/okr/")
    try:
        url, route = both("'objective' slug 42", slug="org-a")
    finally:
        set_script_prefix("/")
    assert route == url == "/okr/o/org-a/objectives/42/"


def test_arguments_that_are_not_plain_ids_are_reversed_and_refused_alike():
    with pytest.raises(NoReverseMatch):
        page_tags.route("objective", "org-a", None)
    with pytest.raises(NoReverseMatch):
        page_tags.route("objective", "org a", 42)
