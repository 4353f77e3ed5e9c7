"""The outbox: every email is a row first, claimed before it is sent, sent once, retried with
backoff when the mail server fails, and swept when its sender died."""

import io
import re
from datetime import timedelta
from smtplib import SMTPException
from unittest import mock

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled
from kombu.exceptions import OperationalError

from dependencies import network
from dependencies.models import AlertEmail, RecoveryAction
from nudges import outbox, services, tasks
from nudges.models import Digest, OutboundEmail
from okrs.models import KeyResult
from orgs.models import Invitation, Role
from orgs.services import invite_member
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


class DeadBackend:
    """A mail server that refuses every connection."""

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise OSError("connection refused")


class WorkerKilled(BaseException):
    """What a killed worker looks like from inside: nothing after this line runs."""


class KilledAfterSendingBackend(EmailBackend):
    """The mail server takes the message, then the worker dies before it can mark it sent."""

    def send_messages(self, messages):
        super().send_messages(messages)
        raise WorkerKilled


DEAD = {"default": {"BACKEND": f"{__name__}.DeadBackend"}}
KILLED = {"default": {"BACKEND": f"{__name__}.KilledAfterSendingBackend"}}
WORKING = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}


def rows():
    with scopes_disabled():
        return list(OutboundEmail.objects.order_by("pk"))


def one(**kwargs):
    defaults = {"kind": "invitation", "to": "dana@example.test", "subject": "Hello",
                "text": "Body"}
    return outbox.queue(**{**defaults, **kwargs})


def message_ids():
    return [m.extra_headers["Message-ID"] for m in mail.outbox]


def test_an_email_is_written_with_the_change_and_sent_after_the_commit(
        db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            row = one(key="invite:1")
            assert mail.outbox == []  # nothing leaves before the change is committed
    assert len(callbacks) == 1
    [message] = mail.outbox
    assert message.to == ["dana@example.test"] and message.subject == "Hello"
    assert message.extra_headers["Message-ID"] == row.message_id
    assert re.fullmatch(r"<.+@.+>", row.message_id)
    [row] = rows()
    assert row.status == "sent" and row.attempts == 1 and row.sent_at and row.claimed_at


def test_a_change_that_rolls_back_sends_nothing(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            one()
            1 / 0  # noqa: B018 - the change fails after the email was written
    assert rows() == [] and mail.outbox == []


def test_the_same_key_twice_writes_one_email(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = one(key="invite:7")
        second = one(key="invite:7", subject="Hello again")
    assert first.pk == second.pk and len(rows()) == 1 and len(mail.outbox) == 1


@pytest.mark.parametrize("subject, sent", [
    ("Ship SSO\nBcc: victim@example.test", "Ship SSO Bcc: victim@example.test"),
    ("Line\r\nbreak\tand\x07bell", "Line break and bell"),
    ("Paragraph\u2028separator", "Paragraph separator"),
    ("  spaced   out  ", "spaced out"),
    ("x" * 400, "x" * 299 + "…"),
])
def test_a_subject_is_always_one_line(db, subject, sent):
    assert one(subject=subject).subject == sent
    assert outbox.message_for(rows()[-1]).message()["Subject"] == sent


def test_the_database_refuses_a_status_or_kind_that_does_not_exist(db):
    row = one()
    with scopes_disabled():
        for field, value in (("status", "bogus"), ("kind", "spam")):
            with pytest.raises(IntegrityError), transaction.atomic():
                OutboundEmail.objects.filter(pk=row.pk).update(**{field: value})
        with pytest.raises(IntegrityError), transaction.atomic():
            OutboundEmail.objects.filter(pk=row.pk).update(status="sending", claimed_at=None)


def test_smtp_down_then_up_records_the_failure_retries_with_backoff_and_sends_once(
        db, settings):
    settings.MAILERS = DEAD
    row = one()
    now = timezone.now()
    assert outbox.deliver(row.pk, now=now) == "pending"
    [row] = rows()
    assert row.attempts == 1 and "connection refused" in row.last_error
    assert row.next_attempt_at == now + timedelta(minutes=1)
    # Not due yet: neither a task delivered twice nor the sweep touches it.
    assert outbox.deliver(row.pk, now=now + timedelta(seconds=30)) is None
    assert outbox.sweep(now=now + timedelta(seconds=30)) == []
    assert outbox.deliver(row.pk, now=now + timedelta(minutes=1)) == "pending"
    assert rows()[0].next_attempt_at == now + timedelta(minutes=3)  # then 2 minutes later
    settings.MAILERS = WORKING
    later = now + timedelta(minutes=3)
    assert outbox.sweep(now=later) == [row.pk]
    assert outbox.deliver(row.pk, now=later) == "sent"
    assert outbox.deliver(row.pk, now=later) is None
    assert outbox.sweep(now=later + timedelta(hours=1)) == []
    assert message_ids() == [row.message_id]
    [row] = rows()
    assert row.status == "sent" and row.attempts == 3 and row.last_error == ""


def test_it_gives_up_after_the_last_attempt_and_says_so(db, settings, caplog):
    settings.MAILERS = DEAD
    row = one()
    when = timezone.now()
    for _ in range(outbox.MAX_ATTEMPTS):
        when += timedelta(hours=1)
        outbox.deliver(row.pk, now=when)
    [row] = rows()
    assert row.status == "failed" and row.attempts == outbox.MAX_ATTEMPTS
    assert "failed for good" in caplog.text and "dana@example.test" in caplog.text
    assert outbox.sweep(now=when + timedelta(days=1)) == []


def test_a_worker_killed_between_sending_and_marking_sends_that_message_once_more_with_the_same_id(
        db, settings):
    settings.MAILERS = KILLED
    row = one()
    now = timezone.now()
    with pytest.raises(WorkerKilled):
        outbox.deliver(row.pk, now=now)
    assert rows()[0].status == "sending" and len(mail.outbox) == 1
    # A task delivered again, and the sweep before the row counts as stuck, send nothing.
    assert outbox.deliver(row.pk, now=now + timedelta(minutes=1)) is None
    assert outbox.sweep(now=now + timedelta(minutes=1)) == []
    settings.MAILERS = WORKING
    later = now + outbox.STUCK_AFTER + timedelta(minutes=1)
    assert outbox.sweep(now=later) == [row.pk]
    assert outbox.deliver(row.pk, now=later) == "sent"
    assert outbox.sweep(now=later + timedelta(hours=1)) == []
    # That one message went twice, both copies with the row's Message-ID; nothing more.
    assert message_ids() == [row.message_id, row.message_id]


def test_broker_and_smtp_down_then_up_keeps_the_email_and_the_sweep_delivers_it_once(
        db, settings, django_capture_on_commit_callbacks):
    settings.MAILERS = DEAD
    tasks.deliver_email.app.conf.task_always_eager = False  # a broker is configured; it is down
    down = mock.patch.object(tasks.deliver_email, "delay", side_effect=OperationalError("down"))
    with down, django_capture_on_commit_callbacks(execute=True):
        row = one()
    [row] = rows()
    assert row.status == "pending" and "connection refused" in row.last_error
    settings.MAILERS = WORKING
    with scopes_disabled():  # a minute passes
        OutboundEmail.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    with down:
        assert tasks.sweep_outbox() == 1  # the broker is still down: sent in-process
        assert tasks.sweep_outbox() == 0
    assert message_ids() == [row.message_id]
    assert rows()[0].status == "sent"


def test_an_alert_email_survives_broker_and_smtp_down_and_its_ledger_follows(
        revenue, settings, django_capture_on_commit_callbacks):
    r = revenue
    with scope(organization=r.org), django_capture_on_commit_callbacks(execute=True):
        network.run(r.cycle)
    mail.outbox.clear()
    settings.MAILERS = DEAD
    tasks.deliver_email.app.conf.task_always_eager = False
    down = mock.patch.object(tasks.deliver_email, "delay", side_effect=OperationalError("down"))
    with down, scope(organization=r.org), django_capture_on_commit_callbacks(execute=True):
        KeyResult.objects.filter(pk=r.sso.pk).update(confidence="off_track")
        network.run(r.cycle)
    with scopes_disabled():
        alert = AlertEmail.objects.get(user=r.mia)
        queued = OutboundEmail.objects.get(dedupe_key=f"alert:{alert.pk}")
    assert alert.status == "pending" and "connection refused" in alert.error
    assert queued.kind == "alert" and queued.organization_id == r.org.pk
    settings.MAILERS = WORKING
    with scopes_disabled():
        OutboundEmail.objects.update(next_attempt_at=timezone.now())
    with down:
        tasks.sweep_outbox()
        tasks.sweep_outbox()
    # Each alert once: Mia's, and the impact of Engineering's objective to Ethan and Liam.
    assert sorted(m.to[0] for m in mail.outbox) == ["ethan@a.test", "liam@a.test",
                                                    "mia@a.test"]
    assert all(m.extra_headers["List-Unsubscribe"].startswith("<http") for m in mail.outbox)
    with scopes_disabled():
        alert = AlertEmail.objects.get(pk=alert.pk)
    assert alert.status == "sent" and alert.attempts == 2 and alert.error == ""


def test_an_invitation_goes_through_the_outbox(world_a, django_capture_on_commit_callbacks):
    with scope(organization=world_a.org), django_capture_on_commit_callbacks(execute=True):
        invitation = invite_member(actor=world_a.admin, email="dana@example.test",
                                   role=Role.MEMBER)
    [row] = rows()
    assert (row.kind, row.dedupe_key, row.organization_id, row.status) == (
        "invitation", f"invite:{invitation.pk}", world_a.org.pk, "sent")
    [message] = mail.outbox
    assert message.extra_headers["Message-ID"] == row.message_id
    with scopes_disabled():
        assert Invitation.objects.filter(pk=invitation.pk).exists()


def test_a_password_reset_goes_through_the_outbox(world_a, alice,
                                                  django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post("/accounts/password-reset/", {"email": "alice@a.test"})
    assert response.status_code == 302
    [row] = rows()
    assert (row.kind, row.organization_id, row.to, row.status) == (
        "password_reset", None, "alice@a.test", "sent")
    assert "\n" not in row.subject and "/accounts/reset/" in row.text_body
    [message] = mail.outbox
    assert message.extra_headers["Message-ID"] == row.message_id


def test_a_password_reset_with_the_mail_server_down_waits_in_the_outbox(
        world_a, alice, settings, django_capture_on_commit_callbacks):
    settings.MAILERS = DEAD
    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post("/accounts/password-reset/", {"email": "alice@a.test"})
    assert response.status_code == 302  # the person is told to check their inbox
    [row] = rows()
    assert row.status == "pending" and "connection refused" in row.last_error


class FailsForMia(EmailBackend):
    def send_messages(self, messages):
        if any(m.to == ["mia@a.test"] for m in messages):
            raise SMTPException("451 try again later")
        return super().send_messages(messages)


def test_send_digests_with_the_mail_server_failing_goes_on_prints_a_summary_and_exits_non_zero(
        revenue, settings):
    r = revenue
    with scope(organization=r.org):
        KeyResult.objects.update(last_check_in_at=None)
        # Alice's recovery action is done: only Ethan and Mia have something to hear.
        RecoveryAction.objects.update(is_done=True)
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}.FailsForMia"}}
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 digest could not be sent"):
        call_command("send_digests", "--org", r.org.slug, stdout=out)
    assert re.search(r"1 sent, \d+ with nothing to say, 1 failed", out.getvalue())
    assert [m.to for m in mail.outbox] == [["ethan@a.test"]]
    with scope(organization=r.org):
        mia = Digest.objects.get(user=r.mia)
    assert mia.status == "pending" and "451" in mia.error and mia.attempts == 1
    # A rerun does not send Ethan's again; Mia's waits for its retry time.
    out = io.StringIO()
    call_command("send_digests", "--org", r.org.slug, stdout=out)
    assert "1 waiting for a retry" in out.getvalue() and len(mail.outbox) == 1


def test_send_digests_with_the_mail_server_down_fails_every_member_and_exits_non_zero(
        revenue, settings):
    r = revenue
    with scope(organization=r.org):
        KeyResult.objects.update(last_check_in_at=None)
        RecoveryAction.objects.update(is_done=True)  # only Ethan and Mia have something
    settings.MAILERS = DEAD
    out = io.StringIO()
    with pytest.raises(CommandError, match="2 digests could not be sent"):
        call_command("send_digests", "--org", r.org.slug, stdout=out)
    assert re.search(r"0 sent, \d+ with nothing to say, 2 failed", out.getvalue())
    with scope(organization=r.org):
        errors = list(Digest.objects.exclude(status="empty").values_list("error", flat=True))
    assert len(errors) == 2 and all("connection refused" in e for e in errors)


def test_the_send_log_shows_every_kind_filters_and_pages(world_a, world_b, settings,
                                                         django_capture_on_commit_callbacks):
    settings.MAILERS = DEAD
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(55):
            one(organization=world_a.org, kind="review", to=f"p{i}@a.test",
                subject=f"Review {i}")
        one(organization=world_a.org, kind="invitation", subject="Join Org A")
        one(organization=world_b.org, kind="invitation", subject="Join Org B")
        one(kind="password_reset", subject="Reset your password now")
    admin = client_for(world_a.admin.user)
    url = reverse("send_log", args=[world_a.org.slug])
    page = admin.get(url).content.decode()
    assert "Join Org A" in page and "Join Org B" not in page
    assert "Reset your password now" not in page
    assert "connection refused" in page and "Page 1 of 2" in page
    assert "?page=2" in page
    page = admin.get(url, {"kind": "invitation"}).content.decode()
    assert "Join Org A" in page and "Review 1" not in page
    page = admin.get(url, {"kind": "review", "status": "pending", "page": 2}).content.decode()
    assert "Page 2 of 2" in page and "kind=review" in page and "Join Org A" not in page
    page = admin.get(url, {"status": "sent"}).content.decode()
    assert "No email matches this filter" in page


def test_the_database_checks_spell_out_the_choices():
    for model, field in ((OutboundEmail, "status"), (OutboundEmail, "kind"), (Digest, "status")):
        choices = {v for v, _ in model._meta.get_field(field).choices}
        checked = [value for c in model._meta.constraints if getattr(c, "condition", None)
                   for child in c.condition.children
                   if isinstance(child, tuple) for key, value in [child]
                   if key == f"{field}__in"]
        assert [set(v) for v in checked] == [choices]


def test_a_message_whose_sender_keeps_dying_is_failed_in_the_end(revenue, settings):
    r = revenue
    with scope(organization=r.org):
        KeyResult.objects.update(last_check_in_at=None)
        [digest] = Digest.objects.bulk_create([Digest(organization=r.org, user=r.mia,
                                                      week="2027-W09")])
    settings.MAILERS = KILLED
    with pytest.raises(WorkerKilled):
        services.send_one(digest.pk)
    when = timezone.now()
    for _ in range(outbox.MAX_ATTEMPTS - 1):
        when += outbox.STUCK_AFTER * 2
        [pk] = outbox.sweep(now=when)
        with pytest.raises(WorkerKilled):
            outbox.deliver(pk, now=when)
    assert outbox.sweep(now=when + outbox.STUCK_AFTER * 2) == []
    [row] = rows()
    assert row.status == "failed" and "stopped in the middle" in row.last_error
    with scope(organization=r.org):
        assert Digest.objects.get(pk=digest.pk).status == "failed"
    assert len(mail.outbox) == outbox.MAX_ATTEMPTS


def test_the_send_log_reads_as_many_queries_for_one_email_as_for_a_page_of_them(world_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    admin = client_for(world_a.admin.user)
    url = reverse("send_log", args=[world_a.org.slug])
    admin.get(url)  # the first request of a session reads a little more
    counts = []
    for n in (1, 60):
        with scopes_disabled():
            OutboundEmail.objects.all().delete()
        for i in range(n):
            one(organization=world_a.org, kind="review", to=f"p{i}@a.test", enqueue=False)
        with CaptureQueriesContext(connection) as queries:
            assert admin.get(url).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1] <= 10  # 8, plus the inbox count in the nav (two queries)


def test_a_platform_operator_sends_a_failed_email_again(world_a, settings):
    from tests.factories import UserFactory

    settings.MAILERS = DEAD
    row = one(organization=world_a.org, enqueue=False)
    when = timezone.now()
    for _ in range(outbox.MAX_ATTEMPTS):
        when += timedelta(hours=1)
        outbox.deliver(row.pk, now=when)
    assert rows()[0].status == "failed"
    operator = client_for(UserFactory(is_staff=True, is_superuser=True))
    response = operator.post("/django-admin/nudges/outboundemail/", {
        "action": "send_again", "_selected_action": [row.pk]})
    assert response.status_code == 302
    settings.MAILERS = WORKING
    assert outbox.sweep() == [row.pk] and outbox.deliver(row.pk) == "sent"
    assert message_ids() == [row.message_id]


def test_no_code_but_the_outbox_talks_to_the_mail_server():
    """Every email goes through the outbox: a new ``send_mail()`` or ``.send()`` elsewhere
    would skip the claim, the retries and the ledger."""
    from pathlib import Path

    from django.conf import settings as django_settings

    sends = re.compile(r"\bsend_mail\(|send_mass_mail|mail_admins|mail_managers|\.send\(\)"
                       r"|send_messages\(|get_connection\(|AdminEmailHandler")
    allowed = {"nudges/outbox.py": 1, "orgs/forms.py": 1}  # the sender; the reset form's hook
    root = Path(django_settings.BASE_DIR)
    found = {}
    for path in root.rglob("*.py"):
        relative = path.relative_to(root).as_posix()
        if relative.startswith((".venv/", "tests/")) or "/migrations/" in relative:
            continue
        hits = len(sends.findall(path.read_text()))
        if hits:
            found[relative] = hits
    assert found == allowed
