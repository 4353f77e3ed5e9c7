"""The review queue and re-cascade pages read a page of rows and the total in one query."""

import pytest
from django.core.paginator import Paginator
from django_scopes import scope

from alignment.views_cascade import _counted_page
from okrs.models import Objective
from tests.factories import ObjectiveFactory
from tests.querycount import count_queries

pytestmark = pytest.mark.django_db


def _objectives(w):
    return Objective.objects.for_org(w.org).filter(cycle=w.cycle, title__startswith="Queue ")


@pytest.mark.parametrize("number", [None, "1", "2", "3", "9", "last", "x"])
def test_it_is_the_page_paginator_gives_in_one_query_when_the_page_has_rows(world_a, number):
    w = world_a
    for i in range(7):
        ObjectiveFactory(organization=w.org, cycle=w.cycle, title=f"Queue {i}")
    with scope(organization=w.org):
        qs = _objectives(w).order_by("title", "pk")
        expected = Paginator(qs, 3).get_page(number)
        page, n, _ = count_queries(lambda: _counted_page(qs, 3, number))
        assert [o.pk for o in page] == [o.pk for o in expected]
        assert (page.number, page.paginator.count, page.paginator.num_pages) == (
            expected.number, 7, 3)
        assert page.has_next() == expected.has_next()
    # A page past the end falls back to the last page as get_page does (then a count too).
    assert n == (2 if number == "9" else 1)


def test_an_empty_list_is_one_query_as_a_count_alone_was(world_a):
    w = world_a
    with scope(organization=w.org):
        qs = _objectives(w).order_by("title", "pk")
        page, n, _ = count_queries(lambda: _counted_page(qs, 3, None))
        assert n == 1 and list(page) == [] and page.paginator.count == 0
        assert page.number == 1 and not page.has_next()
