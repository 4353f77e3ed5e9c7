"""The network page's lists (escalations, at risk because of something else, the page of
dependencies) are rendered once per change: read from the cache until something they show
changes, then right on the next request."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_scopes import scope

from dependencies import network
from dependencies.models import Dependency
from okrs.models import KeyResult
from orgs.models import Team
from tests.conftest import client_for
from tests.factories import ObjectiveFactory

pytestmark = pytest.mark.django_db

def main_of(response):
    assert response.status_code == 200
    html = response.content.decode()
    return re.sub(r'nonce="[^"]*"', "", html[html.index('<main id="main"'):html.index("</main>")])


def read(client, org, query="?show=all"):
    """(queries, the page's main content)."""
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("network", args=[org.slug]) + query)
    return len(ctx), main_of(response)


def recompute(r, capture):
    with scope(organization=r.org), capture(execute=True):
        network.run(r.cycle)


def test_the_lists_are_read_once_and_each_change_shows_on_the_next_request(
        revenue, django_capture_on_commit_callbacks):
    r = revenue
    recompute(r, django_capture_on_commit_callbacks)
    liam = client_for(r.liam)
    first, page = read(liam, r.org)
    again, same = read(liam, r.org)
    # The at-risk list (a count, a page, its rows), the dependencies (a count, a page of ids,
    # their rows) and the escalations: cached.
    assert again <= first - 6
    at_risk = "Close 3 enterprise deals</strong>"
    assert same == page and at_risk not in page and "Ship SSO" in page
    # Health: the recompute writes it with raw SQL, and says so.
    with scope(organization=r.org):
        KeyResult.objects.filter(pk=r.sso.pk).update(confidence="off_track")
    assert at_risk not in read(liam, r.org)[1]  # read before the recompute: cached again
    recompute(r, django_capture_on_commit_callbacks)
    page = read(liam, r.org)[1]
    assert at_risk in page
    # A dependency's state, through a queryset (no signal).
    with scope(organization=r.org):
        Dependency.objects.for_org(r.org).filter(pk=r.dependency.pk).update(status="declined")
    assert 'class="tag dep-declined"' in read(liam, r.org)[1]
    # A team's name.
    with scope(organization=r.org):
        Team.objects.for_org(r.org).filter(pk=r.eng.pk).update(name="Platform Engineering")
    assert "<strong>Platform Engineering</strong>" in read(liam, r.org)[1]


def test_each_filter_and_page_has_its_own_entry_and_other_organizations_leave_it(
        revenue, world_b):
    r = revenue
    liam = client_for(r.liam)
    read(liam, r.org)
    cached = read(liam, r.org)[0]
    declined = read(liam, r.org, "?show=all&state=declined")[1]
    assert "Ship SSO" not in declined and "match these filters" in declined
    assert "Ship SSO" in read(liam, r.org)[1]
    ObjectiveFactory(organization=world_b.org, cycle=world_b.cycle, team=world_b.team)
    with scope(organization=world_b.org):
        Team.objects.for_org(world_b.org).filter(pk=world_b.team.pk).update(name="Elsewhere")
    assert read(liam, r.org)[0] == cached
