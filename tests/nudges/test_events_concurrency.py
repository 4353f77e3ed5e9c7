"""Two events for one person at the same moment land in one bundle and one email; a flush at
the same moment as an event loses nothing. Needs real row locks across connections:
PostgreSQL (CI)."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from nudges import events
from nudges.models import BundleItem, EmailBundle, OutboundEmail

pytestmark = [
    pytest.mark.concurrency,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="needs PostgreSQL row locks (SQLite serializes the whole file)"),
]


def run_together(*jobs):
    barrier = threading.Barrier(len(jobs))
    errors = []

    def run(job):
        try:
            barrier.wait()
            job()
        except Exception as e:  # noqa: BLE001 - the assertion below names it
            errors.append(repr(e))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []


def test_two_events_at_once_for_one_person_make_one_email(revenue):
    r = revenue
    now = timezone.now()

    def event(subject):
        def job():
            with scope(organization=r.org), transaction.atomic():
                events.notify(r.org, "reminder", [r.ethan], subject, now=now)
                time.sleep(0.3)  # the other one meets this open transaction
        return job

    run_together(event(r.sso), event(r.deals), event(r.sso))
    with scopes_disabled():
        assert EmailBundle.objects.filter(user=r.ethan).count() == 1
        assert BundleItem.objects.filter(bundle__user=r.ethan).count() == 3
        events.flush_due(now + timedelta(minutes=11))
        [email] = OutboundEmail.objects.filter(to="ethan@a.test", kind="events")
    assert email.subject.startswith("Org A: 3 updates")


def test_an_event_during_a_flush_is_in_this_email_or_the_next(revenue):
    r = revenue
    now = timezone.now()
    with scope(organization=r.org):
        events.notify(r.org, "reminder", [r.ethan], r.sso, now=now - timedelta(minutes=11))

    def flush():
        events.flush_due(now)

    def event():
        with scope(organization=r.org):
            events.notify(r.org, "request_escalated", [r.ethan], r.dependency, now=now)

    for _ in range(3):
        run_together(flush, event)
    with scopes_disabled():
        events.flush_due(now + timedelta(minutes=11))
        bodies = list(OutboundEmail.objects.filter(to="ethan@a.test")
                      .values_list("text_body", flat=True))
        assert BundleItem.objects.filter(bundle__user=r.ethan).count() == 4
    assert sum(b.count("\n- ") for b in bodies) == 4  # every item in exactly one email
