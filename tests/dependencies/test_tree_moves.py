"""A move of the objectives' tree (mptt's ``lft``/``rght``, rewritten for nearly every objective
of a tree when one is inserted, moved or deleted) moves the versions of rows whose columns the
network reads did not move. A warm run then reads none of them again: each row read carries a
hash of those columns (``network._OBJECTIVE_HASH``), and a row whose version moved but whose
hash did not only takes its new version. A real change of a read column in such a row is still
read, and every run stores what a run from scratch stores.

On PostgreSQL only: elsewhere every row is read on every run."""

import random
import re
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django_scopes import scope, scopes_disabled

from alignment import report as alignment_report
from alignment import rules as alignment_rules
from dependencies import generate, network, snapshot
from okrs.models import KeyResult, Objective
from tests.dependencies import test_warm_runs
from tests.dependencies.test_fingerprint import stored
from tests.dependencies.test_incremental import (
    _check_in,
    _title,
    at,
    run,
    run_from_scratch_stores,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="rows are kept by their versions on PostgreSQL only"),
]
held = test_warm_runs.held


@pytest.fixture
def reads(monkeypatch):
    """The ids of the objective rows each run read in full, one set per read."""
    calls = []
    read_objectives = network._read_objectives

    def counted(cycle, queryset):
        rows = read_objectives(cycle, queryset)
        calls.append(set(rows))
        return rows

    monkeypatch.setattr(network, "_read_objectives", counted)
    return calls


@pytest.fixture
def built(revenue):
    with scope(organization=revenue.org):
        generate.build(revenue.org, revenue.cycle, 160, seed=5)
    network.forget()
    run(revenue, at())
    return revenue


def _versions(r):
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, xmin::text || '/' || ctid::text FROM okrs_objective "
                       "WHERE cycle_id = %s", [r.cycle.pk])
        return dict(cursor.fetchall())


def _in_the_largest_tree(r):
    """An objective with a parent in the cycle's largest tree, and that tree's objectives."""
    with scopes_disabled():
        objectives = list(Objective.objects.filter(cycle=r.cycle).order_by("id"))
    trees = Counter(o.tree_id for o in objectives)
    tree = trees.most_common(1)[0][0]
    return [o for o in objectives if o.tree_id == tree and o.parent_id]


def _insert(r, parent, title="Open the northern market"):
    """A new objective under ``parent`` with a key result, as the app makes it (mptt's insert
    moves the ``lft``/``rght`` of the objectives after it in its tree)."""
    with scope(organization=r.org), transaction.atomic():
        made = Objective.objects.create(
            organization=r.org, cycle=r.cycle, team_id=parent.team_id, parent=parent,
            title=title, state="published", effective_health="", risk_causes=[])
        KeyResult.objects.create(
            organization=r.org, objective=made, title="Sign 4 distributors",
            owner_team_id=parent.team_id, start_value=Decimal(0), target_value=Decimal(4),
            current_value=Decimal(1), confidence="at_risk", effective_health="",
            risk_causes=[])
    return made


def test_a_tree_insert_reads_again_only_the_new_objective(built, reads):
    r = built
    tree = _in_the_largest_tree(r)
    before = _versions(r)
    made = _insert(r, tree[0])
    after = _versions(r)
    moved = {pk for pk, version in before.items() if after[pk] != version}
    assert len(moved) >= 10, moved  # the insert did move many rows of the tree
    reads.clear()
    run(r, at(minutes=1))
    assert set().union(*reads) == {made.pk}, reads
    # Kept with the versions the table holds now (the run's own writes included): the next
    # run reads none of them.
    kept, now = network._ROWS[r.cycle.pk].objectives, _versions(r)
    assert all(kept[pk]["row_version"] == now[pk] for pk in moved)
    run_from_scratch_stores(r, at(minutes=1), stored(r), "tree insert")


def test_a_read_column_written_in_a_row_the_tree_moved_is_read(built, reads):
    """After a tree insert, a title and a weight written in rows it moved: in the same
    transaction as another insert, and on their own."""
    r = built
    tree = _in_the_largest_tree(r)
    _insert(r, tree[0])
    run(r, at(minutes=1))
    before = _versions(r)
    first, second = tree[-1], tree[-2]
    with scopes_disabled(), transaction.atomic():
        made = _insert(r, tree[1], title="Cut churn by half")
        Objective.objects.filter(pk=first.pk).update(weight=Decimal(3))
    assert _versions(r)[second.pk] != before[second.pk]  # moved by the tree only
    reads.clear()
    run(r, at(minutes=2))
    assert set().union(*reads) == {made.pk, first.pk}, reads
    assert network._ROWS[r.cycle.pk].objectives[first.pk]["weight"] == Decimal(3)
    run_from_scratch_stores(r, at(minutes=2), stored(r), "insert and weight")
    run(r, at(minutes=3))  # warm again, from what the run from scratch kept
    with scopes_disabled():
        Objective.objects.filter(pk=second.pk).update(title="A title typed since")
    reads.clear()
    run(r, at(minutes=4))
    assert set().union(*reads) == {second.pk}, reads
    assert network._ROWS[r.cycle.pk].objectives[second.pk]["title"] == "A title typed since"
    run_from_scratch_stores(r, at(minutes=4), stored(r), "title")


def _reparent(r, rng):
    """An objective moved under another parent through mptt (its subtree's ``level`` and the
    ``lft``/``rght`` of both trees move)."""
    objectives = list(Objective.objects.for_org(r.org).filter(cycle=r.cycle, parent__isnull=False))
    o = rng.choice(objectives)
    below = set(o.get_descendants(include_self=True).values_list("id", flat=True))
    parent = rng.choice([p for p in Objective.objects.for_org(r.org).filter(cycle=r.cycle)
                         if p.pk not in below])
    o.move_to(parent)


def _delete_a_leaf(r, rng):
    """A leaf objective deleted through its instance (mptt closes its gap in the tree)."""
    leaves = [o for o in Objective.objects.for_org(r.org).filter(cycle=r.cycle)
              if o.is_leaf_node() and o.parent_id]
    o = rng.choice(leaves)
    KeyResult.objects.filter(feeds__objective=o).update(feeds=None)
    KeyResult.objects.filter(aligned_to=o).update(aligned_to=None)
    KeyResult.objects.filter(objective=o).delete()
    Objective.objects.get(pk=o.pk).delete()


def _tree_rewritten(r, rng):
    """Every objective's tree columns written again, to the same values (a rebuild)."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE okrs_objective SET lft = lft, rght = rght WHERE cycle_id = %s",
                       [r.cycle.pk])


def _insert_anywhere(r, rng):
    parent = rng.choice(list(Objective.objects.for_org(r.org).filter(cycle=r.cycle)))
    _insert(r, parent, title=rng.choice(["Grow the enterprise pipeline", parent.title]))


def _move_and_retitle(r, rng):
    """A tree insert and, in the same transaction, the title of an objective it moved."""
    with transaction.atomic():
        _insert_anywhere(r, rng)
        o = rng.choice(list(Objective.objects.for_org(r.org).filter(cycle=r.cycle)))
        Objective.objects.filter(pk=o.pk).update(title=f"{o.title} (moved)")


@pytest.mark.parametrize("seed", [6, 7])
def test_warm_runs_after_tree_moves_store_what_a_run_from_scratch_stores(
        revenue, held, reads, seed):
    """Inserts, re-parents, deletions and a rewrite of the tree, each followed by a warm run
    that patches the last run's own healths, gives what a full computation gives on the same
    rows, and stores what a run from scratch stores. The rewrite reads no row again."""
    r, rng = revenue, random.Random(seed)
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 160, seed=seed)
    network.forget()
    run(r, at())
    steps = [_insert_anywhere, _reparent, _delete_a_leaf, _move_and_retitle, _tree_rewritten,
             _check_in, _insert_anywhere, _reparent, _delete_a_leaf]
    for step, change in enumerate(steps):
        with scope(organization=r.org):
            change(r, rng)
        reads.clear()
        now = at(minutes=2 * step + 1)
        run(r, now)
        if change is _tree_rewritten:
            assert not set().union(*reads), reads
        expected = stored(r)
        run_from_scratch_stores(r, now, expected, change.__name__)
        run(r, at(minutes=2 * step + 2))  # warm again, from what the run from scratch kept
        assert stored(r) == expected, change.__name__
    assert held["patched"] >= len(steps) - 1, held


def test_a_saved_state_of_the_format_before_the_rows_hashes_is_refused(
        built, reads, monkeypatch):
    """A state saved by round 15's code (format 4: objective rows without their hash) is
    refused as another format: the run after the restart computes from nothing (every row
    read) and stores what a run from scratch stores."""
    r = built
    refused = Counter()
    untrusted = snapshot._untrusted

    def counted_untrusted(cycle, payload):
        why = untrusted(cycle, payload)
        refused[why] += 1
        return why

    monkeypatch.setattr(snapshot, "_untrusted", counted_untrusted)
    kept = network._ROWS[r.cycle.pk]
    for row in kept.objectives.values():
        del row["row_hash"]
    monkeypatch.setattr(snapshot, "FORMAT", 4)
    network.save_kept()
    monkeypatch.setattr(snapshot, "FORMAT", 5)
    network.forget(saved=False)  # a restart
    _insert(r, _in_the_largest_tree(r)[0])
    reads.clear()
    run(r, at(minutes=1))
    assert refused == {"another format": 1}, refused
    with scopes_disabled():
        assert len(set().union(*reads)) == Objective.objects.filter(cycle=r.cycle).count()
    assert all("row_hash" in row for row in network._ROWS[r.cycle.pk].objectives.values())
    run_from_scratch_stores(r, at(minutes=1), stored(r), "format 4")


@pytest.fixture
def rules_reads(monkeypatch):
    """The ids of the objective rows the misalignment rules read in full, one set per read."""
    calls = []
    read_objectives = alignment_report._read_objectives

    def counted(queryset):
        rows = read_objectives(queryset)
        calls.append(set(rows))
        return rows

    monkeypatch.setattr(alignment_report, "_read_objectives", counted)
    return calls


def test_the_rules_keep_their_rows_the_tree_moved_and_read_a_column_of_theirs(
        built, rules_reads):
    """The rules' own objective rows of the rows whose version alone moved (as the network
    found them in the same run) are kept with their new versions, not read; a column only the
    rules read (the commitment), written with the tree insert in a row it moved, is read."""
    r = built
    tree = _in_the_largest_tree(r)
    with scope(organization=r.org):
        _title(r, random.Random(5))  # the rules run: they keep the rows as they are now
    run(r, at(minutes=1))
    kept = alignment_rules.KEPT[r.cycle.pk].objectives
    before = _versions(r)
    # Written by that run's write after the rules read them: read again, as before.
    written = {pk for pk, row in kept.items() if row[-1] != before[pk]}
    made = _insert(r, tree[0])
    after = _versions(r)
    moved = {pk for pk, version in before.items() if after[pk] != version} - written
    assert len(moved) >= 10, moved
    rules_reads.clear()
    run(r, at(minutes=2))
    read = set().union(*rules_reads)
    assert made.pk in read and not read & moved, (read, moved)
    kept = alignment_rules.KEPT[r.cycle.pk].objectives
    assert all(kept[pk][-1] == after[pk] for pk in moved)
    run_from_scratch_stores(r, at(minutes=2), stored(r), "tree insert, the rules")
    run(r, at(minutes=3))  # warm again, from what the run from scratch kept
    changed = sorted(moved)[len(moved) // 2]
    with scopes_disabled(), transaction.atomic():
        _insert(r, tree[1], title="Cut churn by half")
        was = Objective.objects.get(pk=changed).commitment
        Objective.objects.filter(pk=changed).update(
            commitment="aspirational" if was != "aspirational" else "committed")
    rules_reads.clear()
    run(r, at(minutes=4))
    assert changed in set().union(*rules_reads), rules_reads
    run_from_scratch_stores(r, at(minutes=4), stored(r), "commitment")


def test_key_results_that_come_back_with_their_objective_in_a_tree_move_are_read(
        built, monkeypatch):
    """After a tree move the key results are asked for by their own rows and those of the
    objectives written that had none kept (``network.VIA_HELD_ABOVE``, here for any move): a
    retired objective back in the same transaction as a tree insert brings its key results
    back, their own rows untouched."""
    r = built
    monkeypatch.setattr(network, "VIA_HELD_ABOVE", 0)
    held_ids = []
    written = network._written

    def spied(queryset, since, via=None, but=None):
        if but is not None:
            held_ids.append(set(but))
        return written(queryset, since, via=via, but=but)

    monkeypatch.setattr(network, "_written", spied)
    tree = _in_the_largest_tree(r)
    with scopes_disabled():
        retired = next(o for o in tree[1:] if KeyResult.objects.filter(objective=o).exists())
        its_key_results = set(KeyResult.objects.filter(objective=retired).values_list(
            "id", flat=True))
        Objective.objects.filter(pk=retired.pk).update(state="retired")
    run(r, at(minutes=1))
    assert not its_key_results & network._ROWS[r.cycle.pk].key_results.keys()
    run_from_scratch_stores(r, at(minutes=1), stored(r), "retired")
    run(r, at(minutes=2))  # warm again
    with scopes_disabled(), transaction.atomic():
        _insert(r, tree[0])
        Objective.objects.filter(pk=retired.pk).update(state="published")
    held_ids.clear()
    run(r, at(minutes=3))
    assert held_ids and retired.pk not in held_ids[-1], held_ids
    assert its_key_results <= network._ROWS[r.cycle.pk].key_results.keys()
    run_from_scratch_stores(r, at(minutes=3), stored(r), "back with a tree insert")


def test_the_hash_covers_every_column_of_its_own_row_the_network_and_the_rules_read():
    """A column read but left out of the hash would let a write of it, made with a tree move,
    go unseen: a column added to what is read must be added to the hash too."""
    hashed = set(re.findall(r"\{t\}\.(\w+)", network._OBJECTIVE_HASH))
    read = {column for column in network.OBJECTIVE_COLUMNS if "__" not in column}
    read |= {"risk_causes", "risk_above", "impact"}  # read as their text (``_read_objectives``)
    read |= set(alignment_report._OBJECTIVE_COLUMNS)
    assert read - {"id"} <= hashed, sorted(read - {"id"} - hashed)
