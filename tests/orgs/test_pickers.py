"""Pickers search instead of listing: an htmx endpoint per kind, scoped to the organization,
at most LIMIT matches; forms keep the chosen id and validate it; a "Find" works without
JavaScript; form pages do not grow with the organization."""

import re

import pytest
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from dependencies.generate import build
from okrs.models import KeyResult, Objective
from orgs.models import Role
from orgs.pickers import LIMIT
from tests.conftest import client_for
from tests.factories import (
    CycleFactory,
    KeyResultFactory,
    MembershipFactory,
    ObjectiveFactory,
    OrganizationFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def pick(client, org, kind, **params):
    response = client.get(reverse(f"pick_{kind}", args=[org.slug]), params,
                          HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


def options(html):
    return re.findall(r'data-value="([^"]+)"', html)


def test_it_finds_objectives_by_words_in_the_title_whatever_the_case(world_a, alice_client):
    w = world_a
    grow = ObjectiveFactory(organization=w.org, cycle=w.cycle, title="Grow Revenue in Europe")
    ObjectiveFactory(organization=w.org, cycle=w.cycle, title="Grow the team")
    html = pick(alice_client, w.org, "objectives", q="revenue GROW", cycle=w.cycle.pk)
    assert options(html) == [str(grow.pk)]
    assert "Grow Revenue in Europe" in html and "Grow the team" not in html


def test_it_shows_at_most_the_limit_and_says_how_many_more(world_a, alice_client):
    w = world_a
    for i in range(LIMIT + 5):
        ObjectiveFactory(organization=w.org, cycle=w.cycle, title=f"Ship feature {i}")
    html = pick(alice_client, w.org, "objectives", q="ship", cycle=w.cycle.pk)
    assert len(options(html)) == LIMIT
    assert "5 more: refine your search." in html


def test_parents_offered_are_live_in_the_same_cycle_and_outside_the_objective(world_a,
                                                                           alice_client):
    w = world_a
    other_cycle = CycleFactory(organization=w.org)
    ObjectiveFactory(organization=w.org, cycle=other_cycle, title="Goal elsewhere")
    ObjectiveFactory(organization=w.org, cycle=w.cycle, title="Goal retired",
                     state=Objective.State.RETIRED)
    child = ObjectiveFactory(organization=w.org, cycle=w.cycle, team=w.team,
                             parent=w.objective, title="Goal below")
    html = pick(alice_client, w.org, "objectives", q="goal", cycle=w.cycle.pk,
                exclude=w.objective.pk)
    assert set(options(html)) == {str(w.company_objective.pk), str(w.other_objective.pk)}
    assert str(child.pk) not in options(html)


def test_the_objective_form_refuses_a_parent_the_picker_would_not_offer(world_a, alice_client):
    w = world_a
    retired = ObjectiveFactory(organization=w.org, cycle=w.cycle, title="Old",
                               state=Objective.State.RETIRED)
    elsewhere = ObjectiveFactory(organization=w.org, cycle=CycleFactory(organization=w.org))
    url = reverse("objective_new", args=[w.org.slug]) + f"?cycle={w.cycle.pk}"
    for parent in (retired, elsewhere):
        response = alice_client.post(url, {"title": "New", "team": w.team.pk,
                                           "parent": parent.pk, "state": "draft"})
        assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    with scope(organization=w.org):
        assert not Objective.objects.for_org(w.org).filter(title="New").exists()


def test_people_and_teams_are_found_by_name(world_a, alice_client):
    w = world_a
    MembershipFactory(organization=w.org, user=UserFactory(full_name="Zoe Quinn",
                                                           email="zq@a.test"))
    UserFactory(full_name="Zoe Outsider")  # not a member
    html = pick(alice_client, w.org, "people", q="zoe")
    assert "Zoe Quinn" in html and "Outsider" not in html
    html = pick(alice_client, w.org, "teams", q="ENGINEERING", no_company="1")
    assert options(html) == [str(w.team.pk)]
    assert options(pick(alice_client, w.org, "teams", q=w.org.name, no_company="1")) == [
        str(w.team.pk)]


def test_dependency_ends_offered_are_other_teams_objectives_and_key_results(world_a,
                                                                           alice_client):
    w = world_a
    theirs = TeamFactory(organization=w.org, name="Platform")
    kr = KeyResultFactory(objective=ObjectiveFactory(organization=w.org, cycle=w.cycle,
                                                     team=theirs, title="Platform ready"),
                          title="Platform latency")
    ours = KeyResultFactory(objective=w.objective, title="Platform adoption")
    html = pick(alice_client, w.org, "nodes", q="platform", cycle=w.cycle.pk,
                exclude_team=w.team.pk)
    assert f"k:{kr.pk}" in options(html) and f"o:{kr.objective_id}" in options(html)
    assert f"k:{ours.pk}" not in options(html)


def test_the_dependency_form_refuses_an_end_of_its_own_team(world_a, alice_client):
    w = world_a
    url = reverse("dependency_new", args=[w.org.slug, "o", w.objective.pk])
    response = alice_client.post(url, {"upstream": f"k:{w.key_result.pk}", "need": "x",
                                       "needed_by": "2030-01-01", "fallback": "y"})
    assert response.status_code == 200
    assert "Choose another team&#x27;s objective or key result" in response.content.decode()


def test_find_without_javascript_shows_matches_as_radio_buttons_and_keeps_what_was_typed(
        world_a, alice_client):
    w = world_a
    url = reverse("objective_new", args=[w.org.slug])
    response = alice_client.get(url, {"cycle": w.cycle.pk, "_find": "parent",
                                      "parent_q": "company goal", "title": "Typed before",
                                      "team": w.team.pk, "state": "draft"})
    html = response.content.decode()
    assert response.status_code == 200
    assert f'<input type="radio" name="parent" value="{w.company_objective.pk}">' in html
    assert 'value="Typed before"' in html
    assert "This field is required" not in html and "errorlist" not in html
    # Saving sends the hidden input (empty) and then the chosen radio: the radio wins.
    response = alice_client.post(url + f"?cycle={w.cycle.pk}", {
        "title": "Typed before", "team": w.team.pk, "state": "draft",
        "parent": ["", str(w.company_objective.pk)]})
    assert response.status_code == 302
    with scope(organization=w.org):
        saved = Objective.objects.for_org(w.org).get(title="Typed before")
    assert saved.parent_id == w.company_objective.pk


def test_the_edit_form_shows_the_chosen_parent_without_listing_others(world_a, alice_client):
    w = world_a
    html = alice_client.get(reverse("objective_edit", args=[w.org.slug, w.objective.pk])
                            ).content.decode()
    assert f'name="parent" value="{w.company_objective.pk}"' in html
    assert f"{w.company.name}: {w.company_objective.title}" in html
    assert w.other_objective.title not in html and "<option" not in html.split(
        'name="parent"')[1].split("</div>")[0]


def _large_org(nodes, people):
    with scopes_disabled():
        org = OrganizationFactory()
        cycle = CycleFactory(organization=org)
        build(org, cycle, nodes)
        admin = UserFactory()
        MembershipFactory(organization=org, user=admin, role=Role.ADMIN)
        for _ in range(people):
            MembershipFactory(organization=org)
        objective = Objective.objects.filter(organization=org, team__kind="team").order_by(
            "pk").first()
        # One that feeds nothing: the link page then shows its form (the page is smaller
        # when it shows an accepted contribution instead).
        kr = KeyResult.objects.filter(objective=objective, feeds__isnull=True).order_by(
            "pk").first()
    return org, cycle, admin, objective, kr


def _form_pages(org, cycle, objective, kr):
    s = org.slug
    return {
        "new objective": f"/o/{s}/objectives/new/?cycle={cycle.pk}",
        "edit objective": f"/o/{s}/objectives/{objective.pk}/edit/",
        "add dependency": f"/o/{s}/network/o/{objective.pk}/depends-on/",
        "KR link": f"/o/{s}/key-results/{kr.pk}/contributes-to/",
        "KR edit": f"/o/{s}/key-results/{kr.pk}/edit/",
        "new team": f"/o/{s}/console/teams/new/",
    }


def test_form_pages_do_not_grow_with_the_organization():
    small = _large_org(80, 3)  # 20 objectives
    large = _large_org(8000, 60)  # 2,000 objectives, 6,000 key results, ~160 teams
    sizes = {}
    for org, cycle, admin, objective, kr in (small, large):
        client = client_for(admin)
        for name, url in _form_pages(org, cycle, objective, kr).items():
            response = client.get(url)
            assert response.status_code == 200, (name, url)
            sizes.setdefault(name, []).append(len(response.content))
    for name, (small_bytes, large_bytes) in sizes.items():
        assert abs(large_bytes - small_bytes) < 1500, (name, small_bytes, large_bytes)


def test_past_the_counting_cap_it_says_so_instead_of_counting_everything(world_a, alice_client,
                                                                         monkeypatch):
    from orgs import pickers

    monkeypatch.setattr(pickers, "COUNT_UP_TO", 3)
    w = world_a
    for i in range(LIMIT + 10):
        ObjectiveFactory(organization=w.org, cycle=w.cycle, title=f"Ship feature {i}")
    html = pick(alice_client, w.org, "objectives", q="ship", cycle=w.cycle.pk)
    assert "3+ more: refine your search." in html


@pytest.mark.parametrize("batch", [1, 2, 100])
def test_an_empty_search_offers_the_first_key_results_by_team_name_whatever_the_batch(
        world_a, alice_client, monkeypatch, batch):
    """The empty search reads teams a batch at a time (index order) instead of sorting every
    key result: the rows and their order are those of the plain sorted query, teams without
    key results and key results of retired objectives left out."""
    from orgs import pickers

    monkeypatch.setattr(pickers, "TEAM_BATCH", batch)
    w = world_a
    TeamFactory(organization=w.org, name="Aardvark (no key results)")
    for name in ("Zebra", "Beta", "Alpha", "Mango", "Delta"):
        team = TeamFactory(organization=w.org, name=name)
        objective = ObjectiveFactory(organization=w.org, cycle=w.cycle, team=team)
        for i in range(6):
            KeyResultFactory(objective=objective, owner_team=team, title=f"{name} KR {5 - i}")
    retired = ObjectiveFactory(organization=w.org, cycle=w.cycle, team=w.team,
                               state=Objective.State.RETIRED)
    hidden = KeyResultFactory(objective=retired, owner_team=w.team, title="AAA retired")
    with scope(organization=w.org):
        expected = [str(k.pk) for k in pickers.key_results(w.org)[:LIMIT]]
        total = pickers.key_results(w.org).count()
        alpha = [str(k) for k in KeyResult.objects.for_org(w.org).filter(
            owner_team__name="Alpha").order_by("title").values_list("pk", flat=True)]
    html = pick(alice_client, w.org, "key_results", q="")
    assert options(html) == expected
    assert str(hidden.pk) not in options(html)
    assert options(html)[:6] == alpha
    assert f"{total - LIMIT} more: refine your search." in html


@pytest.mark.parametrize("batch", [1, 2, 100])
def test_an_empty_search_offers_the_first_objectives_by_level_and_team_name_whatever_the_batch(
        world_a, alice_client, monkeypatch, batch):
    """Objectives are offered company first, then departments, then their teams, each level by
    team name: the empty search reads teams a batch at a time in that order and offers the rows
    of the plain sorted query, retired objectives left out."""
    from orgs import pickers
    from orgs.models import Team

    monkeypatch.setattr(pickers, "TEAM_BATCH", batch)
    w = world_a
    TeamFactory(organization=w.org, name="Aardvark (no objectives)")
    north = TeamFactory(organization=w.org, name="North", kind=Team.Kind.DEPARTMENT)
    for name, parent in (("Zebra", None), ("Beta", north), ("Alpha", north), ("Mango", None)):
        team = TeamFactory(organization=w.org, name=name, parent=parent)
        for i in range(6):
            ObjectiveFactory(organization=w.org, cycle=w.cycle, team=team,
                             title=f"{name} objective {5 - i}")
    ObjectiveFactory(organization=w.org, cycle=w.cycle, team=north, title="North's own")
    hidden = ObjectiveFactory(organization=w.org, cycle=w.cycle, team=w.team, title="AAA gone",
                              state=Objective.State.RETIRED)
    with scope(organization=w.org):
        expected = [str(o.pk) for o in pickers.objectives(w.org)[:LIMIT]]
        total = pickers.objectives(w.org).count()
    assert total > LIMIT and len(expected) == LIMIT
    html = pick(alice_client, w.org, "objectives", q="")
    assert options(html) == expected
    assert str(hidden.pk) not in options(html)
    assert f"{total - LIMIT} more: refine your search." in html
