"""The end-of-cycle pages: the scoring form, the close form, carry-over, the console's close
page, final scores on a closed cycle's pages, permissions and query budgets."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from okrs import scoring
from okrs.models import KeyResult, Objective, ObjectiveClose
from orgs.models import Cycle, Role

from ..conftest import client_for
from ..factories import CycleFactory, KeyResultFactory, ObjectiveFactory, TeamFactory
from ..querycount import assert_same_queries, count_queries
from .test_scoring import TODAY, in_window, lead_of, next_cycle

pytestmark = pytest.mark.django_db


def url(name, *args):
    return reverse(name, args=["org-a", *args])


@pytest.fixture
def ending(world_a):
    w = world_a
    in_window(w.cycle)
    KeyResult.objects.with_scopes_disabled().filter(pk=w.key_result.pk).update(
        current_value=Decimal("40"))
    w.milestone = KeyResultFactory(objective=w.objective, kind="milestone", start_value=None,
                                   target_value=None, current_value=None, unit="",
                                   is_done=True, title="Pilot signed")
    w.dana = lead_of(w, w.team)
    w.dana_client = client_for(w.dana.user)
    return w


def page(client, name, *args, **params):
    response = client.get(url(name, *args), params)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


# The objective and team pages in the window ----------------------------------------------------


def test_the_objective_page_offers_scoring_in_the_window_to_its_leads_only(ending, bob_client):
    html = page(ending.dana_client, "objective", ending.objective.pk)
    assert "Score your key results" in html and "Fill in the close form" in html
    viewer = page(bob_client, "objective", ending.objective.pk)
    assert "Score your key results" not in viewer and "Fill in the close form" not in viewer
    Cycle.objects.with_scopes_disabled().filter(pk=ending.cycle.pk).update(
        end_date=TODAY + dt.timedelta(days=40))
    assert "Score your key results" not in page(ending.dana_client, "objective",
                                                ending.objective.pk)


def test_the_team_page_lists_what_its_lead_has_to_score(ending, bob_client):
    html = page(ending.dana_client, "team", ending.team.pk)
    assert 'data-testid="team-scoring"' in html
    assert url("objective_score", ending.objective.pk) in html
    assert "2 key results to score" in html
    assert 'data-testid="team-scoring"' not in page(bob_client, "team", ending.team.pk)


# Scoring ----------------------------------------------------------------------------------------


def test_the_scoring_form_proposes_and_an_override_needs_a_reason(ending):
    w, c = ending, ending.dana_client
    html = page(c, "objective_score", w.objective.pk)
    assert html.count('data-testid="score-row"') == 2
    assert 'value="0.4"' in html and 'value="1.0"' in html  # the proposals, filled in
    bad = c.post(url("objective_score", w.objective.pk), {
        f"score_{w.key_result.pk}": "0.6", f"reason_{w.key_result.pk}": "",
        f"score_{w.milestone.pk}": "1", f"reason_{w.milestone.pk}": ""})
    assert bad.status_code == 200
    body = bad.content.decode()
    assert "Say why the score differs from the proposed 0.40." in body
    assert 'value="0.6"' in body  # what was typed stays
    assert KeyResult.objects.with_scopes_disabled().get(pk=w.milestone.pk).score is None
    ok = c.post(url("objective_score", w.objective.pk), {
        f"score_{w.key_result.pk}": "0.6", f"reason_{w.key_result.pk}": "Two deals in review.",
        f"score_{w.milestone.pk}": "1", f"reason_{w.milestone.pk}": ""})
    assert ok.status_code == 302
    with scopes_disabled():
        assert Objective.objects.get(pk=w.objective.pk).score == 0.8
    html = page(c, "objective", w.objective.pk)
    assert "“Two deals in review.”" in html and "(proposed 0.40)" in html
    assert "Score <strong>0.80</strong>: Below 1.0 on a commitment" in html


def test_the_score_band_of_an_aspirational_objective_is_in_words(ending):
    Objective.objects.with_scopes_disabled().filter(pk=ending.objective.pk).update(
        commitment="aspirational", score=0.72)
    html = page(ending.dana_client, "objective", ending.objective.pk)
    assert "A strong result: 0.7 or more on a stretch objective." in html


@pytest.mark.parametrize("name", ["objective_score", "objective_close",
                                  "objective_carry_over"])
def test_a_viewer_may_not_score_close_or_carry_over(ending, bob_client, name):
    assert bob_client.get(url(name, ending.objective.pk)).status_code == 403
    assert bob_client.post(url(name, ending.objective.pk), {}).status_code == 403


def test_a_lead_of_another_team_may_not_score(ending):
    other = lead_of(ending, TeamFactory(organization=ending.org, name="Legal"))
    assert client_for(other.user).get(url("objective_score", ending.objective.pk)).status_code \
        == 403


# The close form and carry-over ------------------------------------------------------------------


def test_the_close_form_saves_and_carry_over_leads_to_the_next_cycle(ending):
    w, c = ending, ending.dana_client
    bad = c.post(url("objective_close", w.objective.pk), {"outcome": "partly", "learned": "",
                                                          "next_step": "carry_over",
                                                          "differently": "Start early."})
    assert bad.status_code == 200 and "Start early." in bad.content.decode()
    done = c.post(url("objective_close", w.objective.pk), {
        "outcome": "partly", "learned": "Pilots take a quarter.", "differently": "",
        "next_step": "carry_over"})
    assert done["Location"] == url("objective_carry_over", w.objective.pk)
    html = page(c, "objective_carry_over", w.objective.pk)
    assert 'data-testid="no-next-cycle"' in html
    assert url("console_cycle_new") not in html  # a team lead cannot open a cycle
    assert "Ask an alignment lead" in html
    q2 = next_cycle(w, "Q2", w.cycle)
    html = page(c, "objective_carry_over", w.objective.pk)
    assert "Carry over to Q2" in html and "starts at 40" in html
    response = c.post(url("objective_carry_over", w.objective.pk))
    with scopes_disabled():
        copy = Objective.objects.get(carried_from=w.objective)
    assert response["Location"] == url("objective", copy.pk)
    assert copy.cycle_id == q2.pk and copy.state == "draft"
    html = page(c, "objective", copy.pk)
    assert 'data-testid="cycle-history"' in html and url("objective", w.objective.pk) in html
    html = page(c, "objective", w.objective.pk)
    assert "Pilots take a quarter." in html and url("objective", copy.pk) in html
    assert url("objective_carry_over", w.objective.pk) not in html  # carried once is enough


def test_carry_over_without_a_next_cycle_links_an_admin_to_opening_one(ending, alice_client):
    html = page(alice_client, "objective_carry_over", ending.objective.pk)
    assert url("console_cycle_new") in html


# Closing the cycle ------------------------------------------------------------------------------


def test_the_console_close_page_lists_who_owes_and_closes_anyway(ending, alice_client):
    w = ending
    html = page(alice_client, "console_cycle_close", w.cycle.pk)
    assert 'data-testid="closing-outstanding"' in html
    assert w.team.name in html and w.dana.user.display_name in html
    assert 'data-confirm="Close' in html and "Close anyway" in html
    assert url("console_cycle_close", w.cycle.pk) in page(alice_client, "console_cycles")
    # Without confirm=yes nothing closes.
    alice_client.post(url("console_cycle_close", w.cycle.pk), {"anyway": "yes"})
    assert not Cycle.objects.with_scopes_disabled().get(pk=w.cycle.pk).is_closed
    response = alice_client.post(url("console_cycle_close", w.cycle.pk),
                                 {"confirm": "yes", "anyway": "yes"})
    assert response.status_code == 302
    cycle = Cycle.objects.with_scopes_disabled().get(pk=w.cycle.pk)
    assert cycle.is_closed and cycle.closed_by_id == w.admin.user_id


def test_a_team_lead_cannot_close_a_cycle(ending):
    response = ending.dana_client.post(url("console_cycle_close", ending.cycle.pk),
                                       {"confirm": "yes", "anyway": "yes"})
    assert response.status_code == 403
    assert not Cycle.objects.with_scopes_disabled().get(pk=ending.cycle.pk).is_closed


@pytest.fixture
def closed(ending):
    w = ending
    with scope(organization=w.org):
        scoring.score_key_results(membership=w.dana, objective=w.objective, scores={
            w.key_result.pk: ("0.4", ""), w.milestone.pk: ("1", "")})
        scoring.close_cycle(membership=w.admin, cycle=w.cycle, anyway=True)
    return w


def test_a_closed_cycles_pages_show_final_scores_instead_of_pace(closed, alice_client):
    w = closed
    html = page(alice_client, "objective", w.objective.pk)
    assert 'data-testid="final-score"' in html and "0.70" in html
    assert 'data-testid="objective-health"' not in html and 'data-testid="kr-health"' not in html
    assert "Score your key results" not in html and "Fill in the close form" not in html
    for name, args in (("team", [w.team.pk]), ("tree", []), ("home", [])):
        html = page(alice_client, name, *args, cycle=w.cycle.pk)
        assert 'data-testid="final-score"' in html, name
    tree = page(alice_client, "tree", cycle=w.cycle.pk)
    assert "Not scored" in tree  # the company objectives were never scored


@pytest.mark.parametrize("name", ["objective_score", "objective_close"])
def test_a_closed_cycle_refuses_scores_and_close_forms_posted_anyway(closed, name):
    w = closed
    response = w.dana_client.post(url(name, w.objective.pk), {
        f"score_{w.key_result.pk}": "0.9", f"reason_{w.key_result.pk}": "late",
        "outcome": "missed", "learned": "x", "next_step": "drop"})
    assert "closed" in response.content.decode()
    with scopes_disabled():
        assert KeyResult.objects.get(pk=w.key_result.pk).score == 0.4
        assert not ObjectiveClose.objects.exists()
    # Opened by its address, the form leads back to the objective.
    assert w.dana_client.get(url(name, w.objective.pk)).status_code == 302


# Query budgets ----------------------------------------------------------------------------------


def grow(world, n):
    for _ in range(n):
        team = TeamFactory(organization=world.org, parent=world.team)
        o = ObjectiveFactory(organization=world.org, cycle=world.cycle, team=team,
                             parent=world.objective)
        KeyResultFactory(objective=o)
        own = ObjectiveFactory(organization=world.org, cycle=world.cycle, team=world.team,
                               parent=world.company_objective)
        KeyResultFactory(objective=own)


@pytest.mark.parametrize("name,arg", [("objective_score", "objective"),
                                      ("objective_close", "objective"),
                                      ("objective_carry_over", "objective"),
                                      ("objective", "objective"),
                                      ("team", "team"),
                                      ("console_cycle_close", "cycle")])
def test_end_of_cycle_pages_keep_their_query_count_as_the_cycle_grows(ending, alice_client,
                                                                      name, arg):
    w = ending
    next_cycle(w, "Q2", w.cycle)
    target = url(name, getattr(w, arg).pk)
    grow(w, 3)
    small = count_queries(lambda: alice_client.get(target))
    assert small[0].status_code == 200
    grow(w, 40)
    large = count_queries(lambda: alice_client.get(target))
    assert large[0].status_code == 200
    assert_same_queries(small, large)


def test_the_history_across_cycles_costs_the_same_for_a_long_chain(ending, alice_client):
    w = ending
    previous, cycle = w.objective, w.cycle
    chain = []
    for n in range(4):
        cycle = CycleFactory(organization=w.org, name=f"Next {n}",
                             start_date=cycle.end_date + dt.timedelta(days=1),
                             end_date=cycle.end_date + dt.timedelta(days=91))
        previous = ObjectiveFactory(organization=w.org, cycle=cycle, team=w.team,
                                    carried_from=previous, title=f"Step {n}")
        chain.append(previous)
    short = count_queries(lambda: alice_client.get(url("objective", chain[0].pk)))
    long = count_queries(lambda: alice_client.get(url("objective", chain[-1].pk)))
    assert "Step 0" in long[0].content.decode() and w.objective.title in long[0].content.decode()
    assert_same_queries(short, long)


def test_the_admin_role_is_what_the_console_close_page_needs(ending):
    lead = lead_of(ending, ending.team, role=Role.ALIGNMENT_LEAD)
    assert client_for(lead.user).get(url("console_cycle_close", ending.cycle.pk)).status_code \
        == 200


def test_the_console_close_page_counts_once_per_change_and_shows_a_score_at_once(ending,
                                                                                alice_client):
    """The counts over the whole cycle are read from the cache until something they read
    changes; a key result scored or a close form saved shows on the next request."""
    import re

    w = ending
    target = url("console_cycle_close", w.cycle.pk)

    def outstanding():
        html = page(alice_client, "console_cycle_close", w.cycle.pk)
        return re.search(r'data-testid="closing-outstanding"><strong>(\d+) key results? not '
                         r'scored</strong> and <strong>(\d+) objectives? without', html).groups()

    first = count_queries(lambda: alice_client.get(target))
    again = count_queries(lambda: alice_client.get(target))
    assert again[1] <= first[1] - 3  # the two counts and the teams owing: not read again
    before = outstanding()
    with scope(organization=w.org):
        scoring.score_key_results(membership=w.dana, objective=w.objective, scores={
            w.milestone.pk: (Decimal("1.0"), "")})
    after = outstanding()
    assert int(after[0]) == int(before[0]) - 1 and after[1] == before[1]
    with scope(organization=w.org):
        KeyResult.objects.for_org(w.org).filter(pk=w.key_result.pk).update(score=Decimal("0.4"))
    assert int(outstanding()[0]) == int(before[0]) - 2
