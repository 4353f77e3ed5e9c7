"""A worker process that starts reads back, in a background thread, the saved state of the
cycles saved most recently (``network.warm_start``), so that its first run of each is a warm
run. A run that comes while its cycle's state is being read back waits for it and reads
nothing again; a run of another cycle does not wait; what is read back early is checked as a
run checks it, and what runs store is what a run from scratch stores."""

import logging
import random
import threading
from collections import Counter
from datetime import timedelta
from types import SimpleNamespace

import pytest
from celery.signals import worker_process_init, worker_process_shutdown
from django.db import connection
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from alignment import kept as alignment_kept
from alignment import rules as alignment_rules
from dependencies import generate, network, snapshot
from dependencies.models import NetworkSnapshot
from tests.dependencies import test_snapshot
from tests.dependencies.test_fingerprint import stored
from tests.dependencies.test_incremental import (
    _check_in,
    _title,
    at,
    built_with_risks_above,
    run,
    run_from_scratch_stores,
)

warm = test_snapshot.warm  # counts the parts of a run that started from what was kept

# The warm start reads in its own thread, with its own connection: it sees committed rows only.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def reads_back(monkeypatch):
    """Counts the saved states read back (``snapshot.restore``), by cycle and by thread: the
    warm start's or a run's (this test's own)."""
    calls = Counter()
    restore = snapshot.restore

    def counted(cycle):
        state = restore(cycle)
        who = "run" if threading.current_thread() is threading.main_thread() else "warm start"
        calls[who, cycle.pk] += 1
        calls[who, cycle.pk, "trusted" if state is not None else "refused"] += 1
        return state

    monkeypatch.setattr(snapshot, "restore", counted)
    return calls


def _cycles(revenue, world_b, nodes=120):
    """Two organizations' cycles, generated, each run once (which saves its state), ``a``'s
    last: the newest saved."""
    a = SimpleNamespace(org=revenue.org, cycle=revenue.cycle)
    b = SimpleNamespace(org=world_b.org, cycle=world_b.cycle)
    built_with_risks_above(a, nodes, 5, random.Random(5))
    with scope(organization=b.org):
        generate.build(b.org, b.cycle, nodes, seed=6)
    network.forget()
    run(b, at())
    run(a, at())
    return a, b


def _warm_started():
    """The worker process starts: its warm start, waited for."""
    thread = network.warm_start()
    assert thread is not None and thread.daemon
    thread.join(timeout=60)
    assert not thread.is_alive()


def test_a_started_worker_reads_back_the_newest_states_and_its_runs_read_none_again(
        revenue, world_b, reads_back):
    """The warm start reads back the states of the cycles saved most recently, at most
    ``KEPT_GRAPHS`` of them and none too old; the first run of each after it reads no saved
    state and stores what a run from scratch stores."""
    r, b = _cycles(revenue, world_b)
    reads_back.clear()
    network.forget(saved=False)  # the worker stops
    with scopes_disabled():
        NetworkSnapshot.objects.filter(cycle=b.cycle).update(
            saved_at=timezone.now() - network.WARM_START_AGE - timedelta(minutes=1))
    _warm_started()
    assert reads_back == {("warm start", r.cycle.pk): 1,
                          ("warm start", r.cycle.pk, "trusted"): 1}, "b's is too old"
    assert list(network._GRAPHS) == [r.cycle.pk]
    with scopes_disabled():
        NetworkSnapshot.objects.filter(cycle=b.cycle).update(saved_at=timezone.now())
    network.forget(saved=False)
    reads_back.clear()
    _warm_started()
    assert reads_back[("warm start", r.cycle.pk, "trusted")] == 1, reads_back
    assert reads_back[("warm start", b.cycle.pk, "trusted")] == 1, reads_back
    after = []
    for step, cycle in enumerate((r, b)):
        with scope(organization=cycle.org):
            _check_in(cycle, random.Random(step))
        now = at(minutes=step + 1)
        assert not run(cycle, now).skipped
        assert reads_back[("run", cycle.cycle.pk)] == 0, reads_back
        after.append((cycle, now, stored(cycle)))
    for cycle, now, expected in after:  # (each forgets every saved state)
        run_from_scratch_stores(cycle, now, expected, f"after a warm start, {cycle.cycle.pk}")


def test_a_cycle_a_run_kept_is_not_read_back_over_it(revenue, world_b, reads_back, monkeypatch):
    """A cycle whose run came first keeps what that run left: the warm start does not read its
    older saved state back over it, nor take the place of what runs keep."""
    r, b = _cycles(revenue, world_b)
    network.forget(saved=False)
    reads_back.clear()
    with scope(organization=r.org):
        _check_in(r, random.Random(1))
    run(r, at(minutes=1))  # read back by the run itself, then kept as the run left it
    kept = network._GRAPHS[r.cycle.pk]
    _warm_started()
    assert reads_back[("warm start", r.cycle.pk)] == 0, reads_back
    assert network._GRAPHS[r.cycle.pk] is kept
    assert reads_back[("warm start", b.cycle.pk)] == 1, "room for one more"
    monkeypatch.setattr(network, "KEPT_GRAPHS", 1)  # no room: nothing read back
    network.forget(saved=False)
    run(r, at(minutes=2))
    reads_back.clear()
    _warm_started()
    assert not any(who == "warm start" for who, *_ in reads_back), reads_back


def test_a_run_arriving_during_the_read_back_waits_and_other_cycles_do_not(
        revenue, world_b, reads_back, monkeypatch):
    """While the warm start reads a cycle's state back, a run of another cycle goes on, and a
    run of that cycle waits for it: the state is read back once, never half, and the run stores
    what a run from scratch stores."""
    r, b = _cycles(revenue, world_b)
    network.forget(saved=False)
    reads_back.clear()
    reading, go, arrived = threading.Event(), threading.Event(), []
    restore, restoring = snapshot.restore, network._restoring

    def slow_restore(cycle):
        if threading.current_thread() is not threading.main_thread() and cycle.pk == r.cycle.pk:
            reading.set()
            assert go.wait(timeout=60)
        return restore(cycle)

    def spied_restoring(cycle_id):
        lock = restoring(cycle_id)
        if threading.current_thread() is threading.main_thread() and cycle_id == r.cycle.pk:
            arrived.append(lock.locked())  # held by the warm start, reading
            go.set()
        return lock

    monkeypatch.setattr(snapshot, "restore", slow_restore)
    monkeypatch.setattr(network, "_restoring", spied_restoring)
    thread = network.warm_start()
    assert reading.wait(timeout=60)
    with scope(organization=b.org):
        _check_in(b, random.Random(2))
    now = at(minutes=1)
    run(b, now)  # another cycle's: done while r's read back is still held up
    assert not go.is_set()
    after_b = stored(b)
    with scope(organization=r.org):
        _title(r, random.Random(3))
    later = at(minutes=2)
    assert not run(r, later).skipped
    thread.join(timeout=60)
    assert arrived and arrived[0], "the run came while the warm start held the cycle"
    assert reads_back[("warm start", r.cycle.pk, "trusted")] == 1, reads_back
    assert reads_back[("run", r.cycle.pk)] == 0, "waited for it, and read nothing again"
    assert reads_back[("warm start", b.cycle.pk)] == 0, "b's run kept b first"
    run_from_scratch_stores(r, later, stored(r), "during the read back")
    run_from_scratch_stores(b, now, after_b, "another cycle during the read back")


def test_a_damaged_or_foreign_state_is_skipped_with_a_log_line(
        revenue, world_b, reads_back, caplog):
    """A damaged saved state, or another organization's copied over a cycle's, is refused by
    the warm start as by a run (logged); the runs then compute from nothing and store what a
    run from scratch stores."""
    r, b = _cycles(revenue, world_b)
    with scopes_disabled():
        [good] = NetworkSnapshot.objects.filter(cycle=r.cycle).values_list("payload", flat=True)
        good = bytes(good)
        NetworkSnapshot.objects.filter(cycle=r.cycle).update(
            payload=good[:-1] + bytes([good[-1] ^ 1]))
        NetworkSnapshot.objects.filter(cycle=b.cycle).update(payload=good)  # a's, as b's
    network.forget(saved=False)
    reads_back.clear()
    with caplog.at_level(logging.WARNING, logger="dependencies.snapshot"):
        _warm_started()
    refused = [m for m in caplog.messages if "the saved network state is not used" in m]
    assert len(refused) == 2 and all("signature does not match" in m for m in refused), refused
    assert reads_back[("warm start", r.cycle.pk, "refused")] == 1, reads_back
    assert reads_back[("warm start", b.cycle.pk, "refused")] == 1, reads_back
    assert not network._GRAPHS
    after = []
    for step, cycle in enumerate((r, b)):
        with scope(organization=cycle.org):
            _check_in(cycle, random.Random(step))
        now = at(minutes=step + 1)
        run(cycle, now)
        after.append((cycle, now, stored(cycle)))
    for cycle, now, expected in after:
        run_from_scratch_stores(cycle, now, expected, f"refused, {cycle.cycle.pk}")


def test_a_failing_warm_start_is_logged_and_never_raises(revenue, world_b, monkeypatch, caplog):
    """A warm start that fails (its query, say) is logged in its thread; the worker goes on and
    the first run reads the state back as before."""
    r, _ = _cycles(revenue, world_b)
    network.forget(saved=False)

    def broken():
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")

    monkeypatch.setattr(network, "read_back_newest", broken)
    with caplog.at_level(logging.ERROR, logger="dependencies.network"):
        _warm_started()
    assert any("could not be read back" in m for m in caplog.messages), caplog.messages
    assert not network._GRAPHS
    now = at(minutes=1)
    run(r, now)
    assert r.cycle.pk in network._GRAPHS
    run_from_scratch_stores(r, now, stored(r), "after a failed warm start")


def test_the_worker_signal_starts_it_and_the_setting_turns_it_off(
        revenue, world_b, reads_back, settings):
    """A worker process that starts (``worker_process_init``) reads the saved states back in
    the background; with ``NETWORK_WARM_START`` off nothing is read before a run."""
    r, _ = _cycles(revenue, world_b, nodes=60)
    reads_back.clear()
    settings.NETWORK_WARM_START = False
    network.forget(saved=False)
    assert network.warm_start() is None
    worker_process_init.send(sender=None)
    assert not [t for t in threading.enumerate() if t.name == "network-warm-start"]
    assert not reads_back and not network._GRAPHS
    settings.NETWORK_WARM_START = True
    worker_process_init.send(sender=None)
    for thread in threading.enumerate():
        if thread.name == "network-warm-start":
            thread.join(timeout=60)
    assert reads_back[("warm start", r.cycle.pk, "trusted")] == 1, reads_back


def test_the_rules_state_is_decoded_ahead_and_a_title_edit_runs_the_rules_near(
        revenue, world_b, warm, monkeypatch):
    """The rules' part read back is decoded by the warm start, not by the run: a title edit's
    run then computes the rules' findings only where the edit reached (as a warm run does) and
    stores what a run from scratch stores, even when the warm start read another cycle's state
    back first."""
    r, b = _cycles(revenue, world_b)
    with scope(organization=r.org):
        _title(r, random.Random(4))
    run(r, at(minutes=1))  # the rules' warm state, then saved as the worker stops
    network.save_kept()
    with scopes_disabled():  # b's the newest: read back first
        NetworkSnapshot.objects.filter(cycle=b.cycle).update(
            saved_at=timezone.now() + timedelta(seconds=1))
    network.forget(saved=False)
    _warm_started()
    assert r.cycle.pk not in alignment_rules.KEPT
    assert alignment_kept._SAVED[r.cycle.pk].__class__ is not bytes, "decoded"
    decoded = Counter()
    real = alignment_kept._decoded

    def counted(cycle_id, saved):
        decoded[cycle_id] += 1
        return real(cycle_id, saved)

    monkeypatch.setattr(alignment_kept, "_decoded", counted)
    with scope(organization=r.org):
        _title(r, random.Random(5))
    now = at(minutes=2)
    warm.clear()
    run(r, now)
    assert decoded[r.cycle.pk] == 0 and r.cycle.pk in alignment_rules.KEPT
    assert warm["own patched"] == 1 and warm["rules near"] == 1, warm
    run_from_scratch_stores(r, now, stored(r), "rules decoded ahead")


def test_a_worker_that_stops_saves_only_the_states_its_runs_used(revenue, world_b, reads_back):
    """A worker process that stops saves what its runs keep, not the states its warm start read
    back that no run used since: those are saved already, and another process of the worker
    may have saved a newer one meanwhile."""
    r, b = _cycles(revenue, world_b, nodes=60)
    network.forget(saved=False)
    _warm_started()
    assert set(network._GRAPHS) == {r.cycle.pk, b.cycle.pk}
    with scopes_disabled():
        saved = dict(NetworkSnapshot.objects.values_list("cycle_id", "saved_at"))
    with scope(organization=r.org):
        _check_in(r, random.Random(1))
    now = at(minutes=1)
    run(r, now)
    worker_process_shutdown.send(sender=None, pid=0, exitcode=0)
    with scopes_disabled():
        after = dict(NetworkSnapshot.objects.values_list("cycle_id", "saved_at"))
    assert after[b.cycle.pk] == saved[b.cycle.pk], "read back, never used: not saved again"
    assert after[r.cycle.pk] > saved[r.cycle.pk], "run since: saved as the worker stops"
    run_from_scratch_stores(r, now, stored(r), "after a stop")
