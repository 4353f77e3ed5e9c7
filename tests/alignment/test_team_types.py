"""Team types that mean something: shown on the team page and the map, a sharing hint in the
share and link forms, and the report's two type findings."""

import pytest
from django_scopes import scope

from alignment import netmap
from orgs import team_types
from orgs.models import Team

from ..factories import (
    DependencyFactory,
    KeyResultFactory,
    ObjectiveFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("team_type, words", [
    ("enabling", "usually shares a key result"),
    ("product", "usually owns whole objectives"),
    ("shared", "depend on it for a milestone"),
])
def test_each_type_suggests_the_sharing_kind_that_usually_fits(team_type, words):
    team = Team(name="Platform", kind=Team.Kind.TEAM, team_type=team_type)
    assert words in team_types.sharing_hint(team)
    assert team_types.sharing_hint(Team(name="Acme", kind=Team.Kind.COMPANY)) == ""


def test_the_team_page_and_the_share_form_show_the_type_and_its_hint(world_a, alice_client):
    w = world_a
    Team.objects.with_scopes_disabled().filter(pk=w.team.pk).update(team_type="enabling")
    page = alice_client.get(f"/o/{w.org.slug}/teams/{w.team.pk}/").content.decode()
    assert "Enabling team" in page and "usually shares a key result" in page
    objective = alice_client.get(f"/o/{w.org.slug}/objectives/{w.objective.pk}/").content.decode()
    assert 'data-testid="share-hint"' in objective


@pytest.fixture
def teams(world_a):
    """Two teams with objectives this cycle: Platform (enabling) and Checkout (product)."""
    w = world_a
    w.platform = TeamFactory(organization=w.org, name="Platform", parent=w.team,
                             team_type="enabling")
    w.checkout = TeamFactory(organization=w.org, name="Checkout", parent=w.team,
                             team_type="product")
    w.platform_kr = KeyResultFactory(objective=ObjectiveFactory(
        organization=w.org, cycle=w.cycle, team=w.platform, title="Boring deploys"))
    w.checkout_kr = KeyResultFactory(objective=ObjectiveFactory(
        organization=w.org, cycle=w.cycle, team=w.checkout, title="Faster checkout"))
    return w


def names(found):
    return [t.name for t in found[1]]


def test_an_unused_enabling_team_and_a_silo_are_flagged(teams):
    w = teams
    with scope(organization=w.org):
        found = team_types.findings(w.org, w.cycle)
    assert names(found["enabling"]) == ["Platform"] and names(found["silos"]) == ["Checkout"]


def test_a_dependency_on_the_enabling_team_clears_both_findings(teams):
    w = teams
    DependencyFactory(downstream=w.checkout_kr, upstream=w.platform_kr)
    with scope(organization=w.org):
        found = team_types.findings(w.org, w.cycle)
    assert found["enabling"] == (0, []) and found["silos"] == (0, [])


def test_a_withdrawn_dependency_does_not_count(teams):
    w = teams
    DependencyFactory(downstream=w.checkout_kr, upstream=w.platform_kr, status="withdrawn")
    with scope(organization=w.org):
        found = team_types.findings(w.org, w.cycle)
    assert names(found["enabling"]) == ["Platform"] and names(found["silos"]) == ["Checkout"]


def test_a_key_result_feeding_another_teams_counts_as_drawing_on_it(teams):
    w = teams
    KeyResultFactory._meta.model.objects.with_scopes_disabled().filter(
        pk=w.platform_kr.pk).update(feeds=w.checkout_kr)
    with scope(organization=w.org):
        found = team_types.findings(w.org, w.cycle)
    assert found["enabling"] == (0, []) and found["silos"] == (0, [])


def test_the_report_shows_the_type_findings(teams, alice_client):
    w = teams
    report = alice_client.get(f"/o/{w.org.slug}/alignment/report/").content.decode()
    assert "Enabling teams no one draws on" in report and "Product teams working as silos" in report
    assert ">Platform</a> is an enabling team" in report
    assert ">Checkout</a> depends on no one" in report


def test_the_map_draws_each_type_with_its_own_shape():
    nodes = [netmap.Node(1, "Web", "/t/1", team_type="product"),
             netmap.Node(2, "Platform", "/t/2", team_type="enabling"),
             netmap.Node(3, "Support", "/t/3", team_type="shared")]
    svg = netmap.render(nodes, [])
    assert "<title>Platform (enabling team): 0 links</title><rect" in svg
    assert "<title>Support (shared service): 0 links</title><path" in svg
    assert "<title>Web (product team): 0 links</title><circle" in svg


def test_the_network_map_page_shows_the_types(teams, alice_client):
    w = teams
    page = alice_client.get(f"/o/{w.org.slug}/alignment/map/?cycle={w.cycle.pk}").content.decode()
    assert "Platform (enabling team)" in page and 'data-testid="type-legend"' in page
