"""Without a broker (the embedded default), the web process runs beat's schedule itself after
responses: bundles are flushed, digests go out, the outbox is retried (orgs/beat.py)."""

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from nudges import events
from nudges.models import EmailBundle
from orgs import beat

pytestmark = pytest.mark.django_db

SCHEDULE = {
    "often": {"task": "nudges.tasks.sweep_outbox", "schedule": 60.0},
    "hourly": {"task": "dependencies.tasks.sweep_network", "schedule": 3600.0,
               "kwargs": {"full": True}},
}


@pytest.fixture
def in_process_beat(settings, monkeypatch):
    settings.BEAT_IN_PROCESS = True
    beat.reset()
    ran = []

    def start_here(entries):  # in this thread, so the test's transaction sees the work
        ran.append([name for name, _ in entries])
        beat.run(entries)

    monkeypatch.setattr(beat, "_start", start_here)
    yield ran
    beat.reset()


def test_each_entry_runs_first_at_once_then_once_per_its_interval(settings, in_process_beat):
    settings.CELERY_BEAT_SCHEDULE = SCHEDULE
    with beat._lock:
        assert [name for name, _ in beat.due(1000.0)] == ["often", "hourly"]
        assert beat.due(1030.0) == []
        assert [name for name, _ in beat.due(1061.0)] == ["often"]
        assert [name for name, _ in beat.due(1121.0)] == ["often"]
        assert [name for name, _ in beat.due(4600.0)] == ["often", "hourly"]


def test_nothing_runs_in_process_with_a_broker_or_when_turned_off(settings, in_process_beat):
    from config.celery import app

    settings.CELERY_BEAT_SCHEDULE = SCHEDULE
    app.conf.task_always_eager = False  # a broker: beat does this (the fixture restores it)
    assert beat.tick(now=10.0) is None
    app.conf.task_always_eager = True
    settings.BEAT_IN_PROCESS = False
    assert beat.tick(now=10.0) is None
    assert in_process_beat == []
    settings.BEAT_IN_PROCESS = True
    beat.tick(now=10.0)
    assert in_process_beat == [["often", "hourly"]]  # nothing was marked as run before


def test_one_failing_entry_does_not_stop_the_others(settings, monkeypatch, caplog):
    from dependencies import tasks as dependency_tasks

    def broken(**kwargs):
        raise RuntimeError("the sweep fell over")

    monkeypatch.setattr(dependency_tasks.sweep_network, "run", broken)
    entries = list(reversed(SCHEDULE.items()))  # the failing one first
    assert beat.run(entries) == ["hourly"]
    assert "in-process beat, hourly" in caplog.text and "the sweep fell over" in caplog.text


def test_a_due_bundle_goes_out_after_any_page_without_a_broker(
        world_a, alice, alice_client, in_process_beat, django_capture_on_commit_callbacks):
    w = world_a
    events.notify(w.org, "request_raised", [alice], w.dependency)
    with scopes_disabled():
        bundle = EmailBundle.objects.get(user=alice)
        EmailBundle.objects.filter(pk=bundle.pk).update(
            due_at=timezone.now() - timedelta(minutes=1))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.get(reverse("home", args=[w.org.slug]))
    assert response.status_code == 200
    assert in_process_beat and "outbox-sweep" in in_process_beat[0]
    assert [m.to for m in mail.outbox] == [[alice.email]]
    with scopes_disabled():
        assert EmailBundle.objects.get(pk=bundle.pk).status == EmailBundle.Status.SENT
    # The next page, a moment later, runs nothing again.
    alice_client.get(reverse("home", args=[w.org.slug]))
    assert len(in_process_beat) == 1


def test_every_entry_of_the_schedule_names_a_task_by_its_path(settings):
    from importlib import import_module

    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        module, attribute = entry["task"].rsplit(".", 1)
        assert getattr(import_module(module), attribute).name == entry["task"]
