"""After a run that wrote its findings, a run that finds a few rows moved computes again only
the findings those rows reach (``alignment.report._near``, ``rules.run_for``) and writes only
what differs: it stores what a run from scratch stores."""

import random
from collections import Counter

import pytest
from django.db import connection
from django_scopes import scope

from alignment import report as alignment_report
from alignment import rules
from dependencies import generate, network
from okrs.models import KeyResult, Objective
from orgs.models import Team
from tests.dependencies.test_fingerprint import stored
from tests.dependencies.test_incremental import (
    CHANGES,
    MORE_CHANGES,
    _objectives,
    at,
    run,
    run_from_scratch_stores,
)
from tests.dependencies.test_incremental_rules import RULE_CHANGES, _restart, later

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="the stored findings are known by their row versions (xmin, ctid) on PostgreSQL only")


@pytest.fixture
def passes(monkeypatch):
    """Counts the runs of every rule over the cycle and those over the part a change reached,
    and the objectives each of those held."""
    calls = Counter()
    run_all, run_for = rules.run_all, rules.run_for

    def counted_run_all(*args, **kwargs):
        calls["whole cycle"] += 1
        return run_all(*args, **kwargs)

    def counted_run_for(cycle, ids):
        calls["part"] += 1
        calls["objectives read"] += len(cycle.objectives)
        return run_for(cycle, ids)

    monkeypatch.setattr(rules, "run_all", counted_run_all)
    monkeypatch.setattr(rules, "run_for", counted_run_for)
    return calls


def _edit_title(r, rng):
    o = rng.choice(_objectives(r))
    parent = Objective.objects.filter(pk=o.parent_id).first()
    Objective.objects.filter(pk=o.pk).update(title=rng.choice(
        [f"{o.title} edited", parent.title if parent else "Grow the enterprise pipeline"]))


def _new_objective(r, rng):
    parent = rng.choice(_objectives(r))
    o = Objective.objects.create(organization=r.org, cycle=r.cycle, team=parent.team,
                                 parent=parent, title=parent.title, state="published",
                                 effective_health="", risk_causes=[])
    KeyResult.objects.create(organization=r.org, objective=o, title="Launch the pipeline",
                             owner_team=parent.team, start_value=0, target_value=4,
                             current_value=1, confidence="at_risk", effective_health="",
                             risk_causes=[])


def _move_parent(r, rng):
    o = rng.choice([o for o in _objectives(r) if o.parent_id])
    others = [p for p in _objectives(r) if p.pk != o.pk and p.parent_id != o.pk]
    Objective.objects.filter(pk=o.pk).update(parent=rng.choice(others))


def _delete_key_result(r, rng):
    KeyResult.objects.filter(pk=rng.choice(list(KeyResult.objects.for_org(r.org).filter(
        objective__cycle=r.cycle).values_list("pk", flat=True)))).delete()


def _rename_team(r, rng):
    """A team with a few objectives and key results (a rename that reaches a fifth of them is
    run over the whole cycle)."""
    teams = Counter(o.team_id for o in _objectives(r))
    teams.update(KeyResult.objects.for_org(r.org).filter(objective__cycle=r.cycle).values_list(
        "owner_team_id", flat=True))
    team = Team.objects.get(pk=rng.choice([pk for pk, n in teams.items() if n <= 8]))
    Team.objects.filter(pk=team.pk).update(name=f"{team.name} renamed")


NAMED = (_edit_title, _new_objective, _move_parent, _delete_key_result, _rename_team)


@postgresql_only
@pytest.mark.parametrize("change", NAMED, ids=lambda c: c.__name__)
def test_a_change_computes_again_only_what_it_reaches(revenue, passes, change):
    r = revenue
    rng = random.Random(3)
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 200, seed=3)
    network.forget()
    run(r, at())
    read = 0
    for step in range(3):
        for again in (0, 1):  # twice in a row: the second from what the first kept
            with scope(organization=r.org):
                change(r, rng)
            passes.clear()
            run(r, later(2 * step + again))
            assert passes["whole cycle"] == 0 and passes["part"] == 1, passes
            read += passes["objectives read"]
        expected = stored(r)
        run_from_scratch_stores(r, later(2 * step + 1), expected, change.__name__)
        passes.clear()
        run(r, later(2 * step + 1))  # the run from scratch wrote health: a run after it
    assert 0 < read < 6 * 50, read  # of about 60 objectives


@pytest.mark.parametrize("seed", [21, 22])
def test_runs_over_what_a_change_reaches_store_what_a_run_from_scratch_stores(
        revenue, passes, seed):
    """Random changes of every kind, a restart now and then; after each, a run from what the
    process kept, and after every third a run from scratch, which stores the same."""
    r = revenue
    rng = random.Random(seed)
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 200, seed=seed)
    network.forget()
    run(r, at())
    changes = [*NAMED, *NAMED, *RULE_CHANGES, *MORE_CHANGES, *CHANGES]
    rng.shuffle(changes)
    parts = 0
    for step, change in enumerate(changes):
        with scope(organization=r.org):
            change(r, rng)
        if rng.random() < 0.15:
            _restart(r)
        passes.clear()
        run(r, later(3 * step + 1))
        parts += passes["part"]
        if step % 3 == 2 or step == len(changes) - 1:  # else the next runs from this one
            after = stored(r)
            run_from_scratch_stores(r, later(3 * step + 1), after, change.__name__)
            run(r, later(3 * step + 2))  # after the health the run from scratch wrote
            assert stored(r) == after, change.__name__
    if connection.vendor == "postgresql":
        assert parts >= 15, parts


@postgresql_only
def test_after_a_restart_a_title_edit_runs_over_what_it_reaches_once_the_rules_ran(
        revenue, passes):
    r = revenue
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 120, seed=5)
    run(r, at())
    _restart(r)
    run(r, at(minutes=1))
    assert passes["whole cycle"] >= 1 and not passes["part"], passes
    with scope(organization=r.org):
        Objective.objects.filter(pk=r.win.pk).update(title=r.arr.title)
    passes.clear()
    run(r, at(minutes=2))
    assert passes == {"part": 1, "objectives read": passes["objectives read"]}, passes
    with scope(organization=r.org):
        assert alignment_report.for_objective(r.org, r.cycle, r.win.pk)
    run_from_scratch_stores(r, at(minutes=2), stored(r), "title after a restart")
