"""The objective page's rows that every reader sees alike (aligned objectives, key results'
check-ins, shares, dependencies, findings, the review thread...) are read once per change
(okrs/sections.py): from the cache until something they show changes, then right on the next
request. What depends on the reader is worked out for each reader."""

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from alignment import cascade
from alignment.models import Finding
from dependencies import network
from dependencies import services as dependency_services
from dependencies.models import Dependency
from okrs import sections
from okrs import services as okr_services
from okrs.models import CheckIn, KeyResult, Objective, ObjectiveParent
from orgs import versions
from orgs.models import Team
from tests.conftest import client_for
from tests.factories import KeyResultFactory, ObjectiveFactory, TeamFactory

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


@pytest.fixture
def computed(monkeypatch):
    """The objective pages whose sections were read from the database (not the cache)."""
    calls = []
    read_sections = sections._read
    monkeypatch.setattr(sections, "_read",
                        lambda org, o: calls.append(o.pk) or read_sections(org, o))
    return calls


def test_the_rows_are_read_once_and_each_change_shows_on_the_next_request(
        revenue, django_capture_on_commit_callbacks, computed):
    r = revenue
    recompute(r, django_capture_on_commit_callbacks)
    mia = client_for(r.mia)
    first, page = read(mia, r)
    again, same = read(mia, r)
    # Children, parents, history, contributors, shares, dependencies, contributions, the
    # recovery plan, thread, re-cascade requests, earlier cycles: cached (health, values and
    # findings are read on each request).
    assert computed == [r.win.pk] and again <= first - 6
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
        revenue, world_b, computed):
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
    assert computed == [r.win.pk]  # his first request (his session, his nav), the rows cached
    assert queries < first
    # Another organization's writes leave this organization's entry alone.
    ObjectiveFactory(organization=world_b.org, cycle=world_b.cycle, team=world_b.team)
    with scope(organization=world_b.org):
        Team.objects.for_org(world_b.org).filter(pk=world_b.team.pk).update(name="Elsewhere")
    assert read(mia, r)[0] == cached and computed == [r.win.pk]


# Per objective: a write moves only the pages that show its row -------------------------------


def warm(client, r, objective=None):
    """Read the page twice; return the warm request's (queries, content)."""
    read(client, r, objective)
    return read(client, r, objective)


@pytest.fixture
def elsewhere(revenue):
    """A team and an objective that nothing on "Win enterprise customers" shows."""
    r = revenue
    with scopes_disabled():
        r.support = TeamFactory(organization=r.org, name="Support", lead=r.mia,
                                kind=Team.Kind.DEPARTMENT)
        r.mia_m.teams.add(r.support)
        r.tickets = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.support,
                                     title="Answer every ticket within a day")
        r.backlog = KeyResultFactory(objective=r.tickets, title="Open tickets under 50",
                                     owner=r.mia, current_value=Decimal(80),
                                     start_value=Decimal(100), target_value=Decimal(50))
    return r


def test_writes_elsewhere_in_the_organization_leave_the_page_warm(
        elsewhere, django_capture_on_commit_callbacks, computed):
    r = elsewhere
    recompute(r, django_capture_on_commit_callbacks)
    mia = client_for(r.mia)
    queries, page = warm(mia, r)
    computed.clear()
    with scope(organization=r.org), django_capture_on_commit_callbacks(execute=True):
        # A check-in on another team's key result, and the recompute it calls for.
        okr_services.record_check_in(membership=r.mia_m, key_result=r.backlog,
                                     confidence="off_track", value=95, note="A flood of tickets.")
    recompute(r, django_capture_on_commit_callbacks)
    with scope(organization=r.org), django_capture_on_commit_callbacks(execute=True):
        # Its objective edited, commented on, given a recovery plan and an aligned objective.
        tickets = Objective.objects.for_org(r.org).get(pk=r.tickets.pk)
        tickets.title = "Answer every ticket within four hours"
        tickets.save()
        cascade.comment(membership=r.mia_m, objective=r.tickets, text="Is a day too slow?")
        dependency_services.add_recovery_action(
            membership=r.liam_m, objective=r.tickets, title="Hire two agents", owner=r.mia,
            due_date=r.cycle.end_date)
        ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.support, parent=r.tickets,
                         title="Write the help center")
    recompute(r, django_capture_on_commit_callbacks)
    # The sections come from the entry (the nav's "Needs me" count, which these writes moved,
    # is counted again once), then the page is as warm as before.
    assert read(mia, r)[1] == page and not computed
    assert read(mia, r) == (queries, page)


def test_each_thing_the_page_shows_of_other_rows_shows_on_the_next_request(
        elsewhere, django_capture_on_commit_callbacks):
    r = elsewhere
    mia = client_for(r.mia)
    with scopes_disabled():
        child = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.support,
                                 parent=r.win, title="Support the new customers")
        onboarding = KeyResultFactory(objective=child, title="Onboard in a week", owner=r.mia,
                                      start_value=Decimal(0), target_value=Decimal(100),
                                      current_value=Decimal(0))
    warm(mia, r)

    def shows(text):
        return text in read(mia, r)[1]

    # The parent's title, in the breadcrumb.
    with scope(organization=r.org):
        arr = Objective.objects.for_org(r.org).get(pk=r.arr.pk)
        arr.title = "Reach $15M ARR"
        arr.save()
    assert shows("Reach $15M ARR")
    # A check-in on an aligned objective's key result: its progress there (read on each
    # request, the value is written through a queryset).
    assert not shows('<span class="pct">80%</span>')
    with scope(organization=r.org), django_capture_on_commit_callbacks(execute=True):
        okr_services.record_check_in(membership=r.mia_m, key_result=onboarding,
                                     confidence="on_track", value=80)
    assert shows('<span class="pct">80%</span>')
    # The other end of a dependency, renamed.
    with scope(organization=r.org):
        sso = KeyResult.objects.for_org(r.org).get(pk=r.sso.pk)
        sso.title = "Ship SAML single sign-on"
        sso.save()
    assert shows("Ship SAML single sign-on")
    # The aligned objective renamed, then moved away.
    with scope(organization=r.org):
        child = Objective.objects.for_org(r.org).get(pk=child.pk)
        child.title = "Support enterprise customers"
        child.save()
    assert shows("Support enterprise customers")
    # Another team's key result aligned here, then renamed.
    with scope(organization=r.org):
        backlog = KeyResult.objects.for_org(r.org).get(pk=r.backlog.pk)
        backlog.aligned_to = r.win
        backlog.save()
    assert shows("Open tickets under 50")
    with scope(organization=r.org):
        backlog.title = "Open tickets under 40"
        backlog.save()
    assert shows("Open tickets under 40")
    # An extra parent: it also contributes to another objective, whose title shows.
    with scope(organization=r.org):
        ObjectiveParent.objects.create(organization=r.org, objective=r.win, parent=r.tickets,
                                       share=Decimal("0.3"))
    assert shows("Answer every ticket within a day")
    with scope(organization=r.org):
        tickets = Objective.objects.for_org(r.org).get(pk=r.tickets.pk)
        tickets.title = "Answer every ticket in an hour"
        tickets.save()
    assert shows("Answer every ticket in an hour")
    # A key result of another team feeds one of its key results (Mia leads both teams: her
    # request is accepted at once).
    with scope(organization=r.org), django_capture_on_commit_callbacks(execute=True):
        dependency_services.request_contribution(membership=r.mia_m, key_result=r.backlog,
                                                 shared=r.deals)
    assert shows("(Support) feeds “Close 3 enterprise deals”")
    # A recovery action, a dependency that goes away.
    with scope(organization=r.org), django_capture_on_commit_callbacks(execute=True):
        dependency_services.add_recovery_action(
            membership=r.liam_m, objective=r.win, title="Call every stalled lead", owner=r.mia,
            due_date=r.cycle.end_date)
    assert shows("Call every stalled lead")
    with scope(organization=r.org):
        Dependency.objects.for_org(r.org).get(pk=r.dependency.pk).delete()
    assert not shows("Ship SAML single sign-on")
    # The aligned objective's key result deleted: its progress there goes with it.
    with scope(organization=r.org):
        KeyResult.objects.for_org(r.org).get(pk=onboarding.pk).delete()
    assert not shows('<span class="pct">80%</span>')


def test_findings_show_on_the_next_request(revenue, django_capture_on_commit_callbacks):
    r = revenue
    recompute(r, django_capture_on_commit_callbacks)
    mia = client_for(r.mia)
    queries, page = warm(mia, r)
    assert 'data-testid="objective-findings"' not in page
    # The recompute stores findings with raw SQL: a finding written without a signal shows.
    with scope(organization=r.org):
        Finding.objects.for_org(r.org).bulk_create([Finding(
            organization=r.org, cycle=r.cycle, objective=r.win, rule="kr_as_objective",
            severity="medium", rank=1, who="Sales", message="It reads like a task.")])
    assert "It reads like a task." in read(mia, r)[1]


@pytest.mark.parametrize("at_once", [200, 1])
def test_rows_created_in_bulk_show_on_the_next_request(revenue, monkeypatch, at_once):
    """An import's ``bulk_create``: the pages of its rows move, or past ``PAGE_ROWS_AT_ONCE``
    rows every page of the organization."""
    r = revenue
    monkeypatch.setattr(versions, "PAGE_ROWS_AT_ONCE", at_once)
    mia = client_for(r.mia)
    warm(mia, r)
    with scope(organization=r.org):
        CheckIn.objects.for_org(r.org).bulk_create([
            CheckIn(organization=r.org, key_result=r.deals, value=Decimal(v), confidence="at_risk",
                    note=f"Imported week {v}.", created_at=timezone.now())
            for v in (61, 62)])
    page = read(mia, r)[1]
    assert "Imported week 61." in page and "Imported week 62." in page
