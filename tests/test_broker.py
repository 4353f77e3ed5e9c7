"""A hung or dead broker never hangs a write, and the work still gets done.

The broker here is a TCP server in a thread that accepts connections and never answers (what a
hung Redis looks like), or a closed port. The real Celery app is pointed at it with its
production settings (timeouts, publish retry policy), eager mode off; the writes go through the
views as a person would make them. Needs no PostgreSQL or Redis.
"""

from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django_scopes import scopes_disabled
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dependencies.models import NetworkState
from nudges.tasks import deliver_email
from okrs.models import CheckIn, KeyResult
from orgs import tasks
from orgs.models import Invitation, Role

from . import brokers
from .conftest import client_for
from .deadline import within
from .dependencies.conftest import _revenue

# A write may wait for the broker once: about three socket timeouts (publish, reconnect, one
# retry), then the broker is skipped. This leaves room for a slow, shared test machine.
WRITE_BUDGET = 10.0


@pytest.fixture
def point_broker_at():
    with brokers.pointing_celery() as point:
        yield point


@pytest.fixture
def hung_broker(point_broker_at):
    server = brokers.HungBroker()
    point_broker_at(server.url)
    yield server
    server.close()


@pytest.fixture
def refused_broker(point_broker_at):
    point_broker_at(f"redis://127.0.0.1:{brokers.closed_port()}/0")


@pytest.fixture
def revenue(world_a):
    with scopes_disabled():
        return _revenue(world_a)


def _timed(call):
    """Run a request in a thread, so that a write hung on the broker fails the test instead of
    hanging the suite. Returns the response and the seconds it took."""
    return within(WRITE_BUDGET + 5, call, what="the write")


def _check_in_off_track(r):
    """Ethan reports SSO off track through the check-in page."""
    return _timed(lambda: client_for(r.ethan).post(
        f"/o/{r.org.slug}/key-results/{r.sso.pk}/check-in/",
        {"confidence": "off_track", "is_done": "no", "note": "The identity vendor slipped"}))


def _assert_check_in_done_in_process(r, response):
    assert response.status_code == 302
    with scopes_disabled():
        # Committed, not just answered.
        assert CheckIn.objects.filter(key_result=r.sso, note="The identity vendor slipped").exists()
        # The recompute ran in the request: Sales' deals are now at risk from upstream.
        assert KeyResult.objects.get(pk=r.deals.pk).effective_health == "at_risk"
        assert not NetworkState.objects.get(cycle=r.cycle).dirty
    # And the alert email, a second task, went out too.
    to_mia = [m for m in mail.outbox if m.to == ["mia@a.test"]]
    assert len(to_mia) == 1 and "Ship SSO" in to_mia[0].body


@pytest.mark.django_db(transaction=True)
def test_a_check_in_with_a_hung_broker_answers_in_seconds_and_does_the_work(
        revenue, hung_broker, caplog):
    response, elapsed = _check_in_off_track(revenue)
    assert elapsed < WRITE_BUDGET, f"the check-in took {elapsed:.1f} s"
    assert hung_broker.accepted, "the broker was never tried"
    _assert_check_in_done_in_process(revenue, response)
    assert "Broker unavailable" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_an_invitation_with_a_hung_broker_sends_its_email_in_process(world_a, alice_client,
                                                                      hung_broker):
    response, elapsed = _timed(lambda: alice_client.post(
        f"/o/{world_a.org.slug}/console/members/",
        {"email": "dana@example.test", "role": Role.MEMBER}))
    assert response.status_code == 302
    assert elapsed < WRITE_BUDGET, f"the invitation took {elapsed:.1f} s"
    with scopes_disabled():
        assert Invitation.objects.get(email="dana@example.test").is_pending
    [message] = [m for m in mail.outbox if m.to == ["dana@example.test"]]
    assert "/invitations/" in message.body


@pytest.mark.django_db(transaction=True)
def test_after_one_failed_publish_the_next_writes_do_not_wait_for_the_broker(
        world_a, alice_client, hung_broker):
    def invite(email):
        return _timed(lambda: alice_client.post(f"/o/{world_a.org.slug}/console/members/",
                                                {"email": email, "role": Role.MEMBER}))

    invite("first@example.test")
    tried = len(hung_broker.accepted)
    (response, elapsed) = invite("second@example.test")
    assert response.status_code == 302
    assert len(hung_broker.accepted) == tried, "the second write went to the hung broker again"
    assert {m.to[0] for m in mail.outbox} == {"first@example.test", "second@example.test"}


@pytest.mark.django_db(transaction=True)
def test_a_check_in_with_the_broker_refusing_does_the_work_at_once(revenue, refused_broker):
    response, elapsed = _check_in_off_track(revenue)
    assert elapsed < WRITE_BUDGET, f"the check-in took {elapsed:.1f} s"
    _assert_check_in_done_in_process(revenue, response)


@pytest.mark.parametrize("error", [
    OperationalError("Timeout reading from socket"),  # what kombu makes of a hung broker
    RedisTimeoutError("Timeout reading from socket"),
    RedisConnectionError("Error 111 connecting"),
    TimeoutError("timed out"),  # socket.timeout
    ConnectionRefusedError(111, "Connection refused"),
], ids=["kombu", "redis-timeout", "redis-connection", "socket-timeout", "refused"])
def test_every_way_a_publish_fails_falls_back_to_running_in_process(error, monkeypatch,
                                                                     point_broker_at):
    point_broker_at("redis://127.0.0.1:1/0")
    ran = []

    def publish(*args):
        raise error

    monkeypatch.setattr(deliver_email, "delay", publish)
    monkeypatch.setattr(deliver_email, "apply", lambda args, throw: ran.append(args))
    tasks.enqueue_now(deliver_email, 42)
    assert ran == [(42,)]


@pytest.mark.django_db
def test_seed_demo_enqueues_one_recompute_per_cycle_it_changed(
        monkeypatch, django_capture_on_commit_callbacks):
    from config.celery import app
    from dependencies.tasks import propagate_cycle

    app.conf.task_always_eager = False  # as with a broker: nothing runs before the worker
    enqueued = []
    monkeypatch.setattr(propagate_cycle, "delay", lambda cycle_id: enqueued.append(cycle_id))
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", stdout=StringIO())
    with scopes_disabled():
        changed = set(NetworkState.objects.filter(dirty=True).values_list("cycle_id", flat=True))
    assert changed, "the demo changes at least its current cycle"
    assert sorted(enqueued) == sorted(changed)  # each changed cycle once, nothing else
