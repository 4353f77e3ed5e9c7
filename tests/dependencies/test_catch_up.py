"""A change whose recompute was lost is redone: without a broker, by the next page that shows
the cycle once the mark is minutes old, or by ``manage.py sweep_network`` from cron; with a
broker, by the periodic sweep, which runs the work in-process when the broker is down."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from config.celery import app
from dependencies import network, tasks
from dependencies.models import NetworkState
from okrs.models import KeyResult
from orgs.tasks import reset_broker_skip
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_memory_of_catch_ups(monkeypatch):
    monkeypatch.setattr(network, "_caught_up", {})


def lose_a_recompute(r, minutes_ago):
    """SSO slips and the cycle is marked changed, but its recompute never runs (the process
    that would have run it ended): health still says on track."""
    with scope(organization=r.org):
        network.run(r.cycle)
        KeyResult.objects.filter(pk=r.sso.pk).update(confidence="off_track")
        network.mark_changed(r.cycle)  # outside any on-commit capture: nothing is enqueued
        NetworkState.objects.filter(cycle=r.cycle).update(
            changed_at=timezone.now() - timedelta(minutes=minutes_ago))
    assert deals_health(r) == "on_track" and dirty(r)


def deals_health(r):
    with scopes_disabled():
        return KeyResult.objects.get(pk=r.deals.pk).effective_health


def dirty(r):
    with scopes_disabled():
        return NetworkState.objects.get(cycle=r.cycle).dirty


def test_a_page_of_a_cycle_left_marked_for_minutes_runs_its_recompute(revenue):
    r = revenue
    lose_a_recompute(r, minutes_ago=3)
    page = client_for(r.mia).get(f"/o/{r.org.slug}/")
    assert page.status_code == 200
    assert "Updating health..." in page.content.decode()  # this view still said so
    assert deals_health(r) == "at_risk" and not dirty(r)  # and asked for the recompute
    assert "Updating health..." not in client_for(r.mia).get(f"/o/{r.org.slug}/").content.decode()


def test_a_fresh_mark_is_left_to_its_own_recompute(revenue):
    r = revenue
    lose_a_recompute(r, minutes_ago=0)
    assert "Updating health..." in client_for(r.mia).get(f"/o/{r.org.slug}/").content.decode()
    assert deals_health(r) == "on_track" and dirty(r)


def test_a_cycle_is_caught_up_once_per_interval_per_process(revenue, monkeypatch):
    r = revenue
    asked = []
    monkeypatch.setattr(network, "enqueue_now", lambda task, *args, **kw: asked.append(args))
    old = timezone.now() - network.CATCH_UP_AFTER - timedelta(seconds=1)
    assert network.catch_up(r.cycle.pk, old)
    assert not network.catch_up(r.cycle.pk, old)  # the second page view: already asked
    assert not network.catch_up(r.cycle.pk + 1, timezone.now())  # a fresh mark
    assert asked == [(r.cycle.pk,)]


def test_with_a_broker_pages_leave_it_to_the_sweep(revenue):
    r = revenue
    app.conf.task_always_eager = False  # tests/conftest.py sets it back
    assert not network.catch_up(r.cycle.pk, timezone.now() - timedelta(hours=1))


def test_the_sweep_runs_the_recompute_in_process_when_the_broker_is_down(revenue, monkeypatch):
    from kombu.exceptions import OperationalError

    r = revenue
    lose_a_recompute(r, minutes_ago=1)
    app.conf.task_always_eager = False  # tests/conftest.py sets it back

    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(tasks.propagate_cycle, "delay", down)
    try:
        assert tasks.sweep_network() == 1  # as the worker's beat runs it
    finally:
        reset_broker_skip()
    assert deals_health(r) == "at_risk" and not dirty(r)


def test_the_sweep_command_recomputes_what_is_still_marked(revenue):
    r = revenue
    lose_a_recompute(r, minutes_ago=1)
    out = StringIO()
    call_command("sweep_network", stdout=out)
    assert out.getvalue().splitlines()[0] == "1 cycle recomputed or queued."
    assert deals_health(r) == "at_risk" and not dirty(r)
    call_command("sweep_network", stdout=out)
    assert "0 cycles" in out.getvalue()
