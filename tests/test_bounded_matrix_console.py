"""The alignment matrix and the console's org tree are bounded: above 30 teams the matrix
shows a row per department, the console one level of the tree at a time; neither grows with
the organization, and opening a unit stays inside the organization."""

import re

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from okrs.models import Objective
from orgs.models import Team
from tests.factories import ObjectiveFactory, TeamFactory
from tests.querycount import assert_same_queries, count_queries

pytestmark = pytest.mark.django_db

PER_DEPARTMENT = 20


def url(world, name, query=""):
    return reverse(name, args=[world.org.slug]) + query


def rows(html):
    return len(re.findall(r'<th scope="row">', html))


def console_rows(html):
    return len(re.findall(r'Add below</a></td></tr>', html))


def add_teams(world, n, start=0, per_department=PER_DEPARTMENT, department=None):
    """n squads, 20 to a department (or all in ``department``), each with an objective
    under the company's goal."""
    for i in range(start, start + n):
        name = department or f"Department {i // per_department:03}"
        with scopes_disabled():
            unit = Team.objects.filter(organization=world.org, name=name).first()
        if unit is None:
            unit = TeamFactory(organization=world.org, name=name, parent=world.company,
                               kind=Team.Kind.DEPARTMENT)
        team = TeamFactory(organization=world.org, name=f"Squad {i:04}", parent=unit)
        ObjectiveFactory(organization=world.org, cycle=world.cycle, team=team,
                         parent=world.company_objective, title=f"Squad goal {i:04}")


def test_the_matrix_does_not_grow_with_the_organization(world_a, alice_client):
    w = world_a
    add_teams(w, 20)
    small = count_queries(lambda: alice_client.get(url(w, "matrix")))
    add_teams(w, 380, start=20)
    large = count_queries(lambda: alice_client.get(url(w, "matrix")))
    small_html, large_html = small[0].content.decode(), large[0].content.decode()
    assert "Squad 0019" in small_html and rows(small_html) == 22  # every team, one level
    assert "Squad 0000" not in large_html and "Department 019" in large_html
    assert rows(large_html) == 21  # 20 departments and Engineering
    # The same number of rows; the grouped page adds a note and each row its team count.
    assert len(large_html) <= len(small_html) * 1.15, (len(small_html), len(large_html))
    assert_same_queries(small, large)


def test_a_department_row_sums_its_teams_and_opens_them(world_a, alice_client):
    w = world_a
    add_teams(w, 40)
    with scopes_disabled():
        Objective.objects.filter(title="Squad goal 0007").update(effective_health="off_track")
        Objective.objects.filter(title="Squad goal 0027").update(effective_health="at_risk")
        first = Team.objects.get(organization=w.org, name="Department 000")
    html = alice_client.get(url(w, "matrix")).content.decode()
    row = re.search(r'<tr[^>]*><th scope="row"><a href="\?cycle=\d+&amp;unit='
                    rf'{first.pk}">Department 000</a>.*?</tr>', html, re.S).group(0)
    assert "21 teams" in row  # the department and its 20 squads
    assert '<span class="count">20</span>' in row and "health-off_track" in row
    opened = alice_client.get(url(w, "matrix", f"?unit={first.pk}")).content.decode()
    assert 'aria-label="Matrix level"' in opened and "<strong>Department 000</strong>" in opened
    assert "Squad 0000" in opened and "Squad 0019" in opened and "Squad 0020" not in opened
    assert rows(opened) == 21  # its own objectives, then its 20 squads


def test_a_department_with_many_teams_opens_a_page_at_a_time(world_a, alice_client):
    w = world_a
    for i in range(45):
        TeamFactory(organization=w.org, name=f"Crew {i:03}", parent=w.team)
    opened = alice_client.get(url(w, "matrix", f"?unit={w.team.pk}")).content.decode()
    assert rows(opened) == 30 and "Page 1 of 2" in opened
    second = alice_client.get(url(w, "matrix", f"?unit={w.team.pk}&page=2")).content.decode()
    assert "Crew 044" in second and "Crew 000" not in second


def test_the_console_tree_does_not_grow_with_the_organization(world_a, alice_client):
    w = world_a
    add_teams(w, 20, per_department=1)  # 20 departments of one squad each
    small = count_queries(lambda: alice_client.get(url(w, "console_teams")))
    for d in range(20):  # then 19 more squads in each: 400 squads
        add_teams(w, 19, start=20 + d * 19, department=f"Department {d:03}")
    large = count_queries(lambda: alice_client.get(url(w, "console_teams")))
    small_html, large_html = small[0].content.decode(), large[0].content.decode()
    assert console_rows(small_html) == console_rows(large_html) == 21  # and Engineering
    assert "Squad 0000" not in large_html and "20 units below" in large_html
    assert len(large_html) <= len(small_html) * 1.05, (len(small_html), len(large_html))
    assert_same_queries(small, large)
    # Below 30 units per level the page stays the same whatever lies deeper.
    with scopes_disabled():
        department = Team.objects.get(organization=w.org, name="Department 003")
    opened = alice_client.get(url(w, "console_teams", f"?unit={department.pk}"))
    assert console_rows(opened.content.decode()) == 20


def test_the_console_opens_a_unit_over_htmx_and_finds_units_by_name(world_a, alice_client):
    w = world_a
    add_teams(w, 80)
    with scopes_disabled():
        department = Team.objects.get(organization=w.org, name="Department 002")
    top = alice_client.get(url(w, "console_teams")).content.decode()
    link = f'href="/o/{w.org.slug}/console/teams/?unit={department.pk}"'
    assert link in top and f'hx-get="/o/{w.org.slug}/console/teams/?unit={department.pk}"' in top
    part = alice_client.get(url(w, "console_teams", f"?unit={department.pk}"),
                            HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in part and "Squad 0040" in part and "Squad 0060" not in part
    assert "<strong>Department 002</strong>" in part
    found = alice_client.get(url(w, "console_teams", "?q=squad 007")).content.decode()
    assert console_rows(found) == 10 and "in Department 003" in found
    many = alice_client.get(url(w, "console_teams", "?q=squad")).content.decode()
    assert console_rows(many) == 30 and "Page 1 of 3" in many


def test_opening_a_unit_stays_inside_the_organization(world_a, world_b, alice_client):
    b_team = world_b.team
    for name in ("matrix", "console_teams"):
        response = alice_client.get(url(world_a, name, f"?unit={b_team.pk}"))
        assert response.status_code == 404, name
        for q in ("", "?q=engineering"):
            html = alice_client.get(url(world_a, name, q)).content.decode()
            assert "Org B" not in html, (name, q)
