"""Load one cycle's network, run the propagation, write back what changed, raise alerts.

A full recompute from current state, never a delta: running it twice, or twice at once, gives the
same rows. Runs for the same cycle are serialized by their own lock (``orgs.db.lock_propagation``),
so the run that starts later reads later data and its result is the one that stays. A run reads
and computes without blocking anyone, then takes the organization lock, as writers do, only for
its short write phase (the lock order is in docs/architecture.md).

Queries do not grow with the cycle's size: a handful of reads, one UPDATE per table fed with one
JSON document, and bulk inserts for alerts.
"""

import gc
import hashlib
import heapq
import json
import logging
import re
import threading
import time
from collections import Counter, OrderedDict, defaultdict
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import cache, partial
from itertools import compress, repeat
from operator import is_not, itemgetter, not_
from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection, connections, transaction
from django.db.models import BigIntegerField, BooleanField, F, Q, TextField, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast
from django.utils import timezone
from django_scopes import scopes_disabled

from alignment import kept as alignment_kept
from alignment import report as alignment_report
from alignment import rules as alignment_rules
from integrations import webhooks
from nudges import events
from okrs import progress
from okrs.models import Health, KeyResult, Objective, ObjectiveParent, Rollup
from orgs.db import atomic_with_retry, lock_organization_id, lock_propagation
from orgs.models import Cycle, Team
from orgs.tasks import enqueue_now
from orgs.versions import health_changed

from . import flows, propagation, snapshot
from .models import (
    AlertEmail,
    Dependency,
    NetworkSnapshot,
    NetworkState,
    Notification,
    ObjectiveShare,
    PropagationRun,
)
from .propagation import BROKEN, DEPENDS, OWN, ROLLUP, Edge

OBJ, KR = "o", "k"
HEALTHS = {"", None, *Health.values}

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    nodes: int = 0
    edges: int = 0
    changed: int = 0
    alerts: int = 0
    compute_ms: float = 0.0
    total_ms: float = 0.0
    skipped: bool = False  # nothing it reads had changed (``fingerprint``): nothing recomputed
    saved_ms: float = 0.0  # saving the state for a restart, after the commit (``snapshot``)


def mark_changed(cycle):
    """Call inside the transaction of any change that can move health: marks the cycle dirty and
    enqueues a recompute once the transaction commits. The caller took the organization lock
    first (``orgs.services.lock_organization``); the ``NetworkState`` row comes last in the lock
    order, and the recompute runs after the commit, holding nothing of the writer's."""
    updated = NetworkState.objects.filter(cycle=cycle).update(
        dirty=True, generation=F("generation") + 1, changed_at=timezone.now())
    health_changed(cycle)  # cached reads (the nav's count, the cycle review) read afresh
    if not updated:
        NetworkState.objects.get_or_create(
            cycle=cycle, defaults={"organization_id": cycle.organization_id,
                                   "changed_at": timezone.now()})
    deferred = _deferred_cycles.get()
    if deferred is not None:
        deferred[cycle.pk] = None  # one_recompute_per_cycle() enqueues it once, at its end
        return
    transaction.on_commit(partial(_enqueue_recompute, cycle.pk))


def _enqueue_recompute(cycle_id):
    from .tasks import propagate_cycle

    # Many changes in one transaction need one recompute: once a run has cleared the flag,
    # the later callbacks of the same commit have nothing to do.
    with scopes_disabled():
        still_dirty = NetworkState.objects.filter(cycle_id=cycle_id, dirty=True).exists()
    if still_dirty:
        # Without a broker the recompute runs right after the response, not inside it.
        enqueue_now(propagate_cycle, cycle_id, defer=True)


# Cycles marked changed inside one_recompute_per_cycle(), in order; None outside it.
_deferred_cycles = ContextVar("deferred_recomputes", default=None)


@contextmanager
def one_recompute_per_cycle():
    """For commands that make many changes (``seed_demo``): inside the block ``mark_changed``
    still marks cycles dirty but enqueues nothing; when the block ends without an error, one
    recompute is enqueued per cycle it changed, once the surrounding transaction commits.
    (With a broker, checking the dirty flag is not enough: the worker has not run yet, so every
    change would enqueue its own recompute.) If the block fails, the dirty flags and the sweep
    still cover whatever was committed."""
    if _deferred_cycles.get() is not None:  # nested: the outermost block enqueues
        yield
        return
    cycles = {}
    token = _deferred_cycles.set(cycles)
    try:
        yield
    finally:
        _deferred_cycles.reset(token)
    for cycle_id in cycles:
        transaction.on_commit(partial(_enqueue_recompute, cycle_id))


def run(cycle, *, now=None):
    """Recompute the effective health of every objective and key result of ``cycle``.

    One transaction, run again from the start if it collides with a writer anyway (see
    ``orgs.db.atomic_with_retry``): first the cycle's propagation lock, so runs of one cycle take
    turns; then the reads and the computation, which block no writer; then the organization lock
    for the write phase. A writer that committed after the reads changed the generation: the
    result may be stale, so it is computed again under the lock, and what is written is current.
    """
    with _gc_paused(aged=True):
        key = _written_key(cycle.pk)
        _WRITTEN.pop(key, None)
        outcome = atomic_with_retry(_run, cycle, now=now)
        # The rows kept take what the run wrote (its last attempt's, committed), then the
        # state is saved with them: the next run, here or after a restart, reads none again.
        # (Called inside a transaction that then rolls back, as no caller does, the rows kept
        # would hold writes that never committed: tasks call it outside any.)
        _after_write(cycle.pk, _WRITTEN.pop(key, None))
        if not outcome.skipped:
            outcome.saved_ms = _save(cycle)  # when due (``snapshot.due``), after the commit
        return outcome


# (cycle id, thread) -> the ``_Written`` of the run in progress's last attempt (``run``); the
# one its writes fill (``_write``, ``_write_flows``), while they run. By thread: a run of the
# cycle in another thread of the process never takes this run's uncommitted writes.
_WRITTEN = {}


def _written_key(cycle_id):
    return cycle_id, threading.get_ident()
_WRITING = ContextVar("network_writing", default=None)


def _generation(cycle):
    return NetworkState.objects.filter(cycle=cycle).values_list("generation", flat=True).first()


def _compute(cycle, now):
    return _computed(cycle, _read(cycle), now)


def _read(cycle):
    # Under the cycle's lock: a run arriving while the worker's warm start reads the cycle's
    # state back waits for it, and then finds it (``warm_start``).
    with _restoring(cycle.pk):
        _READ_BACK_ONLY.discard(cycle.pk)
        if cycle.pk not in _GRAPHS:
            _restore(cycle)  # a process that kept nothing of the cycle: a restart, a deploy
    return _load(cycle)


def _computed(cycle, data, now):
    t0 = time.perf_counter()
    own, edges, rolled_values = _own_health_and_edges(cycle, data, now)
    results = _propagate(cycle.pk, own, edges)
    data["flows"] = _compute_flows(cycle, data, results)
    return data, own, edges, rolled_values, results, (time.perf_counter() - t0) * 1000


# The graph of the last run of each of a few cycles in this process (``propagation.Graph``): the
# next run of the cycle computes again only the nodes a change reached (``repropagate``), when
# only own healths changed; otherwise, or in another process, it propagates in full. What is
# kept is a function of its own healths and edges alone, which the next run compares with its
# own: a run that fails, or a write made anywhere, cannot make it wrong.
_GRAPHS = OrderedDict()
KEPT_GRAPHS = 2


def _propagate(cycle_id, own, edges):
    graph = _GRAPHS.pop(cycle_id, None)
    graph = graph and propagation.repropagate(graph, own, edges)
    if graph is None:
        graph = propagation.propagate_graph(own, edges)
    _GRAPHS[cycle_id] = graph
    while len(_GRAPHS) > KEPT_GRAPHS:
        _GRAPHS.popitem(last=False)
    return graph.results


def forget(*, saved=True):
    """Drop what this process kept from earlier runs (graphs, the rules' units) and, unless
    ``saved`` is False, every cycle's saved state too (``snapshot``): the next run of every
    cycle computes everything. With ``saved=False``: what a restart of the process leaves."""
    if saved:
        with scopes_disabled():
            NetworkSnapshot.objects.all().delete()
    snapshot.forget()
    _GRAPHS.clear()
    _READ_BACK_ONLY.clear()
    _ROWS.clear()
    _GAVE.clear()
    _IMPACTS.clear()
    _GAVE_ELAPSED.clear()
    _HEALTHS.clear()
    _OWN.clear()
    _DIFFED.clear()
    _FLOWS.clear()
    alignment_rules.forget()
    alignment_kept.forget()


def _restore(cycle):
    """Give the process back the state saved for the cycle (``snapshot.restore``), if there is
    one it can trust: each part is then checked before use as what the process kept is.
    Called under the cycle's lock (``_restoring``)."""
    state = snapshot.restore(cycle)
    if state is None:
        return False
    _install(cycle.pk, state)
    return True


def _install(pk, state):
    """What ``snapshot.restore`` read back of cycle ``pk``, kept as the process's own."""
    for kept, part in ((_GRAPHS, "graph"), (_ROWS, "rows"), (_IMPACTS, "impacts"),
                       (_OWN, "own"), (_DIFFED, "diffed"), (_FLOWS, "flows")):
        if state[part] is not None:
            kept.pop(pk, None)
            kept[pk] = state[part]
            while len(kept) > KEPT_GRAPHS:
                kept.popitem(last=False)
    if state["rules"] is not None:
        alignment_kept.put(pk, state["rules"])
    if state["gave"] is not None:
        _GAVE.pop(pk, None)
        _GAVE[pk], _GAVE_ELAPSED[pk] = state["gave"], state["elapsed"]
    if state["healths"]:  # keyed by their whole input: the process's own win where both are
        state["healths"].update(_HEALTHS.previous)
        _HEALTHS.previous = state["healths"]


# One lock per cycle around reading its saved state back and keeping it (``_restore``,
# ``warm_start``): a state is never read back twice at once, nor kept half read, nor kept over
# what a run of the cycle left. Runs of other cycles do not wait. (What is kept is checked
# before use whatever its age, so the lock is about work, not about what a run computes.)
_RESTORING = {}
_RESTORING_LOCK = threading.Lock()


def _restoring(cycle_id):
    with _RESTORING_LOCK:
        lock = _RESTORING.get(cycle_id)
        if lock is None:
            lock = _RESTORING[cycle_id] = threading.Lock()
        return lock


# The cycles whose state the warm start read back and no run of this process used since.
_READ_BACK_ONLY = set()

# The saved states a worker process that starts reads back: those of the cycles saved most
# recently, within this age (an older one is likely a cycle nobody changes any more).
WARM_START_AGE = timedelta(days=3)


def warm_start():
    """Start reading back, in a background thread, the saved state of the cycles saved most
    recently (``read_back_newest``), so that the first run of each in this process is a warm
    run. Called when a worker process starts (``snapshot._on_start``); returns at once, with the
    thread (None when the ``NETWORK_WARM_START`` setting is off). A run of a cycle whose state
    is being read back waits for it; a failure is logged, and the run then reads back as it
    would have."""
    if not settings.NETWORK_WARM_START:
        return None
    thread = threading.Thread(target=_warm_start, name="network-warm-start", daemon=True)
    thread.start()
    return thread


def _warm_start():
    try:
        read_back_newest()
    except Exception:  # never into the worker: each cycle's first run reads back as before
        logger.exception("Warm start: the saved network states could not be read back.")
    finally:
        connections.close_all()  # this thread's own connections (Django's are per thread)


def read_back_newest():
    """Read back and keep the saved state of the cycles saved most recently (at most
    ``KEPT_GRAPHS``, the newest first, saved within ``WARM_START_AGE``), in this thread (a
    worker's warm start, the bench). Each is checked as a run checks it: one that cannot be
    trusted is logged and skipped. Returns the ids of the cycles read back."""
    started = time.perf_counter()
    with scopes_disabled():
        # Across organizations on purpose: a worker runs the cycles of every organization (as
        # ``save_kept`` saves them). Each state is then read by its cycle's own organization
        # (``snapshot.restore``), as a run reads it.
        newest = list(NetworkSnapshot.objects.filter(saved_at__gte=timezone.now() - WARM_START_AGE)
                      .order_by("-saved_at", "-pk")
                      .values_list("cycle_id", flat=True)[:KEPT_GRAPHS])
        cycles = Cycle.objects.in_bulk(newest)
    restored = [pk for pk in newest if pk in cycles and _warm_start_cycle(cycles[pk])]
    if restored:
        # The collector's pass over the millions of objects read back (0.25-0.35 s at 100,000
        # nodes) is taken here, off the runs, rather than at its next turn, which may fall
        # inside the first run; the objects then sit in the oldest generation.
        gc.collect()
        logger.info("Warm start: the saved network state of cycles %s read back in %.0f ms.",
                    ", ".join(map(str, restored)), (time.perf_counter() - started) * 1000)
    return restored


def _warm_start_cycle(cycle):
    """Read back and keep the state saved for ``cycle``, unless a run of it got there first or
    runs of other cycles took the room (what a run keeps is never dropped for a guess).
    Whether it was kept."""
    pk = cycle.pk
    # (The collector is paused for the whole process: a run meanwhile may find it on, and only
    # be slower for it.)
    with _restoring(pk), _gc_paused():
        if pk in _GRAPHS or len(_GRAPHS) >= KEPT_GRAPHS:
            return False
        state = snapshot.restore(cycle)  # checked as at a run: logged and None if untrusted
        if state is None or len(_GRAPHS) >= KEPT_GRAPHS:
            return False
        _install(pk, state)
        _READ_BACK_ONLY.add(pk)
        # The rules' part too, decoded now rather than by the cycle's first run.
        alignment_kept.decode(pk)
        return True


def save_kept():
    """Save what this process keeps of every cycle (a worker process that stops), but for the
    states its warm start read back that no run used since: they are saved already, and each of
    a worker's processes holds them (the last to stop would put back an older state over the
    one the process that ran the cycle saved)."""
    # Across organizations on purpose: a worker process keeps the cycles of every organization
    # it ran; each is then saved under its own organization (``snapshot.save``).
    with scopes_disabled():
        cycles = list(Cycle.objects.filter(pk__in=set(_GRAPHS) - _READ_BACK_ONLY))
    with _gc_paused():
        for cycle in cycles:
            _save(cycle, always=True)


def _save(cycle, *, always=False):
    """Save what this process keeps of the cycle, when due (``snapshot.due``): a failure is
    logged and costs the next restart a run from nothing, never this run. Returns the time it
    took (ms)."""
    pk = cycle.pk
    graph = _GRAPHS.get(pk)
    if graph is None or not (always or snapshot.due(pk)):
        return 0.0
    started = time.perf_counter()
    # Off PostgreSQL every row is read again on every run: what the rows give is never reused.
    rows = _ROWS.get(pk)
    state = {"graph": graph, "healths": _HEALTHS.previous, "rows": rows,
             "gave": _GAVE.get(pk) if rows else None,
             "elapsed": _GAVE_ELAPSED.get(pk) if rows else None,
             "impacts": _IMPACTS.get(pk) if rows else None,
             # What the warm run keeps besides, so that the first run after a restart is one.
             "own": _OWN.get(pk) if rows else None, "diffed": _DIFFED.get(pk) if rows else None,
             "flows": _FLOWS.get(pk) if rows else None,
             "rules": alignment_kept.kept_or_saved(pk) if rows else None}
    try:
        snapshot.save(cycle, state, len(graph.results))
    except Exception:
        logger.exception("Could not save the network state of cycle %s.", pk,
                         extra={"organization": cycle.organization_id})
    return (time.perf_counter() - started) * 1000


@contextmanager
def _gc_paused(*, aged=False):
    """The run makes a few objects per node and almost no reference cycles; at 100,000 nodes
    the cyclic garbage collector's passes over them (young, then all of them again and again
    as they age) cost a fifth of its time. Paused for the run; what it leaves is freed by
    reference counting as usual.

    aged (a run): what the run leaves goes to the oldest generation, unexamined. Else the
    first allocation after the run starts a young collection over every object the run made
    (over a million from nothing at 100,000 nodes, 0.6-0.9 s of CPU), which the task waits for,
    then another as they age, in the next task; and most of them are the rows, graphs and rules'
    state kept for the next run. A cycle among them is found by the next full collection, as
    any old object's is. Not when something else froze objects (``gc.freeze``, a bench):
    unfreezing would release them."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            if aged and not gc.get_freeze_count():
                gc.freeze()  # every generation's objects, and their counts reset
                gc.unfreeze()  # back, into the oldest generation
            gc.enable()


def _run(cycle, *, now=None):
    started = time.perf_counter()
    _WRITTEN.pop(_written_key(cycle.pk), None)  # an attempt rolled back wrote nothing
    now = now or timezone.now()
    lock_propagation(cycle.pk)
    generation = _generation(cycle)
    digest = fingerprint(cycle, now)
    if digest == _stored_fingerprint(cycle):
        # Nothing the run reads changed since a run read the same: only the findings that
        # depend on the clock are computed (``alignment.report.prepare(reuse=True)``).
        findings = alignment_report.prepare(cycle, now=now, reuse=True)
        lock_organization_id(cycle.organization_id)
        if _generation(cycle) == generation:
            return _skip_run(cycle, findings, now, generation, started)
        # A change came in meanwhile: the full run below, under the lock.
    else:
        (data, own, edges, rolled_values, results, compute_ms), findings = \
            _compute_and_prepare(cycle, now)
        lock_organization_id(cycle.organization_id)
    if _generation(cycle) != generation:
        generation = _generation(cycle)
        digest = fingerprint(cycle, now)
        (data, own, edges, rolled_values, results, compute_ms), findings = \
            _compute_and_prepare(cycle, now)
    changed_o, changed_k, before, after = _diff(data, results, cycle.pk)
    webhooks.emit_health_changes(cycle, data, changed_o, changed_k)
    # What the write leaves in the rows the run read, for the rows kept after the commit.
    written = _WRITTEN[_written_key(cycle.pk)] = _Written(data) if cycle.pk in _ROWS else None
    token = _WRITING.set(written)
    try:
        _write(changed_o, changed_k, rolled_values)
        _write_flows(data["flows"]["changed"])
    finally:
        _WRITING.reset(token)
    alignment_report.save(cycle, findings, now=now)  # and stored: pages read them
    alerts = _alert(cycle, data, results, before, after,
                    extra=_flow_notes(cycle, data, results, before))
    state, _ = NetworkState.objects.get_or_create(
        cycle=cycle, defaults={"organization_id": cycle.organization_id})
    # ``skipped`` (rows left out) is shown on the Network page to the people who can repair
    # them, and cleared by a clean run. Written here, in the write phase: the NetworkState row
    # comes after the organization lock in the lock order.
    # The digest taken before the reads: if this run changed anything it reads (or someone else
    # did meanwhile), the next run finds another digest and runs in full.
    NetworkState.objects.filter(pk=state.pk).update(
        computed_at=now, last_nodes=len(own), last_edges=len(edges), skipped=data["skipped"],
        fingerprint=digest or "", last_ms=round((time.perf_counter() - started) * 1000))
    NetworkState.objects.filter(pk=state.pk, generation=generation or 0).update(dirty=False)
    health_changed(cycle)  # health written with raw SQL: cached reads read afresh on commit
    return Outcome(len(own), len(edges), len(changed_o) + len(changed_k), alerts, compute_ms,
                   (time.perf_counter() - started) * 1000)


def _compute_and_prepare(cycle, now):
    """The compute phase: the network's rows read and its computation, and the misalignment
    rules' (``alignment.report.prepare``, whose check takes the key results read here). When
    this process may fork for the rules (``alignment.report.FORK``), the report's reads come
    first, and a run of every rule over a large cycle goes to a child process on the other
    core while the network computes here (``beside``)."""
    if not alignment_report.FORK["on"]:
        computed = _compute(cycle, now)
        return computed, alignment_report.prepare(cycle, now=now)  # the rules, computed
    data = _read(cycle)
    computed = []

    def beside():
        computed.append(_computed(cycle, data, now))

    findings = alignment_report.prepare(cycle, now=now, beside=beside)
    if not computed:  # the rules ran here (or only what a change reached): the network now
        beside()
    return computed[0], findings


def _stored_fingerprint(cycle):
    stored = NetworkState.objects.filter(cycle=cycle).values_list("fingerprint", flat=True)
    return stored.first() or None


def _skip_run(cycle, findings, now, generation, started):
    """The write phase of a run that found nothing changed: the propagation would write no
    row and raise no alert, so only the findings that depend on the clock and the times are
    written."""
    alignment_report.save(cycle, findings, now=now)
    states = NetworkState.objects.filter(cycle=cycle)
    states.update(computed_at=now, last_ms=round((time.perf_counter() - started) * 1000))
    states.filter(generation=generation or 0).update(dirty=False)
    nodes, edges = states.values_list("last_nodes", "last_edges").first()
    return Outcome(nodes, edges, 0, 0, 0.0, (time.perf_counter() - started) * 1000, True)


# What a run reads, and so what its fingerprint covers. Whole rows wherever the run reads a
# table's columns (``{row}``: a new column is covered without a change here); of people, only
# what the run reads (a login changes a user's row, not the cycle's health). The findings of the
# rules that do not depend on the clock are in it too: a run that finds the same digest reuses
# them.
#
# On PostgreSQL ``{row}`` is the row's id and version (``_VERSION``) rather than its text: any
# write of a row, of any column, moves its version, so a version is never less safe than the
# text (a version that moved for nothing, a rewrite with the same values or a VACUUM FULL, only
# makes the next run compute where it could have skipped), and it costs a fraction of turning
# every column of 100,000 rows into text. Elsewhere ``{row}`` is the whole row.
_READS = (
    ("organization", "SELECT {row} FROM orgs_organization t WHERE t.id = %(org)s"),
    ("cycle", "SELECT {row} FROM orgs_cycle t WHERE t.id = %(cycle)s"),
    ("teams", "SELECT {row} FROM orgs_team t WHERE t.organization_id = %(org)s"),
    ("themes", "SELECT {row} FROM orgs_theme t WHERE t.organization_id = %(org)s"),
    ("leads", "SELECT u.id, u.full_name FROM orgs_user u WHERE u.id IN "
              "(SELECT lead_id FROM orgs_team WHERE organization_id = %(org)s)"),
    ("members", "SELECT m.id, m.user_id, m.role FROM orgs_membership m "
                "WHERE m.organization_id = %(org)s"),
    ("member_teams", "SELECT mt.id, mt.membership_id, mt.team_id FROM orgs_membership_teams mt "
                     "JOIN orgs_membership m ON m.id = mt.membership_id "
                     "WHERE m.organization_id = %(org)s"),
    ("objectives", "SELECT {row} FROM okrs_objective t "
                   "WHERE t.organization_id = %(org)s AND t.cycle_id = %(cycle)s"),
    # With each key result, whether its last check-in is older than ``progress.STALE_AFTER``
    # at the run's time (it turns stale during a day, its row unchanged).
    ("key_results", "SELECT {row}, t.last_check_in_at < %(stale_before)s AS stale "
                    "FROM okrs_keyresult t JOIN okrs_objective o ON o.id = t.objective_id "
                    "WHERE t.organization_id = %(org)s AND o.cycle_id = %(cycle)s"),
    ("dependencies", "SELECT {row} FROM dependencies_dependency t "
                     "WHERE t.organization_id = %(org)s AND t.cycle_id = %(cycle)s"),
    ("extra_parents", "SELECT {row} FROM okrs_objectiveparent t JOIN okrs_objective o "
                      "ON o.id = t.objective_id "
                      "WHERE t.organization_id = %(org)s AND o.cycle_id = %(cycle)s"),
    ("shares", "SELECT {row} FROM dependencies_objectiveshare t JOIN okrs_objective o "
               "ON o.id = t.objective_id "
               "WHERE t.organization_id = %(org)s AND o.cycle_id = %(cycle)s"),
    ("findings", "SELECT {row} FROM alignment_finding t WHERE t.organization_id = %(org)s "
                 "AND t.cycle_id = %(cycle)s AND t.rule NOT IN ({timed})"),
    ("report", "SELECT t.id FROM alignment_findingsreport t WHERE t.cycle_id = %(cycle)s"),
    # Not read today; few rows, and what a rule about strategy or closing would read first.
    ("perspectives", "SELECT {row} FROM okrs_perspective t WHERE t.organization_id = %(org)s"),
    ("goals", "SELECT {row} FROM okrs_strategicgoal t WHERE t.organization_id = %(org)s"),
    ("closes", "SELECT {row} FROM okrs_objectiveclose t JOIN okrs_objective o "
               "ON o.id = t.objective_id "
               "WHERE t.organization_id = %(org)s AND o.cycle_id = %(cycle)s"),
)
# A row as ``{row}`` stands for it on PostgreSQL: its id and version (see ``_VERSION`` below).
_ROW_VERSION = "t.id, t.xmin, t.ctid"


# The code a run executes, and the models whose fields, choices and managers it reads and
# writes through: exactly what can change what a run computes, keeps, saves or compares (paths
# under the project's root, digested in this order). Views, forms, templates, admin, emails
# (``DELIVERY_MODULES``), tests and migrations are left out, so that a deploy touching only
# those keeps every cycle's saved state (``snapshot``) and the rules' stored units and inputs
# digest (``alignment.report``). ``tests/dependencies/test_code_version.py`` runs every kind of
# run and fails when a file whose code ran, or whose models a run queried, is missing here.
COMPUTING_MODULES = (
    "okrs/progress.py",
    "okrs/models.py",
    "orgs/db.py",
    "orgs/models.py",
    "orgs/scoping.py",
    "orgs/versions.py",
    "dependencies/propagation.py",
    "dependencies/flows.py",
    "dependencies/network.py",
    "dependencies/snapshot.py",
    "dependencies/models.py",
    "alignment/rules.py",
    "alignment/report.py",
    "alignment/kept.py",
    "alignment/models.py",
)
# The code a run calls only to deliver or record what it decided (the alert emails written to
# the outbox, chat posts, webhooks, the history's signals, tasks queued), and their models: it
# takes the transitions a run found and decides nothing a run keeps, saves, skips by or compares
# with, so it is left out of the version (a new email text applies from the next alert on).
# The guard test holds every file a run touches to one of the two lists.
DELIVERY_MODULES = (
    "dependencies/tasks.py",
    "orgs/tasks.py",
    "nudges/events.py",
    "nudges/mail.py",
    "nudges/outbox.py",
    "nudges/services.py",
    "nudges/models.py",
    "integrations/webhooks.py",
    "integrations/models.py",
    "history/capture.py",
)


def _code_version():
    """The source of ``COMPUTING_MODULES`` (the health math, the propagation, the rules, and
    the models they query), and the versions of Python (``marshal``'s format in the saved state,
    ``difflib``, float formatting) and Django (the ORM builds the queries): a new version gives
    another fingerprint and refuses the saved states, so the first run after such a deploy runs
    in full."""
    import sys
    from pathlib import Path

    import django

    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256(f"python {sys.version} django {django.get_version()}\n".encode())
    for name in COMPUTING_MODULES:
        digest.update(name.encode())
        digest.update((root / name).read_bytes())
    return digest.hexdigest()


_CODE_VERSION = None


def fingerprint(cycle, now):
    """A digest of everything a run of ``cycle`` at ``now`` reads: the rows above, the code
    version, and what the clock changes: the share of the cycle gone (a new day) and the key
    results whose last check-in is older than ``progress.STALE_AFTER`` (they turn stale during
    a day). Equal digests: a run would read the same and compute the same. PostgreSQL computes
    it (one statement, a few hundred bytes back); elsewhere the rows are hashed here."""
    elapsed = progress.elapsed_share(cycle.start_date, cycle.end_date, timezone.localdate(now))
    stale_before = connection.ops.adapt_datetimefield_value(now - progress.STALE_AFTER)
    args = {"org": cycle.organization_id, "cycle": cycle.pk, "stale_before": stale_before}
    parts = [(_part_sql(sql), "{row}" in sql) for _, sql in _READS]
    values = []
    digest = digest_of(parts, args, f"{code_version()} {elapsed!r}", values=values)
    _PARTS.pop(cycle.pk, None)
    _PARTS[cycle.pk] = dict(zip((name for name, _ in _READS), values, strict=True)) \
        if values else {}
    while len(_PARTS) > KEPT_GRAPHS:
        _PARTS.popitem(last=False)
    return digest


# cycle id -> {part name: its digest} of the cycle's last fingerprint in this process, on
# PostgreSQL: a run's compute phase reads one (``fingerprint_part``).
_PARTS = OrderedDict()


def _part_sql(sql):
    timed = ", ".join(f"'{rule}'" for rule in alignment_report.TIMED_RULES)  # names in code
    row = _ROW_VERSION if connection.vendor == "postgresql" else "t.*"
    return sql.format(row=row, timed=timed)


def fingerprint_part(cycle_id, name):
    """The digest of the part ``name`` of ``_READS`` in the cycle's last fingerprint in this
    process (taken at the start of the run in progress, when a run calls it), or None."""
    return _PARTS.get(cycle_id, {}).get(name)


def part_digest_sql(name, cycle):
    """(sql, params) of a subquery giving the digest of the part ``name`` of the cycle's
    fingerprint as ``fingerprint`` computes it (PostgreSQL; a part read by version, without
    the clock's arguments): to take in another statement what that part was then."""
    sql = _VERSIONS_DIGEST.format(sql=_part_sql(dict(_READS)[name]))
    args = {"org": cycle.organization_id, "cycle": cycle.pk}
    return re.sub(r"%\((\w+)\)s", "%s", sql), [args[arg] for arg in
                                                 re.findall(r"%\((\w+)\)s", sql)]


def code_version():
    global _CODE_VERSION
    if _CODE_VERSION is None:
        _CODE_VERSION = _code_version()
    return _CODE_VERSION


# A part's digest on PostgreSQL. Of the rows of a part that reads versions (``{row}``): the sum
# of a 64-bit hash of each row (its id, version and any other column: ``hash_record_extended``,
# no text built) and their count. A sum does not depend on the rows' order, so these parts, the
# cycle's largest tables, sort nothing; and as each row holds its id and version, a row that is
# written, comes or goes changes it but for a chance of about 2^-64 (versions are not values a
# user chooses). Of the other parts, whose rows hold names a user types: the md5 of their text.
_VERSIONS_DIGEST = ("(SELECT coalesce(sum(hash_record_extended(t, 0)), 0) || ' ' || count(*) "
                    "FROM ({sql}) t)")
_TEXT_DIGEST = ("(SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t.id), '')) "
                "|| ' ' || count(*) FROM ({sql}) t)")


def digest_of(parts, params, seed, values=None):
    """A digest of the rows of some queries and a seed. ``parts``: (sql, by_version) pairs, the
    SQL taking the named ``params`` and selecting an ``id`` column (and, with ``by_version``,
    the row's version on PostgreSQL). PostgreSQL computes it in one statement
    (``_VERSIONS_DIGEST`` or ``_TEXT_DIGEST`` of each part: a few hundred bytes come back, and
    go into ``values`` if given, one per part); elsewhere the rows are hashed here."""
    digest = hashlib.sha256(seed.encode())
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            columns = ", ".join((_VERSIONS_DIGEST if by_version else _TEXT_DIGEST).format(sql=sql)
                                for sql, by_version in parts)
            cursor.execute(f"SELECT {columns}", params)
            row = cursor.fetchone()
            for value in row:
                digest.update(f"{value}\n".encode())
            if values is not None:
                values.extend(row)
        else:
            for sql, _ in parts:
                cursor.execute(sql, params)
                rows = sorted(repr(row) for row in cursor.fetchall())
                digest.update(hashlib.md5("\n".join(rows).encode()).hexdigest().encode())
                digest.update(f" {len(rows)}\n".encode())
    return digest.hexdigest()


def _load(cycle):
    # What a run reads must be in its fingerprint (``_READS``), or a run that skips would miss
    # a change of it. In the order of ids: the edges' order decides which causes a node keeps
    # (``propagation._causes``), so a run's result does not depend on where PostgreSQL stored
    # the rows it read, and a run can start from the last one's graph (``repropagate``).
    # On PostgreSQL the rows of objectives and key results come from the last run's
    # (``_KeptRows``) but for those whose version moved: see ``_objective_and_key_result_rows``.
    org = cycle.organization_id
    objectives, key_results, bad = _objective_and_key_result_rows(cycle)
    dependencies = list(
        Dependency.objects.filter(organization_id=org, cycle=cycle,
                                  status__in=Dependency.PROPAGATING)
        .values_list("upstream_objective_id", "upstream_key_result_id",
                     "downstream_objective_id", "downstream_key_result_id", "status")
        .order_by("id")
    )
    # The parents each objective contributes to besides its primary one: (child, parent, share).
    extra_parents = list(ObjectiveParent.objects.filter(
        organization_id=org, objective__cycle=cycle).order_by("id").values_list(
            "objective_id", "parent_id", "share"))
    share_leads = defaultdict(set)
    for objective_id, lead_id in ObjectiveShare.objects.filter(
            organization_id=org, objective__cycle=cycle, team__lead__isnull=False
    ).values_list("objective_id", "team__lead_id"):
        share_leads[objective_id].add(lead_id)
    skipped = []
    for pk, reason in bad.items():
        k = key_results.pop(pk)
        skipped.append(_skip(cycle, KR, pk, k["title"], k["objective_id"], reason))
    return {"objectives": objectives, "key_results": key_results,
            "dependencies": dependencies, "share_leads": share_leads, "skipped": skipped,
            "extra_parents": extra_parents}


# A row's version on PostgreSQL: the transaction that wrote it (``xmin``) and where it sits
# (``ctid``). Every write of a row makes a new version with another pair: an UPDATE in
# another transaction another xmin; two UPDATEs in one transaction, another ctid (the old
# version's place is not reused before that transaction ends). So a row whose pair is the one
# kept is the row kept, to the byte; a pair that moved for nothing (a VACUUM FULL) only costs a
# read again.
_VERSION = "{table}.xmin::text || '/' || {table}.ctid::text"


# A 64-bit hash of the columns of an objective's own row that ``_read_objectives`` reads (its
# team's name, lead and kind come with the teams' versions, ``_KeptRows.teams``) and of those
# the misalignment rules read (``alignment.report._OBJECTIVE_COLUMNS``), kept with the row as
# "row_hash". A row whose version moved but whose hash did not (mptt rewrites the
# ``lft``/``rght`` of nearly every objective of a tree when one is inserted, moved or deleted)
# is the row kept: it only takes its new version, and is neither read nor compared again. The
# numbers and the JSON columns are hashed as their text, which is what is read: their values'
# hashes would not tell 1 from 1.0 (or 0.0 from -0.0), which a read does. Not a cryptographic
# hash: a title typed on purpose to give its row, in a write that moves nothing else the network
# reads, the very hash it had would leave the old title in what the network keeps until the
# row's next write (in that organization only); by accident, a chance of about 2^-64.
_OBJECTIVE_HASH = (
    "hash_record_extended(ROW({t}.parent_id, {t}.team_id, {t}.title, {t}.effective_health, "
    "{t}.level, {t}.progress_mode, {t}.key_results_weight::text, {t}.weight::text, "
    "{t}.rolled_progress::text, {t}.risk_causes::text, {t}.risk_above::text, "
    "{t}.impact::text, {t}.is_local, {t}.state, {t}.theme_id, {t}.commitment), 0)")


class _Bigint(RawSQL):
    """A bigint of PostgreSQL, as psycopg reads it: an int. Without the ``int()`` Django adds
    to an integer expression, whose converter would make ``_rows`` read every row through
    Django's iterator (twice the plain cursor's CPU at 25,000 objectives)."""

    def get_db_converters(self, connection):
        return []


def _versioned(queryset, table):
    """``queryset`` with each row's version, and an objective's with its hash besides
    (``_OBJECTIVE_HASH``)."""
    queryset = queryset.annotate(row_version=RawSQL(_VERSION.format(table=table), (),
                                                    output_field=TextField()))
    if table == "okrs_objective":
        queryset = queryset.annotate(row_hash=_Bigint(_OBJECTIVE_HASH.format(t=table), (),
                                                      output_field=BigIntegerField()))
    return queryset


def _objective_rows(cycle):
    return Objective.objects.filter(organization_id=cycle.organization_id, cycle=cycle).exclude(
        state=Objective.State.RETIRED).order_by("id")


def _key_result_rows(cycle):
    return KeyResult.objects.filter(
        organization_id=cycle.organization_id, objective__cycle=cycle).exclude(
        objective__state=Objective.State.RETIRED).order_by("id")


OBJECTIVE_COLUMNS = ("id", "parent_id", "team_id", "title", "effective_health", "team__name",
                     "team__lead_id",
                     # What the flows read (``_compute_flows``).
                     "level", "progress_mode", "key_results_weight", "weight",
                     "rolled_progress", "team__kind")
KEY_RESULT_COLUMNS = ("id", "objective_id", "title", "kind", "start_value", "target_value",
                      "current_value", "is_done", "confidence", "last_check_in_at", "weight",
                      "feeds_id", "rollup", "aligned_to_id", "owner_id", "owner_team_id",
                      "owner_team__name", "owner_team__lead_id", "effective_health")
# A key result row's numbers, kept as the database's text ("12.5000", "NaN"; None for NULL):
# a Decimal costs about 1 us to build and as much to hash (a run keys own healths by them),
# a str a tenth of that. What reads them takes ``Decimal(text)``, the very value read
# (``progress.key_result_health``, ``_rolled_values``, ``_unassessable``), or ``float(text)``,
# the float of that value (the weights of the edges and the flows).
NUMBER_COLUMNS = ("start_value", "target_value", "current_value", "weight")


# The columns of a row's team, taken from the organization's teams (``_team_columns``, a few
# thousand rows) rather than joined to every row: 225,000 values fewer to send and decode at
# 100,000 nodes. The column -> (the row's column naming the team, its place in the team's).
_TEAM_COLUMNS = {"team__name": ("team_id", 0), "team__lead_id": ("team_id", 1),
                 "team__kind": ("team_id", 2), "owner_team__name": ("owner_team_id", 0),
                 "owner_team__lead_id": ("owner_team_id", 1)}
_TEAMS = ContextVar("network_teams", default=None)  # id -> (name, lead_id, kind), in a read


def _team_columns(cycle):
    """The organization's teams' columns a row takes (``_TEAM_COLUMNS``): those read with the
    teams' versions (``_objective_and_key_result_rows``), else read here."""
    found = _TEAMS.get()
    if found is None:
        found = {pk: (name, lead_id, kind) for pk, name, lead_id, kind in Team.objects.filter(
            organization_id=cycle.organization_id).values_list("id", "name", "lead_id", "kind")}
    return found


def _objective_values(queryset, *, joined=False):
    version = tuple(name for name in ("row_version", "row_hash")
                    if name in queryset.query.annotations)
    columns = OBJECTIVE_COLUMNS if joined else _unjoined(OBJECTIVE_COLUMNS)
    return queryset.values(*columns, *version, causes_text=CAUSES_TEXT,
                           above_text=Cast("risk_above", TextField()),
                           impact_text=Cast("impact", TextField()))


def _unjoined(columns):
    return tuple(name for name in columns if name not in _TEAM_COLUMNS)


def _made(cycle, queryset, values_of, columns, *args, numbers_as_text=()):
    """The rows of ``values_of(queryset)`` made (``_row_maker``), each with its team's columns
    in the place of ``columns``; a row whose team is not one of the organization's (no service
    writes one) has them read with a join, as every row then."""
    names, values = _plain_rows(values_of(queryset), numbers_as_text)
    try:
        return names, values, _row_maker(names, columns)(values, _team_columns(cycle), *args)
    except KeyError:
        names, values = _plain_rows(values_of(queryset, joined=True), numbers_as_text)
        return names, values, _row_maker(names, columns)(values, {}, *args)


def _read_objectives(cycle, queryset):
    flags = {}  # the text of a flag of risk above -> the flag (``_flat_json``)
    names, values, rows = _made(cycle, queryset, _objective_values, OBJECTIVE_COLUMNS,
                                json.loads, partial(_flat_json, flags))
    for row in rows:
        if row["effective_health"] not in HEALTHS:
            _unknown_health(cycle, OBJ, row)
    return dict(zip(map(itemgetter(names.index("id")), values), rows, strict=True))


def _key_result_values(queryset, *, joined=False):
    version = ("row_version",) if "row_version" in queryset.query.annotations else ()
    fine = (RawSQL(*_fine_key_result(), output_field=BooleanField())
            if connection.vendor == "postgresql" else Value(False))
    columns = KEY_RESULT_COLUMNS if joined else _unjoined(KEY_RESULT_COLUMNS)
    return queryset.values(*columns, *version, causes_text=CAUSES_TEXT, fine=fine)


def _read_key_results(cycle, queryset):
    names, values, rows = _made(cycle, queryset, _key_result_values, KEY_RESULT_COLUMNS,
                                json.loads, None, numbers_as_text=NUMBER_COLUMNS)
    # "unassessable": None, but in the rows PostgreSQL did not find fine
    for row in compress(rows, map(not_, map(itemgetter(names.index("fine")), values))):
        if row["effective_health"] not in HEALTHS:
            _unknown_health(cycle, KR, row)
        # Why it cannot be assessed, or None (a function of the row alone: kept with it).
        row["unassessable"] = None if _assessable(row) else _unassessable(row)
    return dict(zip(map(itemgetter(names.index("id")), values), rows, strict=True))


# What a row read by ``_read_objectives`` or ``_read_key_results`` holds of a column read as
# text: its key and its value. Most nodes have no risk causes and no flows: no JSON decoding
# for them. ``fine``: whether PostgreSQL found a key result assessable (``_fine_key_result``);
# the rows it did not are checked after.
_MADE = {"causes_text": ("risk_causes", "[] if {v} == '[]' else loads({v})"),
         "above_text": ("risk_above", "{{}} if {v} == '{{}}' else flat({v})"),
         "impact_text": ("impact", "{{}} if {v} == '{{}}' else loads({v})"),
         "fine": ("unassessable", "None")}


@cache
def _row_maker(names, columns):
    """A function that makes the rows of a read of the columns ``names`` (tuples) as dicts
    of ``columns`` (those of ``_TEAM_COLUMNS`` looked up in ``teams`` when not read), then of
    the other names (as ``_MADE`` makes them): ``lambda rows, teams, loads, flat: [{"id": v0,
    ..., "owner_team__name": teams[v15][0], ..., "risk_causes": [] if v17 == '[]' else
    loads(v17), ...} for v0, ..., v18, in rows]``. Written out as ``snapshot._row_maker`` is,
    and for its reason: a dict display with constant keys makes each dict in one step, where
    ``dict(zip(names, row))`` then a ``pop`` and a store per column made as text cost twice
    the time. The names are this module's columns."""
    if not all(name.__class__ is str and name.isidentifier() for name in names):
        raise ValueError("column names must be identifiers")
    place = {name: f"v{i}" for i, name in enumerate(names)}
    pairs = []
    for name in columns:
        if name in place:
            pairs.append(f"{name!r}: {place[name]}")
        else:
            team, index = _TEAM_COLUMNS[name]
            pairs.append(f"{name!r}: teams[{place[team]}][{index}]")
    for name in names:
        if name not in columns:
            key, made = _MADE.get(name, (name, "{v}"))
            pairs.append(f"{key!r}: {made.format(v=place[name])}")
    values = "".join(f"{v}, " for v in place.values())
    return eval(f"lambda rows, teams, loads, flat: [{{{', '.join(pairs)}}} for {values}in rows]")


# Whether a key result row is one ``_assessable`` passes, with a known stored health, as
# PostgreSQL finds it: true for almost every row, so Python checks only the others (a row it
# does not pass, or NULL, is checked as before: it need only never pass a row those checks
# would not). NaN is above every number in PostgreSQL: refused by name, as the infinities.
@cache
def _fine_key_result():
    def in_(column, values):
        places = ", ".join(["%s"] * len(values))
        return f'coalesce("okrs_keyresult"."{column}", \'\') IN ({places})', values

    not_finite = ("NaN", "Infinity", "-Infinity")
    parts = [in_("kind", tuple(sorted(KINDS))), in_("confidence", ("", *Health.values)),
             in_("rollup", ("", *Rollup.values)), in_("effective_health", ("", *Health.values)),
             ('"okrs_keyresult"."weight" > 0 AND "okrs_keyresult"."weight" NOT IN (%s, %s)',
              not_finite[:2])]
    parts += [(f'("okrs_keyresult"."{column}" IS NULL '
               f'OR "okrs_keyresult"."{column}" NOT IN (%s, %s, %s))', not_finite)
              for column in ("start_value", "target_value", "current_value")]
    return (f"({' AND '.join(sql for sql, _ in parts)})",
            tuple(value for _, values in parts for value in values))


def _flat_json(decoded, text):
    """``json.loads(text)``, each time a new object, decoded once per run when it is a flat
    object (what a flag of risk above is, one shared by every objective below the same
    objective: thousands of the same text): the rows read are kept, each its own object."""
    found = decoded.get(text)
    if found is not None:
        return found.copy()
    value = json.loads(text)
    if value.__class__ is dict and all(v.__class__ in _PLAIN_JSON for v in value.values()):
        decoded[text] = value.copy()
    return value


_PLAIN_JSON = frozenset((str, int, float, bool, type(None)))


def _unknown_health(cycle, kind, row):
    # Unreadable stored result: recompute it as if it were new.
    logger.warning("Recompute of cycle %s of organization %s: %s %s had the unknown effective "
                   "health %r; it is computed again.", cycle.pk, cycle.organization_id,
                   "objective" if kind == OBJ else "key result", row["id"],
                   row["effective_health"],
                   extra={"organization": cycle.organization_id, "object": f"{kind}:{row['id']}"})
    row["effective_health"] = None


class _KeptRows(NamedTuple):
    """The rows of objectives and key results one run read (as ``_load`` makes them, never
    changed after: a run that changes one replaces it in its own dicts; only a row's version
    moves, when a later read finds the row the same in every other column: ``_as_kept``, and,
    after the run's commit, the version and the columns its own write left: ``_after_write``),
    with their versions, and the versions of the teams (whose names, leads and kinds the rows
    carry). ``horizon``: a transaction id such that every row version written after the rows
    were read has a transaction id not below it (``_horizon``); None: unknown. ``renewed``:
    the objectives whose version moved since the last run while their hash did not (a tree
    move), found by the run that read these rows: id -> (the version kept, the version read);
    the misalignment rules keep their own rows of them (``alignment.report._objective_rows``)."""
    teams: tuple
    objectives: dict
    key_results: dict
    horizon: int | None = None
    renewed: dict | None = None


_ROWS = OrderedDict()  # cycle id -> _KeptRows, for the last ``KEPT_GRAPHS`` cycles run


def kept_rows(cycle_id):
    """The ``_KeptRows`` of the cycle's last run in this process, or None. Read-only: the
    misalignment rules take their key results from it (``alignment.report``), after checking
    in SQL that its versions are the table's."""
    return _ROWS.get(cycle_id)
# A run that finds more than this share of rows moved reads them all again, in one query.
REREAD_ALL_ABOVE = 0.2
# A run that finds more objectives than this whose version alone moved (a tree move) asks
# only for the key results of the objectives written that had none kept (``_written``'s
# ``but``), rather than for those of every objective written.
VIA_HELD_ABOVE = 200


def _objective_and_key_result_rows(cycle):
    """The cycle's live objectives and key results as rows ({id: row}, in the order of ids),
    and the key results that cannot be assessed ({id: why}). On PostgreSQL it reads the
    versions of the rows (two narrow queries) and the whole rows only of those whose version
    is not the one kept from the last run; new rows and rows gone (deleted, retired, moved
    to another cycle) are seen as such. Elsewhere, every row."""
    objectives_qs, key_results_qs = _objective_rows(cycle), _key_result_rows(cycle)
    read_objectives = partial(_read_objectives, cycle)
    read_key_results = partial(_read_key_results, cycle)
    if connection.vendor != "postgresql":
        objectives, key_results = read_objectives(objectives_qs), read_key_results(key_results_qs)
    else:
        objectives_qs = _versioned(objectives_qs, "okrs_objective")
        key_results_qs = _versioned(key_results_qs, "okrs_keyresult")
        kept = _ROWS.pop(cycle.pk, None)
        horizon = _horizon()  # before any read of this run
        renewed = {}
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, xmin::text, ctid::text, name, lead_id, kind FROM orgs_team "
                           "WHERE organization_id = %s ORDER BY id", [cycle.organization_id])
            found = cursor.fetchall()
        teams = tuple(row[:3] for row in found)
        # The rows' teams' columns, of the teams' versions kept with them.
        token = _TEAMS.set({row[0]: row[3:] for row in found})
        try:
            if kept is None:
                with _reading_ahead(_key_result_values(key_results_qs), NUMBER_COLUMNS):
                    objectives = read_objectives(objectives_qs)
                    key_results = read_key_results(key_results_qs)
            elif kept.teams != teams:  # every row read again; those the same are kept
                with _reading_ahead(_key_result_values(key_results_qs), NUMBER_COLUMNS):
                    objectives = _as_kept(kept.objectives, read_objectives(objectives_qs))
                    key_results = _as_kept(kept.key_results, read_key_results(key_results_qs))
            else:
                since = kept.horizon
                if since is not None and horizon - since >= HORIZON_SPAN:
                    since = None  # too old to compare with a row's 32-bit transaction id
                if since is not None:
                    objectives_qs = _written(objectives_qs, since)
                objectives = _patch(kept.objectives, objectives_qs, read_objectives, renewed)
                if since is not None:
                    # A key result is in the cycle by its own row and its objective's (its cycle,
                    # its state): either written since the horizon, and it may have come or gone.
                    # After a tree move (most objectives written), only the objectives that had
                    # no key result kept: one that had, was in the cycle and live when the key
                    # results were read, so a key result of it whose own row was not written
                    # since was kept (it could not have come).
                    held = (sorted({k["objective_id"] for k in kept.key_results.values()})
                            if len(renewed) > VIA_HELD_ABOVE else None)
                    key_results_qs = _written(key_results_qs, since, via="okrs_objective",
                                              but=held)
                key_results = _patch(kept.key_results, key_results_qs, read_key_results)
        finally:
            _TEAMS.reset(token)
        _ROWS[cycle.pk] = _KeptRows(teams, objectives, key_results, horizon, renewed)
        while len(_ROWS) > KEPT_GRAPHS:
            _ROWS.popitem(last=False)
        objectives, key_results = dict(objectives), dict(key_results)
    bad = {pk: k["unassessable"] for pk, k in key_results.items() if k["unassessable"]}
    return objectives, key_results, bad


def _patch(kept, queryset, read, renewed=None):
    """The rows of ``queryset`` ({id: row}, in the order of ids): the ``kept`` ones but for
    those whose version moved, read again. When ``queryset`` knows which rows were written
    since the last run (``_written``), only their versions are read (``_written_since``);
    else, or when a kept row may have gone, the version of every row. ``renewed``: a dict
    that takes the rows kept whose version alone moved (``_rehashed``)."""
    hashed = ("row_hash",) if "row_hash" in queryset.query.annotations else ()
    written = _written_since(kept, queryset, hashed) if "written" in queryset.query.annotations \
        else None
    if written is None:
        versions = _rows_list(queryset.values_list("id", "row_version", *hashed))
        total = len(versions)
    else:
        versions, total = written
    get = kept.get
    moved = [pk for pk, version, *_ in versions
             if (get(pk) or _NO_ROW)["row_version"] != version]
    if moved and hashed:
        moved = _rehashed(kept, versions, moved, {} if renewed is None else renewed)
    if len(moved) > REREAD_ALL_ABOVE * max(total, 1):
        return _as_kept(kept, read(queryset))
    fresh = _as_kept(kept, read(queryset.filter(id__in=moved))) if moved else {}
    if written is None:
        # In the order of ids (the versions'), the kept rows but for the fresh ones; the rows
        # gone are not in the versions.
        return {pk: fresh.get(pk) or kept[pk] for pk, *_ in versions}
    rows = dict(kept)  # every kept row is still there (``_written_since``)
    rows.update(fresh)
    last = next(reversed(kept), None)  # the largest id kept (in the order of ids)
    if last is not None and any(pk < last for pk in fresh.keys() - kept.keys()):
        rows = dict(sorted(rows.items()))  # a row came back with an older id
    return rows


# A row version's transaction id (``xmin``) has 32 bits and wraps around: ``age`` compares two
# of them by their signed difference, which is right within 2^31 transactions. A horizon older
# than this is not used: the versions of every row are read, as without one.
HORIZON_SPAN = 2 ** 30


def _horizon():
    """A transaction id below which every transaction had ended when this statement ran (its
    snapshot's ``xmin``), and not above the run's own transaction's, if it has one yet. A row
    version written after this statement, by another transaction or by this one (also in a
    savepoint: a subtransaction's id comes after its parent's), has a transaction id not below
    it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, "
                       "pg_current_xact_id_if_assigned()::text::bigint")
        snapshot, mine = cursor.fetchone()
    return snapshot if mine is None else min(snapshot, mine)


def _written(queryset, since, via=None, but=None):
    """``queryset`` with ``written``: whether a row's version (or, with ``via``, that of the
    row of that table it is joined to, the name being its alias in the query, unless its id
    is in ``but``) has a transaction id not below the horizon ``since`` (of an earlier run:
    ``_horizon``)."""
    xid = str(since % 2 ** 32)
    sql, params = f"(age({queryset.model._meta.db_table}.xmin) <= age(%s::xid)", [xid]
    if via:
        sql += f" OR (age({via}.xmin) <= age(%s::xid)"
        params.append(xid)
        if but is not None:
            sql += f" AND NOT {via}.id = ANY(%s::bigint[])"
            params.append(but)
        sql += ")"
    return queryset.annotate(written=RawSQL(sql + ")", params, output_field=BooleanField()))


def _rehashed(kept, versions, moved, renewed):
    """Of the rows ``moved`` (whose version is not the one kept), those whose hash moved too
    (``_OBJECTIVE_HASH``), or that were not kept: the others are the rows kept, which take
    their new versions (and are the very objects kept, as after ``_as_kept``), noted in
    ``renewed`` (id -> (version kept, version read))."""
    get = kept.get
    hashes = {pk: value for pk, _, value in versions}
    left = []
    for pk in moved:
        row = get(pk)
        value = hashes[pk]
        if row is None or value is None or row.get("row_hash") != value:
            left.append(pk)
    if len(left) < len(moved):
        versions_of = {pk: version for pk, version, _ in versions}
        for pk in set(moved).difference(left):
            row = get(pk)
            renewed[pk] = (row["row_version"], versions_of[pk])
            row["row_version"] = versions_of[pk]
    return left


def _written_since(kept, queryset, hashed=()):
    """(id, version) of the rows of ``queryset`` written since the horizon it was given
    (``_written``), in the order of ids, and how many rows ``queryset`` has; None when a kept
    row may have gone. One statement, so one snapshot. With ``hashed`` (``("row_hash",)``),
    each row written also has its hash: (id, version, hash).

    Why that finds every row that moved: a row version visible now whose transaction id is
    below ``since`` was written by a transaction that had ended (committed) before the
    earlier run's reads, so that run read that very version (what it saw, this statement sees
    too: a version deleted since would be deleted here as well). So a row not in the answer is
    the row kept, if it was kept; a row that came into ``queryset`` since (new, or back from
    another cycle or from retired) had its own row written since, or, for a key result, its
    objective's (``via``, the table joined for the filters): it is in the answer. The versions
    compared are those of the whole row (``_VERSION``): the answer may hold rows the same as
    kept (a transaction still open then, a write of other columns), which costs a compare.
    Rows gone (deleted, retired, moved to another cycle) are not in the answer: they are seen
    in the count, which must be the kept rows and the new ones."""
    rows = queryset.order_by().values_list("id", "row_version", "written", *hashed)
    sql, params = rows.query.get_compiler(queryset.db).as_sql()
    names = ", ".join(("id", "row_version", "written", *hashed))
    # The hashes only of the rows written (the subquery is pulled up: the others are not
    # hashed).
    also = "".join(f", array_agg(q.{name} ORDER BY q.id) FILTER (WHERE q.written)"
                   for name in hashed)
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(
            "SELECT count(*), array_agg(q.id ORDER BY q.id) FILTER (WHERE q.written), "
            f"array_agg(q.row_version ORDER BY q.id) FILTER (WHERE q.written){also} "
            f"FROM ({sql}) AS q({names})", params)
        total, *columns = cursor.fetchone()
    versions = list(zip(*(column or () for column in columns), strict=True))
    came = sum(1 for pk, *_ in versions if pk not in kept)
    if total != len(kept) + came:
        return None
    return versions, total


_NO_ROW = {"row_version": None}


def _as_kept(kept, fresh):
    """The rows read again, each replaced by the kept one when that is the same in every
    column the run reads (their versions apart), the kept row then taking the new version.
    A row's version moves with any write of it, also of columns the run does not read: a new
    objective's tree insert rewrites the ``lft``/``rght`` of the objectives after it in its
    tree. The kept row, the very object, is what tells the later steps that nothing of it
    moved (its key results' parts, the impacts, the rules' key results)."""
    for pk, row in fresh.items():
        old = kept.get(pk)
        if old is not None and _same_row(old, row):
            old["row_version"] = row["row_version"]
            if "row_hash" in row:
                old["row_hash"] = row["row_hash"]
            fresh[pk] = old
    return fresh


_PLAIN_TYPES = frozenset((str, int, bool, type(None)))


def _same_row(old, new):
    """Whether two reads of a row hold the same values in every column but the version: equal,
    and of the same type and ``repr`` where ``==`` hides a difference (1 and 1.0 and True,
    Decimal("1.0") and Decimal("1.00"), the JSON columns' contents)."""
    if old.keys() != new.keys():
        return False
    for key, value in new.items():
        was = old[key]
        if was is value or key == "row_version" or key == "row_hash":
            continue
        kind = value.__class__
        if was.__class__ is not kind or was != value or (
                kind not in _PLAIN_TYPES and repr(was) != repr(value)):
            return False
    return True


def _rows_list(queryset):
    """The rows of a ``.values_list()`` queryset, read with a plain cursor."""
    sql, params = queryset.query.get_compiler(queryset.db).as_sql()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# The stored risk causes as text: "[]" for most nodes, decoded only when not empty.
CAUSES_TEXT = Cast("risk_causes", TextField())
KINDS = frozenset(KeyResult.Kind.values)  # once: ``.values`` builds a new list on every call
ROLLUPS = frozenset(("", None, *Rollup.values))


def _rows(queryset, numbers_as_text=()):
    """The rows of a ``.values()`` queryset, as its own iteration gives them (``_plain_rows``,
    made dicts)."""
    names, values = _plain_rows(queryset, numbers_as_text)
    # Every row has the columns named (one SELECT): zipped without checking each length.
    return [dict(zip(names, row, strict=False)) for row in values]


def _plain_rows(queryset, numbers_as_text=()):
    """The column names of a ``.values()`` queryset and its rows as tuples of the values its
    own iteration gives, read with a plain cursor when no column needs converting
    (PostgreSQL): at 100,000 rows, Django's iterator (a dict built key by key, fetched 100
    rows at a time) costs more than the query. ``numbers_as_text``: decimal columns given as
    ``str(Decimal)`` would give them (on PostgreSQL the column's own text, which is what its
    Decimal is parsed from)."""
    query = queryset.query
    names = tuple(query.selected) if query.selected else (
        *query.extra_select, *query.values_select, *query.annotation_select)
    compiler = query.get_compiler(queryset.db)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:
        return names, []
    fields = [s[0] for s in compiler.select[0:compiler.col_count]]
    if compiler.get_converters(fields) or compiler.has_composite_fields(fields):
        rows = list(queryset)  # SQLite: decimals and dates come back as text or numbers
        for row in rows:
            for name in numbers_as_text:
                if row[name] is not None:
                    row[name] = str(row[name])
        return names, [tuple(map(row.__getitem__, names)) for row in rows]
    with connections[queryset.db].cursor() as cursor:
        if numbers_as_text:
            # psycopg's own loader for text: every numeric column of this cursor's results
            # comes as the text PostgreSQL sent, so they must be the columns named.
            from psycopg.types.string import TextLoader

            decimals = {name for name, field in zip(names, fields, strict=True)
                        if field.output_field.get_internal_type() == "DecimalField"}
            if decimals != set(numbers_as_text):
                raise ValueError(f"Decimal columns {sorted(decimals)} are not those named.")

            cursor.cursor.adapters.register_loader("numeric", TextLoader)
        ahead = _AHEAD.get()
        if ahead is not None and ahead.cursor is not None:
            if ahead.names == names and ahead.statement == (sql, params):
                return names, ahead.take()
            ahead.close()  # the connection is out of pipeline mode before another statement
        cursor.execute(sql, params)
        if ahead is not None:
            ahead.execute()  # PostgreSQL executes it while psycopg decodes this statement's rows
        return names, cursor.fetchall()


class _Ahead:
    """A read ``_reading_ahead`` sends after the next statement's rows have come, before they
    are decoded: psycopg's pipeline mode sends it and returns, so that PostgreSQL executes it
    (scans, joins, sorts) meanwhile. Only the read of the same statement takes its rows; any
    other statement first takes the connection out of pipeline mode."""

    def __init__(self, queryset, numbers_as_text):
        self.queryset, self.numbers_as_text = queryset, numbers_as_text
        query = queryset.query
        self.names = tuple(query.selected) if query.selected else (
            *query.extra_select, *query.values_select, *query.annotation_select)
        self.statement = query.get_compiler(queryset.db).as_sql()
        self.stack = self.cursor = None
        self.done = False

    def execute(self):
        if self.done:
            return
        self.done = True
        self.stack = ExitStack()
        try:
            self.stack.enter_context(connections[self.queryset.db].connection.pipeline())
            self.cursor = self.stack.enter_context(connections[self.queryset.db].cursor())
            if self.numbers_as_text:
                from psycopg.types.string import TextLoader

                self.cursor.cursor.adapters.register_loader("numeric", TextLoader)
            self.cursor.execute(*self.statement)
        except BaseException:
            self.close()
            raise

    def take(self):
        try:
            return self.cursor.fetchall()
        finally:
            self.close()

    def close(self):
        self.done = True
        stack, self.stack, self.cursor = self.stack, None, None
        if stack is not None:
            stack.close()


_AHEAD = ContextVar("network_reading_ahead", default=None)


@contextmanager
def _reading_ahead(queryset, numbers_as_text=()):
    """While in it, the next statement ``_plain_rows`` executes is followed by ``queryset``'s,
    sent before the first one's rows are decoded, and ``_plain_rows`` of ``queryset`` takes its
    rows (read then as they would be then: the same statement, on the same connection and in
    the same transaction, only sent earlier). On PostgreSQL, when psycopg has pipeline mode."""
    if connections[queryset.db].vendor != "postgresql" or not _pipeline_supported():
        yield
        return
    ahead = _Ahead(queryset, numbers_as_text)
    token = _AHEAD.set(ahead)
    try:
        yield
    finally:
        _AHEAD.reset(token)
        ahead.close()


@cache
def _pipeline_supported():
    import psycopg

    return psycopg.Pipeline.is_supported()


# The text of a Decimal that is not a finite number (PostgreSQL writes "NaN", "Infinity" and
# "-Infinity"; the others are Python's). Any other text of a decimal column is a finite number.
NOT_FINITE = frozenset(("NaN", "-NaN", "sNaN", "-sNaN", "Infinity", "-Infinity"))


def _assessable(k):
    """True for a row ``_unassessable`` finds nothing wrong with, checked without building a
    message or a Decimal: almost every row, so only the others go through ``_unassessable``.
    The numbers are text (``NUMBER_COLUMNS``); a weight whose float is positive has a positive
    Decimal (a row declined here only costs a call of ``_unassessable``)."""
    w, s, t, c = k["weight"], k["start_value"], k["target_value"], k["current_value"]
    return (k["kind"] in KINDS and k["confidence"] in HEALTHS and k["rollup"] in ROLLUPS
            and w.__class__ is str and w not in NOT_FINITE and float(w) > 0
            and (s is None or s.__class__ is str and s not in NOT_FINITE)
            and (t is None or t.__class__ is str and t not in NOT_FINITE)
            and (c is None or c.__class__ is str and c not in NOT_FINITE))


def _unassessable(k):
    """Why a key result row cannot be assessed (a value no service would write), or None."""
    if k["kind"] not in KINDS:
        return f"unknown kind {k['kind']!r}"
    if k["confidence"] not in HEALTHS:
        return f"unknown confidence {k['confidence']!r}"
    if k["rollup"] not in ROLLUPS:
        return f"unknown roll-up {k['rollup']!r}"
    weight = k["weight"]
    if weight is None or not Decimal(weight).is_finite() or Decimal(weight) <= 0:
        return f"weight {weight} is not a positive number"
    for field in ("start_value", "target_value", "current_value"):
        value = k[field]
        if value is not None and not Decimal(value).is_finite():
            return f"{field.replace('_', ' ')} {value} is not a number"
    return None


def _skip(cycle, kind, pk, title, objective_id, reason):
    """Log a row the recompute leaves out; the run goes on with the others."""
    logger.error("Recompute of cycle %s of organization %s skipped %s %s: %s.", cycle.pk,
                 cycle.organization_id, "objective" if kind == OBJ else "key result", pk, reason,
                 extra={"organization": cycle.organization_id, "object": f"{kind}:{pk}"})
    return {"kind": kind, "id": pk, "title": title, "objective": objective_id,
            "reason": reason}


def _rolled_values(key_results):
    """Current values of shared key results that take them from their contributors (sum or
    mean), contributors first, so a chain of shared KRs adds up."""
    # The few that feed another (looked up in C: a cycle has a key result per row).
    feeding = compress(key_results.items(), map(
        key_results.__contains__, map(itemgetter("feeds_id"), key_results.values())))
    feeds = [Edge((KR, pk), (KR, k["feeds_id"])) for pk, k in feeding]
    contributors = defaultdict(list)
    for e in feeds:
        contributors[e.dst[1]].append(e.src[1])
    values = {}
    involved = {e.src for e in feeds} | {e.dst for e in feeds}
    for _, pk in propagation.order(involved, feeds):
        k = key_results[pk]
        if not k["rollup"] or not contributors[pk] or k["kind"] != KeyResult.Kind.NUMERIC:
            continue
        parts = [key_results[c]["current_value"] for c in contributors[pk]]
        parts = [Decimal(v) for v in parts if v is not None]
        if not parts:
            continue
        total = sum(parts, Decimal(0))
        value = total if k["rollup"] == "sum" else total / len(parts)
        value = value.quantize(Decimal("0.0001"))
        if k["current_value"] is None or Decimal(k["current_value"]) != value:
            values[pk] = value
        # A copy: the rows read are kept for the next run as they were read (``_KeptRows``).
        key_results[pk] = {**k, "current_value": str(value)}  # text, as read (NUMBER_COLUMNS)
    return values


def _own_health_and_edges(cycle, data, now):
    objectives, key_results = data["objectives"], data["key_results"]
    rolled_values = _rolled_values(key_results)
    elapsed = progress.elapsed_share(cycle.start_date, cycle.end_date, timezone.localdate(now))
    skipped = data.setdefault("skipped", [])
    skipped_before = len(skipped)
    # The health alone, without the sentences (``progress.key_result_health``): the same
    # result as ``assess_key_result`` at a fraction of the cost.
    key_result_health = progress.key_result_health
    kept, kept_now = _HEALTHS.previous, _HEALTHS.current
    # What each key result gave the last run of the cycle, by the row it was read as (the very
    # object: ``_KeptRows``), the team of its objective, whether the key result it feeds is
    # there, and whether it was stale: (own health, aligned part, edges, objective's part).
    last_gave = _GAVE.pop(cycle.pk, {}) if _GAVE_ELAPSED.get(cycle.pk) == elapsed else {}
    last_own = _OWN.pop(cycle.pk, None)
    # Staleness as ``progress.key_result_health`` decides it (``now - last > STALE_AFTER``
    # while the cycle runs), by one comparison of datetimes per row.
    stale_before = now - progress.STALE_AFTER if elapsed < 1 else None
    # An Edge built by ``tuple.__new__`` itself: its own ``__new__`` is a call in Python, and
    # a run builds over 100,000 of them.
    new_edge = partial(tuple.__new__, Edge)

    def gives(pk, k, signature, objective):
        """What key result ``k`` gives (``_GAVE``'s entry), or None when it is left out."""
        stale, _, team, fed = signature
        objective_id = k["objective_id"]
        # Its own health depends on these alone (``now`` only through staleness; the values
        # are text, ``NUMBER_COLUMNS``): kept from the last run when they are the same.
        confidence = k["confidence"] or None
        key = (k["kind"], k["start_value"], k["target_value"], k["current_value"],
               k["is_done"], confidence, elapsed, stale)
        found = kept_now.get(key)
        if found is None:
            found = kept.get(key)
            if found is None:
                try:
                    found = key_result_health(
                        k["kind"], k["start_value"], k["target_value"], k["current_value"],
                        k["is_done"], confidence, elapsed, k["last_check_in_at"], now)
                except (ValueError, TypeError, ArithmeticError):
                    found = None, confidence
                except Exception as e:  # one bad row never stops the cycle's recompute
                    del key_results[pk]
                    skipped.append(_skip(cycle, KR, pk, k["title"], objective_id,
                                         f"{type(e).__name__}: {e}"))
                    return None
            kept_now[key] = found
        done, health = found
        node = (KR, pk)
        # An objective's own health comes from its own team's key results; another team's key
        # result on it rolls up (a reason of its own: "its key results", naming that team).
        is_own = objective is not None and team == k["owner_team_id"]
        weight = float(k["weight"])  # what ``objective_health`` weighs (``float(w)``)
        to_objective = new_edge((node, (OBJ, objective_id), OWN if is_own else ROLLUP, weight))
        aligned_to = k["aligned_to_id"]
        aligned = None
        if aligned_to is None and not fed:  # almost every key result
            kr_edges = (to_objective,)
        else:
            kr_edges = [to_objective]
            if aligned_to is not None:  # counts there like an aligned objective
                aligned = (aligned_to, done)
                kr_edges.insert(0, new_edge((node, (OBJ, aligned_to), ROLLUP, 1.0)))
            if fed:
                kr_edges.append(new_edge((node, (KR, k["feeds_id"]), ROLLUP, 1.0)))
            kr_edges = tuple(kr_edges)
        part = (done, health, weight) if is_own else None
        return k, signature, health, aligned, kr_edges, part

    patched = last_own and _patched_own(
        last_own, last_gave, data, now, elapsed, stale_before, gives, _objective_own_health)
    if patched:
        own, edges = patched.own, patched.edges
        _GAVE.pop(cycle.pk, None)
        _GAVE[cycle.pk], _GAVE_ELAPSED[cycle.pk] = patched.gave, elapsed
        _OWN[cycle.pk] = patched.kept
        _keep_few(_OWN)
        return own, edges, rolled_values

    own, edges, parts = {}, [], defaultdict(list)
    gave, aligned_key_results = {}, []
    made = None if last_gave else _given_by_all(
        key_results, objectives, elapsed, stale_before, now, kept, kept_now, new_edge)
    if made is not None:
        gave, own, edges, parts, aligned_key_results = made
    else:
        for pk, k in list(key_results.items()):
            last = k["last_check_in_at"]
            objective = objectives.get(k["objective_id"])
            signature = (stale_before is not None and last is not None and last < stale_before,
                         objective is None, objective["team_id"] if objective is not None else None,
                         k["feeds_id"] in key_results)
            mine = last_gave.get(pk)
            if mine is None or mine[0] is not k or mine[1] != signature:
                mine = gives(pk, k, signature, objective)
                if mine is None:
                    continue
            gave[pk] = mine
            _, _, own[(KR, pk)], aligned, kr_edges, part = mine
            if aligned is not None:
                aligned_key_results.append(aligned)
            edges += kr_edges
            if part is not None:
                parts[k["objective_id"]].append(part)
    kr_edges = edges
    own_progress = {}
    # ``_objective_own_health`` without a call per objective.
    current, previous = _HEALTHS.current, _HEALTHS.previous
    for pk, o in list(objectives.items()):
        mine = parts.get(pk, ())
        key = (OBJ, *mine)
        found = current.get(key)
        if found is None:
            found = previous.get(key)
            if found is None:
                try:
                    found = progress.objective_health(mine)
                except Exception as e:  # noqa: BLE001 (one bad row never stops the recompute)
                    del objectives[pk]
                    skipped.append(_skip(cycle, OBJ, pk, o["title"], pk,
                                         f"{type(e).__name__}: {e}"))
                    continue
            current[key] = found
        own_progress[pk], own[(OBJ, pk)] = found
    # Those of the key results whose objective, aligned objective or fed key result is there
    # (``_edges_given``: each starts at a key result given, which is).
    edges = list(compress(kr_edges, map(own.__contains__, map(itemgetter(1), kr_edges))))
    kr_given = len(edges)  # the edges given start with the key results' (``_patched_own``)
    edges += _edges_given(own, _objective_edges(data, objectives))
    data["aligned_key_results"], data["own_progress"] = aligned_key_results, own_progress
    _HEALTHS.rotate()
    _GAVE.pop(cycle.pk, None)  # the newest last: the oldest cycles are dropped first
    _GAVE[cycle.pk], _GAVE_ELAPSED[cycle.pk] = gave, elapsed
    for oldest in list(_GAVE)[:-KEPT_GRAPHS]:
        _GAVE.pop(oldest, None)
        _GAVE_ELAPSED.pop(oldest, None)
    if len(skipped) == skipped_before:  # a run that left rows out is not patched
        _OWN[cycle.pk] = _KeptOwn(now, elapsed, dict(objectives), gave, own, kr_edges,
                                  _objective_edge_inputs(data), edges, kr_given, own_progress,
                                  aligned_key_results, None)
        _keep_few(_OWN)
    return own, edges, rolled_values


_HEALTH_INPUTS = itemgetter("kind", "start_value", "target_value", "current_value", "is_done",
                            "confidence")
_MISSING = object()  # the team of an objective that is not there: no key result's owner team


def _given_by_all(key_results, objectives, elapsed, stale_before, now, kept, kept_now,
                  new_edge):
    """What every key result gives (``gives`` in ``_own_health_and_edges``), for a run that
    kept nothing of the cycle's key results: the same, in one lean pass (no call per row, each
    own health looked up once per distinct input). (gave, own, edges, parts, aligned key
    results) as the row by row loop leaves them, or None when a row's health raised what
    leaves it out (that loop then goes row by row)."""
    teams = {pk: o["team_id"] for pk, o in objectives.items()}
    team_of = teams.get
    found_for = {}  # (``_HEALTH_INPUTS``, stale) -> (progress, own health)
    gave, own, edges, parts, aligned_key_results = {}, {}, [], defaultdict(list), []
    add_edge = edges.append
    for pk, k in key_results.items():
        objective_id = k["objective_id"]
        team = team_of(objective_id, _MISSING)
        last = k["last_check_in_at"]
        stale = stale_before is not None and last is not None and last < stale_before
        fed = k["feeds_id"] in key_results
        inputs = _HEALTH_INPUTS(k), stale
        found = found_for.get(inputs)
        if found is None:
            kind, start, target, current, is_done, confidence = inputs[0]
            confidence = confidence or None
            key = (kind, start, target, current, is_done, confidence, elapsed, stale)
            found = kept_now.get(key)
            if found is None:
                found = kept.get(key)
                if found is None:
                    try:
                        found = progress.key_result_health(
                            kind, start, target, current, is_done, confidence, elapsed, last,
                            now)
                    except (ValueError, TypeError, ArithmeticError):
                        found = None, confidence
                    except Exception:  # noqa: BLE001 (the row by row loop leaves the row out)
                        return None
                kept_now[key] = found
            found_for[inputs] = found
        done, health = found
        node = (KR, pk)
        weight = float(k["weight"])
        if team is _MISSING:
            signature, is_own = (stale, True, None, fed), False
        else:
            signature, is_own = (stale, False, team, fed), team == k["owner_team_id"]
        to_objective = new_edge((node, (OBJ, objective_id), OWN if is_own else ROLLUP, weight))
        aligned_to = k["aligned_to_id"]
        aligned = None
        if aligned_to is None and not fed:  # almost every key result
            kr_edges = (to_objective,)
            add_edge(to_objective)
        else:
            kr_edges = [to_objective]
            if aligned_to is not None:
                aligned = (aligned_to, done)
                aligned_key_results.append(aligned)
                kr_edges.insert(0, new_edge((node, (OBJ, aligned_to), ROLLUP, 1.0)))
            if fed:
                kr_edges.append(new_edge((node, (KR, k["feeds_id"]), ROLLUP, 1.0)))
            kr_edges = tuple(kr_edges)
            edges += kr_edges
        if is_own:
            part = (done, health, weight)
            parts[objective_id].append(part)
        else:
            part = None
        gave[pk] = (k, signature, health, aligned, kr_edges, part)
        own[node] = health
    return gave, own, edges, parts, aligned_key_results


def _objective_own_health(parts):
    """(progress, own health) of an objective from the (progress, health, weight) of its own
    key results, kept by them (``_HEALTHS``); the exception it raised, if it did."""
    key = (OBJ, *parts)
    found = _HEALTHS.current.get(key)
    if found is None:
        found = _HEALTHS.previous.get(key)
        if found is None:
            try:
                found = progress.objective_health(parts)
            except Exception as e:  # noqa: BLE001 (the caller leaves the objective out)
                return e
        _HEALTHS.current[key] = found
    return found


def _objective_edges(data, objectives):
    """The edges that do not start at a key result: alignment (the primary parent, its share;
    each extra parent, its share) and dependencies, in that order."""
    primary = flows.primary_shares(data.get("extra_parents", ()))
    new_edge = partial(tuple.__new__, Edge)
    edges = [new_edge(((OBJ, child), (OBJ, parent), ROLLUP, primary.get(child, 1.0)))
             for child, parent in _alignment_pairs(objectives)]
    for child, parent, share in data.get("extra_parents", ()):
        edges.append(Edge((OBJ, child), (OBJ, parent), ROLLUP, float(share)))
    for up_o, up_k, down_o, down_k, status in data["dependencies"]:
        src = (OBJ, up_o) if up_o else (KR, up_k)
        dst = (OBJ, down_o) if down_o else (KR, down_k)
        edges.append(new_edge(
            (src, dst, BROKEN if status == Dependency.Status.BROKEN else DEPENDS, 1.0)))
    return edges


def _objective_edge_inputs(data):
    return list(data.get("extra_parents", ())), list(data["dependencies"])


def _edges_given(own, edges):
    return [e for e in edges if e[0] in own and e[1] in own]  # (src, dst): by index, in C


class _KeptOwn(NamedTuple):
    """What ``_own_health_and_edges`` gave the last run of a cycle (none of it changed after),
    to patch after a change of a few key results (``_patched_own``)."""
    now: object
    elapsed: float
    objectives: dict  # the rows read, the very objects
    gave: dict  # ``_GAVE``'s
    own: dict
    kr_edges: list  # the key results' edges, in order, before ``_edges_given``
    edge_inputs: tuple  # ``_objective_edge_inputs``
    edges: list  # the edges given
    kr_given: int  # how many of them are the key results' (the first)
    own_progress: dict
    aligned_key_results: list
    # The key results not stale at ``now`` by their last check-in, as a heap of
    # (last check-in, id); made by the first patch that needs it, then kept by each.
    fresh: list | None


# cycle id -> _KeptOwn, for the last ``KEPT_GRAPHS`` cycles. Not needed after a restart: a
# run without it computes every key result's part as before.
_OWN = OrderedDict()


def _keep_few(kept):
    while len(kept) > KEPT_GRAPHS:
        kept.popitem(last=False)


class _Patched(NamedTuple):
    own: dict
    edges: list
    gave: dict
    kept: _KeptOwn


_NO_GAVE = ({"objective_id": None}, None, None, None, (), None)  # a key result that came


def _patched_own(last, last_gave, data, now, elapsed, stale_before, gives, objective_health):
    """``_own_health_and_edges``'s own healths and edges of this run made from the last run's
    (``last``), when that is worth it and gives the same: only the key results whose row is
    not the one the last run read, that came, or that turned stale since, are assessed again,
    and only their objectives' own healths (and those of objectives that came). None when
    anything else may have moved: an objective given to another team, a key result moved to
    another objective, the share of the cycle gone, a clock that went back, too many rows."""
    objectives, key_results = data["objectives"], data["key_results"]
    if last.gave is not last_gave or last.elapsed != elapsed or now < last.now:
        return None
    # Rows that came (new, back from retired or from another cycle) or went (deleted, retired,
    # left out): a new objective with its key result, a key result deleted.
    came_o = gone_o = came_k = gone_k = ()
    if objectives.keys() != last.objectives.keys():
        came_o, gone_o = objectives.keys() - last.objectives.keys(), \
            last.objectives.keys() - objectives.keys()
    if key_results.keys() != last_gave.keys():
        came_k, gone_k = key_results.keys() - last_gave.keys(), \
            last_gave.keys() - key_results.keys()
    if len(came_o) + len(gone_o) + len(came_k) + len(gone_k) > \
            REREAD_ALL_ABOVE * max(len(key_results), 1):
        return None
    reshaped = bool(came_o or gone_o)  # the alignment edges are made again
    for pk in _not_the_same(objectives, last.objectives):
        old, o = last.objectives.get(pk), objectives[pk]
        if old is None:  # came
            continue
        if old["team_id"] != o["team_id"]:
            return None
        reshaped = reshaped or old["parent_id"] != o["parent_id"]
    # The key results whose row is not the one their part was made of (``_GAVE``'s first),
    # compared in C as in ``_not_the_same`` when the ids come in the same order.
    if list(key_results) == list(last_gave):
        changed = set(compress(key_results, map(
            is_not, key_results.values(), map(itemgetter(0), last_gave.values()))))
    else:
        changed = set(compress(key_results, map(is_not, key_results.values(), map(
            itemgetter(0), map(last_gave.get, key_results, repeat(_NO_GAVE))))))
    # What a key result gives depends on whether its objective and what it feeds are there.
    for moved, column in (({*came_o, *gone_o}, "objective_id"), ({*came_k, *gone_k}, "feeds_id")):
        if moved:
            changed.update(compress(key_results, map(
                moved.__contains__, map(itemgetter(column), key_results.values()))))
    fresh = last.fresh
    if stale_before is not None:
        if fresh is None:
            fresh = [(e[0]["last_check_in_at"], pk) for pk, e in last_gave.items()
                     if not e[1][0] and e[0]["last_check_in_at"] is not None]
            heapq.heapify(fresh)
        while fresh and fresh[0][0] < stale_before:  # turned stale since, or changed
            pk = heapq.heappop(fresh)[1]
            if pk in key_results:  # not one gone since
                changed.add(pk)
    if len(changed) > REREAD_ALL_ABOVE * max(len(key_results), 1):
        return None
    gave = dict(last_gave)
    own = dict(last.own)
    touched, kr_edges_moved, aligned_moved = set(came_o), bool(came_k or gone_k), False
    for pk in gone_k:
        old = gave.pop(pk)
        del own[(KR, pk)]
        aligned_moved = aligned_moved or old[3] is not None
        if old[5] is not None:
            touched.add(old[0]["objective_id"])
    for pk in gone_o:
        own.pop((OBJ, pk), None)
    for pk in sorted(changed):
        k, old = key_results[pk], last_gave.get(pk, _NO_GAVE)
        if old is not _NO_GAVE and k["objective_id"] != old[0]["objective_id"]:
            return None
        objective = objectives.get(k["objective_id"])
        last_check_in = k["last_check_in_at"]
        signature = (stale_before is not None and last_check_in is not None
                     and last_check_in < stale_before, objective is None,
                     objective["team_id"] if objective is not None else None,
                     k["feeds_id"] in key_results)
        mine = old if old[0] is k and old[1] == signature else gives(pk, k, signature, objective)
        if mine is None:  # left out: the full computation goes on without it
            return None
        gave[pk] = mine
        own[(KR, pk)] = mine[2]
        kr_edges_moved = kr_edges_moved or mine[4] != old[4]
        aligned_moved = aligned_moved or mine[3] != old[3]
        if mine[5] != old[5]:
            touched.add(k["objective_id"])
        if stale_before is not None and not signature[0] and last_check_in is not None:
            heapq.heappush(fresh, (last_check_in, pk))
    if came_k:
        gave = {pk: gave[pk] for pk in key_results}  # in the order of ids, as a full run's
    own_progress = last.own_progress
    if gone_o:
        own_progress = {pk: v for pk, v in own_progress.items() if pk in objectives}
    if touched:
        parts = {pk: [] for pk in touched}
        for e in gave.values():
            part = e[5]
            if part is not None and e[0]["objective_id"] in parts:
                parts[e[0]["objective_id"]].append(part)
        own_progress = dict(own_progress)
        for pk, mine in parts.items():
            if pk not in objectives:
                continue
            found = objective_health(mine)
            if isinstance(found, Exception):
                return None
            own_progress[pk], own[(OBJ, pk)] = found
    kr_edges = last.kr_edges
    if kr_edges_moved:
        kr_edges = [e for mine in gave.values() for e in mine[4]]
    edge_inputs = _objective_edge_inputs(data)
    edges, kr_given = last.edges, last.kr_given
    if kr_edges_moved or reshaped or edge_inputs != last.edge_inputs:
        # With the same nodes as the last run's, its key results' edges given, if they are
        # the same; an objective that came or went may be the end of a key result's edge.
        edges = _edges_given(own, kr_edges) if kr_edges_moved or came_o or gone_o \
            else last.edges[:kr_given]
        kr_given = len(edges)
        edges += _edges_given(own, _objective_edges(data, objectives))
    aligned_key_results = last.aligned_key_results
    if aligned_moved:
        aligned_key_results = [e[3] for e in gave.values() if e[3] is not None]
    data["aligned_key_results"], data["own_progress"] = aligned_key_results, own_progress
    kept = _KeptOwn(now, elapsed, dict(objectives), gave, own, kr_edges, edge_inputs, edges,
                    kr_given, own_progress, aligned_key_results, fresh)
    return _Patched(own, edges, gave, kept)


def _alignment_pairs(objectives):
    """The alignment edges, (child, parent) objective ids, in a stable order (the children's
    ids): an objective rolls up into the objective it is aligned to."""
    for pk, o in objectives.items():
        if o["parent_id"] in objectives:
            yield pk, o["parent_id"]


class _Kept:
    """Results of a pure function kept from one run to the next, keyed by its arguments: the
    current run's and the last run's (``rotate``), so memory stays about one run's worth."""

    def __init__(self):
        self.current, self.previous = {}, {}

    def rotate(self):
        self.previous, self.current = self.current, {}

    def clear(self):
        self.current, self.previous = {}, {}


# What each key result of a cycle gave its last run, and that run's share of the cycle gone
# (``_own_health_and_edges``): a function of the row read (the kept object itself), its
# objective's team, whether what it feeds is there, whether it was stale, and the share.
_GAVE, _GAVE_ELAPSED = {}, {}

# Own healths of key results and objectives, by what they depend on (``_own_health_and_edges``).
# Shared by the cycles of this process: the key is the whole input.
_HEALTHS = _Kept()


def _describe(node, data, results):
    if node is propagation.GAP:
        return {"gap": True}
    kind, pk = node
    if kind == OBJ:
        o = data["objectives"][pk]
        return {"kind": OBJ, "id": pk, "objective": pk, "title": o["title"],
                "team": o["team__name"], "health": results[node].effective or ""}
    k = data["key_results"][pk]
    return {"kind": KR, "id": pk, "objective": k["objective_id"], "title": k["title"],
            "team": k["owner_team__name"], "health": results[node].effective or ""}


def _described_path(path, reason, data, results):
    """A stored cause path: its root says which reason it is ("rollup": its key results and
    aligned objectives; "dependency": something on the path is a dependency)."""
    described = [_describe(n, data, results) for n in path]
    described[0]["reason"] = reason
    return described


class _Diffed(NamedTuple):
    """What the last diff of a cycle compared (the very objects: rows as read, results), and
    the nodes it did not leave out (``before``'s)."""
    objectives: dict
    key_results: dict
    results: dict
    looked: dict


_DIFFED = OrderedDict()  # cycle id -> _Diffed, for the last ``KEPT_GRAPHS`` cycles diffed


def _diff(data, results, cycle_id=None):
    """The rows whose stored result differs, and (effective, has causes) before and after of
    the nodes where either may differ: a node left out has the same before and after.

    A node is left out when it has no causes, before or after, and the same health: that
    depends on its own row and result alone. So a node whose row and result are the very
    objects the last diff of the cycle compared, and which that diff left out, is left out
    again: only the others are compared (a run after a check-in compares a few thousand nodes,
    not every one). What is kept is only ever compared by identity with what this run holds:
    a run that failed after its diff (its write rolled back) left its rows' versions as they
    were, so the rows are the same objects, and the nodes it did not leave out are compared
    again."""
    changed_o, changed_k, before, after = [], [], {}, {}
    objectives, key_results = data["objectives"], data["key_results"]
    last = _DIFFED.pop(cycle_id, None) if cycle_id is not None else None
    if cycle_id is not None:
        _DIFFED[cycle_id] = _Diffed(dict(objectives), dict(key_results), dict(results), before)
        while len(_DIFFED) > KEPT_GRAPHS:
            _DIFFED.popitem(last=False)
    # From nothing, every result in order, without looking each up.
    compared = results.items() if last is None else (
        (node, results[node]) for node in _to_compare(last, objectives, key_results, results))
    for node, r in compared:
        kind, pk = node
        row = objectives[pk] if kind == OBJ else key_results[pk]
        old = row["effective_health"] or None
        if r.causes:
            causes = [_described_path(path, reason, data, results)
                      for path, reason in zip(r.causes, r.reasons, strict=True)]
        elif old == r.effective and not row["risk_causes"]:
            continue  # most nodes: the same health, no causes before or after
        else:
            causes = []
        before[node] = (old, bool(row["risk_causes"]))
        after[node] = (r.effective, bool(causes))
        if old != r.effective or row["risk_causes"] != causes:
            item = {"id": pk, "eff": r.effective or "", "causes": causes}
            (changed_o if kind == OBJ else changed_k).append(item)
            # A copy: the rows read are kept for the next run as they were read.
            (objectives if kind == OBJ else key_results)[pk] = {**row, "risk_causes": causes}
    return changed_o, changed_k, before, after


def _to_compare(last, objectives, key_results, results):
    """The nodes, in the order of ``results``, that ``_diff`` must compare after ``last``: a
    row or a result that is not the one ``last`` compared, or a node it did not leave out."""
    moved = {(OBJ, pk) for pk in _not_the_same(objectives, last.objectives)}
    moved.update((KR, pk) for pk in _not_the_same(key_results, last.key_results))
    moved.update(last.looked)
    moved.update(_not_the_same(results, last.results))
    return [node for node in results if node in moved]


def _not_the_same(rows, kept):
    """The keys of ``rows`` whose value is not the very object ``kept`` holds for that key, in
    the order of ``rows``. Warm runs ask this of every row and every result (100,000 of each):
    when both hold the same keys in the same order (what a run after a change of a few rows
    finds), the values are compared by identity in C (``map``, ``compress``), at a tenth of
    the cost of a loop in Python."""
    if len(rows) == len(kept) and list(rows) == list(kept):
        return list(compress(rows, map(is_not, rows.values(), kept.values())))
    # Keys that came or went (a new objective): each looked up, in C too.
    return list(compress(rows, map(is_not, rows.values(), map(kept.get, rows))))


def _write(changed_o, changed_k, rolled_values):
    """Write the changed healths and the rolled-up values. On PostgreSQL, in a run that keeps
    its rows (``_Written``, ``_WRITING``), each row is written first where its version is the
    one the run read, and what it then holds is kept; the others are written as they are."""
    written = _WRITING.get()
    for table, kind, rows in (("okrs_objective", OBJ, changed_o),
                              ("okrs_keyresult", KR, changed_k)):
        if rows:
            _bulk_json_update(table, rows, written and partial(written.update, kind))
    if rolled_values:
        with connection.cursor() as cursor:
            rows = [{"id": pk, "v": str(v)} for pk, v in rolled_values.items()]
            if connection.vendor == "postgresql":
                sql = ("UPDATE okrs_keyresult AS t SET current_value = v.v "
                       "FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, v numeric{ver}) "
                       "WHERE t.id = v.id")
                if written is not None:
                    rows = written.update(KR, cursor, sql, rows, "t.current_value::text",
                                          _rolled_as_read)
                if rows:
                    cursor.execute(sql.format(ver=""), [json.dumps(rows)])
            else:
                cursor.execute(
                    "UPDATE okrs_keyresult SET current_value = CAST(j.value ->> '$.v' AS NUMERIC) "
                    "FROM json_each(%s) AS j WHERE okrs_keyresult.id = j.value ->> '$.id'",
                    [json.dumps(rows)])


def _bulk_json_update(table, rows, written=None):
    """One UPDATE for any number of rows, fed by a single JSON parameter (``written``: see
    ``_write``)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sql = (f"UPDATE {table} AS t SET effective_health = v.eff, risk_causes = v.causes "
                   "FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, eff text, causes jsonb"
                   "{ver}) WHERE t.id = v.id")
            if written is not None:
                rows = written(cursor, sql, rows, "t.effective_health, t.risk_causes::text",
                               _health_as_read)
            if rows:
                cursor.execute(sql.format(ver=""), [json.dumps(rows)])
        else:
            cursor.execute(
                f"UPDATE {table} SET effective_health = j.value ->> '$.eff', "
                "risk_causes = json(j.value -> '$.causes') "
                f"FROM json_each(%s) AS j WHERE {table}.id = j.value ->> '$.id'",
                [json.dumps(rows)])


# What a write leaves in the columns it writes, as ``_read_objectives`` and
# ``_read_key_results`` read them (the JSON columns' text decoded, numbers as the column's
# text): the values its ``RETURNING`` gives, after the id and the version.
def _json_list(text):
    return [] if text == "[]" else json.loads(text)


def _json_dict(text):
    return {} if text == "{}" else json.loads(text)


def _health_as_read(health, causes):
    return {"effective_health": health, "risk_causes": _json_list(causes)}


def _rolled_as_read(value):
    return {"current_value": value}


def _flows_as_read(progress, above, impact):
    return {"rolled_progress": progress, "risk_above": _json_dict(above),
            "impact": _json_dict(impact)}


class _Written:
    """The rows a run's write phase wrote over the very versions the run read (PostgreSQL):
    for each, the version it read, and its version and the values of the columns written
    after the write, as a read gives them. Once the run's transaction commits, the rows kept
    take them (``_after_write``): the next run, in this process or after a restart (the state
    is saved after the commit), finds them as they are and reads none of them again.

    Trusting a row needs its content: each UPDATE first writes only the rows whose version is
    the one the run read (or this write left), in the same statement (a row someone else
    wrote since has another version, and a write that waits for one that commits meanwhile
    checks the version again); those rows then hold what the run read but for the columns
    written, which ``RETURNING`` gives, with the new version. The others are written as
    before, with no version, and left out: the next run reads them again."""

    def __init__(self, data):
        self.data = data
        self.read = {OBJ: {}, KR: {}}  # pk -> the version the run read
        self.rows = {OBJ: {}, KR: {}}  # pk -> {column: value, ..., "row_version": after}
        self.lost = {OBJ: set(), KR: set()}

    def _version(self, kind, pk):
        if pk in self.lost[kind]:
            return None
        row = self.rows[kind].get(pk)
        if row is not None:
            return row["row_version"]
        row = self.data["objectives" if kind == OBJ else "key_results"].get(pk)
        version = None if row is None else row.get("row_version")
        self.read[kind][pk] = version
        return version

    def update(self, kind, cursor, sql, rows, returning, read):
        """Run ``sql`` (an UPDATE of ``t`` from ``v``; ``{ver}`` where the record's columns
        end) for the rows whose version is the one known, returning ``returning``; keep what
        it gave; return the rows left to write without a version."""
        version = partial(self._version, kind)
        payload = [{**row, "ver": version(row["id"])} for row in rows]
        # An objective's new hash too (``_OBJECTIVE_HASH``), of the row as written.
        hashed = ", " + _OBJECTIVE_HASH.format(t="t") if kind == OBJ else ""
        cursor.execute(sql.format(ver=", ver text") + " AND " + _VERSION.format(table="t")
                       + " = v.ver RETURNING t.id, " + _VERSION.format(table="t") + hashed
                       + ", " + returning, [json.dumps(payload)])
        mine, done = self.rows[kind], set()
        for pk, after, *values in cursor.fetchall():
            row = mine.get(pk)
            if row is None:
                row = mine[pk] = {}
            if hashed:
                row["row_hash"] = values.pop(0)
            row.update(read(*values))
            row["row_version"] = after
            done.add(pk)
        left = [row for row in rows if row["id"] not in done]
        for row in left:
            self.lost[kind].add(row["id"])
            mine.pop(row["id"], None)
        return left


def _after_write(cycle_id, written):
    """After the commit of a run that wrote rows (``_Written``): the rows kept of that run
    (``_KeptRows``, the very objects every kept part refers to) take the versions and the
    values of the columns the run wrote, where they are the rows the run read. Nothing kept
    reads those columns of a row but to compare them with what a run computes (the diff, the
    flows): a row now holds what the table holds, as a read would give it."""
    kept = _ROWS.get(cycle_id)
    if kept is None or written is None:
        return
    for kind, rows in ((OBJ, kept.objectives), (KR, kept.key_results)):
        read = written.read[kind]
        for pk, values in written.rows[kind].items():
            row = rows.get(pk)
            if row is None or row["row_version"] != read.get(pk) or read.get(pk) is None:
                continue
            row.update(values)
            if kind == KR and "current_value" in values:
                row["unassessable"] = None if _assessable(row) else _unassessable(row)


def _owners(node, data):
    kind, pk = node
    if kind == OBJ:
        o = data["objectives"][pk]
        return {o["team__lead_id"], *data["share_leads"][pk]} - {None}
    k = data["key_results"][pk]
    return {k["owner_id"], k["owner_team__lead_id"]} - {None}


def _alert(cycle, data, results, before, after, extra=()):
    """extra: (user id, Notification fields) pairs raised by ``_flow_notes``: they join the
    run's notifications, so each person still gets one email per run."""
    changes = propagation.transitions(before, after)
    if not changes and not extra:
        return 0
    run_row = PropagationRun.objects.create(
        organization_id=cycle.organization_id, cycle=cycle, changed=len(changes))
    notes = []
    for node, kind in changes:
        kind_, pk = node
        row = data["objectives"][pk] if kind_ == OBJ else data["key_results"][pk]
        for user_id in _owners(node, data):
            notes.append(Notification(
                organization_id=cycle.organization_id, user_id=user_id, run=run_row,
                kind=kind, health=results[node].effective or "",
                objective_id=pk if kind_ == OBJ else row["objective_id"],
                key_result_id=pk if kind_ == KR else None, title=row["title"],
                causes=row["risk_causes"]))
    notes += [Notification(organization_id=cycle.organization_id, user_id=user_id, run=run_row,
                           **fields) for user_id, fields in extra]
    Notification.objects.bulk_create(notes, batch_size=500)
    users = sorted({n.user_id for n in notes})
    emails = AlertEmail.objects.bulk_create(
        [AlertEmail(organization_id=cycle.organization_id, run=run_row, user_id=u) for u in users],
        batch_size=500)
    from .tasks import queue_alert_email

    for email in emails:
        email.organization = cycle.organization
        queue_alert_email(email)
    events.risk_run(cycle.organization, notes)
    return len(emails)


# Without a broker there is no periodic sweep: a deferred recompute lost with its process (a
# restart between the save and the run) would leave the cycle dirty until the next change. A
# page that shows the cycle's "Updating health..." notice longer than this asks for one more.
CATCH_UP_AFTER = timedelta(minutes=2)
_caught_up = {}  # cycle id -> when this process last asked (monotonic seconds)


def catch_up(cycle_id, changed_at, *, now=None):
    """Called by pages of a cycle still marked dirty, with its ``changed_at``: in eager mode
    (no broker, no sweep), when the mark is older than ``CATCH_UP_AFTER``, schedule one deferred
    recompute, at most one per cycle per ``CATCH_UP_AFTER`` in this process. Returns whether it
    did. With a broker the sweep does this every minute."""
    from .tasks import propagate_cycle

    now = now or timezone.now()
    if not propagate_cycle.app.conf.task_always_eager or changed_at is None:
        return False
    if now - changed_at < CATCH_UP_AFTER:
        return False
    wait = CATCH_UP_AFTER.total_seconds()
    asked = _caught_up.get(cycle_id)
    if asked is not None and time.monotonic() - asked < wait:
        return False
    _caught_up[cycle_id] = time.monotonic()
    logger.warning("Cycle %s has waited for its recompute since %s; running it now.",
                   cycle_id, changed_at)
    enqueue_now(propagate_cycle, cycle_id, defer=True)
    return True


def recompute_all(*, dirty_only=True):
    """Re-run every cycle still marked dirty (or every running cycle): the periodic sweep."""
    cycles = Cycle.objects.all()
    if dirty_only:
        # A cycle with no stored misalignment report yet (new, or from before reports were
        # stored) gets its first one too: its pages say the report is being prepared.
        cycles = cycles.filter(Q(network_state__dirty=True) | Q(findings_report__isnull=True))
    else:
        cycles = cycles.exclude(status=Cycle.Status.CLOSED)
    return list(cycles.values_list("pk", flat=True))


# Progress up, risk down, impact (``dependencies.flows``): computed with the health, written in
# the same write phase, alerts in the same run (one email per person per run).


class _KeptImpacts(NamedTuple):
    """What the last run of a cycle computed the impacts from, and what each kept."""
    objectives: dict
    key_results: dict
    results: dict
    dependencies: list
    members: dict
    extra: list
    kept: dict


_IMPACTS = OrderedDict()


def _moved(last, objectives, key_results, results, deps, members, extra):
    """The nodes whose row, result, parent or key results may differ from the last run's
    (``flows.impacts``'s ``changed``), or None when its other inputs differ (every impact is
    computed again). A row is the same when it is the very row the last run read (the rows
    kept, ``_KeptRows``); a row read again, new or gone counts, and so do the objectives it
    hangs from before and after."""
    if last is None or last.members != members or last.extra != list(extra):
        return None
    moved = set()
    if last.dependencies != deps:
        # A dependency that came or went: both its ends (an impact reads the dependencies of
        # the nodes it read alone, in the order of the dependencies' ids).
        old, new = Counter(last.dependencies), Counter(deps)
        for up, down in (old - new) + (new - old):
            moved.add(up)
            moved.add(down)
    for table, kind, rows, parent in (
            (last.objectives, OBJ, objectives, "parent_id"),
            (last.key_results, KR, key_results, "objective_id")):
        for pk in _not_the_same(rows, table):
            old = table.get(pk)
            moved.add((kind, pk))
            moved.add((OBJ, rows[pk][parent]))
            if old is not None:
                moved.add((OBJ, old[parent]))
        for pk in table.keys() - rows.keys():
            moved.add((kind, pk))
            moved.add((OBJ, table[pk][parent]))
    old_results = last.results
    moved.update(node for node in _not_the_same(results, old_results)
                 if old_results.get(node) != results[node])
    moved.update(old_results.keys() - results.keys())
    return moved


def _team_members(organization_id, team_ids):
    from orgs.models import Membership

    members = defaultdict(set)
    for team_id, user_id in Membership.teams.through.objects.filter(
            membership__organization_id=organization_id).values_list(
                "team_id", "membership__user_id"):
        if team_id not in team_ids:
            continue
        members[team_id].add(user_id)
    return members


class _KeptFlows(NamedTuple):
    """What ``_compute_flows`` read and gave in the last run of a cycle (none of it changed
    after): the rows (the very objects), the nodes made of them, the flows' other inputs, what
    it computed for each objective, and the objectives whose stored flows it found to differ."""
    objectives: dict
    nodes: dict
    extra: list
    upper_effective: dict  # {pk: effective health} of the company and department objectives
    own_progress: dict
    aligned_key_results: list
    rolled: dict
    above: dict
    impact: dict
    written: set


_FLOWS = OrderedDict()  # cycle id -> _KeptFlows, for the last ``KEPT_GRAPHS`` cycles


def _flow_node(o):
    return {"parent_id": o["parent_id"], "level": o["level"], "mode": o["progress_mode"],
            "kr_weight": o["key_results_weight"], "weight": o["weight"],
            "kind": o["team__kind"], "title": o["title"], "team": o["team__name"],
            "team_id": o["team_id"]}


def _kept_flow_nodes(last, objectives):
    """The last run's flow nodes (``_KeptFlows.nodes``) for this run's objectives, in their
    order (the flows' sums add in it), those that came made, those gone left out. A node is
    made of its row alone: a row read again is compared by the caller."""
    kept = last.nodes
    if kept.keys() == objectives.keys():
        return dict(kept)
    return {pk: kept[pk] if pk in kept else _flow_node(o) for pk, o in objectives.items()}


def _compute_flows(cycle, data, results):
    """Progress up, risk down and the impacts (``flows``), and the objectives whose stored
    flows differ. After a run of the cycle in this process (``_FLOWS``), only what a change
    can reach is made again: the nodes of the rows read again; the progress rolled up when an
    objective's own progress, a key result aligned to one or the tree moved; the risk above
    when the tree, a title, a team or the health of a company or department objective moved;
    the impacts a change reached (``flows.impacts(kept=..., changed=...)``); and the stored
    flows are compared only for the objectives whose row or flows may differ from the last
    comparison, or that it found to differ (their write may have been rolled back)."""
    objectives, key_results = data["objectives"], data["key_results"]
    stored = objectives  # their progress settings and stored flows are read with them
    extra = list(data.get("extra_parents", ()))
    own_progress = data.get("own_progress", {})
    aligned_key_results = data.get("aligned_key_results", ())
    last = _FLOWS.pop(cycle.pk, None)
    if last is None:
        nodes = {pk: {"parent_id": o["parent_id"], "level": o["level"],  # ``_flow_node``
                      "mode": o["progress_mode"], "kr_weight": o["key_results_weight"],
                      "weight": o["weight"], "kind": o["team__kind"], "title": o["title"],
                      "team": o["team__name"], "team_id": o["team_id"]}
                 for pk, o in objectives.items()}
        moved_rows = None
        tree_moved = True
    else:
        nodes, tree_moved = _kept_flow_nodes(last, objectives), last.extra != extra
        moved_rows = set(_not_the_same(objectives, last.objectives))
        # An objective that came or went moves the tree (its node is made or left out above).
        tree_moved = tree_moved or len(nodes) != len(last.nodes) or bool(
            moved_rows - last.nodes.keys())
        for pk in moved_rows:
            node = _flow_node(objectives[pk])
            if node != nodes[pk]:
                nodes[pk] = node
                tree_moved = True
    uppers = [pk for pk, n in nodes.items() if n["kind"] in flows.UPPER_KINDS] \
        if tree_moved else list(last.upper_effective)
    upper_effective = {pk: r.effective if (r := results.get((OBJ, pk))) else None
                       for pk in uppers}
    if (not tree_moved and own_progress is last.own_progress
            and aligned_key_results == last.aligned_key_results):
        rolled = last.rolled
    else:
        rolled = flows.roll_up_progress(nodes, own_progress, extra, aligned_key_results)
    if not tree_moved and upper_effective == last.upper_effective:
        above = last.above
    else:
        above = flows.risk_above(nodes, upper_effective, extra)
    deps = [((OBJ, uo) if uo else (KR, uk), (OBJ, do) if do else (KR, dk))
            for uo, uk, do, dk, _ in data["dependencies"]]
    upper_bad = [pk for pk, health in upper_effective.items() if health in flows.BAD]
    members = _team_members(cycle.organization_id, {n["team_id"] for n in nodes.values()}) \
        if upper_bad else {}
    last_impacts = _IMPACTS.pop(cycle.pk, None)
    kept = last_impacts.kept if last_impacts is not None else {}
    moved = _moved(last_impacts, objectives, key_results, results, deps, members, extra)
    impact = flows.impacts(
        nodes, key_results, deps, results, members, lambda node: _describe(node, data, results),
        extra, kept=kept, changed=moved) if upper_bad else {}
    _IMPACTS[cycle.pk] = _KeptImpacts(dict(objectives), dict(key_results), results, deps, members,
                                      extra, kept if upper_bad else {})
    _keep_few(_IMPACTS)
    if last is None:
        compared = nodes
    else:
        # The objectives whose row or flows may differ from the last comparison: rows read
        # again, flows computed to another value, and those it found to differ.
        maybe = moved_rows | last.written
        for new, old in ((rolled, last.rolled), (above, last.above), (impact, last.impact)):
            if new is not old:
                maybe.update(pk for pk, value in new.items() if old.get(pk) is not value)
                maybe.update(old.keys() - new.keys())
        compared = [pk for pk in nodes if pk in maybe]
    changed = []
    for pk in compared:
        row = stored[pk]
        new = (rolled.get(pk), above.get(pk, _NONE), impact.get(pk, _NONE))
        old_p = row["rolled_progress"]
        if (None if old_p is None else round(old_p, 4)) != new[0] \
                or row["risk_above"] != new[1] or row["impact"] != new[2]:
            changed.append({"id": pk, "p": new[0], "above": new[1] or {}, "impact": new[2] or {}})
    _FLOWS[cycle.pk] = _KeptFlows(dict(objectives), nodes, extra, upper_effective, own_progress,
                                  aligned_key_results, rolled, above, impact,
                                  {item["id"] for item in changed})
    _keep_few(_FLOWS)
    return {"stored": stored, "above": above, "impact": impact, "changed": changed}


_NONE = {}  # compared with, never given: an objective with no flow of a kind gets its own {}


def _write_flows(rows):
    if not rows:
        return
    written = _WRITING.get()
    payload = json.dumps(rows)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sql = ("UPDATE okrs_objective AS t SET rolled_progress = v.p, risk_above = v.above, "
                   "impact = v.impact FROM jsonb_to_recordset(%s::jsonb) "
                   "AS v(id bigint, p double precision, above jsonb, impact jsonb{ver}) "
                   "WHERE t.id = v.id")
            if written is not None:  # see ``_write``
                rows = written.update(OBJ, cursor, sql, rows, "t.rolled_progress, "
                                      "t.risk_above::text, t.impact::text", _flows_as_read)
            if rows:
                cursor.execute(sql.format(ver=""), [json.dumps(rows)])
        else:
            cursor.execute(
                "UPDATE okrs_objective SET rolled_progress = j.value ->> '$.p', "
                "risk_above = json(j.value -> '$.above'), impact = json(j.value -> '$.impact') "
                "FROM json_each(%s) AS j WHERE okrs_objective.id = j.value ->> '$.id'",
                [payload])


BELOW_LISTED = 10  # objectives an "above" alert names; the rest are counted


def _flow_notes(cycle, data, results, before):
    """Alerts of this run's flows, as (user id, Notification fields):

    - "above", one per person and at-risk objective above: the objectives of theirs that newly
      sit below it, with its reasons. Objectives that are at risk or off track themselves are
      left out: their owners hear of that already.
    - "impact", to the owners of a company or department objective that turned at risk or off
      track and to the alignment leads: what it affects.
    """
    f = data["flows"]
    bad = flows.BAD
    below = defaultdict(list)  # (user, upper objective) -> objectives of theirs below it
    for pk, flag in f["above"].items():
        if f["stored"][pk]["risk_above"] or results[(OBJ, pk)].effective in bad:
            continue
        o = data["objectives"][pk]
        for user_id in _owners((OBJ, pk), data):
            below[(user_id, flag["id"])].append({"id": pk, "title": o["title"],
                                                 "team": o["team__name"]})
    notes = []
    for (user_id, upper), items in sorted(below.items()):
        row = data["objectives"][upper]
        items.sort(key=lambda i: (i["title"], i["id"]))
        notes.append((user_id, {
            "kind": Notification.Kind.ABOVE, "health": results[(OBJ, upper)].effective or "",
            "objective_id": upper, "title": row["title"], "causes": row["risk_causes"],
            "details": {"below": items[:BELOW_LISTED],
                        "more": max(0, len(items) - BELOW_LISTED)}}))
    turned = [pk for pk in f["impact"] if before.get(
        (OBJ, pk), (data["objectives"][pk]["effective_health"] or None,))[0] not in bad]
    if turned:
        from orgs.models import Membership, Role

        leads = set(Membership.objects.filter(
            organization_id=cycle.organization_id, role=Role.ALIGNMENT_LEAD)
            .values_list("user_id", flat=True))
        for pk in turned:
            row = data["objectives"][pk]
            # Its owners were told it turned worse because of something else already (a
            # "worse" alert, whose link leads to the Impact section): the leads still hear.
            owners = set() if results[(OBJ, pk)].causes else _owners((OBJ, pk), data)
            for user_id in sorted(owners | leads):
                notes.append((user_id, {
                    "kind": Notification.Kind.IMPACT, "health": f["impact"][pk]["health"],
                    "objective_id": pk, "title": row["title"], "causes": row["risk_causes"],
                    "details": f["impact"][pk]}))
    return notes
