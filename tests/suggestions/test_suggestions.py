"""Suggestions while drafting: likely parents and dependencies from the organization's own
text, with the shared words, through an htmx endpoint that stays scoped and cheap."""

import io

import pytest
from django.core.management import call_command
from django_scopes import scope

from okrs import services as okr_services
from okrs.models import Objective
from orgs.models import Team
from suggestions import selectors, tfidf

from ..factories import KeyResultFactory, ObjectiveFactory
from ..querycount import assert_same_queries, count_queries

pytestmark = pytest.mark.django_db


def test_tfidf_ranks_the_closest_text_first_and_says_which_words_it_shares():
    index = tfidf.Index({
        1: tfidf.tokens("Cut cloud costs across the platform"),
        2: tfidf.tokens("Grow enterprise revenue"),
        3: tfidf.tokens("Hire a second support team"),
    })
    ranked = index.rank(tfidf.tokens("Reduce our cloud spending and costs"))
    assert ranked[0][0] == 1 and set(ranked[0][2]) == {"cloud", "costs"}
    assert all(doc != 2 for doc, _, _ in ranked)  # nothing shared: not suggested
    assert tfidf.stem("deploys") == tfidf.stem("deploying") == tfidf.stem("deployed")


@pytest.fixture
def drafting(world_a):
    w = world_a
    with scope(organization=w.org):
        w.cloud = ObjectiveFactory(organization=w.org, cycle=w.cycle, team=w.company,
                                   title="Cut cloud costs", why="Margins are thin.")
        w.revenue = ObjectiveFactory(organization=w.org, cycle=w.cycle, team=w.company,
                                     title="Grow enterprise revenue")
        w.platform = Team.objects.create(organization=w.org, name="Platform",
                                         parent=w.company)
        w.squad = Team.objects.create(organization=w.org, name="Billing squad",
                                      parent=w.team)
        w.storage_kr = KeyResultFactory(objective=ObjectiveFactory(
            organization=w.org, cycle=w.cycle, team=w.platform, parent=w.cloud,
            title="A cheaper storage tier"), owner_team=w.platform,
            title="Move cold storage to the cheaper tier")
        yield w


def test_it_suggests_the_parent_that_shares_the_most_words(drafting):
    w = drafting
    with scope(organization=w.org):
        found = selectors.suggest_parents(w.org, w.cycle, "Lower our cloud costs for billing",
                                          team=w.squad)
    assert found[0].id == w.cloud.pk and "cloud" in found[0].words
    assert found[0].label == f"{w.company.name}: Cut cloud costs"


def test_it_never_suggests_the_objective_itself_or_what_is_under_it(drafting):
    w = drafting
    with scope(organization=w.org):
        found = selectors.suggest_parents(w.org, w.cycle, "Cut cloud costs", team=w.squad,
                                          objective=w.cloud, limit=10)
    assert w.cloud.pk not in [s.id for s in found]
    assert all(s.title != "A cheaper storage tier" for s in found)


def test_it_suggests_another_teams_key_result_as_a_dependency(drafting):
    w = drafting
    with scope(organization=w.org):
        found = selectors.suggest_dependencies(w.org, w.cycle,
                                               "Cheaper storage for billing data",
                                               team=w.squad)
    assert found[0].id == w.storage_kr.pk and found[0].team == "Platform"
    assert "storage" in found[0].words and "cheaper" in found[0].words


def test_a_changed_title_moves_the_cached_index(drafting):
    w = drafting
    with scope(organization=w.org):
        before = selectors.version(w.org, w.cycle)
        o = Objective.objects.for_org(w.org).get(pk=w.revenue.pk)
        okr_services.update_objective(membership=w.admin, objective=o, version=o.version,
                                      title="Win the observability market", why="", team=o.team,
                                      parent=None, is_local=False, state=o.state)
        assert selectors.version(w.org, w.cycle) != before
        found = selectors.suggest_parents(w.org, w.cycle, "observability dashboards",
                                          team=w.squad)
    assert found and found[0].id == w.revenue.pk


def test_the_form_endpoint_renders_suggestions_that_fill_the_parent_field(drafting,
                                                                       alice_client):
    w = drafting
    page = alice_client.get(f"/o/{w.org.slug}/objectives/suggestions/", {
        "cycle": w.cycle.pk, "team": w.squad.pk, "title": "Lower cloud costs"},
        HTTP_HX_REQUEST="true").content.decode()
    assert f'data-picker-fill="id_parent" data-value="{w.cloud.pk}"' in page
    assert "Cut cloud costs" in page and "Shares “cloud”" in page
    form = alice_client.get(f"/o/{w.org.slug}/objectives/new/?cycle={w.cycle.pk}")
    assert b"objective-suggestions" in form.content


def test_the_endpoint_refuses_another_organizations_cycle_and_team(drafting, world_b,
                                                                    alice_client):
    url = f"/o/{drafting.org.slug}/objectives/suggestions/"
    assert alice_client.get(url, {"cycle": world_b.cycle.pk, "title": "x"}).status_code == 404
    assert alice_client.get(url, {"cycle": drafting.cycle.pk, "team": world_b.team.pk,
                                  "title": "x"}).status_code == 404
    assert alice_client.get(url, {"cycle": drafting.cycle.pk, "objective": world_b.objective.pk,
                                  "title": "x"}).status_code == 404


def test_the_endpoint_costs_the_same_queries_with_more_objectives(drafting, alice_client):
    w = drafting
    url = f"/o/{w.org.slug}/objectives/suggestions/"
    params = {"cycle": w.cycle.pk, "team": w.squad.pk, "title": "cloud costs"}
    small = count_queries(lambda: alice_client.get(url, params))
    with scope(organization=w.org):
        for i in range(40):
            ObjectiveFactory(organization=w.org, cycle=w.cycle, team=w.platform,
                             parent=w.cloud, title=f"Cloud cost cut number {i}")
    alice_client.get(url, params)  # builds the new index once
    large = count_queries(lambda: alice_client.get(url, params))
    assert_same_queries(small, large)


def _reads_the_cycle(sql):
    return "okrs_keyresult" in sql or "okrs_objective" in sql


def test_typing_reads_the_index_without_summing_the_cycle_again(drafting, alice_client,
                                                                  world_b):
    """Keystrokes read the kept version and index: no query over the cycle's objectives and
    key results until one of them (or a team) is written; then the next request sees it, even
    when the write went through a queryset, not a service; another organization's writes
    leave this one's version alone."""
    w = drafting
    url = f"/o/{w.org.slug}/objectives/suggestions/"
    params = {"cycle": w.cycle.pk, "team": w.squad.pk, "title": "observability dashboards"}
    first = count_queries(lambda: alice_client.get(url, params))
    assert _reads_the_cycle(first[2])
    response, _, sql = count_queries(lambda: alice_client.get(url, params))
    assert not _reads_the_cycle(sql), sql
    assert b"Grow enterprise revenue" not in response.content

    with scope(organization=world_b.org):
        ObjectiveFactory(organization=world_b.org, cycle=world_b.cycle, team=world_b.team,
                         title="Observability dashboards for everyone")
    assert not _reads_the_cycle(count_queries(lambda: alice_client.get(url, params))[2])

    with scope(organization=w.org):
        Objective.objects.for_org(w.org).filter(pk=w.revenue.pk).update(
            title="Win the observability market", version=w.revenue.version + 1)
    response, _, sql = count_queries(lambda: alice_client.get(url, params))
    assert _reads_the_cycle(sql)
    assert b"Win the observability market" in response.content


def test_the_precision_command_prints_precision_at_1_and_3(drafting):
    out = io.StringIO()
    call_command("suggestion_precision", org=drafting.org.slug, objectives=0, stdout=out)
    text = out.getvalue()
    assert "precision@1" in text and "precision@3" in text
