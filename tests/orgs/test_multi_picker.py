"""The multi-value picker: a member's teams, a milestone's dependencies and the workflow's
objective are searched, never listed whole; chosen ones are chips; another organization's ids
are refused."""

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from orgs.models import Membership, Role, Team
from tests.factories import ObjectiveFactory, TeamFactory

pytestmark = pytest.mark.django_db


def edit_url(w):
    return reverse("console_member_edit", args=[w.org.slug, w.bob.pk])


def bob_teams(w):
    with scopes_disabled():
        return set(Membership.objects.get(pk=w.bob.pk).teams.values_list("name", flat=True))


def add_teams(w, n, start=0):
    for i in range(start, start + n):
        TeamFactory(organization=w.org, name=f"Squad {i:04}", parent=w.team)


def test_the_member_edit_page_does_not_grow_with_the_teams(world_a, alice_client):
    w = world_a
    add_teams(w, 20)
    small = alice_client.get(edit_url(w)).content
    add_teams(w, 380, start=20)
    large = alice_client.get(edit_url(w)).content
    assert b"Squad 0399" not in large
    assert len(large) <= len(small) * 1.02, (len(small), len(large))


def test_teams_are_chosen_and_removed(world_a, alice_client):
    w = world_a
    other = TeamFactory(organization=w.org, name="Platform Guild")
    r = alice_client.post(edit_url(w), {"role": Role.MEMBER, "teams": [w.team.pk, other.pk]})
    assert r.status_code == 302 and bob_teams(w) == {w.team.name, "Platform Guild"}
    page = alice_client.get(edit_url(w)).content.decode()
    assert f'name="teams" value="{other.pk}"' in page and "Remove Platform Guild" in page
    # Removing a chip without JavaScript: the form comes back without it, nothing is saved.
    r = alice_client.post(edit_url(w), {"role": Role.MEMBER, "teams": [w.team.pk, other.pk],
                                        "_drop": f"teams:{other.pk}"})
    page = r.content.decode()
    assert r.status_code == 200 and f'name="teams" value="{other.pk}"' not in page
    assert f'name="teams" value="{w.team.pk}"' in page
    assert bob_teams(w) == {w.team.name, "Platform Guild"}
    # Saving what the page now holds removes the team.
    r = alice_client.post(edit_url(w), {"role": Role.MEMBER, "teams": [w.team.pk]})
    assert r.status_code == 302 and bob_teams(w) == {w.team.name}
    r = alice_client.post(edit_url(w), {"role": Role.MEMBER})
    assert r.status_code == 302 and bob_teams(w) == set()


def test_find_without_javascript_shows_matches_as_checkboxes(world_a, world_b, alice_client):
    w = world_a
    TeamFactory(organization=w.org, name="Platform Guild")
    TeamFactory(organization=world_b.org, name="Platform Outsiders")
    r = alice_client.post(edit_url(w), {"role": Role.MEMBER, "teams": [w.team.pk],
                                        "_find": "teams", "teams_q": "platform"})
    page = r.content.decode()
    assert r.status_code == 200 and "Platform Guild" in page and "Outsiders" not in page
    assert 'type="checkbox" name="teams"' in page
    assert bob_teams(w) == set()  # a search saves nothing


def test_the_search_endpoint_finds_teams_to_add(world_a, alice_client):
    w = world_a
    TeamFactory(organization=w.org, name="Platform Guild")
    url = reverse("pick_teams", args=[w.org.slug])
    html = alice_client.get(url, {"q": "guild", "name": "teams"},
                            HTTP_HX_REQUEST="true").content.decode()
    assert 'data-label="Platform Guild"' in html


def test_another_organizations_team_is_refused(world_a, world_b, alice_client):
    w = world_a
    r = alice_client.post(edit_url(w), {"role": Role.MEMBER,
                                        "teams": [w.team.pk, world_b.team.pk]})
    assert r.status_code == 200 and "Select a valid choice" in r.content.decode()
    assert bob_teams(w) == set()
    # Nor is it shown as a chip.
    assert f'value="{world_b.team.pk}"' not in r.content.decode()


def test_a_milestone_cites_dependencies_of_its_organization_only(world_a, world_b):
    from django.http import QueryDict

    from alignment.forms import MilestoneForm

    w = world_a
    mine, theirs = w.dependency, world_b.dependency
    with scopes_disabled():
        blank = str(MilestoneForm(workflow=w.workflow)["dependencies"])
        assert mine.need not in blank and "<select" not in blank  # searched, not listed
        base = f"title=Beta&owner_team={w.team.pk}&dependencies="
        refused = MilestoneForm(QueryDict(base + str(theirs.pk)), workflow=w.workflow)
        assert not refused.is_valid() and "dependencies" in refused.errors
        chosen = MilestoneForm(QueryDict(base + str(mine.pk)), workflow=w.workflow)
        assert chosen.is_valid(), chosen.errors
        assert list(chosen.cleaned_data["dependencies"]) == [mine]
        assert f'name="dependencies" value="{mine.pk}"' in str(chosen["dependencies"])


def test_the_start_form_searches_only_what_it_allows(world_a, alice_client):
    w = world_a
    with scopes_disabled():
        ObjectiveFactory(organization=w.org, cycle=w.cycle, team=w.team,
                         parent=w.company_objective, title="Departmental zebra goal")
        squad = TeamFactory(organization=w.org, name="Zebra squad", kind=Team.Kind.TEAM,
                            parent=w.team)
        ObjectiveFactory(organization=w.org, cycle=w.cycle, team=squad,
                         parent=w.company_objective, title="Squad zebra goal")
    url = reverse("workflows", args=[w.org.slug]) + f"?cycle={w.cycle.pk}"
    page = alice_client.get(url).content.decode()
    assert "zebra" not in page and "<select" not in page.split('name="objective"')[0][-300:]
    r = alice_client.post(url, {"_find": "objective", "objective_q": "zebra"})
    page = r.content.decode()
    assert "Departmental zebra goal" in page and "Squad zebra goal" not in page
