"""The objective page's rows that every reader sees alike (aligned objectives, key results'
check-ins, shares, dependencies, findings, the review thread...) are read once per change
(okrs/sections.py): from the cache until something they show changes, then right on the next
request. What depends on the reader is worked out for each reader."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_scopes import scope

from alignment import cascade
from dependencies import network
from dependencies import services as dependency_services
from dependencies.models import Dependency
from okrs import services as okr_services
from okrs.models import KeyResult
from orgs.models import Team
from tests.conftest import client_for
from tests.factories import ObjectiveFactory

pytestmark = pytest.mark.django_db


def main_of(response):
    assert response.status_code == 200
    html = response.content.decode()
    html = html[html.index('<main id="main"'):html.index("</main>")]
    return re.sub(r'(nonce|value)="[^"]*"', "", html)


def read(client, r, objective=None):
    """(queries, the page's main content)."""
    objective = objective or r.win
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("objective", args=[r.org.slug, objective.pk]))
    return len(ctx), main_of(response)


def recompute(r, capture):
    with scope(organization=r.org), capture(execute=True):
        network.run(r.cycle)


def test_the_rows_are_read_once_and_each_change_shows_on_the_next_request(
        revenue, django_capture_on_commit_callbacks):
    r = revenue
    recompute(r, django_capture_on_commit_callbacks)
    mia = client_for(r.mia)
    first, page = read(mia, r)
    again, same = read(mia, r)
    # Children, parents, history, contributors, shares, dependencies, contributions, the
    # recovery plan, findings, thread, re-cascade requests, earlier cycles: cached.
    assert again <= first - 12
    assert same == page and "Ship SSO" in page and "Check-in history" not in page
    # Health: the recompute writes it with raw SQL, and says so.
    off_track = 'title="Health of what is depended on">Off track'
    assert off_track not in page
    with scope(organization=r.org):
        KeyResult.objects.filter(pk=r.sso.pk).update(confidence="off_track")
    assert off_track not in read(mia, r)[1]  # read before the recompute: cached again
    recompute(r, django_capture_on_commit_callbacks)
    assert off_track in read(mia, r)[1]
    # A check-in (the service): the key result's history.
    with scope(organization=r.org), django_capture_on_commit_callbacks(execute=True):
        okr_services.record_check_in(membership=r.mia_m, key_result=r.deals,
                                     confidence="at_risk", value=70, note="Two deals stalled.")
    assert "Two deals stalled." in read(mia, r)[1]
    # A dependency's state, through a queryset (no signal).
    with scope(organization=r.org):
        Dependency.objects.for_org(r.org).filter(pk=r.dependency.pk).update(status="declined")
    assert 'class="tag dep-declined"' in read(mia, r)[1]
    # A team's name, through a queryset.
    with scope(organization=r.org):
        Team.objects.for_org(r.org).filter(pk=r.eng.pk).update(name="Platform Engineering")
    assert "<strong>Platform Engineering</strong>" in read(mia, r)[1]
    # An objective aligned to it, a comment in its review thread, a share.
    with scope(organization=r.org):
        ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.sales, parent=r.win,
                         title="Hire two account executives")
        cascade.comment(membership=r.mia_m, objective=r.win, text="Is three deals enough?")
        dependency_services.share_objective(membership=r.mia_m, objective=r.win, team=r.eng,
                                            kind="whole")
    page = read(mia, r)[1]
    assert "Hire two account executives" in page and "Is three deals enough?" in page
    assert "Stop sharing this objective with Platform Engineering?" in page


def test_each_reader_gets_their_own_part_and_other_organizations_leave_the_entry(
        revenue, world_b):
    r = revenue
    with scope(organization=r.org):
        dependency_services.share_objective(membership=r.mia_m, objective=r.win, team=r.eng,
                                            kind="whole")
    mia, bob = client_for(r.mia), client_for(r.world.bob.user)
    first = read(mia, r)[0]
    cached, page = read(mia, r)
    # Mia leads Sales: she may stop the share and add a dependency. Bob, a viewer reading the
    # same cached rows, sees them without her buttons.
    queries, theirs = read(bob, r)
    assert "Stop sharing this objective with Engineering?" in page
    assert "Stop sharing" not in theirs and "Engineering" in theirs
    assert "Add a dependency" in page and "Add a dependency" not in theirs
    assert queries <= first - 8  # his first request (his session, his nav), the rows cached
    # Another organization's writes leave this organization's entry alone.
    ObjectiveFactory(organization=world_b.org, cycle=world_b.cycle, team=world_b.team)
    with scope(organization=world_b.org):
        Team.objects.for_org(world_b.org).filter(pk=world_b.team.pk).update(name="Elsewhere")
    assert read(mia, r)[0] == cached
