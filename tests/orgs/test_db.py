"""Collisions between writers: a deadlock or serialization failure runs the whole transaction
again (orgs.db.atomic_with_retry); a request that keeps colliding gets a 503 page asking to try
again, never a 500; the propagation run recomputes when a writer changed its input meanwhile.

Collisions are simulated (the error PostgreSQL raises, with its SQLSTATE) so these run on both
databases; the last test makes a real deadlock on PostgreSQL. The propagation run's side is in
tests/dependencies/test_collisions.py."""

import threading

import psycopg.errors
import pytest
from django.db import IntegrityError, OperationalError, connection, transaction
from django.urls import reverse
from django_scopes import scopes_disabled

from okrs import services as okr_services
from okrs import views as okr_views
from okrs.models import CheckIn, KeyResult
from orgs import db
from orgs.models import Organization, Theme
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)


def deadlock():
    try:
        raise psycopg.errors.DeadlockDetected("deadlock detected")
    except psycopg.errors.DeadlockDetected as e:
        raise OperationalError("deadlock detected") from e


def serialization_failure():
    try:
        raise psycopg.errors.SerializationFailure("could not serialize access")
    except psycopg.errors.SerializationFailure as e:
        raise OperationalError("could not serialize access") from e


@pytest.fixture(autouse=True)
def _no_pauses(monkeypatch):
    monkeypatch.setattr(db, "backoff", lambda attempt: None)


def themes(org):
    with scopes_disabled():
        return list(Theme.objects.filter(organization=org).values_list("name", flat=True))


@pytest.mark.parametrize("collide", [deadlock, serialization_failure])
def test_it_runs_the_whole_transaction_again_and_keeps_only_the_last_attempt(collide):
    org = OrganizationFactory()
    calls, sent = [], []

    def write():
        calls.append(1)
        with scopes_disabled():
            Theme.objects.create(organization=org, name=f"Attempt {len(calls)}")
        attempt = len(calls)
        transaction.on_commit(lambda: sent.append(attempt))
        if len(calls) == 1:
            collide()
        return "done"

    assert db.atomic_with_retry(write) == "done"
    assert len(calls) == 2
    assert themes(org) == ["Attempt 2"]
    assert sent == [2]  # the failed attempt's on-commit work was dropped with it


def test_the_decorator_form_retries_the_same_way():
    calls = []

    @db.retry_on_conflict(attempts=2)
    def write(value):
        calls.append(value)
        if len(calls) == 1:
            deadlock()
        return value * 2

    assert write(21) == 42
    assert calls == [21, 21]


def test_it_gives_up_after_the_last_attempt_with_a_write_conflict():
    calls = []

    def write():
        calls.append(1)
        deadlock()

    with pytest.raises(db.WriteConflict) as info:
        db.atomic_with_retry(write, attempts=3)
    assert len(calls) == 3
    assert isinstance(info.value, OperationalError)  # Celery's autoretry_for catches it
    assert db.is_conflict(info.value)


def test_other_database_errors_are_not_run_again():
    calls = []

    def write():
        calls.append(1)
        raise IntegrityError("duplicate key")

    with pytest.raises(IntegrityError):
        db.atomic_with_retry(write)
    assert len(calls) == 1


def test_inside_a_transaction_the_outermost_caller_retries():
    calls = []

    def write():
        calls.append(1)
        deadlock()

    with pytest.raises(OperationalError), transaction.atomic():
        db.atomic_with_retry(write)
    assert len(calls) == 1


def test_a_failure_after_the_commit_is_never_run_again():
    org = OrganizationFactory()
    calls = []

    def write():
        calls.append(1)
        with scopes_disabled():
            Theme.objects.create(organization=org, name="Saved once")
        transaction.on_commit(deadlock)

    with pytest.raises(OperationalError):
        db.atomic_with_retry(write)
    assert len(calls) == 1
    assert themes(org) == ["Saved once"]


# Through a view ---------------------------------------------------------------------------------


def check_in_count(world):
    with scopes_disabled():
        return CheckIn.objects.filter(key_result=world.key_result).count()


def test_a_check_in_that_collides_is_saved_once_and_said_once(world_a, alice_client,
                                                              monkeypatch):
    real_redirect, calls = okr_views.redirect, []

    def redirect_after_a_collision(*args, **kwargs):
        # The first attempt has saved the check-in and queued "Check-in saved." when the
        # collision comes: both must be rolled back.
        calls.append(1)
        if len(calls) == 1:
            deadlock()
        return real_redirect(*args, **kwargs)

    monkeypatch.setattr(okr_views, "redirect", redirect_after_a_collision)
    before = check_in_count(world_a)
    response = alice_client.post(
        reverse("check_in", args=[world_a.org.slug, world_a.key_result.pk]),
        {"value": "42", "confidence": "at_risk", "note": "Second try"}, follow=True)
    assert response.status_code == 200
    assert len(calls) == 2
    assert check_in_count(world_a) == before + 1
    assert response.content.decode().count("Check-in saved.") == 1
    with scopes_disabled():
        assert KeyResult.objects.get(pk=world_a.key_result.pk).confidence == "at_risk"


def test_a_write_that_keeps_colliding_gets_a_503_page_and_saves_nothing(world_a, alice_client,
                                                                         monkeypatch):
    monkeypatch.setattr(okr_services, "record_check_in", lambda **kwargs: deadlock())
    before = check_in_count(world_a)
    response = alice_client.post(
        reverse("check_in", args=[world_a.org.slug, world_a.key_result.pk]),
        {"value": "42", "confidence": "at_risk"})
    assert response.status_code == 503
    assert "Someone else was saving at the same moment; try again." in response.content.decode()
    assert response["Retry-After"]
    assert check_in_count(world_a) == before


def test_an_htmx_write_that_keeps_colliding_says_so_in_the_page(world_a, alice_client,
                                                                 monkeypatch):
    # htmx swaps a 503 (base.html's htmx-config) into the region the headers name: the notice
    # alone, not a whole page inside the page.
    monkeypatch.setattr(okr_services, "record_check_in", lambda **kwargs: deadlock())
    page = reverse("objective", args=[world_a.org.slug, world_a.key_result.objective_id])
    response = alice_client.post(
        reverse("check_in", args=[world_a.org.slug, world_a.key_result.pk]),
        {"value": "42", "confidence": "at_risk"},
        headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver{page}"})
    assert response.status_code == 503
    assert response["HX-Retarget"] == "#main"
    body = response.content.decode()
    assert "Someone else was saving at the same moment; try again." in body
    assert "<html" not in body
    # The form is gone from the page, so the notice offers the page again, not "Back".
    assert f'<a href="{page}">Reload the page</a>' in body
    home = alice_client.get(reverse("home", args=[world_a.org.slug])).content.decode()
    assert '"code": "503", "swap": true' in home


# A real deadlock ---------------------------------------------------------------------------------


@pytest.mark.concurrency
@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="needs PostgreSQL row locks (SQLite serializes the whole file)")
def test_a_real_deadlock_is_run_again_until_both_writers_save():
    first, second = OrganizationFactory(name="First"), OrganizationFactory(name="Second")
    barrier = threading.Barrier(2)
    attempts, outcomes = [], []

    def write(order, label):
        def transaction_body():
            attempts.append(label)
            for i, org in enumerate(order):
                Organization.objects.select_for_update().get(pk=org.pk)
                if i == 0 and attempts.count(label) == 1:
                    barrier.wait(10)  # both hold their first row: each now waits for the other
            Organization.objects.filter(pk=order[0].pk).update(name=f"{order[0].name} {label}")

        def run():
            try:
                db.atomic_with_retry(transaction_body)
                outcomes.append("saved")
            except Exception as exc:  # noqa: BLE001 - the test reports any failure
                outcomes.append(repr(exc))
            finally:
                connection.close()
        return run

    threads = [threading.Thread(target=write([first, second], "a")),
               threading.Thread(target=write([second, first], "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outcomes == ["saved", "saved"]
    assert len(attempts) == 3  # the deadlock's victim ran once more
