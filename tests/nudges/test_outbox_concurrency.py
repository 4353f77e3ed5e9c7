"""Concurrent senders on PostgreSQL: threads (each its own connection) call the sender and the
sweep for the same rows at the same moment, two ``send_digests`` runs overlap, a digest task is
delivered twice while the mail server is slow. Each person gets each email exactly once.
Needs real row locks across connections: PostgreSQL (CI)."""

import io
import re
import threading
import time
from collections import Counter

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from dependencies.models import RecoveryAction
from nudges import outbox, services
from nudges.models import OutboundEmail
from okrs.models import KeyResult
from tests.factories import KeyResultFactory, MembershipFactory

pytestmark = [
    pytest.mark.concurrency,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="needs PostgreSQL row locks (SQLite serializes the whole file)"),
]


class SlowBackend(EmailBackend):
    """A mail server that takes 0.3 s per message: the window where duplicates used to slip in."""

    def send_messages(self, messages):
        time.sleep(0.3)
        return super().send_messages(messages)


SLOW = {"default": {"BACKEND": f"{__name__}.SlowBackend"}}


def at_once(*calls):
    barrier = threading.Barrier(len(calls))
    errors = []

    def go(call):
        try:
            barrier.wait()
            call()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=go, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


def copies():
    return Counter((m.to[0], m.extra_headers["Message-ID"]) for m in mail.outbox)


def test_concurrent_senders_and_the_sweep_send_each_message_once(db, settings):
    settings.MAILERS = SLOW
    with scopes_disabled():
        ids = [outbox.queue(kind="review", to=f"p{i}@example.test", subject=f"Review {i}",
                            text="Body", enqueue=False).pk for i in range(6)]

    def sender():
        for pk in ids:
            outbox.deliver(pk)

    def sweeper():
        for pk in outbox.sweep(now=timezone.now()):
            outbox.deliver(pk)

    at_once(sender, sender, sender, sweeper, sweeper)
    assert len(mail.outbox) == 6 and set(copies().values()) == {1}
    with scopes_disabled():
        assert set(OutboundEmail.objects.values_list("status", "attempts")) == {("sent", 1)}


@pytest.fixture
def team_of_seven(revenue, settings):
    """Seven people with a check-in due, and a mail server that is slow."""
    r = revenue
    for _ in range(5):
        m = MembershipFactory(organization=r.org, role="member")
        KeyResultFactory(objective=r.win, owner=m.user)
    with scope(organization=r.org):
        KeyResult.objects.update(last_check_in_at=None)
        RecoveryAction.objects.update(is_done=True)  # Alice has nothing to hear
    settings.MAILERS = SLOW
    mail.outbox = []
    return r


def test_two_send_digests_runs_at_once_send_one_digest_per_person(team_of_seven):
    r = team_of_seven

    outputs = []

    def run():
        out = io.StringIO()
        call_command("send_digests", "--org", r.org.slug, stdout=out)
        outputs.append(out.getvalue())

    at_once(run, run)
    sent = copies()
    assert len(sent) == 7 and set(sent.values()) == {1}
    # Between them the two summaries count each email once.
    assert sum(int(re.match(r"(\d+) sent", o).group(1)) for o in outputs) == 7
    assert all("0 failed" in o for o in outputs)
    # Each person got one email, and each email one Message-ID.
    assert len({to for to, _ in sent}) == 7


def test_a_digest_task_delivered_twice_while_smtp_is_slow_sends_once(team_of_seven):
    r = team_of_seven
    for digest_id in services.claim_week(r.org):
        at_once(lambda: services.send_one(digest_id), lambda: services.send_one(digest_id))  # noqa: B023
    sent = copies()
    assert len(sent) == 7 and set(sent.values()) == {1}
