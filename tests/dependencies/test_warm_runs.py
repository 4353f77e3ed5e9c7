"""A warm run (this process ran the cycle last) costs what changed: the own healths of the key
results whose row moved or that turned stale are computed again and patched into the last run's
(``network._patched_own``), and the diff compares only the nodes whose row or result moved or
that the last diff did not leave out (``network._to_compare``). What it stores must be what a
run from scratch stores, also when the clock turns a key result stale, when the clock goes
back, and when the last run's write was rolled back.

On PostgreSQL only: elsewhere every row is read again on every run, so every key result is
assessed again and every node compared, as before."""

import random
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django_scopes import scope, scopes_disabled

from dependencies import generate, network
from okrs import progress
from okrs.models import KeyResult, Objective
from tests.dependencies.test_fingerprint import stored
from tests.dependencies.test_incremental import (
    _check_in,
    _delete_key_result,
    _delete_objective,
    _dependency,
    _new_key_result,
    _new_objective,
    _retire,
    _title,
    _unretire,
    _weight,
    at,
    run,
    run_from_scratch_stores,
)
from tests.dependencies.test_incremental_nodes import (
    _key_result_feeds_a_new_one,
    _new_child_under_a_new_objective,
    _new_objectives_with_key_results,
    built_with_upper_risks,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="rows are kept by their versions on PostgreSQL only"),
]


@pytest.fixture
def warm(monkeypatch):
    """Counts the runs whose own healths were patched, and the nodes each diff compared."""
    calls = Counter()
    patched_own, to_compare = network._patched_own, network._to_compare

    def counted_patched_own(*args, **kwargs):
        patched = patched_own(*args, **kwargs)
        calls["patched" if patched else "computed"] += 1
        return patched

    def counted_to_compare(last, objectives, key_results, results):
        nodes = to_compare(last, objectives, key_results, results)
        calls["nodes compared"] += len(nodes)
        calls["nodes"] += len(results)
        return nodes

    monkeypatch.setattr(network, "_patched_own", counted_patched_own)
    monkeypatch.setattr(network, "_to_compare", counted_to_compare)
    return calls


@pytest.fixture
def built(revenue):
    with scope(organization=revenue.org):
        generate.build(revenue.org, revenue.cycle, 160, seed=3)
    network.forget()
    run(revenue, at())
    return revenue


def _off_track_check_in(r, when):
    """A numeric key result of the cycle checked in off track at ``when`` (plain UPDATE)."""
    with scope(organization=r.org):
        k = KeyResult.objects.for_org(r.org).filter(
            objective__cycle=r.cycle, kind="numeric").exclude(
            objective__state="retired").order_by("id").first()
        KeyResult.objects.filter(pk=k.pk).update(
            current_value=Decimal(0), confidence="off_track", last_check_in_at=when)
    return k.pk


@pytest.mark.parametrize(("seed", "aligned"), [(1, False), (2, True)])
def test_warm_runs_after_check_ins_patch_own_healths_and_store_what_a_run_from_scratch_does(
        built, warm, seed, aligned):
    r, rng = built, random.Random(seed)
    if aligned:  # a third of the objectives roll up their aligned objectives' progress
        with scopes_disabled():
            ids = Objective.objects.filter(cycle=r.cycle).order_by("id").values_list(
                "id", flat=True)
            Objective.objects.filter(id__in=list(ids)[::3]).update(progress_mode="aligned")
    run(r, at(minutes=1))  # a run from what the first kept
    for step, change in enumerate([_check_in, _check_in, _title, _dependency, _check_in,
                                   _weight, _check_in]):
        with scope(organization=r.org):
            change(r, rng)
        now = at(minutes=2 * step + 2)
        run(r, now)
        expected = stored(r)
        run_from_scratch_stores(r, now, expected, change.__name__)  # the next starts from it
    assert warm["patched"] >= 4, warm
    if aligned:
        with scopes_disabled():
            assert Objective.objects.filter(cycle=r.cycle, rolled_progress__isnull=False).exists()
    # A diff after a check-in compares a few nodes, not every one.
    assert warm["nodes compared"] < warm["nodes"] / 2, warm


def test_a_key_result_that_turns_stale_between_two_warm_runs_is_assessed_again(built, warm):
    r = built
    first = at(minutes=10)
    # Checked in off track, a minute short of stale at ``first``: stale a minute later,
    # its row unchanged.
    pk = _off_track_check_in(r, first - progress.STALE_AFTER + timedelta(minutes=1))
    run(r, first)
    assert network._GRAPHS[r.cycle.pk].own[("k", pk)] == "off_track"
    later = first + timedelta(minutes=2)
    run(r, later)
    assert warm["patched"] >= 1, warm
    assert network._GRAPHS[r.cycle.pk].own[("k", pk)] is None  # stale: unknown
    run_from_scratch_stores(r, later, stored(r), "turned stale")


def test_a_run_with_the_clock_gone_back_computes_every_own_health(built, warm):
    r = built
    pk = _off_track_check_in(r, at(minutes=10) - progress.STALE_AFTER)
    run(r, at(minutes=11))  # stale
    assert network._GRAPHS[r.cycle.pk].own[("k", pk)] is None
    computed = warm["computed"]
    run(r, at(minutes=5))  # earlier: no longer stale
    assert warm["computed"] == computed + 1, warm
    assert network._GRAPHS[r.cycle.pk].own[("k", pk)] == "off_track"
    run_from_scratch_stores(r, at(minutes=5), stored(r), "clock back")


def test_a_run_after_a_run_whose_write_was_rolled_back_writes_what_it_found(built, warm):
    r = built
    rng, changed = random.Random(5), 0
    for step in range(3):
        with scope(organization=r.org):
            _check_in(r, rng)
            _dependency(r, rng)
        now = at(minutes=20 + step)
        before = stored(r)
        # The run computes, writes, then fails: its write is rolled back, what it kept stays.
        with pytest.raises(RuntimeError), transaction.atomic():
            run(r, now)
            raise RuntimeError("after the write phase")
        assert stored(r)[:2] == before[:2]
        changed += run(r, now).changed
        run_from_scratch_stores(r, now, stored(r), f"after a rolled back run {step}")
    assert warm["patched"] >= 3 and changed, warm


def test_forget_drops_what_warm_runs_patch_from(built):
    assert network._OWN and network._DIFFED
    network.forget()
    assert not network._OWN and not network._DIFFED


@pytest.fixture
def held(monkeypatch):
    """Holds every patched run's own healths and edges to a full computation on the same rows:
    the own healths, the edges in their order (which decides the causes a node keeps), the
    objectives' own progress and the aligned key results."""
    calls = Counter()
    own_health_and_edges = network._own_health_and_edges
    patched_own = network._patched_own

    def counted_patched_own(*args, **kwargs):
        patched = patched_own(*args, **kwargs)
        calls["patched" if patched else "computed"] += 1
        return patched

    def checked(cycle, data, now):
        copy = {key: value.copy() if hasattr(value, "copy") else value
                for key, value in data.items()}
        patched = calls["patched"]
        own, edges, rolled = own_health_and_edges(cycle, data, now)
        if calls["patched"] > patched:
            kept = (network._OWN.pop(cycle.pk), network._GAVE.pop(cycle.pk))
            full = own_health_and_edges(cycle, copy, now)
            assert calls["patched"] == patched + 1  # the full computation, this time
            assert full[0] == own and full[1] == edges and full[2] == rolled
            for key in ("own_progress", "aligned_key_results"):
                assert copy[key] == data[key], key
            network._OWN[cycle.pk], network._GAVE[cycle.pk] = kept
        return own, edges, rolled

    monkeypatch.setattr(network, "_patched_own", counted_patched_own)
    monkeypatch.setattr(network, "_own_health_and_edges", checked)
    return calls


def _retire_one_with_key_results(r, rng):
    with_key_results = KeyResult.objects.filter(objective__cycle=r.cycle).values("objective_id")
    o = rng.choice(list(Objective.objects.for_org(r.org).filter(
        cycle=r.cycle, state="published", parent__isnull=False, pk__in=with_key_results)))
    Objective.objects.filter(pk=o.pk).update(state="retired")
    r.retired_last = o.pk


def _back_from_retired(r, rng):
    """The objective retired last back, with its key results: rows that come with older ids
    than the newest kept, placed among them in the order of ids."""
    Objective.objects.filter(pk=r.retired_last).update(state="published")


@pytest.mark.parametrize("seed", [3, 4])
def test_warm_runs_after_rows_come_and_go_patch_own_healths_and_keep_the_flows(
        revenue, held, monkeypatch, seed):
    """A new objective with a key result, one under another new one, a new key result that
    an old one feeds, a key result or an objective deleted, one retired and back (its key
    results come with older ids than the newest): each run
    patches the last run's own healths and makes the flows from the last run's nodes, gives
    what a full computation gives on the same rows, and stores what a run from scratch
    stores."""
    flows_kept = Counter()
    kept_flow_nodes = network._kept_flow_nodes

    def counted_kept_flow_nodes(last, objectives):
        flows_kept["same rows" if last.nodes.keys() == objectives.keys() else "rows moved"] += 1
        return kept_flow_nodes(last, objectives)

    monkeypatch.setattr(network, "_kept_flow_nodes", counted_kept_flow_nodes)
    r, rng = revenue, random.Random(seed)
    built_with_upper_risks(r, seed, rng)
    network.forget()
    run(r, at())
    steps = [_new_objective, _new_child_under_a_new_objective, _key_result_feeds_a_new_one,
             _new_key_result, _delete_key_result, _delete_objective, _retire, _unretire,
             _new_objectives_with_key_results, _check_in]
    rng.shuffle(steps)
    steps += [_retire_one_with_key_results, _back_from_retired]
    for step, change in enumerate(steps):
        with scope(organization=r.org):
            change(r, rng)
        now = at(minutes=2 * step + 1)
        run(r, now)
        expected = stored(r)
        run_from_scratch_stores(r, now, expected, change.__name__)
        run(r, at(minutes=2 * step + 2))  # warm again, from what the run from scratch kept
        assert stored(r) == expected, change.__name__
    # Every run after a change patched (the runs from scratch and the first computed).
    assert held["patched"] >= len(steps) - 2, held
    # The flows too, after the steps whose objectives came or went (not all: some may find
    # nothing to do, _unretire with nothing retired).
    assert flows_kept["rows moved"] >= 4, flows_kept
