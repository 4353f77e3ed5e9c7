"""A worker restart: the process keeps nothing, the cycle's saved state (``NetworkSnapshot``,
``dependencies.snapshot``) stays and is read back. A restarted run must store exactly what a
run from scratch stores, whatever changed while no worker ran and however old the saved state;
a saved state that is not provably this cycle's, this code's and this database's is refused."""

import io
import marshal
import random
import re
import zlib
from collections import Counter
from types import SimpleNamespace

import pytest
from celery.signals import worker_process_shutdown
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from alignment import kept as alignment_kept
from alignment import report as alignment_report
from alignment import rules as alignment_rules
from dependencies import generate, network, snapshot
from dependencies.models import NetworkSnapshot
from okrs.models import KeyResult, Objective
from orgs.models import Cycle, Organization
from tests.dependencies import test_incremental
from tests.dependencies.test_fingerprint import stored
from tests.dependencies.test_incremental import (
    CHANGES,
    MORE_CHANGES,
    _check_in,
    _delete_dependency,
    _end_dependency,
    _key_result_title,
    _new_dependency,
    _start_dependency,
    _title,
    at,
    built_with_risks_above,
    run,
    run_from_scratch_stores,
)

pytestmark = pytest.mark.django_db
# The incremental tests' fixtures: the runs that propagated from the kept graph, the rows read
# again only where they moved.
counted, reads = test_incremental.counted, test_incremental.reads


@pytest.fixture
def restored(monkeypatch):
    """Counts the runs that started from a saved state, and the saved states refused."""
    calls = Counter()
    restore, untrusted = network._restore, snapshot._untrusted

    def counted_restore(cycle):
        done = restore(cycle)
        calls["restored" if done else "nothing to restore"] += 1
        calls[("restored" if done else "nothing to restore", cycle.pk)] += 1
        return done

    def counted_untrusted(cycle, payload):
        why = untrusted(cycle, payload)
        if why is not None:
            calls[why] += 1
        return why

    monkeypatch.setattr(network, "_restore", counted_restore)
    monkeypatch.setattr(snapshot, "_untrusted", counted_untrusted)
    return calls


def _saved(r):
    with scopes_disabled():
        return list(NetworkSnapshot.objects.filter(cycle=r.cycle).values_list("payload", flat=True))


def _network_b(world_b, seed):
    b = SimpleNamespace(org=world_b.org, cycle=world_b.cycle)
    with scope(organization=b.org):
        generate.build(b.org, b.cycle, 120, seed=seed)
    return b


def _kept(pk):
    """What the process keeps of cycle ``pk``, as ``network._save`` hands it to ``snapshot``."""
    rows = network._ROWS.get(pk)
    return {"graph": network._GRAPHS[pk], "healths": network._HEALTHS.previous, "rows": rows,
            "gave": network._GAVE.get(pk) if rows else None,
            "elapsed": network._GAVE_ELAPSED.get(pk) if rows else None,
            "impacts": network._IMPACTS.get(pk) if rows else None,
            "own": network._OWN.get(pk) if rows else None,
            "diffed": network._DIFFED.get(pk) if rows else None,
            "flows": network._FLOWS.get(pk) if rows else None,
            "rules": alignment_kept.kept_or_saved(pk) if rows else None}


def assert_reads_back_as_kept(pk):
    """The state saved now reads back as what the process keeps: the same values, every row
    to its type, the very kept row wherever the process refers to it, the graph's parts those
    of its results and edges."""
    kept = _kept(pk)
    back = snapshot.unpack(snapshot.pack(kept))
    graph, again = kept["graph"], back["graph"]
    assert list(again.results.items()) == list(graph.results.items())  # the order too
    assert again.edges == graph.edges and again.own == graph.own
    assert again.place == graph.place and again.inputs == graph.inputs
    assert {node: sorted(dsts) for node, dsts in again.outputs.items()} == {
        node: sorted(dsts) for node, dsts in graph.outputs.items()}
    assert back["healths"] == (kept["healths"] or None)
    rows = kept["rows"]
    if rows is None:  # off PostgreSQL: no rows, nothing made from them
        assert back["rows"] is back["gave"] is back["impacts"] is None
        return
    for name in ("objectives", "key_results"):
        mine, theirs = getattr(rows, name), getattr(back["rows"], name)
        assert list(mine) == list(theirs)
        assert [repr(row) for row in mine.values()] == [repr(row) for row in theirs.values()]
    assert back["rows"].teams == rows.teams
    # What the next run reads only the rows written since (``network._horizon``).
    assert back["rows"].horizon == rows.horizon is not None
    # What each key result gave: the very row kept where it was made of it; else a row that
    # is never the one a run reads, with what a patch reads of it.
    assert list(back["gave"]) == list(kept["gave"]) and back["elapsed"] == kept["elapsed"]
    back_rows = back["rows"]
    for pk, v in kept["gave"].items():
        again = back["gave"][pk]
        assert again[1:] == v[1:]
        if v[0] is rows.key_results.get(pk):
            assert again[0] is back_rows.key_results[pk]
        else:
            assert again[0] is not back_rows.key_results.get(pk)
            assert (again[0]["objective_id"], again[0]["last_check_in_at"]) == (
                v[0]["objective_id"], v[0]["last_check_in_at"])
    assert_warm_parts_read_back(kept, back)
    impacts, again = kept["impacts"], back["impacts"]
    assert again.results is back["graph"].results
    assert (again.dependencies, again.members, again.extra, again.kept) == (
        impacts.dependencies, impacts.members, impacts.extra, impacts.kept)
    for table, kept_rows, parent in ((impacts.objectives, rows.objectives, "parent_id"),
                                     (impacts.key_results, rows.key_results, "objective_id")):
        back_rows = (back["rows"].objectives if kept_rows is rows.objectives
                     else back["rows"].key_results)
        back_table = again.objectives if table is impacts.objectives else again.key_results
        assert list(back_table) == list(table)
        for pk, row in table.items():
            if row is kept_rows.get(pk):
                assert back_table[pk] is back_rows[pk]
            else:  # a copy a run made: counted as moved, by its parent
                assert back_table[pk] is not back_rows.get(pk)
                assert back_table[pk][parent] == row[parent]


def _same_by_identity(mine, theirs, kept, back):
    """``theirs`` (read back) holds ``back``'s value wherever ``mine`` held ``kept``'s very
    value, and a value that is none of ``back``'s elsewhere: the same keys, in order."""
    assert list(theirs) == list(mine)
    for key, value in mine.items():
        if value is kept.get(key):
            assert theirs[key] is back[key]
        else:
            assert theirs[key] is not back.get(key)


def assert_warm_parts_read_back(kept, back):
    """What a warm run keeps besides (own healths and edges, the diff, the flows) reads back as
    kept, referring to the rows and results read back as the process's own refer to its."""
    rows, back_rows = kept["rows"], back["rows"]
    results, back_results = kept["graph"].results, back["graph"].results
    own, again = kept["own"], back["own"]
    if own is not None and own.gave is kept["gave"]:
        assert again is not None and again.gave is back["gave"]
        _same_by_identity(own.objectives, again.objectives, rows.objectives,
                          back_rows.objectives)
        for name in ("now", "elapsed", "own", "kr_edges", "edge_inputs", "edges", "kr_given",
                     "own_progress", "aligned_key_results", "fresh"):
            assert getattr(again, name) == getattr(own, name), name
            assert type(getattr(again, name)) is type(getattr(own, name)), name
        assert list(again.own) == list(own.own)
    diffed, again = kept["diffed"], back["diffed"]
    if diffed is not None:
        _same_by_identity(diffed.objectives, again.objectives, rows.objectives,
                          back_rows.objectives)
        _same_by_identity(diffed.key_results, again.key_results, rows.key_results,
                          back_rows.key_results)
        _same_by_identity(diffed.results, again.results, results, back_results)
        assert list(again.looked.items()) == list(diffed.looked.items())
    flows, again = kept["flows"], back["flows"]
    if flows is not None:
        _same_by_identity(flows.objectives, again.objectives, rows.objectives,
                          back_rows.objectives)
        for name in ("nodes", "extra", "upper_effective", "own_progress",
                     "aligned_key_results", "rolled", "above", "impact", "written"):
            assert getattr(again, name) == getattr(flows, name), name
        assert list(again.nodes.items()) == list(flows.nodes.items())
        assert list(again.upper_effective) == list(flows.upper_effective)
        if own is not None and flows.own_progress is own.own_progress and back["own"]:
            assert again.own_progress is back["own"].own_progress
    # The rules' part: bytes, decoded when the rules first need it (``alignment.kept.take``).
    rules_kept, again = kept["rules"], back["rules"]
    if rules_kept.__class__ is bytes:  # read back and not decoded yet: saved as it is
        assert again == rules_kept
    else:
        assert_rules_read_back(rules_kept, again and alignment_kept.unpack(
            marshal.loads(zlib.decompress(again))))


def assert_rules_read_back(kept, again):
    """The rules' kept state (``alignment.kept``) reads back as kept: the same rows, objects,
    stored findings and what they came from, each object referring to the rows and objects
    read back as the process's own refer to its own."""
    if kept is None or kept.findings is None:
        assert again is None
        return
    assert again is not None
    for name in ("objectives", "findings", "finding_versions", "finding_pairs", "key_results",
                 "owners", "small"):
        assert getattr(again, name) == getattr(kept, name), name
    assert list(again.objectives.items()) == list(kept.objectives.items())
    assert list(again.built) == list(kept.built)
    for pk, (_row, context, o) in kept.built.items():
        back_row, back_context, back_o = again.built[pk]
        assert back_row is again.objectives[pk]
        assert (back_context, back_o, hash(back_o)) == (context, o, hash(o))
        assert vars(back_o) == vars(o)
    assert [type(k) for _, k in again.key_results.values()] == [
        type(k) for _, k in kept.key_results.values()]
    d, back_d = kept.described, again.described
    if d is None or d.objectives is not kept.built:
        assert back_d is None
        return
    assert back_d.objectives is again.built and back_d.key_results is again.key_results
    for name in ("children", "key_results_of", "by_objective", "shape", "settings", "units"):
        assert getattr(back_d, name) == getattr(d, name), name
    assert all(k is again.key_results[k.id][1]
               for ks in back_d.key_results_of.values() for k in ks)
    assert [hash(f) for fs in back_d.by_objective.values() for f in fs] == [
        hash(f) for fs in d.by_objective.values() for f in fs]


@pytest.mark.parametrize("seed", [7, 8])
def test_a_restarted_process_stores_what_a_run_from_scratch_stores(
        revenue, world_b, counted, reads, restored, monkeypatch, seed):
    """After every kind of change, made while no worker ran (one to three of them), a process
    that kept nothing starts from the cycle's saved state, sometimes saved by the last run and
    sometimes several runs old, and stores what a run from scratch stores. Another
    organization's runs and writes in between change nothing of it."""
    r = revenue
    rng = random.Random(seed)
    b = _network_b(world_b, seed)
    built_with_risks_above(r, 200, seed, rng)
    network.forget()
    run(r, at())
    run(b, at())
    changes = [*MORE_CHANGES, *CHANGES, _end_dependency, _start_dependency, _new_dependency,
               _delete_dependency]
    rng.shuffle(changes)
    monkeypatch.setattr(snapshot, "SAVE_EVERY", 0.0)  # saved after every run
    older = []  # states saved by earlier steps' runs
    for step, change in enumerate([*changes, *rng.choices(changes, k=6)]):
        network.forget(saved=False)  # the worker stops
        with scope(organization=r.org):
            for extra in [change, *rng.choices(changes, k=rng.choice((0, 0, 1, 2)))]:
                extra(r, rng)
        with scope(organization=b.org):
            _check_in(b, rng)
        run(b, at(minutes=step + 1))  # another organization's run, in this process
        network.forget(saved=False)  # and it stops again: the new process starts
        if older and rng.random() < 0.5:  # the state saved by a run several changes ago
            with scopes_disabled():
                NetworkSnapshot.objects.filter(cycle=r.cycle).update(payload=rng.choice(older))
        now = at(minutes=step + 1)
        if not run(r, now).skipped:
            assert_reads_back_as_kept(r.cycle.pk)
        older += _saved(r)
        after = stored(r)
        run_from_scratch_stores(r, now, after, change.__name__)
    assert restored[("restored", r.cycle.pk)] >= len(changes) // 2, restored
    assert len(_saved(r)) == 1, "one saved state per cycle, replaced"
    # Many steps add or remove nodes (a full propagation); the others start from the graph.
    assert counted["incremental propagation"] >= len(changes) // 4, counted
    if connection.vendor == "postgresql":  # rows read again only where they moved
        # (Not every time: a renamed team, or a fifth of the rows moved, reads them all.)
        assert reads["rows patched"] >= len(changes) // 2, reads
        assert reads["impacts kept"] >= 1, reads


@pytest.fixture
def warm(monkeypatch):
    """Counts the parts of runs that started from what the last run kept: own healths and edges
    patched (``_patched_own``), the diff of what moved alone (``_to_compare``), the rules'
    findings computed where a change reached (``alignment.report._near``)."""
    calls = Counter()
    patched, to_compare, near = network._patched_own, network._to_compare, alignment_report._near

    def counted_patched(*args, **kwargs):
        found = patched(*args, **kwargs)
        calls["own patched" if found else "own in full"] += 1
        return found

    def counted_to_compare(*args, **kwargs):
        calls["diff of what moved"] += 1
        return to_compare(*args, **kwargs)

    def counted_near(*args, **kwargs):
        found = near(*args, **kwargs)
        calls["rules near" if found is not None else "rules in full"] += 1
        return found

    monkeypatch.setattr(network, "_patched_own", counted_patched)
    monkeypatch.setattr(network, "_to_compare", counted_to_compare)
    monkeypatch.setattr(alignment_report, "_near", counted_near)
    return calls



def _stopped_after_warm_runs(r, objectives, seed, rng, *, check_in):
    """A network run from nothing, then warm after a title edit (the rules' warm run, then the
    network's) and, with ``check_in``, after a check-in; then the worker stops (it saves what it
    keeps) and restarts (it keeps nothing). The clock is at ``at(minutes=2)`` at most."""
    built_with_risks_above(r, objectives, seed, rng)
    network.forget()
    run(r, at())
    with scope(organization=r.org):
        _title(r, rng)
    run(r, at(minutes=1))
    if check_in:
        with scope(organization=r.org):
            _check_in(r, rng)
        run(r, at(minutes=2))
    worker_process_shutdown.send(sender=None)  # the worker stops: it saves what it keeps
    network.forget(saved=False)

@pytest.mark.parametrize("change", [_check_in, _title, _key_result_title])
def test_after_a_restart_the_first_run_is_a_warm_run(revenue, restored, warm, monkeypatch,
                                                     change):
    """A worker that stops after warm runs saves what they keep besides the rows and the graph
    (own healths and edges, the diff, the flows, the rules' state): the first run after the
    restart patches own healths, compares only what moved, computes the rules' findings only
    where the change reached, and stores what a run from scratch stores."""
    r = revenue
    rng = random.Random(11)
    _stopped_after_warm_runs(r, 200, 11, rng, check_in=True)
    warm.clear()
    with scope(organization=r.org):
        change(r, rng)
    now = at(minutes=3)
    assert not run(r, now).skipped
    assert restored["restored"] == 1, restored
    assert warm["own patched"] == 1 and warm["diff of what moved"] == 1, warm
    if change is not _check_in:  # the rules' inputs moved
        assert warm["rules near"] == 1, warm
    assert_reads_back_as_kept(r.cycle.pk)
    run_from_scratch_stores(r, now, stored(r), change.__name__)


def test_a_rules_state_of_other_rules_code_is_refused(revenue, restored, warm, monkeypatch):
    """The rules' part of a saved state made by another version of the rules (or of the Python
    that compares titles: ``rules.code_version``) is not used: the rules run in full, the
    network's parts are used, and the run stores what a run from scratch stores."""
    r = revenue
    rng = random.Random(12)
    _stopped_after_warm_runs(r, 160, 12, rng, check_in=False)
    monkeypatch.setattr(alignment_rules, "_CODE", "another version")
    warm.clear()
    with scope(organization=r.org):
        _title(r, rng)
    now = at(minutes=2)
    run(r, now)
    assert restored["restored"] == 1, restored
    assert warm["own patched"] == 1 and warm["rules near"] == 0, warm
    run_from_scratch_stores(r, now, stored(r), "other rules code")


def _the_table(r):
    """The cycle's rows as a run that kept nothing reads them, with their versions."""
    cycle = r.cycle
    with scope(organization=r.org):
        return (network._read_objectives(cycle, network._versioned(
                    network._objective_rows(cycle), "okrs_objective")),
                network._read_key_results(cycle, network._versioned(
                    network._key_result_rows(cycle), "okrs_keyresult")))


@pytest.fixture
def rows_read(monkeypatch):
    """Counts the rows of objectives and key results the runs read in full."""
    calls = Counter()
    objectives, key_results = network._read_objectives, network._read_key_results

    def counted_objectives(cycle, queryset):
        rows = objectives(cycle, queryset)
        calls["objectives"] += len(rows)
        return rows

    def counted_key_results(cycle, queryset):
        rows = key_results(cycle, queryset)
        calls["key results"] += len(rows)
        return rows

    monkeypatch.setattr(network, "_read_objectives", counted_objectives)
    monkeypatch.setattr(network, "_read_key_results", counted_key_results)
    return calls


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row versions: PostgreSQL")
def test_a_run_keeps_and_saves_the_rows_as_its_writes_left_them(revenue, restored, rows_read,
                                                                 monkeypatch):
    """A run that wrote rows (here every one: the stored results cleared) keeps them, and saves
    them, as its writes left them: their versions and the columns written as a read gives them.
    So the run after a restart reads again only the row a check-in wrote, and stores what a
    run from scratch stores."""
    r = revenue
    rng = random.Random(13)
    built_with_risks_above(r, 200, 13, rng)
    network.forget()
    monkeypatch.setattr(snapshot, "SAVE_EVERY", 0.0)  # saved after every run
    with scopes_disabled():
        Objective.objects.filter(cycle=r.cycle).update(effective_health="", risk_causes=[])
        KeyResult.objects.filter(objective__cycle=r.cycle).update(effective_health="",
                                                                  risk_causes=[])
    assert run(r, at()).changed > 200
    kept, (objectives, key_results) = network._ROWS[r.cycle.pk], _the_table(r)
    for mine, table in ((kept.objectives, objectives), (kept.key_results, key_results)):
        assert list(mine) == list(table)
        assert [repr(row) for row in mine.values()] == [repr(row) for row in table.values()]
    assert_reads_back_as_kept(r.cycle.pk)
    network.forget(saved=False)  # a restart
    rows_read.clear()
    with scope(organization=r.org):
        _check_in(r, rng)
    now = at(minutes=1)
    run(r, now)
    assert restored["restored"] == 1, restored
    assert rows_read == {"key results": 1}, rows_read
    run_from_scratch_stores(r, now, stored(r), "after a run that wrote every row")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row versions: PostgreSQL")
def test_a_row_written_by_someone_else_before_the_run_writes_it_is_not_trusted(
        revenue, restored, monkeypatch):
    """A row that someone else wrote between the run's read and its write (here: in the run's
    own transaction, just before its write) is written as before, but not kept as the run left
    it: the next run reads it again and sees that other write."""
    r = revenue
    rng = random.Random(14)
    built_with_risks_above(r, 120, 14, rng)
    network.forget()
    run(r, at())
    with scopes_disabled():
        Objective.objects.filter(cycle=r.cycle).update(effective_health="", risk_causes=[])
    write, meanwhile = network._write, []

    def written_meanwhile(changed_o, changed_k, rolled_values):
        pk = changed_o[0]["id"]
        with connection.cursor() as cursor:
            cursor.execute("UPDATE okrs_objective SET title = title || ' (meanwhile)' "
                           "WHERE id = %s", [pk])
        meanwhile.append(pk)
        return write(changed_o, changed_k, rolled_values)

    monkeypatch.setattr(network, "_write", written_meanwhile)
    assert run(r, at(minutes=1)).changed
    monkeypatch.setattr(network, "_write", write)
    [pk] = meanwhile
    kept, (objectives, _) = network._ROWS[r.cycle.pk], _the_table(r)
    assert kept.objectives[pk]["row_version"] != objectives[pk]["row_version"]
    assert not kept.objectives[pk]["title"].endswith(" (meanwhile)")
    others = [o for o in objectives if o != pk]
    assert [kept.objectives[o] for o in others] == [objectives[o] for o in others]
    now = at(minutes=2)
    run(r, now)  # the title moved: read again
    assert network._ROWS[r.cycle.pk].objectives[pk]["title"].endswith(" (meanwhile)")
    run_from_scratch_stores(r, now, stored(r), "a row written meanwhile")


def _damaged(payload, rng):
    payload = bytearray(payload)
    i = rng.randrange(len(payload))
    payload[i] ^= 1 + rng.randrange(255)
    return bytes(payload)


def test_a_damaged_or_foreign_saved_state_is_not_used(revenue, world_b, restored, monkeypatch):
    """A saved state whose bytes were damaged anywhere, cut short, replaced by garbage, copied
    from another organization's cycle, saved by other code or in another database, or too
    many transactions ago is refused: the run computes from nothing and stores what a run from
    scratch stores."""
    r = revenue
    rng = random.Random(9)
    b = _network_b(world_b, 9)
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 160, seed=9)
    network.forget()
    monkeypatch.setattr(snapshot, "SAVE_EVERY", 0.0)  # saved after every run
    run(r, at())
    run(b, at())
    [good] = _saved(r)
    [foreign] = _saved(b)
    cases = [
        ("damaged", lambda: _damaged(good, rng)),
        ("damaged header", lambda: good[:40] + b"X" + good[41:]),
        ("damaged end", lambda: good[:-1] + bytes([good[-1] ^ 1])),
        ("cut short", lambda: good[:len(good) // 2]),
        ("garbage", lambda: b"not a saved state at all"),
        ("empty", lambda: b""),
        ("another organization's", lambda: foreign),
    ]
    for step, (name, payload) in enumerate(cases):
        with scope(organization=r.org):
            _check_in(r, rng)
        with scopes_disabled():
            NetworkSnapshot.objects.filter(cycle=r.cycle).update(payload=payload())
        network.forget(saved=False)
        before = restored["nothing to restore"]
        now = at(minutes=step + 1)
        run(r, now)
        assert restored["nothing to restore"] == before + 1, name  # computed from nothing
        run_from_scratch_stores(r, now, stored(r), name)
        [good] = _saved(r)  # the run from scratch saved a good one again
    assert restored["restored"] == 0, restored
    assert restored["its signature does not match: damaged, or another cycle's"] >= 5, restored
    # Signed, but saved by another version of the code, in another database, or too long ago.
    for step, (name, patch) in enumerate([
            ("code", lambda: setattr(network, "_CODE_VERSION", "another")),
            ("database", lambda: setattr(snapshot, "_database", lambda: ("elsewhere", None))),
            ("age", lambda: setattr(snapshot, "MAX_XID_AGE", -1))]):
        saved = (network._CODE_VERSION, snapshot._database, snapshot.MAX_XID_AGE)
        network.forget(saved=False)
        network.code_version()
        patch()
        try:
            with scope(organization=r.org):
                _check_in(r, rng)
            now = at(minutes=20 + step)
            before = restored["nothing to restore"]
            run(r, now)
        finally:
            network._CODE_VERSION, snapshot._database, snapshot.MAX_XID_AGE = saved
        if name != "age" or connection.vendor == "postgresql":  # no transaction ids elsewhere
            assert restored["nothing to restore"] == before + 1, name
        run_from_scratch_stores(r, now, stored(r), name)
    assert restored["saved by another version of the code"] == 1, restored
    assert restored["saved in another database"] == 1, restored
    # The good one, untouched: used.
    network.forget(saved=False)
    with scope(organization=r.org):
        _check_in(r, rng)
    before = restored["restored"]
    now = at(minutes=30)
    run(r, now)
    assert restored["restored"] == before + 1, restored
    run_from_scratch_stores(r, now, stored(r), "good")


def test_a_saved_state_is_one_row_per_cycle_replaced_and_scoped(revenue, world_b, monkeypatch):
    """Runs replace the cycle's row (never accumulate), and each organization's rows are its
    own."""
    r = revenue
    b = _network_b(world_b, 10)
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 80, seed=10)
    monkeypatch.setattr(snapshot, "SAVE_EVERY", 0.0)
    network.forget()
    rng = random.Random(10)
    times = []
    for step in range(3):
        with scope(organization=r.org):
            _check_in(r, rng)
        run(r, at(minutes=step))
        run(b, at(minutes=step))
        with scopes_disabled():
            times.append(NetworkSnapshot.objects.get(cycle=r.cycle).saved_at)
    assert times == sorted(times) and len(set(times)) == 3
    with scope(organization=r.org):
        assert list(NetworkSnapshot.objects.for_org(r.org).values_list("cycle_id", flat=True)) \
            == [r.cycle.pk]
    with scope(organization=b.org):
        assert list(NetworkSnapshot.objects.for_org(b.org).values_list("cycle_id", flat=True)) \
            == [b.cycle.pk]


def test_runs_save_after_a_run_from_nothing_then_now_and_then_and_a_stopping_worker_saves(
        revenue, reads, restored, monkeypatch):
    """A run that computed the cycle from nothing saves its state (the next restart needs
    it); later runs save it only every ``SAVE_EVERY``, and a restored process not before that
    either; a worker process that stops saves what it keeps, and the next process starts from
    it: on PostgreSQL it reads again only the rows written since, and it stores what a run
    from scratch stores."""
    r = revenue
    rng = random.Random(11)
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 120, seed=11)
    monkeypatch.setattr(snapshot, "SAVE_EVERY", 1e9)
    network.forget()
    run(r, at())  # from nothing: saved
    with scopes_disabled():
        first = NetworkSnapshot.objects.get(cycle=r.cycle).saved_at
    for step in range(3):
        with scope(organization=r.org):
            _check_in(r, rng)
        run(r, at(minutes=step + 1))
    with scopes_disabled():
        assert NetworkSnapshot.objects.get(cycle=r.cycle).saved_at == first  # not due yet
    worker_process_shutdown.send(sender=None, pid=0, exitcode=0)
    with scopes_disabled():
        second = NetworkSnapshot.objects.get(cycle=r.cycle).saved_at
    assert second > first
    network.forget(saved=False)
    with scope(organization=r.org):
        _check_in(r, rng)
    now = at(minutes=10)
    patched = reads["rows patched"]
    run(r, now)
    assert restored["restored"] == 1, restored
    with scopes_disabled():  # restored: as fresh as a save, nothing saved
        assert NetworkSnapshot.objects.get(cycle=r.cycle).saved_at == second
    if connection.vendor == "postgresql":  # the saved rows, patched with the rows that moved
        assert reads["rows patched"] == patched + 2, reads
    run_from_scratch_stores(r, now, stored(r), "after a stop")


def test_a_saved_state_that_cannot_be_read_leaves_a_run_from_nothing(
        revenue, restored, monkeypatch):
    """A failing read of the saved state (its table not migrated yet, say) costs the run its
    saved state, never the run."""
    r = revenue
    rng = random.Random(12)
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 60, seed=12)
    network.forget()
    run(r, at())  # saved

    def broken(cycle, payload):
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")

    monkeypatch.setattr(snapshot, "_untrusted", broken)
    network.forget(saved=False)
    with scope(organization=r.org):
        _check_in(r, rng)
    now = at(minutes=1)
    before = restored[("nothing to restore", r.cycle.pk)]
    assert not run(r, now).skipped
    assert restored[("nothing to restore", r.cycle.pk)] == before + 1, restored
    run_from_scratch_stores(r, now, stored(r), "unreadable")


def test_a_state_that_cannot_be_saved_costs_the_run_nothing(revenue, restored, monkeypatch):
    """A save that fails (a value the encoding cannot hold, say) is logged; the run's result
    stands and the next restart computes from nothing."""
    r = revenue
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 60, seed=13)
    network.forget()

    def broken(state):
        raise ValueError("cannot be encoded")

    monkeypatch.setattr(snapshot, "pack", broken)
    now = at()
    assert run(r, now).changed > 0
    assert _saved(r) == []
    run_from_scratch_stores(r, now, stored(r), "unsaved")


def test_the_bench_reads_the_saved_state_back_after_a_restart(counted, restored):
    """``bench_propagation``'s runs from nothing compute from nothing; its run after a restart,
    and others after a restart and a check-in or a title edit, start from the saved state, and
    those after a worker's warm start find it read back already; what they store is what a run
    from scratch stores."""
    out = io.StringIO()
    call_command("bench_propagation", nodes=300, runs=2, stdout=out)
    text = out.getvalue()
    assert "after a restart (nothing kept in the process; the rules' units stored), the " \
        "network's saved state read back" in text, text
    assert "after a restart, then a check-in (saved state read back)" in text, text
    assert "after a restart, then a title edit (saved state read back)" in text, text
    for row in ("every rule run", "then a check-in", "then a title edit"):
        assert f"after a restart, the worker's warm start done, {row}" in text, text
    assert text.count("read back this cycle") == 3, text
    # The floor under a run from nothing: its own reads again, raw; every node's row is one.
    floor = re.search(r"the floor under that run: its (\d+) reads executed again and fetched "
                      r"as plain tuples \((\d+) rows\), nothing computed: \d+ ms", text)
    if connection.vendor == "postgresql":
        assert floor and int(floor[1]) >= 10 and int(floor[2]) >= 300, text
    else:
        assert floor is None, text
    assert restored["restored"] == 3, restored  # the warm start's runs read nothing back
    assert restored["nothing to restore"] == 2, restored  # the runs from nothing
    with scopes_disabled():
        org = Organization.objects.get(slug="bench-300")
        r = SimpleNamespace(org=org, cycle=Cycle.objects.get(organization=org))
    after = stored(r)
    run_from_scratch_stores(r, timezone.now(), after, "bench")


def _reads_back_exactly(values):
    """A column of values reads back as itself: each value equal to the type and the ``repr``
    (a plain reference: ``-0.0`` is not ``0.0``, ``True`` is not ``1``)."""
    back = snapshot._unpack_column(marshal.loads(marshal.dumps(snapshot._pack_column(values))))
    assert [(type(v), repr(v)) for v in back] == [(type(v), repr(v)) for v in values]
    for again, value in zip(back, values, strict=True):
        if isinstance(value, tuple):
            assert [type(x) for x in again] == [type(x) for x in value]
    return back


@pytest.mark.parametrize("seed", range(6))
def test_a_column_of_tuples_reads_back_exactly(seed):
    """Tuples of few distinct values are saved once each and read back shared (the flags and
    parts of what key results gave); whatever they hold, each reads back as it was."""
    rng = random.Random(seed)
    nan = float("nan")
    plain = [(False, False, 3, True), (True, False, None, False), (False, True, 7, False)]
    parts = [(0.0, "on_track", 1.0), (0.5, "at_risk", 2.0), (1.0, "off_track", 1.0)]
    tricky = [(-0.0, "on_track", 1.0), (True, 1, "x"), (1, True, "x"), (1.0, 1, "x"),
              (nan, "a", 1.0), (None, "a", 1.0), (0.0, None, 2.5), ((1, 2), "a", 1.0)]
    for few in (plain, parts, parts + tricky[:1], plain + tricky[1:3], parts + tricky[4:7],
                [(i, "t") for i in range(50)], tricky[7:]):
        values = [rng.choice(few) for _ in range(rng.randrange(1, 600))]
        back = _reads_back_exactly(values)
        if few is plain or few is parts:
            if len(values) >= 4 * len(few):  # saved once each: read back as shared tuples
                assert len({id(v) for v in back}) <= len(few)
    # Many distinct values: a column per position, as before.
    _reads_back_exactly([(i, f"t{i}", i / 3) for i in range(700)])
    _reads_back_exactly([(rng.random(), "x") for _ in range(500)] + [None] * 10)


def test_own_healths_and_edges_are_read_back_as_the_graphs_and_what_key_results_gave(
        revenue, restored, warm):
    """After warm runs the own healths kept are the graph's own dict and the edges given its
    edges: saved once, read back as one object each, in the process's order, and the key
    results' edges as those of what each gave, the very edges; the first run after the restart
    is warm and stores what a run from scratch stores."""
    r = revenue
    rng = random.Random(5)
    built_with_risks_above(r, 200, 5, rng)
    network.forget()
    run(r, at())
    with scope(organization=r.org):
        _check_in(r, rng)
    run(r, at(minutes=1))  # a warm run: its own healths are the graph's, its edges too
    pk = r.cycle.pk
    kept = _kept(pk)
    assert kept["own"].own is kept["graph"].own
    parts = snapshot.pack(kept)
    assert parts["own"]["own"][1] is None and parts["own"]["edges"] is None
    assert parts["own"]["kr_edges"] is None
    back = snapshot.unpack(marshal.loads(marshal.dumps(parts)))
    own, graph = back["own"], back["graph"]
    assert own.own is graph.own and list(own.own.items()) == list(kept["own"].own.items())
    assert own.edges is graph.edges and own.edges == kept["own"].edges
    assert own.kr_edges == kept["own"].kr_edges == [
        e for v in back["gave"].values() for e in v[4]]
    assert_reads_back_as_kept(pk)
    worker_process_shutdown.send(sender=None)  # the worker stops: it saves what it keeps
    network.forget(saved=False)
    warm.clear()
    with scope(organization=r.org):
        _check_in(r, rng)
    now = at(minutes=2)
    assert not run(r, now).skipped
    assert restored["restored"] == 1 and warm["own patched"] == 1, (restored, warm)
    run_from_scratch_stores(r, now, stored(r), "check-in after a restart")
