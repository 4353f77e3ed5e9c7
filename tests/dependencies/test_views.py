"""The network pages as people use them: request, answer, see why, be told."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django_scopes import scope, scopes_disabled

from dependencies import network
from dependencies.models import Contribution, Dependency, Notification, ObjectiveShare
from okrs.models import KeyResult
from tests.conftest import client_for
from tests.factories import (
    CycleFactory,
    DependencyFactory,
    KeyResultFactory,
    ObjectiveFactory,
    ObjectiveShareFactory,
    TeamFactory,
)
from tests.querycount import assert_same_queries, count_queries

pytestmark = pytest.mark.django_db


def url(r, name, *args):
    from django.urls import reverse

    return reverse(name, args=[r.org.slug, *args])


def test_a_lead_requests_the_provider_commits_and_both_see_it(revenue,
                                                             django_capture_on_commit_callbacks):
    r = revenue
    mia = client_for(r.mia)
    form = mia.get(url(r, "dependency_new", "o", r.win.pk)).content.decode()
    search = re.search(r'hx-get="([^"]*pick/nodes/[^"]*)"', form).group(1).replace("&amp;", "&")
    found = mia.get(search + "&q=enterprise", HTTP_HX_REQUEST="true").content.decode()
    assert "Make the platform enterprise-ready" in found  # Engineering's work is offered
    assert "Objective: Win enterprise customers" not in found  # not its own
    with django_capture_on_commit_callbacks(execute=True):
        response = mia.post(url(r, "dependency_new", "o", r.win.pk), {
            "upstream": f"o:{r.platform.pk}", "need": "Audit logs for the pilot",
            "needed_by": r.cycle.end_date.isoformat(), "fallback": "Pilot without audit logs"})
    assert response.status_code == 302
    with scope(organization=r.org):
        d = Dependency.objects.get(need="Audit logs for the pilot")
    page = client_for(r.ethan).get(url(r, "dependency", d.pk)).content.decode()
    assert "Commit" in page and "Decline" in page
    assert "Withdraw" not in page  # that is the requester's
    response = client_for(r.ethan).post(url(r, "dependency_answer", d.pk),
                                        {"status": "committed", "note": ""})
    assert response.status_code == 302
    for who in (r.mia, r.ethan):
        objective = r.win if who == r.mia else r.platform
        page = client_for(who).get(url(r, "objective", objective.pk)).content.decode()
        assert "Audit logs for the pilot" in page and "Committed" in page


def test_declining_without_a_reason_is_refused_and_keeps_the_request(revenue):
    r = revenue
    d = r.dependency
    with scope(organization=r.org):
        Dependency.objects.filter(pk=d.pk).update(status="requested")
    response = client_for(r.ethan).post(url(r, "dependency_answer", d.pk),
                                        {"status": "declined", "note": "  "})
    assert response.status_code == 400
    assert "Give a reason" in response.content.decode()
    response = client_for(r.ethan).post(url(r, "dependency_answer", d.pk),
                                        {"status": "declined", "note": "No capacity",
                                         "confirm": "yes"})
    assert response.status_code == 302
    page = client_for(r.liam).get(url(r, "network")).content.decode()
    assert "Escalations" in page and "No capacity" not in page  # the row, not the reason
    assert "Close 3 enterprise deals" in page


def test_the_requester_cannot_answer_for_the_provider(revenue):
    r = revenue
    with scope(organization=r.org):
        Dependency.objects.filter(pk=r.dependency.pk).update(status="requested")
    response = client_for(r.mia).post(url(r, "dependency_answer", r.dependency.pk),
                                      {"status": "committed"})
    assert response.status_code == 403


def test_a_viewer_reads_the_network_but_cannot_request(revenue, bob_client):
    r = revenue
    assert bob_client.get(url(r, "network")).status_code == 200
    assert bob_client.get(url(r, "dependency", r.dependency.pk)).status_code == 200
    assert bob_client.get(url(r, "dependency_new", "k", r.deals.pk)).status_code == 403


def test_a_loop_is_explained_on_the_form(revenue):
    r = revenue
    response = client_for(r.ethan).post(url(r, "dependency_new", "k", r.sso.pk), {
        "upstream": f"o:{r.win.pk}", "need": "x", "needed_by": r.cycle.end_date.isoformat(),
        "fallback": "y"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "This link would create a loop" in page
    assert "Win enterprise customers (Sales) -&gt; Ship SSO (Engineering)" in page


def test_garbage_upstream_is_a_form_error(revenue):
    r = revenue
    for value in ("k:999999", "x:1", "o:abc", ""):
        response = client_for(r.mia).post(url(r, "dependency_new", "o", r.win.pk), {
            "upstream": value, "need": "x", "needed_by": r.cycle.end_date.isoformat(),
            "fallback": "y"})
        assert response.status_code == 200, value
        assert 'class="field-error"' in response.content.decode(), value


def test_why_at_risk_shows_the_path_and_the_alert_reaches_the_owner(
        revenue, django_capture_on_commit_callbacks):
    r = revenue
    with scope(organization=r.org):
        KeyResult.objects.filter(pk=r.sso.pk).update(confidence="off_track")
        with django_capture_on_commit_callbacks(execute=True):
            network.run(r.cycle)
    mia = client_for(r.mia)
    page = mia.get(url(r, "objective", r.win.pk)).content.decode()
    assert "At risk from upstream" in page
    why = mia.get(url(r, "why_at_risk", "k", r.deals.pk)).content.decode()
    path = why[why.index('data-testid="risk-path"'):]
    assert path.index("Ship SSO") < path.index("Close 3 enterprise deals")
    assert "never off track" in why  # the rule, in words
    home = mia.get(url(r, "home")).content.decode()
    assert 'data-testid="unread-alerts">2' in home
    alerts = mia.get(url(r, "notifications")).content.decode()
    assert "Close 3 enterprise deals" in alerts and (
        "Upstream dependency: “Ship SSO” (Engineering) is off track." in alerts)
    mia.post(url(r, "notifications_read"))
    with scope(organization=r.org):
        assert not Notification.objects.filter(user=r.mia, read_at__isnull=True).exists()
    assert len([m for m in mail.outbox if m.to == ["mia@a.test"]]) == 1


def test_team_pages_name_each_link_and_say_when_nothing_is_shared(revenue):
    r = revenue
    KeyResultFactory(objective=r.win, owner_team=r.eng, title="Security review passed")
    loner = TeamFactory(organization=r.org, name="IT Operations")
    sales = client_for(r.liam).get(url(r, "team", r.sales.pk)).content.decode()
    assert "Only the objective shared" in sales and "Engineering" in sales
    assert "Close 3 enterprise deals" in sales  # the dependency
    it = client_for(r.liam).get(url(r, "team", loner.pk)).content.decode()
    assert 'data-testid="nothing-shared"' in it


def test_the_team_page_lists_its_first_dependencies_and_links_to_all_of_them(revenue):
    """A team with many dependencies: its page shows the first ten by the date they are
    needed, each row whole (both teams, both ends, state, upstream health), and sends to the
    network page filtered by the team for the rest."""
    r = revenue
    with scopes_disabled():
        for i in range(11):
            upstream = KeyResultFactory(objective=r.platform, title=f"Upstream part {i}",
                                        effective_health="at_risk")
            DependencyFactory(downstream=r.deals, upstream=upstream, need=f"Need number {i}",
                              needed_by=r.cycle.start_date + timedelta(days=i + 1),
                              status="requested")
    liam = client_for(r.liam)
    html = liam.get(url(r, "team", r.sales.pk) + f"?cycle={r.cycle.pk}").content.decode()
    rows = html[html.index("<h3>Dependencies</h3>"):]
    assert rows.count('class="dep-row"') == 10
    for i in range(10):
        assert f"Need number {i}" in rows
        assert f"“Close 3 enterprise deals” depends on “Upstream part {i}”" in rows
    assert "Need number 10" not in rows and "Ship SSO" not in rows  # needed last
    assert rows.count("<strong>Sales</strong> is supported by <strong>Engineering</strong>") == 10
    assert rows.count('title="Health of what is depended on">At risk') == 10
    assert 'data-testid="more-dependencies"' in rows
    assert f'{url(r, "network")}?cycle={r.cycle.pk}&amp;team={r.sales.pk}' in rows
    # With ten or fewer, the page lists them all and points nowhere else.
    with scopes_disabled():
        Dependency.objects.filter(upstream_key_result__title__startswith="Upstream part").filter(
            needed_by__gt=r.cycle.start_date + timedelta(days=8)).delete()
    html = liam.get(url(r, "team", r.sales.pk) + f"?cycle={r.cycle.pk}").content.decode()
    assert html.count('class="dep-row"') == 9 and "Ship SSO" in html
    assert 'data-testid="more-dependencies"' not in html


def test_sharing_from_the_objective_page(revenue):
    r = revenue
    mia = client_for(r.mia)
    response = mia.post(url(r, "share_add", r.win.pk), {"team": r.eng.pk, "kind": "whole"})
    assert response.status_code == 302
    page = mia.get(url(r, "objective", r.win.pk)).content.decode()
    assert "Whole OKR shared" in page
    eng = client_for(r.liam).get(url(r, "team", r.eng.pk)).content.decode()
    assert "Whole OKR shared" in eng and "Win enterprise customers" in eng


def test_linking_a_contributing_key_result(revenue, django_capture_on_commit_callbacks):
    """Mia asks to add her deals into the company's KR: nothing changes until the owners (here
    the alignment lead) accept; then the value adds up; when she stops, it goes back."""
    r = revenue
    shared = KeyResultFactory(objective=r.arr, title="Enterprise logos", start_value=0,
                              target_value=10, current_value=0)
    mia, liam = client_for(r.mia), client_for(r.liam)
    with django_capture_on_commit_callbacks(execute=True):
        response = mia.post(url(r, "key_result_link", r.deals.pk),
                            {"feeds": shared.pk, "rollup": "sum"})
    assert response.status_code == 302
    with scope(organization=r.org):
        assert KeyResult.objects.get(pk=shared.pk).current_value == 0
        request = Contribution.objects.get(key_result=r.deals)
    assert request.status == "requested"
    page = mia.get(url(r, "objective", r.win.pk)).content.decode()
    assert "Waiting for an answer" in page and "Accept" not in page
    page = liam.get(url(r, "objective", r.arr.pk)).content.decode()
    assert "Sales asks to count" in page and "Accept" in page
    assert mia.post(url(r, "contribution_answer", request.pk),
                    {"answer": "accept"}).status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        response = liam.post(url(r, "contribution_answer", request.pk), {"answer": "accept"})
    assert response.status_code == 302
    with scope(organization=r.org):
        assert KeyResult.objects.get(pk=shared.pk).current_value == 60
    page = mia.get(url(r, "objective", r.win.pk)).content.decode()
    assert "Only a key result shared" in page and "Enterprise logos" in page
    # Without confirm=yes (no JavaScript): a page asks first, and the link stays.
    response = mia.post(url(r, "contribution_stop", request.pk))
    asked = mia.get(response.url).content.decode()
    assert "Stop “" in asked and 'name="confirm" value="yes"' in asked
    with scope(organization=r.org):
        assert KeyResult.objects.get(pk=shared.pk).current_value == 60
    with django_capture_on_commit_callbacks(execute=True):
        response = mia.post(url(r, "contribution_stop", request.pk), {"confirm": "yes"})
    assert response.status_code == 302
    with scope(organization=r.org):
        after = KeyResult.objects.get(pk=shared.pk)
    assert (after.current_value, after.rollup) == (0, "")


def test_recovery_plan_on_an_at_risk_company_objective(revenue,
                                                      django_capture_on_commit_callbacks):
    r = revenue
    with scope(organization=r.org):
        KeyResult.objects.filter(pk=r.sso.pk).update(confidence="off_track")
        with django_capture_on_commit_callbacks(execute=True):
            network.run(r.cycle)
    liam = client_for(r.liam)
    assert "Recovery plan" in liam.get(url(r, "objective", r.arr.pk)).content.decode()
    response = liam.post(url(r, "recovery_add", r.arr.pk), {
        "title": "Daily SSO stand-up", "owner": r.ethan.pk,
        "due_date": r.cycle.end_date.isoformat()})
    assert response.status_code == 302
    page = client_for(r.mia).get(url(r, "objective", r.arr.pk)).content.decode()
    assert "Daily SSO stand-up" in page and "Ethan Engineering" in page
    assert client_for(r.mia).post(url(r, "recovery_add", r.arr.pk), {
        "title": "x", "owner": r.mia.pk, "due_date": r.cycle.end_date.isoformat()},
    ).status_code == 403


def test_network_and_objective_pages_keep_their_query_count(revenue):
    r = revenue
    liam = client_for(r.liam)

    def pages():
        liam.get(url(r, "network"))
        liam.get(url(r, "objective", r.win.pk))
        liam.get(url(r, "team", r.sales.pk))

    small = count_queries(pages)
    for i in range(15):
        team = TeamFactory(organization=r.org, name=f"Team {i}")
        o = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=team, parent=r.arr)
        kr = KeyResultFactory(objective=o, risk_causes=[[{"kind": "k", "id": r.sso.pk,
                              "objective": r.platform.pk, "title": "Ship SSO",
                              "team": "Engineering", "health": "off_track"}]],
                              effective_health="at_risk")
        DependencyFactory(downstream=kr, upstream=r.deals, status="requested")
        DependencyFactory(downstream=r.win, upstream=kr, status="committed")
    large = count_queries(pages)
    assert_same_queries(small, large)


def test_both_teams_pages_name_every_kind_of_link_between_them(revenue):
    """The team page reads its links by the team's own objectives and key results: each link
    shows on both teams' pages, with the other team, and a link of another cycle on neither."""
    r = revenue
    KeyResultFactory(objective=r.win, owner_team=r.eng, title="Security review passed")
    ObjectiveShareFactory(objective=r.platform, team=r.sales, kind=ObjectiveShare.Kind.WHOLE)
    KeyResultFactory(objective=r.platform, owner_team=r.eng, title="Signed pilots",
                     feeds=r.deals)
    later = CycleFactory(organization=r.org)
    elsewhere = ObjectiveFactory(organization=r.org, cycle=later, team=r.sales,
                                 title="Next quarter's goal")
    KeyResultFactory(objective=elsewhere, owner_team=r.eng)
    liam = client_for(r.liam)
    pages = {team: liam.get(url(r, "team", team.pk) + f"?cycle={r.cycle.pk}").content.decode()
             for team in (r.sales, r.eng)}
    for team, other in ((r.sales, r.eng), (r.eng, r.sales)):
        page = pages[team]
        links = page[page.index('id="links"'):]
        assert "Only the objective shared" in links and "Win enterprise customers" in links
        assert "Whole OKR shared" in links and "Make the platform enterprise-ready" in links
        assert "Only a key result shared" in links
        assert "Signed pilots feeds Close 3 enterprise deals" in links
        assert f'<a href="{url(r, "team", other.pk)}">{other.name}</a>' in links
        assert "Next quarter" not in links


def test_the_team_page_reads_its_links_in_the_same_queries_however_many(revenue):
    r = revenue
    liam = client_for(r.liam)

    def page():
        return liam.get(url(r, "team", r.sales.pk) + f"?cycle={r.cycle.pk}")

    small = count_queries(page)
    for i in range(12):
        team = TeamFactory(organization=r.org, name=f"Crew {i}")
        theirs = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=team)
        KeyResultFactory(objective=r.win, owner_team=team)
        KeyResultFactory(objective=theirs, owner_team=r.sales)
        KeyResultFactory(objective=theirs, owner_team=team, feeds=r.deals)
        ObjectiveShareFactory(objective=theirs, team=r.sales, kind=ObjectiveShare.Kind.WHOLE)
        DependencyFactory(downstream=r.deals, upstream=KeyResultFactory(objective=theirs),
                          status="committed")
    large = count_queries(page)
    assert_same_queries(small, large)
    assert large[0].content.decode().count("Crew 11") >= 4
