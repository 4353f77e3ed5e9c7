"""The top bar's search: as you type (htmx dropdown) and as a page without JavaScript."""

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from okrs.models import ObjectiveClose
from orgs.models import Role, Team
from retros.models import Retrospective
from search import selectors
from tests.factories import (
    DependencyFactory,
    KeyResultFactory,
    MembershipFactory,
    ObjectiveFactory,
    TeamFactory,
    UserFactory,
)
from tests.querycount import assert_same_queries, count_queries


def search_url(world):
    return reverse("search", args=[world.org.slug])


@pytest.fixture
def findable(world_a):
    """One row of each kind in A, all about a "Lighthouse"."""
    with scopes_disabled():
        team = TeamFactory(organization=world_a.org, name="Lighthouse crew",
                           parent=world_a.team)
        person = UserFactory(email="lena@a.test", full_name="Lena Lighthouse")
        MembershipFactory(organization=world_a.org, user=person, role=Role.MEMBER,
                          teams=[team])
        objective = ObjectiveFactory(organization=world_a.org, cycle=world_a.cycle, team=team,
                                     parent=world_a.objective, title="Light the lighthouse",
                                     why="Ships need it.")
        KeyResultFactory(objective=objective, title="Lighthouse lamp lit")
        DependencyFactory(downstream=world_a.key_result, upstream=objective,
                          need="The lighthouse lamp by June")
        ObjectiveClose.objects.create(
            organization=world_a.org, objective=objective, outcome="partly",
            learned="Lighthouses need spare bulbs.", next_step="drop",
            closed_at=timezone.now())
        Retrospective.objects.create(organization=world_a.org, workflow=world_a.workflow,
                                     what_worked="The lighthouse review was short.")
        ObjectiveFactory(organization=world_a.org, cycle=world_a.cycle, team=team,
                         parent=world_a.objective, title="Retired lighthouse plan",
                         state="retired")
    return world_a


@pytest.mark.django_db
def test_it_finds_every_kind_from_the_start_of_a_word(findable, bob_client):
    response = bob_client.get(search_url(findable), {"q": "lightho"})
    assert response.status_code == 200
    html = response.content.decode()
    for kind in ("objectives", "key_results", "teams", "people", "dependencies", "lessons"):
        assert f'data-testid="search-group-{kind}"' in html, kind
    for text in ("Light the lighthouse", "Lighthouse lamp lit", "Lighthouse crew",
                 "Lena Lighthouse", "The lighthouse lamp by June",
                 "Lighthouses need spare bulbs.", "The lighthouse review was short."):
        assert text in html, text
    assert "Retired lighthouse plan" not in html
    assert "lena@a.test" not in html  # people by name, never by address


@pytest.mark.django_db
def test_every_word_must_match(findable, bob_client):
    html = bob_client.get(search_url(findable), {"q": "lighthouse lamp"}).content.decode()
    assert "Lighthouse lamp lit" in html and 'data-testid="search-group-teams"' not in html


@pytest.mark.django_db
def test_an_email_address_finds_no_one(findable, bob_client):
    html = bob_client.get(search_url(findable), {"q": "lena@a.test"}).content.decode()
    assert "Lena Lighthouse" not in html


@pytest.mark.django_db
def test_as_you_type_it_answers_the_dropdown_fragment(findable, bob_client):
    response = bob_client.get(search_url(findable), {"q": "lighthouse"},
                              HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert 'data-testid="search-dropdown"' in html and "<html" not in html
    assert "Light the lighthouse" in html and "All results for" in html
    assert "HX-Request" in response["Vary"]
    empty = bob_client.get(search_url(findable), {"q": "zzzqqq"}, HTTP_HX_REQUEST="true")
    assert "Nothing matches “zzzqqq”" in empty.content.decode()


@pytest.mark.django_db
def test_the_top_bar_has_a_search_box_that_works_without_javascript(world_a, bob_client):
    html = bob_client.get(reverse("home", args=[world_a.org.slug])).content.decode()
    assert f'action="{search_url(world_a)}"' in html and 'name="q"' in html


def findable_b_kr(world):
    return world.key_result.title


@pytest.mark.django_db
def test_results_never_cross_organizations(findable, world_b, alice_client):
    for q in ("org", "goal", "engineering", "charlie", "lighthouse", "b", "key result"):
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            html = alice_client.get(search_url(findable), {"q": q}, **headers).content.decode()
            for theirs in ("Org B company goal", "Org B team goal", "Org B Engineering",
                           "Charlie Other", findable_b_kr(world_b)):
                assert theirs not in html, (q, theirs)
    assert alice_client.get(search_url(world_b), {"q": "org"}).status_code == 404


@pytest.mark.django_db
def test_a_kind_pages_its_results(findable, bob_client):
    with scopes_disabled():
        for i in range(25):
            TeamFactory(organization=findable.org, name=f"Beacon {i:02}", kind=Team.Kind.TEAM)
    first = bob_client.get(search_url(findable), {"q": "beacon", "kind": "teams"})
    html = first.content.decode()
    assert html.count("Beacon ") == 20 and "page=2" in html
    second = bob_client.get(search_url(findable), {"q": "beacon", "kind": "teams",
                                                   "page": "2"}).content.decode()
    assert second.count("Beacon ") == 5 and "Previous" in second
    overview = bob_client.get(search_url(findable), {"q": "beacon"}).content.decode()
    assert overview.count("Beacon ") == 10 and "More teams" in overview


@pytest.mark.parametrize("q, terms", [
    ("Light  the  HOUSE", ["light", "the", "house"]),
    ("ab:* | !cd & (ef)", ["ab", "cd", "ef"]),  # tsquery syntax is dropped, words kept
    ("a b cd", ["cd"]),  # single letters say nothing
    ("", []),
    ("one two three four five six seven", ["one", "two", "three", "four", "five", "six"]),
])
def test_a_query_is_reduced_to_its_words(q, terms):
    assert selectors.words(q) == terms


@pytest.mark.django_db
def test_the_page_issues_the_same_queries_for_a_few_or_many_matches(findable, bob_client):
    def page():
        return bob_client.get(search_url(findable), {"q": "lighthouse"}).content

    small = count_queries(page)
    with scopes_disabled():
        for i in range(30):
            team = TeamFactory(organization=findable.org, name=f"Lighthouse {i}")
            person = UserFactory(full_name=f"Lighthouse keeper {i}")
            MembershipFactory(organization=findable.org, user=person, teams=[team])
            o = ObjectiveFactory(organization=findable.org, cycle=findable.cycle, team=team,
                                 parent=findable.objective, title=f"Lighthouse goal {i}")
            KeyResultFactory(objective=o, title=f"Lighthouse measure {i}")
    large = count_queries(page)
    assert_same_queries(small, large)


@pytest.mark.django_db
def test_the_dropdown_stays_within_its_query_budget(findable, bob_client,
                                                    django_assert_max_num_queries):
    with django_assert_max_num_queries(16):
        bob_client.get(search_url(findable), {"q": "lighthouse"}, HTTP_HX_REQUEST="true")


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="full-text indexes: PostgreSQL")
def test_postgresql_searches_through_the_gin_indexes(findable):
    from dependencies.models import Dependency
    from okrs.models import KeyResult, Objective
    from orgs.models import User

    # With sequential and plain index scans off, the only way left to a matching row is
    # the GIN expression index: its name in the plan proves the query's expression is the
    # index's.
    with scopes_disabled(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        for model, kind, index in ((Objective, "objectives", "search_objective_fts"),
                                   (KeyResult, "key_results", "search_keyresult_fts"),
                                   (Team, "teams", "search_team_fts"),
                                   (User, "people", "search_user_fts"),
                                   (Dependency, "dependencies", "search_dependency_fts"),
                                   (ObjectiveClose, "close_lessons",
                                    "search_objectiveclose_fts"),
                                   (Retrospective, "retro_lessons",
                                    "search_retrospective_fts")):
            plan = selectors._match(model.objects.all(), kind, ["lighthouse"]).explain()
            assert index in plan, plan
