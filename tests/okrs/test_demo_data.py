"""The seeded demo is data a department head believes: counts are whole numbers, notes agree
with their confidence, dates are plausible, and the previous quarter has real results."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from alignment import steps
from alignment.models import StatusUpdate, Workflow
from dependencies import network
from okrs.models import CheckIn, KeyResult, Objective
from orgs.models import Cycle, Organization

pytestmark = pytest.mark.django_db

# Units that count things: nobody closes 5.93 deals.
COUNTS = {"deals", "customers", "accounts", "bugs", "features", "pages", "fixes", "templates",
          "teams", "MQLs", "days"}
GLOOMY = ("behind", "blocked", "blocks", "slipped", "slower", "stalled", "no movement", "far ",
          "blocker", "waiting", "missed", "escalat")
CHEERFUL = ("as planned", "paid off", "steady", "good week", "on track", "ahead")


@pytest.fixture
def demo():
    call_command("seed_demo", stdout=StringIO())
    with scopes_disabled():
        org = Organization.objects.get(slug="northwind")
    with scope(organization=org):
        for cycle in Cycle.objects.for_org(org):
            network.run(cycle)  # what the worker does after the seed: roll-ups included
        yield org


def test_counts_are_whole_numbers(demo):
    krs = list(KeyResult.objects.for_org(demo).filter(kind="numeric", unit__in=COUNTS))
    assert len(krs) >= 10
    wrong = [(kr.title, kr.current_value) for kr in krs if kr.current_value % 1]
    wrong += [(c.key_result.title, c.value) for c in CheckIn.objects.for_org(demo).filter(
        key_result__in=krs).select_related("key_result") if c.value % 1]
    assert wrong == []
    nps = KeyResult.objects.for_org(demo).get(title="Raise NPS from 31 to 50")
    assert nps.current_value % 1 == 0  # a score reported in whole points


def test_notes_agree_with_their_confidence(demo):
    disagree = []
    for c in CheckIn.objects.for_org(demo).select_related("key_result"):
        note = c.note.lower()
        if c.confidence == "on_track" and any(word in note for word in GLOOMY):
            disagree.append((c.key_result.title, c.confidence, c.note))
        if c.confidence != "on_track" and any(word in note for word in CHEERFUL):
            disagree.append((c.key_result.title, c.confidence, c.note))
        if not note:
            disagree.append((c.key_result.title, c.confidence, "(no note)"))
    assert disagree == []
    # A KR that nobody works on does not get notes about deals waiting on SSO.
    sync = KeyResult.objects.for_org(demo).get(title="Real-time sync across web and mobile")
    assert not sync.check_ins.filter(note__icontains="deals").exists()


def test_dates_are_plausible(demo):
    now = timezone.now()
    late = []
    for c in CheckIn.objects.for_org(demo).select_related("key_result__objective__cycle"):
        kr, cycle = c.key_result, c.key_result.objective.cycle
        if not (kr.created_at <= c.created_at <= now):
            late.append(("check-in outside its KR's life", kr.title, c.created_at))
        if not (cycle.start_date <= timezone.localdate(c.created_at) <= cycle.end_date):
            late.append(("check-in outside its cycle", kr.title, c.created_at))
    for o in Objective.objects.for_org(demo).select_related("cycle"):
        if timezone.localdate(o.created_at) > o.cycle.start_date:
            late.append(("objective written after its cycle began", o.title, o.created_at))
    for wf in Workflow.objects.for_org(demo).select_related("cycle"):
        start, end = wf.cycle.start_date, wf.cycle.end_date
        overridden = set(wf.overrides.values_list("step", flat=True))
        if wf.signed_off_at and 1 not in overridden and (
                timezone.localdate(wf.signed_off_at) > steps.due_date(1, start, end)):
            late.append(("signed off after its due date", wf.objective.title,
                         wf.signed_off_at))
        if wf.kickoff_closed_at and (
                timezone.localdate(wf.kickoff_closed_at) < wf.kickoff_date
                or (3 not in overridden and timezone.localdate(wf.kickoff_closed_at)
                    > steps.due_date(3, start, end))):
            late.append(("kickoff closed out of time", wf.objective.title,
                         wf.kickoff_closed_at))
        if wf.created_at > (wf.signed_off_at or now) or wf.created_at > now:
            late.append(("workflow started after its sign-off", wf.objective.title,
                         wf.created_at))
        for m in wf.milestones.all():
            if m.done_at and not (m.start_date <= timezone.localdate(m.done_at)
                                  <= m.due_date and m.done_at <= now):
                late.append(("milestone delivered out of time", m.title, m.done_at))
    for u in StatusUpdate.objects.for_org(demo):
        if u.text.startswith("Delivered:"):
            m = u.workflow.milestones.get(title=u.text.removeprefix("Delivered: "))
            if abs((u.created_at - m.done_at).total_seconds()) > 60:
                late.append(("delivery posted apart from the delivery", m.title, u.created_at))
    assert late == []


def test_the_previous_quarter_has_key_results_and_results(demo):
    previous = Cycle.objects.for_org(demo).get(status="closed")
    objectives = list(Objective.objects.for_org(demo).filter(cycle=previous).live())
    assert len(objectives) >= 4
    assert Objective.objects.for_org(demo).filter(cycle=previous, parent__isnull=False).count() >= 3
    reached, missed = 0, 0
    for o in objectives:
        krs = list(o.key_results.all())
        assert len(krs) >= 2, o.title
        for kr in krs:
            final = kr.check_ins.order_by("-created_at").first()
            assert final is not None, kr.title
            # The final check-in is the result, reported in the cycle's last two weeks.
            assert (previous.end_date - timezone.localdate(final.created_at)).days <= 14
            if kr.is_milestone:
                done = final.is_done
            else:
                assert kr.current_value == final.value
                forward = kr.target_value >= kr.start_value
                done = (kr.current_value >= kr.target_value if forward
                        else kr.current_value <= kr.target_value)
            reached += done
            missed += not done
    assert reached and missed  # a real quarter: some results reached, some not


def test_the_previous_quarter_is_closed_with_scores_lessons_and_a_carry_over(demo):
    from okrs.models import ObjectiveClose

    previous = Cycle.objects.for_org(demo).get(status="closed")
    assert previous.closed_at is not None and previous.closed_by is not None
    objectives = list(Objective.objects.for_org(demo).filter(cycle=previous).live())
    krs = list(KeyResult.objects.for_org(demo).filter(objective__cycle=previous))
    assert all(kr.score is not None and kr.proposed_score is not None and kr.scored_by_id
               for kr in krs)
    overridden = [kr for kr in krs if kr.score != kr.proposed_score]
    assert len(overridden) >= 2 and all(kr.score_reason for kr in overridden)
    assert all(kr.score_reason == "" for kr in krs if kr.score == kr.proposed_score)
    for o in objectives:
        scores = [kr.score for kr in krs if kr.objective_id == o.pk]
        assert o.score == pytest.approx(sum(scores) / len(scores), abs=0.01), o.title
    closes = ObjectiveClose.objects.for_org(demo).filter(objective__in=objectives)
    assert closes.count() == len(objectives)
    assert all(c.learned and c.differently for c in closes)
    carried = Objective.objects.for_org(demo).exclude(carried_from=None).select_related(
        "carried_from__close", "cycle")
    [copy] = carried
    assert copy.cycle.status == "active" and copy.carried_from.cycle_id == previous.pk
    assert copy.carried_from.close.next_step == "carry_over"
    # It starts where the original ended.
    ended = {kr.current_value for kr in krs if kr.objective_id == copy.carried_from_id}
    starts = set(copy.key_results.values_list("start_value", flat=True))
    assert ended & starts


def test_the_current_quarter_ends_in_two_weeks_and_goals_are_linked(demo):
    from okrs.models import Perspective, StrategicGoal

    current = Cycle.objects.for_org(demo).get(status="active")
    assert (current.end_date - timezone.localdate()).days == 14
    assert list(Perspective.objects.for_org(demo).values_list("name", flat=True)) == [
        "Financial", "Customer", "Internal process", "Learning and growth"]
    goals = StrategicGoal.objects.for_org(demo)
    assert {g.perspective.name for g in goals} == {
        "Financial", "Customer", "Internal process", "Learning and growth"}
    linked = Objective.objects.for_org(demo).exclude(strategic_goal=None).select_related("team")
    assert linked.filter(cycle=current).count() >= 2
    assert all(o.team.kind == "company" for o in linked)


def test_the_demo_shows_two_kinds_of_dependency(demo):
    from dependencies.models import Dependency

    with scopes_disabled():
        kinds = dict(Dependency.objects.filter(organization=demo).values_list("need", "kind"))
    assert kinds["Landing pages under 1 s on mobile"] == Dependency.Kind.SHARED
    assert kinds["SAML single sign-on live for the three pilot prospects"] == (
        Dependency.Kind.SUPPORTING)
