"""Each step's "done when" rule, as tables over plain data."""

from datetime import date, time

import pytest

from alignment import steps
from alignment.steps import MilestoneData as M
from alignment.steps import StakeholderData as S
from alignment.steps import WorkflowData as W

TODAY = date(2027, 2, 15)
TEAMS = [S("Sales", owner=1, role="lead", commitment="committed"),
         S("Engineering", owner=2, role="contributor", commitment="committed")]


@pytest.mark.parametrize("text, count", [
    ("", 0), ("   ", 0),
    ("Reach $12M ARR by winning enterprise customers together.", 1),
    ("Win enterprise deals, e.g. banks and insurers, with SSO in place", 1),
    ("Reach $12M ARR. Then expand to Europe.", 2),
    ("Grow revenue! Keep churn low?", 2),
    ("Version 2.5 ships in March.", 1),
])
def test_sentences_are_counted(text, count):
    assert steps.sentence_count(text) == count


PURPOSE_OK = W(purpose="Reach $12M ARR together.", impact="Default-alive.", signed_off=True,
               shared=True)


@pytest.mark.parametrize("data, missing", [
    (PURPOSE_OK, []),
    (W(), ["one sentence", "business impact", "signed off", "Share it"]),
    (W(purpose="One. Two.", impact="x", signed_off=True, shared=True), ["Cut the shared"]),
    (W(purpose="One.", impact="x", signed_off=False, shared=True), ["signed off"]),
    (W(purpose="One.", impact="x", signed_off=True, shared=False), ["Share it"]),
])
def test_step_1_shared_purpose(data, missing):
    got = steps.missing_purpose(data)
    assert len(got) == len(missing)
    for expected, line in zip(missing, got, strict=True):
        assert expected in line


@pytest.mark.parametrize("stakeholders, missing", [
    (TEAMS, []),
    ([], ["at least two"]),
    ([S("Sales", owner=1, role="lead")], ["at least two"]),
    ([S("Sales", owner=None, role="lead"), S("Eng", owner=2, role="reviewer")], ["one owner"]),
    ([S("Sales", owner=1, role="contributor"), S("Eng", owner=2, role="reviewer")],
     ["the lead"]),
])
def test_step_2_stakeholders(stakeholders, missing):
    got = steps.missing_stakeholders(W(stakeholders=stakeholders))
    assert len(got) == len(missing)
    for expected, line in zip(missing, got, strict=True):
        assert expected in line


KICKOFF = dict(kickoff_date=TODAY, kickoff_notes="Agreed", success_measures=2,
               kickoff_closed=True)


@pytest.mark.parametrize("changes, missing", [
    ({}, []),
    ({"kickoff_date": None}, ["kickoff date"]),
    ({"kickoff_notes": ""}, ["notes"]),
    ({"success_measures": 0}, ["success is measured"]),
    ({"kickoff_closed": False}, ["Close the kickoff"]),
    ({"stakeholders": [S("Sales", 1, "lead", "committed"), S("Eng", 2, "contributor")]},
     ["Waiting for a commitment from Eng"]),
    ({"stakeholders": [S("Sales", 1, "lead", "committed"),
                       S("Eng", 2, "contributor", "cannot", escalated=True)]},
     ["Resolve the escalation: Eng cannot commit"]),
    ({"stakeholders": [S("Sales", 1, "lead", "committed"),
                       S("Eng", 2, "contributor", "cannot", escalated=True, resolved=True)]},
     []),
])
def test_step_3_kickoff(changes, missing):
    data = W(**({"stakeholders": TEAMS} | KICKOFF | changes))
    got = steps.missing_kickoff(data)
    assert len(got) == len(missing), got
    for expected, line in zip(missing, got, strict=True):
        assert expected in line


def test_the_kickoff_cannot_close_while_a_refusal_is_unresolved():
    data = W(stakeholders=[S("Sales", 1, "lead", "committed"),
                           S("Eng", 2, "contributor", "cannot", escalated=True)],
             **(KICKOFF | {"kickoff_closed": False}))
    assert steps.can_close_kickoff(data) == ["Resolve the escalation: Eng cannot commit."]


@pytest.mark.parametrize("milestones, lead, missing", [
    ([M("Pilot", owner_team=1, due_date=TODAY)], 7, []),
    ([], 7, ["Add the milestones"]),
    ([M("Pilot", owner_team=None, due_date=TODAY)], 7, ["owner team to: Pilot"]),
    ([M("Pilot", owner_team=1, due_date=None)], 7, ["date to: Pilot"]),
    ([M("Pilot", owner_team=1, due_date=TODAY, cross_team=True)], 7, ["wait on: Pilot"]),
    ([M("Pilot", owner_team=1, due_date=TODAY, cross_team=True, dependencies=1)], 7, []),
    ([M("Pilot", owner_team=1, due_date=TODAY, cross_team=True, waits_on=1)], 7, []),
    ([M("Pilot", owner_team=1, due_date=TODAY)], None, ["alignment lead"]),
])
def test_step_4_integrated_plan(milestones, lead, missing):
    got = steps.missing_plan(W(milestones=milestones, lead=lead))
    assert len(got) == len(missing), got
    for expected, line in zip(missing, got, strict=True):
        assert expected in line


CADENCE = dict(sync_frequency="weekly", sync_weekday=1, sync_time=time(9, 30),
               sync_format="25 min video", dashboard_url="https://dash.example/okr")


@pytest.mark.parametrize("changes, missing", [
    ({}, []),
    ({"sync_frequency": ""}, ["weekly or every two weeks"]),
    ({"sync_time": None}, ["day and time"]),
    ({"sync_format": " "}, ["format"]),
    ({"dashboard_url": ""}, ["dashboard"]),
])
def test_step_5_cadence(changes, missing):
    got = steps.missing_cadence(W(**(CADENCE | changes)))
    assert len(got) == len(missing)
    for expected, line in zip(missing, got, strict=True):
        assert expected in line


@pytest.mark.parametrize("milestones, blockers, missing", [
    ([M("A", due_date=TODAY, done=True)], 0, []),
    ([M("A", due_date=date(2027, 2, 1))], 0, ["1 milestone is late"]),
    ([M("A", due_date=date(2027, 3, 1))], 0, ["1 milestone still to deliver"]),
    ([M("A", due_date=date(2027, 3, 1), needs_revisit=True)], 0, ["to revisit"]),
    ([M("A", due_date=TODAY, done=True)], 2, ["2 blockers not escalated"]),
    ([], 0, ["nothing to monitor"]),
])
def test_step_6_monitoring(milestones, blockers, missing):
    got = steps.missing_monitoring(W(milestones=milestones, unescalated_blockers=blockers,
                                     today=TODAY))
    assert len(got) == len(missing), got
    for expected, line in zip(missing, got, strict=True):
        assert expected in line


@pytest.mark.parametrize("changes, missing", [
    ({"retro_worked": "x", "retro_friction": "y", "improvements": 1}, []),
    ({}, ["what worked", "friction", "improvement"]),
    ({"retro_worked": "x", "retro_friction": "y"}, ["improvement"]),
])
def test_step_7_retrospective(changes, missing):
    got = steps.missing_retro(W(**changes))
    assert len(got) == len(missing)
    for expected, line in zip(missing, got, strict=True):
        assert expected in line


def test_an_override_counts_a_step_done_and_says_so():
    [first, *_] = steps.status(W(), TODAY, date(2027, 5, 15), {1: "Agreed in the board room"})
    assert first.done and first.by_override and first.missing
    [first, *_] = steps.status(PURPOSE_OK, TODAY, date(2027, 5, 15))
    assert first.done and not first.by_override


def test_due_dates_are_relative_to_the_cycle():
    start, end = date(2027, 1, 1), date(2027, 3, 31)
    due = {s.number: s.due for s in steps.status(W(), start, end)}
    assert due[1] == date(2026, 12, 25)  # a week before the cycle
    assert due[3] == date(2027, 1, 4)
    assert due[7] == date(2027, 4, 7)


def test_revisit_reaches_two_levels_down_and_not_sideways():
    # a <- b <- c (c waits on b, b waits on a); d waits on nothing.
    unblocks = {"a": ["b"], "b": ["c"]}
    assert steps.revisit_downstream(["a"], unblocks) == {"b", "c"}
    assert steps.revisit_downstream(["b"], unblocks) == {"c"}
    assert steps.revisit_downstream(["d"], unblocks) == set()
