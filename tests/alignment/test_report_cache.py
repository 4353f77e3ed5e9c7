"""The misalignment report's first screen is computed once per change: the stored findings, the
unhealthy KPIs and the team types' findings come from the cache until something they read
changes, and then they are right on the next request."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_scopes import scope

from alignment.models import FindingsReport
from okrs.models import KPI
from orgs.models import Team
from tests.conftest import client_for

from ..factories import DependencyFactory, ObjectiveFactory
from .test_findings_data import recompute
from .test_team_types import teams  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db


def main_of(response):
    assert response.status_code == 200
    html = response.content.decode()
    return re.sub(r'nonce="[^"]*"', "", html[html.index('<main id="main"'):html.index("</main>")])


def read(client, org):
    """(queries, the page's main content)."""
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("report", args=[org.slug]))
    return len(ctx), main_of(response)


def test_the_first_screen_is_read_once_and_a_recompute_shows_on_the_next_request(revenue):
    r = revenue
    recompute(r)
    liam = client_for(r.liam)
    first, page = read(liam, r.org)
    again, same = read(liam, r.org)
    # The stored report, the first findings of every rule, the unhealthy KPIs and the team
    # types' four link queries and two lists: cached.
    assert again <= first - 8
    assert same == page and "repeats its parent" not in page
    ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.eng, parent=r.arr,
                     title="Reach $12M ARR!", state="proposed")
    recompute(r)  # what the worker does after the change
    count, changed = read(liam, r.org)
    assert "repeats its parent" in changed and count > again


def test_a_team_type_and_a_dependency_show_on_the_next_request(teams, alice_client):  # noqa: F811
    w = teams
    page = read(alice_client, w.org)[1]
    assert ">Platform</a> is an enabling team" in page and ">Checkout</a> depends on no one" in page
    with scope(organization=w.org):  # a queryset update sends no signal: the queryset bumps
        Team.objects.for_org(w.org).filter(pk=w.platform.pk).update(team_type="shared")
    page = read(alice_client, w.org)[1]
    assert ">Platform</a> is an enabling team" not in page
    assert ">Checkout</a> depends on no one" in page
    DependencyFactory(downstream=w.checkout_kr, upstream=w.platform_kr)
    page = read(alice_client, w.org)[1]
    assert ">Checkout</a> depends on no one" not in page


def test_a_kpi_turning_unhealthy_and_its_recovery_objective_show_on_the_next_request(
        world_a, alice_client):
    w = world_a
    assert "Org A uptime is" not in read(alice_client, w.org)[1]
    with scope(organization=w.org):
        KPI.objects.for_org(w.org).filter(pk=w.kpi.pk).update(current_value=90,
                                                               health="unhealthy")
    assert "Org A uptime is 90%, unhealthy" in read(alice_client, w.org)[1]
    ObjectiveFactory(organization=w.org, cycle=w.cycle, team=w.team, recovery_kpi=w.kpi,
                     title="Recover uptime")
    assert "Org A uptime is 90%" not in read(alice_client, w.org)[1]


def test_another_organizations_writes_leave_the_entry_alone(world_a, world_b, alice_client):
    w, b = world_a, world_b
    read(alice_client, w.org)
    cached = read(alice_client, w.org)[0]
    ObjectiveFactory(organization=b.org, cycle=b.cycle, team=b.team)
    with scope(organization=b.org):
        Team.objects.for_org(b.org).filter(pk=b.team.pk).update(name="Renamed elsewhere")
        FindingsReport.objects.for_org(b.org).filter(cycle=b.cycle).delete()
    assert read(alice_client, w.org)[0] == cached
    with scope(organization=w.org):
        Team.objects.for_org(w.org).filter(pk=w.team.pk).update(name="Renamed here")
    assert read(alice_client, w.org)[0] > cached


def test_a_check_in_leaves_the_report_cached_but_not_what_shows_values(revenue, monkeypatch):
    """A check-in writes only the key result's value and confidence, which the report's first
    screen does not show (it shows stored findings, which the recompute's write moves): it stays
    cached, while the pages that show values move. A save of any other column of a key result
    (its owning team: a link between teams) moves it."""
    from alignment import report
    from okrs import services as okr_services
    from okrs.models import KeyResult
    from orgs import versions

    r = revenue
    recompute(r)
    liam = client_for(r.liam)
    computed, first_by_rule = [], report.first_by_rule
    monkeypatch.setattr(report, "first_by_rule",
                        lambda *a: computed.append(1) or first_by_rule(*a))
    page = read(liam, r.org)[1]
    before = {t: versions.version(r.org.pk, t) for t in ("report", "suggest", "review",
                                                          "inbox")}
    with scope(organization=r.org):
        okr_services.record_check_in(
            membership=r.mia_m, key_result=KeyResult.objects.select_related(
                "objective__cycle").get(pk=r.deals.pk), confidence="at_risk",
            value=20, note="Two deals slipped")
    after = {t: versions.version(r.org.pk, t) for t in before}
    assert after["report"] == before["report"] and after["suggest"] == before["suggest"]
    assert after["review"] != before["review"] and after["inbox"] != before["inbox"]
    assert read(liam, r.org)[1] == page and computed == [1]

    with scope(organization=r.org):
        kr = KeyResult.objects.for_org(r.org).get(pk=r.deals.pk)
        kr.owner_team = r.eng
        kr.save()
    assert versions.version(r.org.pk, "report") != after["report"]
    read(liam, r.org)
    assert computed == [1, 1]
