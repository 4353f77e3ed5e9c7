"""Without a broker (eager mode, or the broker is down), a save does not wait for the cycle's
recompute: it runs in a background thread right after the response, one at a time per cycle,
and the pages that show health say it is being updated until it is done.

The other tests turn the deferral off (``TASKS_DEFER_IN_PROCESS``, tests/conftest.py) so the work
is done when a request returns; these turn it on. The recompute is held back by an event (or,
on PostgreSQL, by another transaction holding the cycle's propagation lock), so what the pages
show while it waits is checked deterministically.
"""

import threading
import time
from types import SimpleNamespace

import pytest
from django.core import mail
from django.db import connection, transaction
from django_scopes import scopes_disabled

from dependencies import network
from dependencies.models import NetworkState
from okrs.models import CheckIn, KeyResult
from orgs import tasks
from orgs.db import lock_propagation

from .conftest import client_for
from .deadline import within
from .dependencies.conftest import _revenue

UPDATING = "Updating health..."
WAIT = 30  # seconds: generous for a shared, slow test machine


@pytest.fixture
def deferred(settings):
    settings.TASKS_DEFER_IN_PROCESS = True
    yield
    assert tasks.wait_for_deferred(WAIT), "deferred work still running after the test"


@pytest.fixture
def revenue(world_a):
    with scopes_disabled():
        return _revenue(world_a)


@pytest.fixture
def held_runs(monkeypatch):
    """Every recompute waits until ``release`` is set; counts runs and how many overlap."""
    gate = SimpleNamespace(release=threading.Event(), started=threading.Event(), runs=0,
                           running=0, most_at_once=0, lock=threading.Lock())
    original = network.run

    def run(cycle, **kwargs):
        with gate.lock:
            gate.runs += 1
            gate.running += 1
            gate.most_at_once = max(gate.most_at_once, gate.running)
        gate.started.set()
        try:
            assert gate.release.wait(WAIT), "the test never released the recompute"
            return original(cycle, **kwargs)
        finally:
            with gate.lock:
                gate.running -= 1

    monkeypatch.setattr(network, "run", run)
    yield gate
    gate.release.set()  # a failing test must not leave a thread waiting


def _in_thread(call):
    """Run a request in a thread, so a request that waits for the held recompute fails the test
    instead of hanging it."""
    return within(WAIT, call, what="the request (waiting for the recompute?)")[0]


def _check_in(r, confidence="off_track", note="The identity vendor slipped"):
    """Ethan reports SSO through the check-in page."""
    return _in_thread(lambda: client_for(r.ethan).post(
        f"/o/{r.org.slug}/key-results/{r.sso.pk}/check-in/",
        {"confidence": confidence, "is_done": "no", "note": note}))


def _pages(r):
    slug = r.org.slug
    return [f"/o/{slug}/", f"/o/{slug}/tree/", f"/o/{slug}/network/",
            f"/o/{slug}/objectives/{r.win.pk}/"]


def _deals_health(r):
    with scopes_disabled():
        return KeyResult.objects.get(pk=r.deals.pk).effective_health


def _dirty(r):
    with scopes_disabled():
        return NetworkState.objects.get(cycle=r.cycle).dirty


@pytest.mark.django_db(transaction=True)
def test_a_check_in_answers_before_the_recompute_which_runs_right_after(
        revenue, deferred, held_runs):
    r = revenue
    before = _deals_health(r)
    response = _check_in(r)
    assert response.status_code == 302
    with scopes_disabled():  # the check-in itself is committed
        assert CheckIn.objects.filter(key_result=r.sso, note="The identity vendor slipped").exists()
    assert held_runs.started.wait(WAIT), "no recompute was started after the response"
    # The recompute waits: health is not updated yet, and every page that shows it says so.
    assert _dirty(r) and _deals_health(r) == before
    mia = client_for(r.mia)
    for url in _pages(r):
        page = mia.get(url)
        assert page.status_code == 200, url
        assert UPDATING in page.content.decode(), url

    held_runs.release.set()
    assert tasks.wait_for_deferred(WAIT)
    assert _deals_health(r) == "at_risk"
    assert not _dirty(r)
    assert held_runs.runs == 1
    # The alert email of the recompute went out from the background thread.
    assert [m for m in mail.outbox if m.to == ["mia@a.test"] and "Ship SSO" in m.body]
    for url in _pages(r):
        assert UPDATING not in mia.get(url).content.decode(), url


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_check_ins_runs_one_recompute_at_a_time_and_at_most_two(
        revenue, deferred, held_runs):
    r = revenue
    _check_in(r, "at_risk", "first")
    assert held_runs.started.wait(WAIT)
    _check_in(r, "on_track", "second")
    _check_in(r, "off_track", "third")
    held_runs.release.set()
    assert tasks.wait_for_deferred(WAIT)
    # The first run was under way; the two later saves asked for one more run, not two.
    assert held_runs.runs == 2
    assert held_runs.most_at_once == 1
    # The last run saw the last check-in.
    assert _deals_health(r) == "at_risk"
    assert not _dirty(r)


@pytest.mark.django_db(transaction=True)
def test_without_deferral_the_recompute_is_done_when_the_request_returns(revenue, held_runs):
    held_runs.release.set()
    response = _check_in(revenue)
    assert response.status_code == 302
    assert held_runs.runs == 1
    assert _deals_health(revenue) == "at_risk" and not _dirty(revenue)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="needs PostgreSQL advisory locks across connections")
def test_the_deferred_recompute_waits_its_turn_behind_a_running_one(revenue, deferred):
    """Another process's run of the same cycle holds the propagation lock: the save still
    answers at once, and the deferred run goes after it."""
    r = revenue
    holding, release = threading.Event(), threading.Event()

    def other_run():
        try:
            with transaction.atomic():
                lock_propagation(r.cycle.pk)
                holding.set()
                release.wait(WAIT)
        finally:
            connection.close()

    other = threading.Thread(target=other_run, daemon=True)
    other.start()
    try:
        assert holding.wait(WAIT)
        started = time.monotonic()
        assert _check_in(r).status_code == 302
        assert time.monotonic() - started < WAIT
        time.sleep(0.2)  # the deferred run is now queued behind the lock
        assert _dirty(r)
        assert UPDATING in client_for(r.mia).get(_pages(r)[3]).content.decode()
    finally:
        release.set()
        other.join(WAIT)
    assert tasks.wait_for_deferred(WAIT)
    assert _deals_health(r) == "at_risk" and not _dirty(r)


def _fake_task(calls, gate=None):
    def apply(args, throw):
        if gate is not None:
            gate.wait(WAIT)
        calls.append(tuple(args))

    return SimpleNamespace(name="fake", app=SimpleNamespace(conf=SimpleNamespace(
        task_always_eager=True)), apply=apply)


def test_deferred_work_runs_after_the_caller_returns_and_once_more_for_a_burst(settings):
    settings.TASKS_DEFER_IN_PROCESS = True
    calls, gate = [], threading.Event()
    task = _fake_task(calls, gate)
    tasks.enqueue_now(task, 7, defer=True)
    assert calls == []  # the caller did not wait
    for _ in range(5):
        tasks.enqueue_now(task, 7, defer=True)
    tasks.enqueue_now(task, 8, defer=True)  # another key runs on its own
    gate.set()
    assert tasks.wait_for_deferred(WAIT)
    assert sorted(calls) == [(7,), (7,), (8,)]


def test_work_not_marked_deferrable_runs_at_once(settings):
    settings.TASKS_DEFER_IN_PROCESS = True
    calls = []
    tasks.enqueue_now(_fake_task(calls), 7)
    assert calls == [(7,)]
