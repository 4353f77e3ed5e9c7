"""The end of a cycle: proposed scores per kind, confirm or override with a reason, the
objective's weighted score and its band in words, the close form, carry-over (twice, and
through review) and closing the cycle."""

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from alignment import cascade
from okrs import scoring, selectors
from okrs.models import KeyResult, Objective, ObjectiveClose
from orgs.models import Cycle, Role, Team

from ..factories import (
    CycleFactory,
    KeyResultFactory,
    MembershipFactory,
    ObjectiveFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()


# Pure rules -------------------------------------------------------------------------------------


def kr(kind="numeric", start=0, target=100, current=0, done=False, score=None, weight=1):
    return SimpleNamespace(
        kind=kind, rollup="", is_milestone=kind == "milestone", start_value=Decimal(start),
        is_done=done,
        target_value=Decimal(target), current_value=Decimal(current), score=score,
        weight=Decimal(weight))


@pytest.mark.parametrize("key_result,proposal", [
    (kr(current=50), 0.5),
    (kr(current=0), 0.0),
    (kr(current=130), 1.0),             # past the target: clipped to 1
    (kr(current=-20), 0.0),             # below the start: clipped to 0
    (kr(current=66.666), 0.67),         # two decimals
    (kr(start=100, target=50, current=75), 0.5),   # a decrease toward a lower target
    (kr(start=100, target=50, current=40), 1.0),
    (kr(kind="milestone", done=True), 1.0),
    (kr(kind="milestone", done=False), 0.0),
    (kr(start=5, target=5, current=5), 0.0),       # start equals target: no progress to read
])
def test_it_proposes_a_score_per_kind(key_result, proposal):
    assert scoring.propose(key_result) == proposal


@pytest.mark.parametrize("commitment,score,key", [
    ("aspirational", 0.7, "strong"),
    ("aspirational", 0.95, "strong"),
    ("aspirational", 0.69, "progress"),
    ("aspirational", 0.4, "progress"),
    ("aspirational", 0.39, "missed"),
    ("aspirational", 0.0, "missed"),
    ("committed", 1.0, "done"),
    ("committed", 0.99, "short"),
    ("committed", 0.5, "short"),
])
def test_score_bands_in_words(commitment, score, key):
    found, words = scoring.band(commitment, score)
    assert found == key
    assert words == scoring.BANDS[(commitment, key)]


def test_no_band_without_a_score():
    assert scoring.band("aspirational", None) is None


def test_the_objective_score_is_the_weighted_mean_once_every_key_result_is_scored():
    assert scoring.weighted_score([kr(score=1.0, weight=1), kr(score=0.2, weight=3)]) == 0.4
    assert scoring.weighted_score([kr(score=1.0), kr(score=None)]) is None
    assert scoring.weighted_score([]) is None


@pytest.mark.parametrize("end_in,status,open_", [
    (15, "active", False),   # more than two weeks left
    (14, "active", True),    # the window opens two weeks before the end
    (0, "active", True),
    (-30, "active", True),   # after the end, until it is closed
    (-30, "closed", False),
])
def test_the_scoring_window(end_in, status, open_):
    cycle = Cycle(start_date=TODAY - dt.timedelta(days=90), status=status,
                  end_date=TODAY + dt.timedelta(days=end_in))
    assert scoring.in_scoring_window(cycle, TODAY) is open_


# Set-up -----------------------------------------------------------------------------------------


def in_window(cycle):
    """Move ``cycle`` so that it ends in ten days: its scoring window is open."""
    Cycle.objects.with_scopes_disabled().filter(pk=cycle.pk).update(
        start_date=TODAY - dt.timedelta(days=80), end_date=TODAY + dt.timedelta(days=10))
    cycle.refresh_from_db()
    return cycle


def lead_of(world, team, role=Role.TEAM_LEAD):
    user = UserFactory()
    membership = MembershipFactory(organization=world.org, user=user, role=role)
    Team.objects.with_scopes_disabled().filter(pk=team.pk).update(lead=user)
    return membership


def member_of(world, team):
    membership = MembershipFactory(organization=world.org, role=Role.MEMBER)
    with scopes_disabled():
        membership.teams.set([team])
    return membership


@pytest.fixture
def ending(world_a):
    """world_a's cycle two weeks from its end, its team objective with two key results (one
    numeric half way, one milestone done) and its team's lead, dana."""
    w = world_a
    in_window(w.cycle)
    with scopes_disabled():
        KeyResult.objects.filter(pk=w.key_result.pk).update(current_value=Decimal("50"),
                                                           weight=Decimal("1"))
        w.key_result.refresh_from_db()
    w.milestone = KeyResultFactory(objective=w.objective, kind="milestone", start_value=None,
                                   target_value=None, current_value=None, unit="",
                                   is_done=True, weight=Decimal("3"))
    w.dana = lead_of(w, w.team)
    return w


def fresh(model, pk):
    with scopes_disabled():
        return model.objects.get(pk=pk)


# Scoring ----------------------------------------------------------------------------------------


def test_confirming_the_proposal_needs_no_reason(ending):
    with scope(organization=ending.org):
        kr = scoring.score_key_result(membership=ending.dana, key_result=ending.key_result,
                                      score="0.5")
    assert (kr.score, kr.proposed_score, kr.score_reason) == (0.5, 0.5, "")
    assert kr.scored_by_id == ending.dana.user_id and kr.scored_at is not None


def test_an_override_needs_a_reason(ending):
    with scope(organization=ending.org), pytest.raises(ValidationError) as refused:
        scoring.score_key_result(membership=ending.dana, key_result=ending.key_result,
                                 score="0.8")
    assert f"reason_{ending.key_result.pk}" in refused.value.message_dict
    assert "proposed 0.50" in str(refused.value)
    assert fresh(KeyResult, ending.key_result.pk).score is None
    with scope(organization=ending.org):
        kr = scoring.score_key_result(membership=ending.dana, key_result=ending.key_result,
                                      score="0,8", reason="The last deal signed after the data.")
    assert (kr.score, kr.proposed_score) == (0.8, 0.5)
    assert kr.score_reason == "The last deal signed after the data."


@pytest.mark.parametrize("bad", ["1.2", "-0.1", "high", "nan"])
def test_a_score_outside_0_to_1_is_refused(ending, bad):
    with scope(organization=ending.org), pytest.raises(ValidationError) as refused:
        scoring.score_key_result(membership=ending.dana, key_result=ending.key_result,
                                 score=bad, reason="x")
    assert "from 0 to 1" in str(refused.value)


def test_the_objective_gets_its_weighted_score_once_every_key_result_is_scored(ending):
    with scope(organization=ending.org):
        scoring.score_key_result(membership=ending.dana, key_result=ending.key_result,
                                 score="0.5")
        assert fresh(Objective, ending.objective.pk).score is None
        scoring.score_key_result(membership=ending.dana, key_result=ending.milestone,
                                 score="1")
    # (0.5 * 1 + 1.0 * 3) / 4
    assert fresh(Objective, ending.objective.pk).score == 0.88


def test_the_objective_score_follows_key_results_added_reweighted_and_deleted(ending):
    from okrs import services

    with scope(organization=ending.org):
        scoring.score_key_result(membership=ending.dana, key_result=ending.key_result,
                                 score="0.5")
        scoring.score_key_result(membership=ending.dana, key_result=ending.milestone,
                                 score="1")
        assert fresh(Objective, ending.objective.pk).score == 0.88
        # A new key result is unscored: the objective has no score until it is.
        extra = services.create_key_result(
            membership=ending.dana, objective=ending.objective, title="One more deal",
            kind="numeric", start_value=Decimal("0"), target_value=Decimal("1"))
        assert fresh(Objective, ending.objective.pk).score is None
        services.delete_key_result(membership=ending.dana, key_result=extra)
        assert fresh(Objective, ending.objective.pk).score == 0.88
        # The milestone weighs 1 instead of 3: (0.5 * 1 + 1.0 * 1) / 2.
        milestone = fresh(KeyResult, ending.milestone.pk)
        services.update_key_result(
            membership=ending.dana, key_result=milestone, version=milestone.version,
            title=milestone.title, start_value=None, target_value=None, unit="",
            owner_team=milestone.owner_team, owner=None, weight=Decimal("1"))
    assert fresh(Objective, ending.objective.pk).score == 0.75


def test_scoring_waits_for_the_window_and_stops_when_the_cycle_closes(ending):
    Cycle.objects.with_scopes_disabled().filter(pk=ending.cycle.pk).update(
        end_date=TODAY + dt.timedelta(days=30))
    ending.key_result.objective.cycle.refresh_from_db()
    with scope(organization=ending.org), pytest.raises(ValidationError, match="Scoring opens"):
        scoring.score_key_result(membership=ending.dana, key_result=ending.key_result,
                                 score="0.5")
    Cycle.objects.with_scopes_disabled().filter(pk=ending.cycle.pk).update(
        end_date=TODAY - dt.timedelta(days=3), status="closed")
    ending.key_result.objective.cycle.refresh_from_db()
    with scope(organization=ending.org), pytest.raises(ValidationError, match="closed"):
        scoring.score_key_result(membership=ending.dana, key_result=ending.key_result,
                                 score="0.5")
    assert fresh(KeyResult, ending.key_result.pk).score is None


def test_who_may_score(ending):
    w = ending
    other_team = TeamFactory(organization=w.org, name="Sales")
    # A KR of the team's objective owned by Sales: Sales' lead scores it, not the others.
    shared = KeyResultFactory(objective=w.objective, owner_team=other_team)
    sales_lead = lead_of(w, other_team)
    stranger = lead_of(w, TeamFactory(organization=w.org, name="Legal"))
    member = member_of(w, w.team)
    lead = MembershipFactory(organization=w.org, role=Role.ALIGNMENT_LEAD)
    with scope(organization=w.org):
        scoring.score_key_result(membership=sales_lead, key_result=shared, score="0",
                                 reason="")
        for who in (stranger, member, w.bob):
            with pytest.raises(PermissionDenied):
                scoring.score_key_result(membership=who, key_result=w.key_result, score="0.5")
        scoring.score_key_result(membership=lead, key_result=w.key_result, score="0.5")
        scoring.score_key_result(membership=w.admin, key_result=w.milestone, score="1")
        # The objective's lead scores the Sales KR too (its objective is theirs).
        scoring.score_key_result(membership=w.dana, key_result=shared, score="0.1",
                                 reason="Half a pilot.")


# The close form ---------------------------------------------------------------------------------


def test_the_close_form_is_written_and_rewritten(ending):
    with scope(organization=ending.org):
        with pytest.raises(ValidationError) as refused:
            scoring.close_objective(membership=ending.dana, objective=ending.objective,
                                    outcome="partly", learned="  ", next_step="carry_over")
        assert "learned" in refused.value.message_dict
        with pytest.raises(ValidationError):
            scoring.close_objective(membership=ending.dana, objective=ending.objective,
                                    outcome="great", learned="x", next_step="carry_over")
        scoring.close_objective(membership=ending.dana, objective=ending.objective,
                                outcome="partly", learned="Pilots sell.", next_step="carry_over")
        scoring.close_objective(membership=ending.dana, objective=ending.objective,
                                outcome="missed", learned="Pilots sell slowly.",
                                differently="Start in week one.", next_step="bau")
        close = ObjectiveClose.objects.get(objective=ending.objective)
        assert ObjectiveClose.objects.filter(objective=ending.objective).count() == 1
    assert (close.outcome, close.learned, close.differently, close.next_step) == (
        "missed", "Pilots sell slowly.", "Start in week one.", "bau")
    assert close.closed_by_id == ending.dana.user_id


def test_only_the_teams_leads_close_an_objective(ending):
    viewer_or_member = [ending.bob, member_of(ending, ending.team)]
    with scope(organization=ending.org):
        for who in viewer_or_member:
            with pytest.raises(PermissionDenied):
                scoring.close_objective(membership=who, objective=ending.objective,
                                        outcome="partly", learned="x", next_step="drop")


# Carry-over -------------------------------------------------------------------------------------


def next_cycle(world, name, after):
    return CycleFactory(organization=world.org, name=name, status="planning",
                        start_date=after.end_date + dt.timedelta(days=1),
                        end_date=after.end_date + dt.timedelta(days=91))


def test_carry_over_copies_the_unfinished_key_results_as_a_draft_from_where_they_ended(ending):
    w = ending
    q2 = next_cycle(w, "Q2", w.cycle)
    done = KeyResultFactory(objective=w.objective, current_value=Decimal("100"))
    with scope(organization=w.org):
        copy = scoring.carry_over(membership=w.dana, objective=w.objective)
        krs = list(copy.key_results.order_by("position"))
    assert (copy.cycle_id, copy.state, copy.carried_from_id, copy.team_id) == (
        q2.pk, "draft", w.objective.pk, w.team.pk)
    assert copy.title == w.objective.title
    # The numeric KR at 50 of 100 starts at 50; the milestone was done and the other KR hit its
    # target: neither comes along.
    assert [(k.title, k.start_value, k.current_value, k.target_value) for k in krs] == [
        (w.key_result.title, Decimal("50"), Decimal("50"), Decimal("100"))]
    assert done.title not in [k.title for k in krs]


def test_carry_over_names_the_missing_next_cycle(ending):
    with scope(organization=ending.org), pytest.raises(scoring.NoNextCycle,
                                                       match="Open the next cycle"):
        scoring.carry_over(membership=ending.dana, objective=ending.objective)


def test_an_objective_is_carried_over_once_per_cycle(ending):
    next_cycle(ending, "Q2", ending.cycle)
    with scope(organization=ending.org):
        scoring.carry_over(membership=ending.dana, objective=ending.objective)
        with pytest.raises(ValidationError, match="already carried over to Q2"):
            scoring.carry_over(membership=ending.dana, objective=ending.objective)


def test_a_finished_objective_has_nothing_to_carry_over(ending):
    next_cycle(ending, "Q2", ending.cycle)
    KeyResult.objects.with_scopes_disabled().filter(pk=ending.key_result.pk).update(
        current_value=Decimal("100"))
    with scope(organization=ending.org), pytest.raises(ValidationError, match="nothing"):
        scoring.carry_over(membership=ending.dana, objective=ending.objective)


def test_carried_twice_and_through_review_as_usual(ending):
    """Q1's objective goes to Q2 as a draft, is proposed and approved there; at Q2's end it is
    carried again into Q3. Each page's history shows the three cycles in order."""
    w = ending
    q2 = next_cycle(w, "Q2", w.cycle)
    q3 = next_cycle(w, "Q3", q2)
    reviewer = MembershipFactory(organization=w.org, role=Role.ALIGNMENT_LEAD)
    with scope(organization=w.org):
        copy = scoring.carry_over(membership=w.dana, objective=w.objective)
        with pytest.raises(ValidationError):  # a draft is not approved before it is proposed
            cascade.approve(membership=reviewer, objective=copy)
        copy = cascade.submit_for_review(membership=w.dana, objective=copy)
        copy = cascade.approve(membership=reviewer, objective=copy)
        assert copy.state == "approved"
    in_window(q2)
    Cycle.objects.with_scopes_disabled().filter(pk=w.cycle.pk).update(status="closed")
    with scope(organization=w.org):
        copy = Objective.objects.get(pk=copy.pk)
        again = scoring.carry_over(membership=w.dana, objective=copy)
        assert (again.cycle_id, again.carried_from_id, again.state) == (q3.pk, copy.pk, "draft")
        for o in (w.objective, copy, again):
            chain = scoring.history(w.org, Objective.objects.get(pk=o.pk))
            assert [h.cycle.name for h in chain] == [w.cycle.name, "Q2", "Q3"]
            assert [h.pk for h in chain] == [w.objective.pk, copy.pk, again.pk]


def test_a_carried_objective_keeps_its_parent_when_the_parent_was_carried_too(ending):
    w = ending
    next_cycle(w, "Q2", w.cycle)
    KeyResultFactory(objective=w.company_objective)
    with scope(organization=w.org):
        parent_copy = scoring.carry_over(membership=w.admin, objective=w.company_objective)
        copy = scoring.carry_over(membership=w.dana, objective=w.objective)
    assert copy.parent_id == parent_copy.pk


def sales_objective(w):
    """Another team's objective under the company's, with an unfinished numeric key result."""
    sales = TeamFactory(organization=w.org, name="Sales", parent=w.company)
    objective = ObjectiveFactory(organization=w.org, cycle=w.cycle, team=sales,
                                 parent=w.company_objective, title="Sell to the mid-market")
    kr = KeyResultFactory(objective=objective, title="Mid-market deals", start_value=0,
                          target_value=100, current_value=10, unit="%")
    return objective, kr


def carried_kr(original):
    with scopes_disabled():
        return KeyResult.objects.select_related("objective").get(carried_from=original)


@pytest.mark.parametrize("first", ["aligned_to", "aligning"])
def test_a_carried_key_result_aligns_to_the_copy_of_the_objective_it_aligned_to(ending, first):
    w = ending
    next_cycle(w, "Q2", w.cycle)
    sales, _ = sales_objective(w)
    with scopes_disabled():
        KeyResult.objects.filter(pk=w.key_result.pk).update(aligned_to=sales)
    order = [(w.admin, sales), (w.dana, w.objective)]
    with scope(organization=w.org):
        for membership, objective in (order if first == "aligned_to" else order[::-1]):
            scoring.carry_over(membership=membership, objective=objective)
    with scopes_disabled():
        sales_copy = Objective.objects.get(carried_from=sales)
    # Whichever was carried first, the copy of the key result aligns to the copy of Sales'.
    assert carried_kr(w.key_result).aligned_to_id == sales_copy.pk
    assert fresh(KeyResult, w.key_result.pk).aligned_to_id == sales.pk  # the original stays


def accepted_contribution(w, shared):
    from dependencies import services as dependency_services
    from dependencies.models import Contribution

    with scopes_disabled():  # world_a's own request of this key result, withdrawn
        Contribution.objects.filter(pk=w.contribution.pk).update(status="withdrawn")
    with scope(organization=w.org):
        contribution = dependency_services.request_contribution(
            membership=w.admin, key_result=fresh(KeyResult, w.key_result.pk), shared=shared,
            rollup="sum")
    assert contribution.status == "accepted"


@pytest.mark.parametrize("first", ["shared", "feeding"])
def test_a_carried_contribution_is_accepted_when_the_carrier_may_answer(ending, first):
    w = ending
    next_cycle(w, "Q2", w.cycle)
    sales, shared = sales_objective(w)
    accepted_contribution(w, shared)
    order = [sales, w.objective] if first == "shared" else [w.objective, sales]
    with scope(organization=w.org):
        for objective in order:  # the org admin carries both: they may answer for Sales
            scoring.carry_over(membership=w.admin, objective=objective)
    feeding, shared_copy = carried_kr(w.key_result), carried_kr(shared)
    assert feeding.feeds_id == shared_copy.pk and shared_copy.rollup == "sum"
    # Both copies are in the next cycle.
    assert feeding.objective.cycle.name == shared_copy.objective.cycle.name == "Q2"


def test_a_carried_contribution_asks_the_owners_again_when_the_carrier_may_not(ending):
    from dependencies.models import Contribution

    w = ending
    next_cycle(w, "Q2", w.cycle)
    sales, shared = sales_objective(w)
    accepted_contribution(w, shared)
    with scope(organization=w.org):
        scoring.carry_over(membership=w.admin, objective=sales)
        scoring.carry_over(membership=w.dana, objective=w.objective)  # dana leads only hers
    feeding, shared_copy = carried_kr(w.key_result), carried_kr(shared)
    assert feeding.feeds_id is None  # nothing changes until Sales' owners accept
    with scopes_disabled():
        asked = Contribution.objects.get(key_result=feeding)
    assert asked.shared_id == shared_copy.pk and asked.status == "requested"
    assert asked.rollup == "sum" and w.cycle.name in asked.note


def test_a_link_whose_other_end_was_not_carried_is_left_for_the_team(ending):
    w = ending
    next_cycle(w, "Q2", w.cycle)
    sales, shared = sales_objective(w)
    accepted_contribution(w, shared)
    with scopes_disabled():
        KeyResult.objects.filter(pk=w.key_result.pk).update(aligned_to=sales)
    with scope(organization=w.org):
        scoring.carry_over(membership=w.admin, objective=w.objective)
    copy = carried_kr(w.key_result)
    assert copy.feeds_id is None and copy.aligned_to_id is None


def test_only_the_teams_leads_carry_over(ending):
    next_cycle(ending, "Q2", ending.cycle)
    member = member_of(ending, ending.team)
    with scope(organization=ending.org):
        for who in (ending.bob, member):
            with pytest.raises(PermissionDenied):
                scoring.carry_over(membership=who, objective=ending.objective)


# Closing the cycle ------------------------------------------------------------------------------


def test_closing_shows_what_is_owed_and_by_whom(ending):
    w = ending
    with scope(organization=w.org):
        status = selectors.closing_status(w.org, w.cycle)
    # world_a: the team objective (2 KRs) and two company objectives (the contribution's
    # milestone KR on one).
    assert status["unscored"] == 3 and status["unclosed"] == 3
    by_team = {row["team"].name: row for row in status["teams"]}
    assert by_team[w.team.name]["unscored"] == 2 and by_team[w.team.name]["unclosed"] == 1
    assert by_team[w.team.name]["team"].lead_id == w.dana.user_id
    with scope(organization=w.org):
        scoring.score_key_result(membership=w.dana, key_result=w.key_result, score="0.5")
        scoring.close_objective(membership=w.dana, objective=w.objective, outcome="partly",
                                learned="x", next_step="drop")
        status = selectors.closing_status(w.org, w.cycle)
    assert status["unscored"] == 2 and status["unclosed"] == 2


def test_closing_with_work_owed_needs_close_anyway(ending):
    w = ending
    lead = MembershipFactory(organization=w.org, role=Role.ALIGNMENT_LEAD)
    with scope(organization=w.org):
        with pytest.raises(ValidationError, match="Close anyway"):
            scoring.close_cycle(membership=lead, cycle=w.cycle)
        assert not Cycle.objects.get(pk=w.cycle.pk).is_closed
        with pytest.raises(PermissionDenied):
            scoring.close_cycle(membership=w.dana, cycle=w.cycle, anyway=True)
        closed = scoring.close_cycle(membership=lead, cycle=w.cycle, anyway=True)
    assert closed.status == "closed" and closed.closed_by_id == lead.user_id
    assert closed.closed_at is not None
    with scope(organization=w.org), pytest.raises(ValidationError, match="closed already"):
        scoring.close_cycle(membership=lead, cycle=w.cycle, anyway=True)


def test_a_fully_scored_and_closed_cycle_closes_without_anyway(ending):
    w = ending
    Objective.objects.with_scopes_disabled().filter(pk__in=[
        w.company_objective.pk, w.other_objective.pk]).update(state="retired")
    with scope(organization=w.org):
        scoring.score_key_results(membership=w.dana, objective=w.objective, scores={
            w.key_result.pk: ("0.5", ""), w.milestone.pk: ("1", "")})
        scoring.close_objective(membership=w.dana, objective=w.objective, outcome="partly",
                                learned="x", next_step="drop")
        assert scoring.close_cycle(membership=w.admin, cycle=w.cycle).is_closed


def test_a_closed_cycle_refuses_every_end_of_cycle_write(ending):
    w = ending
    with scope(organization=w.org):
        scoring.close_cycle(membership=w.admin, cycle=w.cycle, anyway=True)
        objective = Objective.objects.select_related("cycle").get(pk=w.objective.pk)
        key_result = KeyResult.objects.select_related("objective__cycle").get(
            pk=w.key_result.pk)
        with pytest.raises(ValidationError, match="closed"):
            scoring.score_key_result(membership=w.admin, key_result=key_result, score="0.5")
        with pytest.raises(ValidationError, match="closed"):
            scoring.close_objective(membership=w.admin, objective=objective, outcome="missed",
                                    learned="x", next_step="drop")
    assert fresh(KeyResult, w.key_result.pk).score is None
    assert not ObjectiveClose.objects.with_scopes_disabled().exists()


def test_carry_over_still_works_after_closing_and_writes_only_the_next_cycle(ending):
    w = ending
    q2 = next_cycle(w, "Q2", w.cycle)
    with scope(organization=w.org):
        scoring.close_cycle(membership=w.admin, cycle=w.cycle, anyway=True)
        objective = Objective.objects.select_related("cycle").get(pk=w.objective.pk)
        copy = scoring.carry_over(membership=w.dana, objective=objective)
    assert copy.cycle_id == q2.pk
    assert fresh(Objective, w.objective.pk).updated_at == w.objective.updated_at


# Who owes scores (the digest and the inbox) ----------------------------------------------------


def test_key_results_to_score_are_the_unscored_ones_of_teams_i_lead_in_the_window(ending):
    w = ending
    with scope(organization=w.org):
        mine = set(selectors.key_results_to_score(w.org, w.dana.user).values_list("pk",
                                                                                  flat=True))
        assert mine == {w.key_result.pk, w.milestone.pk}
        assert selectors.key_results_to_score(w.org, w.bob).count() == 0
        scoring.score_key_result(membership=w.dana, key_result=w.key_result, score="0.5")
        assert list(selectors.key_results_to_score(w.org, w.dana).values_list(
            "pk", flat=True)) == [w.milestone.pk]
    # Outside the window, nothing is owed yet.
    Cycle.objects.with_scopes_disabled().filter(pk=w.cycle.pk).update(
        end_date=TODAY + dt.timedelta(days=40))
    with scope(organization=w.org):
        assert selectors.key_results_to_score(w.org, w.dana).count() == 0


def test_the_weekly_digest_has_a_line_per_team_with_key_results_to_score(ending):
    from nudges import content

    w = ending
    with scope(organization=w.org):
        digest = content.build(w.dana)
    assert [(line["team"], line["count"]) for line in digest.scoring] == [(w.team.name, 2)]
    assert f"/o/org-a/teams/{w.team.pk}/?cycle={w.cycle.pk}" in digest.scoring[0]["url"]
    assert "2 key results to score" in digest.subject()
    Cycle.objects.with_scopes_disabled().filter(pk=w.cycle.pk).update(
        end_date=TODAY + dt.timedelta(days=40))
    with scope(organization=w.org):
        assert content.build(w.dana).scoring == []


def test_carry_over_keeps_the_extra_parents_that_were_carried_too(ending):
    """The team objective serves the company objective and, for 30%, a second one. Carried
    after both, its copy serves both copies with the same share; carried after only its main
    parent, it keeps that one and leaves the other for the team to choose."""
    from okrs.models import ObjectiveParent

    w = ending
    next_cycle(w, "Q2", w.cycle)
    with scopes_disabled():
        ObjectiveParent.objects.create(organization=w.org, objective=w.objective,
                                       parent=w.other_objective, share=Decimal("0.3"))
    admin = lead_of(w, w.company, role=Role.ADMIN)
    with scope(organization=w.org):
        company = scoring.carry_over(membership=admin, objective=w.company_objective)
        copy = scoring.carry_over(membership=w.dana, objective=w.objective)
        assert copy.parent_id == company.pk
        assert not ObjectiveParent.objects.filter(objective=copy).exists()
        Objective.objects.filter(pk=copy.pk).update(state=Objective.State.RETIRED)
        other = scoring.carry_over(membership=admin, objective=w.other_objective)
        again = scoring.carry_over(membership=w.dana, objective=w.objective)
        links = list(ObjectiveParent.objects.filter(objective=again)
                     .values_list("parent_id", "share"))
    assert again.parent_id == company.pk and links == [(other.pk, Decimal("0.3"))]
