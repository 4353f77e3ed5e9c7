"""Every page is bounded: a page's size does not grow with the organization, long lists
paginate or load more, and their filters stay inside the organization."""

import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from dependencies.models import Dependency
from okrs.models import KeyResult, Objective
from orgs.models import Team
from tests.conftest import client_for
from tests.factories import (
    DependencyFactory,
    KeyResultFactory,
    MembershipFactory,
    ObjectiveFactory,
    ObjectiveShareFactory,
    RecascadeFlagFactory,
    StakeholderFactory,
    TeamFactory,
    UserFactory,
)
from tests.querycount import assert_same_queries, count_queries, within

pytestmark = pytest.mark.django_db


def url(world, name, *args):
    return reverse(name, args=[world.org.slug, *args])



def add_teams(world, n, start=0):
    """n teams under the department alice leads, each with an objective and a key result."""
    for i in range(start, start + n):
        team = TeamFactory(organization=world.org, name=f"Squad {i:04}", parent=world.team)
        o = ObjectiveFactory(organization=world.org, cycle=world.cycle, team=team,
                             parent=world.company_objective, title=f"Squad goal {i:04}")
        KeyResultFactory(objective=o, title=f"Squad result {i:04}")


@pytest.fixture
def lead_of_all(world_a, alice):
    with scopes_disabled():
        Team.objects.filter(pk=world_a.team.pk).update(lead=alice)
    return world_a


def test_home_does_not_grow_with_the_organization(lead_of_all, alice_client):
    w = lead_of_all
    add_teams(w, 20)
    small = count_queries(lambda: alice_client.get(url(w, "home")))
    add_teams(w, 380, start=20)
    large = count_queries(lambda: alice_client.get(url(w, "home")))
    within(small[0].content, large[0].content)
    assert_same_queries(small, large)
    html = large[0].content.decode()
    assert "Squad goal 0000" in html and "Squad goal 0030" not in html
    assert "Show more (401 in all)" in html  # 400 squads and the department's own goal


def test_home_loads_more_of_my_teams_okrs(lead_of_all, alice_client):
    w = lead_of_all
    add_teams(w, 45)
    first = alice_client.get(url(w, "home")).content.decode()
    assert "Squad goal 0018" in first and "Squad goal 0019" not in first
    more = alice_client.get(url(w, "home") + f"?cycle={w.cycle.pk}&page=2",
                            HTTP_HX_REQUEST="true")
    rows = more.content.decode()
    assert rows.lstrip().startswith('<li class="obj-row">')
    assert "Squad goal 0019" in rows and "Squad goal 0038" in rows
    assert "Squad goal 0018" not in rows and "<html" not in rows
    assert "page=3" in rows  # and the next "show more"
    # Without JavaScript the same link opens the full page at that page.
    page = alice_client.get(url(w, "home") + f"?cycle={w.cycle.pk}&page=3").content.decode()
    assert "<html" in page and "Squad goal 0039" in page and "page=4" not in page


def test_home_says_what_waits_for_me(lead_of_all, alice_client):
    w = lead_of_all
    with scopes_disabled():
        Dependency.objects.filter(pk=w.dependency.pk).update(status="requested")
        Objective.objects.filter(pk=w.objective.pk).update(state="proposed")
        Team.objects.filter(pk=w.company.pk).update(lead=w.admin.user)  # the provider
    html = alice_client.get(url(w, "home")).content.decode()
    assert 'data-testid="needs-me"' in html
    assert "Dependency requests to answer: 1" in html
    assert "Proposed objectives to review: 1" in html
    assert "Objectives to confirm after a change above: 1" in html


def bulk_dependencies(world, n, tag=""):
    """n dependencies between two teams' key results (a third declined), inserted in bulk."""
    with scopes_disabled():
        a = TeamFactory(organization=world.org, name=f"Providers{tag}")
        b = TeamFactory(organization=world.org, name=f"Requesters{tag}")
        up = KeyResultFactory(objective=ObjectiveFactory(organization=world.org,
                                                         cycle=world.cycle, team=a),
                              owner_team=a, title="Upstream result")
        down = KeyResultFactory(objective=ObjectiveFactory(organization=world.org,
                                                           cycle=world.cycle, team=b),
                                owner_team=b, title="Downstream result")
        Dependency.objects.bulk_create([
            Dependency(organization=world.org, cycle=world.cycle, upstream_key_result=up,
                       downstream_key_result=down, requesting_team=b, providing_team=a,
                       need=f"Need {i:05}", needed_by=world.cycle.end_date
                       - datetime.timedelta(days=i % 30),
                       fallback="Wait", status="committed" if i % 3 else "declined")
            for i in range(n)])
    return a, b, up


def test_the_network_page_does_not_grow_with_the_dependencies(world_a, alice_client):
    w = world_a
    bulk_dependencies(w, 50)
    small = count_queries(lambda: alice_client.get(url(w, "network")))
    bulk_dependencies(w, 1950, tag=" 2")
    large = count_queries(lambda: alice_client.get(url(w, "network")))
    within(small[0].content, large[0].content)
    assert_same_queries(small, large)
    html = large[0].content.decode()
    assert "Page 1 of 41" in html  # 2,001 dependencies, 50 a page
    assert "See all 667 escalations" in html  # a third declined; ten shown


def test_the_network_page_filters_and_pages(world_a, alice_client):
    w = world_a
    providers, _, up = bulk_dependencies(w, 300)
    base = url(w, "network") + f"?cycle={w.cycle.pk}"
    declined = alice_client.get(base + "&state=declined").content.decode()
    assert "Need 00027" in declined and "Need 00001" not in declined
    assert "100 in all" in declined
    escalated = alice_client.get(base + "&escalated=1").content.decode()
    assert "100 in all" in escalated  # the declined ones; the rest were just committed
    with scopes_disabled():
        KeyResult.objects.filter(pk=up.pk).update(effective_health="off_track")
    at_risk = alice_client.get(base + "&at_risk=1").content.decode()
    assert "300 in all" in at_risk and w.dependency.need not in at_risk
    by_team = alice_client.get(base + f"&team={providers.pk}").content.decode()
    assert "Involving Providers" in by_team and w.dependency.need not in by_team
    page3 = alice_client.get(base + "&page=3").content.decode()
    assert "Page 3 of 7" in page3 and 'rel="prev"' in page3


def test_the_network_filter_ignores_another_organizations_team(world_a, world_b,
                                                                alice_client):
    w = world_a
    html = alice_client.get(url(w, "network") + f"?team={world_b.team.pk}").content.decode()
    assert world_b.team.name not in html
    assert w.dependency.need in html  # the filter is dropped, not applied to a stranger


# The alignment pages ----------------------------------------------------------------------


def test_the_workflow_offers_only_its_own_rows(world_a, alice_client):
    w = world_a
    outsider = TeamFactory(organization=w.org, name="Outsiders")
    o = ObjectiveFactory(organization=w.org, cycle=w.cycle, team=outsider,
                         parent=w.company_objective, title="Outside goal")
    KeyResultFactory(objective=o, owner_team=outsider, title="Outside result")
    KeyResultFactory(objective=w.company_objective, title="Company result")
    kickoff = url(w, "workflow", w.workflow.pk) + "?form=kickoff"  # its success measures
    page = alice_client.get(kickoff).content.decode()
    assert "Company result" in page and "Outside result" not in page
    StakeholderFactory(workflow=w.workflow, team=outsider)
    page = alice_client.get(kickoff).content.decode()
    assert "Outside result" in page  # a stakeholder's key results are the workflow's own


def test_the_workflow_page_does_not_grow_with_the_cycles_dependencies(world_a, alice_client):
    w = world_a
    small = alice_client.get(url(w, "workflow", w.workflow.pk)).content
    bulk_dependencies(w, 500)
    large = alice_client.get(url(w, "workflow", w.workflow.pk)).content
    within(small, large)


def proposals(world, n, team):
    return [ObjectiveFactory(organization=world.org, cycle=world.cycle, team=team,
                             parent=world.company_objective, state="proposed",
                             title=f"Proposal {i:03}") for i in range(n)]


def test_the_review_queue_pages_and_filters(world_a, alice_client):
    w = world_a
    squad = TeamFactory(organization=w.org, name="Squad", parent=w.team)
    proposals(w, 25, squad)
    base = url(w, "review") + f"?cycle={w.cycle.pk}"
    first = alice_client.get(base).content.decode()
    assert first.count('class="card review-item"') == 20 and "Page 1 of 2" in first
    second = alice_client.get(base + "&page=2").content.decode()
    assert second.count('class="card review-item"') == 5
    with scopes_disabled():
        Objective.objects.filter(title="Proposal 000").update(state="approved")
    approved = alice_client.get(base + "&state=approved").content.decode()
    assert approved.count('class="card review-item"') == 1 and "Proposal 000" in approved
    other = alice_client.get(base + f"&team={w.team.pk}").content.decode()
    assert "Proposal 001" not in other and "Nothing to review matches" in other


def test_the_recascade_page_pages_filters_and_stays_in_the_organization(world_a, world_b,
                                                                       alice_client):
    w = world_a
    squad = TeamFactory(organization=w.org, name="Squad", parent=w.team)
    for o in proposals(w, 25, squad):
        RecascadeFlagFactory(objective=o)
    base = url(w, "recascade") + f"?cycle={w.cycle.pk}"
    first = alice_client.get(base).content.decode()
    assert first.count('<li id="flag-') == 20 and "26 in all" in first  # and world_a's own
    squad_only = alice_client.get(base + f"&team={squad.pk}").content.decode()
    assert "25 in all" in squad_only
    stranger = alice_client.get(base + f"&team={world_b.team.pk}").content.decode()
    assert world_b.team.name not in stranger and "26 in all" in stranger


def test_the_recascade_page_asks_who_may_answer_without_a_query_per_row(world_a):
    # A team lead who leads none of the flagged teams: the page checks, per row, whether a
    # share makes them a co-owner; that must not be a query per row.
    w = world_a
    lead = UserFactory(email="lead@a.test")
    MembershipFactory(organization=w.org, user=lead, role="team_lead")
    TeamFactory(organization=w.org, name="Theirs", parent=w.team, lead=lead)
    squad = TeamFactory(organization=w.org, name="Squad", parent=w.team)
    client = client_for(lead)
    base = url(w, "recascade") + f"?cycle={w.cycle.pk}"
    for o in proposals(w, 2, squad):
        RecascadeFlagFactory(objective=o)
    small = count_queries(lambda: client.get(base))
    for o in proposals(w, 18, squad):
        RecascadeFlagFactory(objective=o)
    large = count_queries(lambda: client.get(base))
    assert large[0].status_code == 200
    assert large[0].content.decode().count('<li id="flag-') == 20
    assert_same_queries(small, large)


def test_an_admin_answers_every_recascade_row_without_reading_co_owners(world_a,
                                                                        alice_client):
    """Alice (org admin) may answer every row: the page offers each row's answers and
    re-align choices, and reads no co-owner shares to decide it."""
    w = world_a
    squad = TeamFactory(organization=w.org, name="Squad", parent=w.team)
    for o in proposals(w, 3, squad):
        RecascadeFlagFactory(objective=o)
    result, n, sql = count_queries(
        lambda: alice_client.get(url(w, "recascade") + f"?cycle={w.cycle.pk}"))
    page = result.content.decode()
    assert page.count("It still fits") == 4 and page.count('name="parent"') == 4
    choice = f'<option value="{w.objective.pk}">{w.team.name}: {w.objective.title}</option>'
    assert page.count(choice) == 3  # the squad's parent unit's objective, on each squad row
    assert "dependencies_objectiveshare" not in sql


def test_the_report_shows_ten_findings_a_rule_and_pages_one_rule(world_a, world_b,
                                                                alice_client):
    from alignment.models import Finding, FindingsReport

    for w in (world_a, world_b):
        FindingsReport.objects.create(organization=w.org, cycle=w.cycle, total=121, high=121,
                                      computed_at=timezone.now())
    Finding.objects.bulk_create(
        [Finding(organization=world_a.org, cycle=world_a.cycle, rule="orphan", severity="high",
                 rank=0, message=f"Orphan number {i:03}", who="its team") for i in range(120)]
        + [Finding(organization=world_a.org, cycle=world_a.cycle, rule="metric_objective",
                   severity="low", rank=2, message="Metric number 000", who="its team")]
        + [Finding(organization=world_b.org, cycle=world_b.cycle, rule="orphan", severity="high",
                   rank=0, message="Orphan elsewhere", who="its team")])
    base = url(world_a, "report") + f"?cycle={world_a.cycle.pk}"
    page = alice_client.get(base).content.decode()
    assert "Orphan number 009" in page and "Orphan number 010" not in page
    assert "See all 120" in page and "<strong>121</strong> findings" in page
    rule = alice_client.get(base + "&rule=orphan&page=3").content.decode()
    assert "Orphan number 100" in rule and "Orphan number 099" not in rule
    assert "Page 3 of 3" in rule and 'id="rule-coverage_gap"' not in rule
    assert "Metric number 000" in page and "Metric number 000" not in rule
    assert "Orphan elsewhere" not in page and "Orphan elsewhere" not in rule


def test_the_network_map_draws_departments_above_thirty_teams(world_a, world_b,
                                                              alice_client):
    w = world_a
    north = TeamFactory(organization=w.org, name="North", kind=Team.Kind.DEPARTMENT)
    south = TeamFactory(organization=w.org, name="South", kind=Team.Kind.DEPARTMENT)
    teams = [TeamFactory(organization=w.org, name=f"Crew {i:02}",
                         parent=north if i % 2 else south) for i in range(36)]
    a = ObjectiveFactory(organization=w.org, cycle=w.cycle, team=teams[0])
    b = ObjectiveFactory(organization=w.org, cycle=w.cycle, team=teams[1])
    c = ObjectiveFactory(organization=w.org, cycle=w.cycle, team=teams[3])
    for down, up in ((a, b), (a, c)):
        DependencyFactory(downstream=KeyResultFactory(objective=down),
                          upstream=KeyResultFactory(objective=up), status="committed")
    # Shares have no direction: south to north and north to south make one line of two; a
    # share inside a department draws nothing.
    for objective, team in ((a, teams[1]), (b, teams[2]), (a, teams[2])):
        ObjectiveShareFactory(objective=objective, team=team)
    with scopes_disabled():
        Objective.objects.filter(pk=b.pk).update(effective_health="off_track")
    base = url(w, "network_map") + f"?cycle={w.cycle.pk}"
    top = alice_client.get(base).content.decode()
    assert "Crew 00" not in top and "North (18 teams)" in top and "South (18 teams)" in top
    assert "2 links (depends on)" in top  # two links between the departments, in one line
    assert "2 links (objective)" in top and "kind-objective health-off_track" in top
    assert f"unit={north.pk}" in top
    opened = alice_client.get(base + f"&unit={north.pk}").content.decode()
    assert "Crew 01" in opened and "Crew 03" in opened and "Crew 00" not in opened
    assert "Whole organization" in opened
    stranger = alice_client.get(base + f"&unit={world_b.team.pk}").content.decode()
    assert world_b.team.name not in stranger and "North (18 teams)" in stranger


def test_an_opened_department_reads_only_the_links_of_its_own_teams(world_a, alice_client):
    """Opening a department draws the links between its teams, and reads them from the
    database by its teams (not every link of the cycle, dropped afterwards)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    w = world_a
    north = TeamFactory(organization=w.org, name="North", kind=Team.Kind.DEPARTMENT)
    south = TeamFactory(organization=w.org, name="South", kind=Team.Kind.DEPARTMENT)
    teams = [TeamFactory(organization=w.org, name=f"Crew {i:02}",
                         parent=north if i % 2 else south) for i in range(36)]
    objectives = [ObjectiveFactory(organization=w.org, cycle=w.cycle, team=t) for t in teams]
    inside = DependencyFactory(downstream=KeyResultFactory(objective=objectives[1]),
                               upstream=KeyResultFactory(objective=objectives[3]),
                               need="Inside north", status="committed")
    DependencyFactory(downstream=KeyResultFactory(objective=objectives[0]),
                      upstream=KeyResultFactory(objective=objectives[2]),
                      need="Inside south", status="committed")
    base = url(w, "network_map") + f"?cycle={w.cycle.pk}&unit={north.pk}"
    with CaptureQueriesContext(connection) as ctx:
        opened = alice_client.get(base).content.decode()
    assert "Inside north" in opened and "Inside south" not in opened
    assert reverse("dependency", args=[w.org.slug, inside.pk]) in opened
    north_ids = {north.pk} | {t.pk for t in teams[1::2]}
    # The map's own reads of links (the nav's "Needs me" count also names the table).
    reads = [q["sql"] for q in ctx.captured_queries if "dependencies_dependency" in q["sql"]
             and 'AS "escalation"' not in q["sql"]]
    for sql in reads:  # each end "IN (<north and its teams>)"
        lists = [{int(n) for n in re.findall(r"\d+", found)}
                 for found in re.findall(r"IN \(([\d, ]+)\)", sql)]
        crews = {t.pk for t in teams[1::2]}
        assert sum(crews <= found <= north_ids for found in lists) >= 2, sql
    assert reads


def test_the_recascade_progress_shows_ten_changes_a_page_most_open_first(world_a, alice_client):
    w = world_a
    squad = TeamFactory(organization=w.org, name="Squad", parent=w.team)
    for i in range(12):
        source = ObjectiveFactory(organization=w.org, cycle=w.cycle, team=w.team,
                                  parent=w.company_objective, title=f"Changed {i:02}")
        children = 2 if i == 3 else 1
        for j in range(children):
            child = ObjectiveFactory(organization=w.org, cycle=w.cycle, team=squad,
                                     parent=source, title=f"Below {i:02}-{j}")
            RecascadeFlagFactory(objective=child, change=f"Change number {i:02}.")

    def progress(page=None):
        address = url(w, "recascade") + f"?cycle={w.cycle.pk}"
        if page:
            address += f"&changes_page={page}"
        html = alice_client.get(address).content.decode()
        table = html[html.index("<h2>Progress</h2>"):]
        return table[:table.index("</section>")]

    first = progress()
    assert first.count("<tr><td>") == 10 and "13 in all" in first  # and world_a's own
    # The change with two open flags leads; the others follow, latest first.
    assert first.index("Change number 03.") < first.index("Change number 11.")
    assert "<strong>2</strong>" in first and 'changes_page=2' in first
    second = progress(2)
    assert second.count("<tr><td>") == 3
    assert "Change number 00." in second and "Change number 03." not in second
