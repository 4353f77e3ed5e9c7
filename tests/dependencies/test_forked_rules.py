"""The misalignment rules of a run from nothing computed in a forked child while the network
computes (``alignment.report._run_all_beside``): the run must store, and the process keep,
exactly what the rules computed in the process store and keep, so that the next warm run and a
restart's saved state are those of a run without the child. A child that fails leaves the rules
to the process."""

import logging
import os
import random
import signal
import time
from collections import Counter
from types import SimpleNamespace

import pytest
from celery.signals import worker_process_init
from django.db import connection
from django_scopes import scope, scopes_disabled

from alignment import kept as alignment_kept
from alignment import report as alignment_report
from alignment import rules as alignment_rules
from alignment.models import Finding, FindingsReport, RuleUnits
from dependencies import generate, network
from dependencies.models import NetworkState
from tests.dependencies.test_fingerprint import stored
from tests.dependencies.test_incremental import _check_in, _title, at, run, run_from_scratch_stores
from tests.factories import CycleFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif("connection.vendor != 'postgresql'",
                       reason="the rules fork only on PostgreSQL"),
]


@pytest.fixture
def forks(monkeypatch):
    """The rules fork at any size (``FORK_AT_LEAST``) once ``fork_rules(True)``; counts the
    forks."""
    monkeypatch.setattr(alignment_report, "FORK", {"on": False})
    monkeypatch.setattr(alignment_report, "FORK_AT_LEAST", 0)
    calls = Counter()
    fork = os.fork

    def counted_fork():
        calls["forks"] += 1
        return fork()

    monkeypatch.setattr(os, "fork", counted_fork)
    return calls


def _from_nothing(r, *, units_stored=False):
    """What a new database or a deploy leaves: nothing kept, saved or stored of the rules; with
    ``units_stored``, what a restart that read no state back leaves (the rules' units stored)."""
    network.forget()
    with scopes_disabled():
        NetworkState.objects.filter(cycle=r.cycle).update(fingerprint="")
        Finding.objects.filter(cycle=r.cycle).delete()
        FindingsReport.objects.filter(cycle=r.cycle).delete()
        if not units_stored:
            RuleUnits.objects.filter(cycle=r.cycle).delete()


def _left(r):
    """What a run leaves: what pages read, the rules' stored units and inputs digest, and what
    the process keeps of the rules (their units, the state a restart saves)."""
    units = alignment_rules.UNITS
    with scopes_disabled():
        unit_row = RuleUnits.objects.filter(cycle=r.cycle).values_list(
            "code", "checksum", "payload", "units").first()
        inputs = FindingsReport.objects.filter(cycle=r.cycle).values_list(
            "inputs", flat=True).get()
    kept = alignment_rules.KEPT[r.cycle.pk]
    # The stored findings' versions (xmin, ctid) are those of this run's inserts: their digest
    # is in the inputs stored and in what the process keeps, which must describe them.
    assert inputs and kept.finding_versions is not None
    assert [pk for pk, _ in kept.finding_pairs] == sorted(
        pk for rows in kept.findings.values() for pk, _ in rows)
    return {"stored": stored(r), "units row": unit_row, "units": dict(units.previous),
            "last": units.last, "units cycle": units.cycle, "unsaved": dict(units.unsaved),
            "checksums": dict(units.checksums), "current": units.current,
            "restored": units.stored,
            "kept": (kept.objectives, kept.built, kept.key_results, kept.owners, kept.small,
                     kept.described, {key: len(rows) for key, rows in kept.findings.items()}),
            # What a restart reads back decodes to the same, versions aside.
            "saved": _unversioned(alignment_kept.pack(kept))}


def _unversioned(packed):
    if packed is None:  # nothing to save (no objective)
        return None
    kept = alignment_kept.unpack(packed)
    assert kept.described is not None, "saved whole"
    return (kept.objectives.keys(), kept.key_results.keys(), kept.owners, kept.small,
            kept.described, {key: len(rows) for key, rows in kept.findings.items()})



def _both_ways(r, now, forks, *, units_stored=False):
    """What a run from nothing leaves with the rules in the process, then with the fork (after
    a first run: the rows' versions it reads are then the same)."""
    alignment_report.fork_rules(False)
    run(r, now)
    _from_nothing(r, units_stored=units_stored)
    run(r, now)
    in_process = _left(r)
    assert not forks["forks"]
    _from_nothing(r, units_stored=units_stored)
    alignment_report.fork_rules(True)
    run(r, now)
    return in_process, _left(r)


@pytest.mark.parametrize("model", ["flexible", "strict", "thematic"])
def test_a_forked_run_stores_and_keeps_what_a_run_in_process_does(revenue, forks, model):
    r = revenue
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 240, seed=len(model))
        r.org.alignment_model = model
        r.org.save(update_fields=["alignment_model"])
    in_process, forked = _both_ways(r, at(), forks)
    assert forks["forks"] == 1
    assert in_process["stored"][2] and in_process["saved"], "some findings, a state to save"
    assert forked == in_process
    # The next warm runs start from what the child handed back: a title edit computes the rules
    # again only near it, a check-in none, in the process; each stores what a run from scratch
    # stores.
    calls = Counter()
    run_for = alignment_rules.run_for

    def counted_run_for(*args):
        calls["near"] += 1
        return run_for(*args)

    rng = random.Random(3)
    for step, change in enumerate((_title, _check_in, _title)):
        with scope(organization=r.org):
            change(r, rng)
        before = forks["forks"]
        alignment_rules.run_for = counted_run_for
        try:
            run(r, at(minutes=step + 1))
        finally:
            alignment_rules.run_for = run_for
        after = stored(r)
        assert forks["forks"] == before, f"a warm run does not fork ({step})"
        run_from_scratch_stores(r, at(minutes=step + 1), after, change.__name__)
        assert forks["forks"] == before + 1, "from nothing: forked"
    assert calls["near"] == 2


def test_a_restart_that_reads_the_units_stored_does_not_fork(revenue, forks):
    """A worker restarted without its saved state: every rule runs, each unit looked up in the
    cycle's stored row, which costs less than the child's copy back."""
    r = revenue
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 240)
    in_process, forked = _both_ways(r, at(), forks, units_stored=True)
    assert not forks["forks"]
    assert in_process["unsaved"][r.cycle.pk] is not None, "the stored row was read"
    assert forked == in_process


@pytest.mark.parametrize("units_stored", [False, True])
def test_a_cycle_with_no_objectives(revenue, forks, units_stored):
    """(Its stored row holds no unit: a restart reads it, and forks.)"""
    r = SimpleNamespace(org=revenue.org, cycle=CycleFactory(organization=revenue.org))
    in_process, forked = _both_ways(r, at(), forks, units_stored=units_stored)
    assert forks["forks"] == 1
    assert forked == in_process
    assert not forked["stored"][2]


def _raises():
    raise RuntimeError("the child fails")


def _killed():
    os.kill(os.getpid(), signal.SIGKILL)


def _says_nothing():
    os._exit(0)


def _hangs():
    time.sleep(30)


@pytest.mark.parametrize("failure", [_raises, _killed, _says_nothing, _hangs])
def test_a_child_that_fails_leaves_the_rules_to_the_process(
        revenue, forks, monkeypatch, caplog, failure):
    r = revenue
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 120)
    parent = os.getpid()
    run_all = alignment_rules.run_all

    def failing_in_the_child(*args, **kwargs):
        if os.getpid() != parent:
            failure()
        return run_all(*args, **kwargs)

    monkeypatch.setattr(alignment_rules, "run_all", failing_in_the_child)
    monkeypatch.setattr(alignment_report, "FORK_TIMEOUT", 1.0)
    alignment_report.fork_rules(False)
    run(r, at())
    _from_nothing(r)
    run(r, at())
    in_process = _left(r)
    _from_nothing(r)
    alignment_report.fork_rules(True)
    with caplog.at_level(logging.WARNING, logger="alignment.report"):
        run(r, at())
    assert forks["forks"] == 1
    assert _left(r) == in_process
    logged = [record for record in caplog.records if record.name == "alignment.report"]
    assert len(logged) == 1 and "computed in the run's process" in logged[0].getMessage()


def test_only_a_worker_forks_when_the_setting_says_so(revenue, forks, monkeypatch, settings):
    """A worker's process that starts (``worker_process_init``) forks for the rules when
    ``NETWORK_FORK_RULES`` is on; any other process (a web process, a shell) never does."""
    r = revenue
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 60)
    monkeypatch.setattr(network, "warm_start", lambda: None)
    _from_nothing(r)
    run(r, at())
    assert not forks["forks"], "off outside a worker"
    settings.NETWORK_FORK_RULES = False
    worker_process_init.send(sender=None)
    _from_nothing(r)
    run(r, at())
    assert not forks["forks"]
    settings.NETWORK_FORK_RULES = True
    worker_process_init.send(sender=None)
    _from_nothing(r)
    run(r, at())
    assert forks["forks"] == 1
    assert connection.is_usable(), "the child left the run's connection alone"
