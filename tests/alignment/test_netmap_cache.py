"""The network map is drawn once per change of what it shows: the next request reads the drawing
from the cache, and every kind of change shows on the request after it."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from dependencies import network
from dependencies.models import Dependency
from okrs.models import Objective
from orgs.models import Team
from tests.conftest import client_for
from tests.dependencies.conftest import revenue  # noqa: F401 - the shared scenario
from tests.factories import (
    DependencyFactory,
    KeyResultFactory,
    ObjectiveFactory,
    ObjectiveShareFactory,
    OrganizationFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db


def get_map(r, unit=None):
    address = reverse("network_map", args=[r.org.slug]) + f"?cycle={r.cycle.pk}"
    if unit is not None:
        address += f"&unit={unit}"
    with CaptureQueriesContext(connection) as ctx:
        response = client_for(r.liam).get(address)
    assert response.status_code == 200
    html = response.content.decode()
    start = html.index('class="netmap"')
    return html[start:html.index("</svg>", start)], len(ctx)


def unlinked(svg):
    return len(re.findall(r": 0 links<", svg))


def test_the_second_request_reads_the_drawing_from_the_cache(revenue):  # noqa: F811
    r = revenue
    first, drawn = get_map(r)
    again, cached = get_map(r)
    assert again == first
    # The units and the four kinds of link (one query each) are not read again.
    assert cached <= drawn - 5


def _share(r):
    marketing = TeamFactory(organization=r.org, name="Marketing")
    ObjectiveShareFactory(objective=r.win, team=marketing, kind="whole")
    return "Marketing"


def _dependency(r):
    legal = TeamFactory(organization=r.org, name="Legal")
    o = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=legal, parent=r.arr)
    DependencyFactory(downstream=KeyResultFactory(objective=o), upstream=r.sso)
    return "Legal"


def _renamed(r):
    with scopes_disabled():
        team = Team.objects.get(pk=r.eng.pk)
        team.name = "Platform Engineering"
        team.save()
    return "Platform Engineering"


def _queryset_update(r):
    # No signal: the tenant queryset moves the version itself.
    with scope(organization=r.org):
        Team.objects.for_org(r.org).filter(pk=r.sales.pk).update(name="Revenue Team")
    return "Revenue Team"


def _retired(r):
    with scope(organization=r.org):
        Objective.objects.for_org(r.org).filter(pk=r.platform.pk).update(state="retired")
        Dependency.objects.for_org(r.org).filter(pk=r.dependency.pk).update(status="withdrawn")
    return None


def _health(r):
    # A check-in off track, then the recompute a worker runs: health is written with raw SQL.
    # The check-in and the key result's confidence are written without moving the map's
    # version, so that only the recompute's end can move it.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE okrs_keyresult SET confidence = %s WHERE id = %s",
                       ["off_track", r.sso.pk])
    with scope(organization=r.org):
        network.run(r.cycle)
    return "health-off_track"


@pytest.mark.parametrize("change", [_share, _dependency, _renamed, _queryset_update, _retired,
                                    _health])
def test_each_change_shows_on_the_next_request(revenue, change):  # noqa: F811
    r = revenue
    before, _ = get_map(r)
    get_map(r)  # cached now
    shown = change(r)
    after, _ = get_map(r)
    assert after != before
    if shown is not None:
        assert shown in after and shown not in before
    else:
        assert unlinked(after) > unlinked(before)


def test_an_opened_unit_is_cached_apart_from_the_whole_map(revenue):  # noqa: F811
    r = revenue
    whole, _ = get_map(r)
    opened, _ = get_map(r, unit=r.eng.pk)
    assert get_map(r)[0] == whole and get_map(r, unit=r.eng.pk)[0] == opened


def test_a_unit_not_of_this_organization_reads_the_whole_maps_entry(revenue):  # noqa: F811
    r = revenue
    whole, drawn = get_map(r)
    _, cached = get_map(r)
    with scopes_disabled():
        elsewhere = TeamFactory(organization=OrganizationFactory(slug="org-other"), name="Other")
    get_map(r, unit=r.eng.pk)  # the organization's unit ids are read once, then cached
    for invented in (elsewhere.pk, 987654, 987655):
        svg, queries = get_map(r, unit=invented)
        # Not drawn again (the units and the links are not read): the company's entry.
        assert svg == whole and queries == cached


def test_another_organizations_writes_leave_the_drawing_cached(revenue):  # noqa: F811
    r = revenue
    get_map(r)
    _, cached = get_map(r)
    other = OrganizationFactory(slug="org-elsewhere")
    with scopes_disabled():
        TeamFactory(organization=other, name="Elsewhere")
    assert get_map(r)[1] == cached


def get_matrix(r):
    address = reverse("matrix", args=[r.org.slug]) + f"?cycle={r.cycle.pk}"
    with CaptureQueriesContext(connection) as ctx:
        response = client_for(r.liam).get(address)
    assert response.status_code == 200
    html = response.content.decode()
    return html[html.index('<table class="table matrix"'):html.index("</table>")], len(ctx)


def test_the_matrix_is_counted_once_per_change_and_shows_each_change(revenue):  # noqa: F811
    r = revenue
    first, counted = get_matrix(r)
    again, cached = get_matrix(r)
    assert again == first and cached <= counted - 3  # objectives, units, extra parents
    # A new team's objective under the company objective: a new row with a count.
    legal = TeamFactory(organization=r.org, name="Legal")
    ObjectiveFactory(organization=r.org, cycle=r.cycle, team=legal, parent=r.arr)
    with_legal, _ = get_matrix(r)
    assert "Legal" in with_legal and "Legal" not in first
    # Health written by the recompute's raw SQL.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE okrs_keyresult SET confidence = %s WHERE id = %s",
                       ["off_track", r.sso.pk])
    with scope(organization=r.org):
        network.run(r.cycle)
    assert "health-off_track" in get_matrix(r)[0] and "health-off_track" not in with_legal
