"""The outbox: the one way the product sends email.

``queue()`` writes the email as a row in the caller's transaction (it commits with the change
that causes it, or not at all) and asks for a send once that transaction commits. ``deliver()``
sends one row:

1. claim it: ``UPDATE ... SET status='sending', claimed_at=now WHERE status='pending' AND
   next_attempt_at <= now``. Only the sender whose UPDATE changed the row goes on; a rerun, a
   task delivered twice or the sweep finds nothing to claim;
2. hand it to the mail server, with the Message-ID fixed when the row was made;
3. mark it sent. On an SMTP or network error the row goes back to pending with the error and a
   later ``next_attempt_at`` (1, 2, 4, 8, 16 minutes); after ``MAX_ATTEMPTS`` it is failed.

``sweep()`` (on beat every minute) puts rows claimed longer than ``STUCK_AFTER`` back to pending
(their worker died) and returns the due ones to send. So nothing is sent twice, except the one
message whose worker was killed between the mail server's "250 OK" and step 3: that one may go
again, with the same Message-ID, which lets mail clients fold the copies into one.

Rows whose dedupe key names a ledger row (``digest:<id>``, ``alert:<id>``) keep that row's
status, attempts and error in step with the email's.
"""

import logging
import re
import uuid
from datetime import timedelta
from email.utils import make_msgid
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_scopes import scopes_disabled

from .mail import LongLineEmail
from .models import OutboundEmail

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
FIRST_RETRY = timedelta(minutes=1)
# Longer than any one SMTP conversation (the backend's timeout is 10 s): a row still "sending"
# after this lost its worker.
STUCK_AFTER = timedelta(minutes=5)
SWEEP_BATCH = 500
SUBJECT_MAX = 300
Kind = OutboundEmail.Kind
Status = OutboundEmail.Status


def one_line(subject):
    """A Subject header is one line: line breaks and control characters become spaces."""
    text = " ".join(re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", " ", str(subject)).split())
    return text if len(text) <= SUBJECT_MAX else text[:SUBJECT_MAX - 1] + "…"


def new_message_id():
    domain = urlsplit(settings.SITE_URL).hostname or "localhost"
    return make_msgid(idstring="okr", domain=domain)


def queue(*, kind, to, subject, text, html="", headers=None, organization=None, key=None,
          enqueue=True, not_before=None):
    """Write one email to the outbox and send it once the current transaction commits. ``key``
    names what the email is about ("digest:42"); a second queue() with the same key returns the
    first row and sends nothing more. Without a key the email is one of a kind. With
    ``enqueue=False`` the caller sends it itself (the sweep catches it if the caller dies).
    ``not_before`` holds it back until then (the end of quiet hours): the sweep sends it."""
    key = key or f"{kind}:{uuid.uuid4().hex}"
    with scopes_disabled():
        row, created = OutboundEmail.objects.get_or_create(dedupe_key=key, defaults={
            "organization": organization, "kind": kind, "to": to, "subject": one_line(subject),
            "text_body": text, "html_body": html or "", "headers": headers or {},
            "message_id": new_message_id(),
            **({"next_attempt_at": not_before} if not_before else {})})
    if created and enqueue and not (not_before and not_before > timezone.now()):
        from orgs.tasks import enqueue_on_commit

        from .tasks import deliver_email

        enqueue_on_commit(deliver_email, row.pk)
    return row


def queue_message(message, *, kind, key, organization, enqueue=True, not_before=None):
    """Queue an email composed as a Django message (one recipient)."""
    html = next((c for c, mimetype in message.alternatives if mimetype == "text/html"), "")
    [to] = message.to
    return queue(kind=kind, key=key, organization=organization, to=to, subject=message.subject,
                 text=message.body, html=html, headers=dict(message.extra_headers),
                 enqueue=enqueue, not_before=not_before)


def message_for(row):
    headers = {**row.headers, "Message-ID": row.message_id}
    message = LongLineEmail(row.subject, row.text_body, None, [row.to], headers=headers)
    if row.html_body:
        message.attach_alternative(row.html_body, "text/html")
    return message


def deliver(pk, *, now=None):
    """Send one row if it is ours to send. Returns the status this call left it in (sent;
    pending: failed, retried later; failed: given up), or None when there was nothing to claim
    (sent already, another sender has it, not due yet, or no such row)."""
    now = now or timezone.now()
    if not claim(OutboundEmail, pk, now):
        return None
    with scopes_disabled():
        row = OutboundEmail.objects.get(pk=pk)
    try:
        message_for(row).send()
    except Exception as exc:  # noqa: BLE001 - any failure leaves the row to be retried or failed
        return _failed(row, exc, now)
    with scopes_disabled(), transaction.atomic():
        OutboundEmail.objects.filter(pk=pk).update(status=Status.SENT, sent_at=timezone.now(),
                                                   last_error="")
        _mirror(row, status="sent", sent_at=timezone.now(), error="")
    return Status.SENT


def _failed(row, exc, now):
    error = f"{type(exc).__name__}: {exc}"[:300]
    with scopes_disabled(), transaction.atomic():
        final, later = give_back(OutboundEmail, row, now, error=error)
        _mirror(row, error=error, **({"status": "failed"} if final else {}))
    if final:
        log.error("Email %s (%s, organization %s, to %s) failed for good after %s attempts: %s",
                  row.pk, row.kind, row.organization_id, row.to, row.attempts, error)
        return Status.FAILED
    log.warning("Email %s (%s, organization %s) not sent, attempt %s, retried at %s: %s",
                row.pk, row.kind, row.organization_id, row.attempts, later.isoformat(), error)
    return Status.PENDING


def _mirror(row, **fields):
    """Keep the digest or alert ledger row this email belongs to in step with it."""
    prefix, _, pk = row.dedupe_key.partition(":")
    if prefix == "digest":
        from .models import Digest as ledger
    elif prefix == "alert":
        from dependencies.models import AlertEmail as ledger
    else:
        return
    ledger.objects.filter(pk=int(pk)).update(attempts=row.attempts, **fields)


def sweep(*, now=None):
    """Put rows whose sender died back to pending; return the ids due to be sent."""
    now = now or timezone.now()

    def given_up(row, error):
        _mirror(row, status="failed", error=error)
        log.error("Email %s (%s, organization %s, to %s) failed for good: %s",
                  row.pk, row.kind, row.organization_id, row.to, error)

    back = release_stuck(OutboundEmail, now, on_give_up=given_up)
    if back:
        log.warning("%s emails were stuck in sending; they go again", back)
    return due_ids(OutboundEmail, now)


# The claim, the retry and the sweep, shared by every outbox table (emails here, chat posts in
# ``nudges.chat``, webhook deliveries in ``integrations.webhooks``). Each such model has
# ``status`` (pending, sending, sent, failed), ``attempts``, ``next_attempt_at``, ``claimed_at``,
# ``last_error`` and a ``due(now)`` queryset method.

PENDING, SENDING, FAILED = "pending", "sending", "failed"
GAVE_UP = "The sender stopped in the middle of sending, too often."


def claim(model, pk, now):
    """Take one row to send: pending and due -> sending, one attempt more, in one UPDATE. True
    only for the caller whose UPDATE changed the row; a rerun, a task delivered twice or the
    sweep gets False."""
    with scopes_disabled():
        return bool(model.objects.filter(pk=pk, status=PENDING, next_attempt_at__lte=now)
                    .update(status=SENDING, claimed_at=now, attempts=F("attempts") + 1))


def give_back(model, row, now, *, error, **fields):
    """After a failed attempt: back to pending with a later ``next_attempt_at`` (1, 2, 4, 8, 16
    minutes), or failed for good after ``MAX_ATTEMPTS``. Only a row still ours (sending) moves.
    Returns ``(final, later)``."""
    final = row.attempts >= MAX_ATTEMPTS
    later = now + FIRST_RETRY * 2 ** (row.attempts - 1)
    with scopes_disabled():
        model.objects.filter(pk=row.pk, status=SENDING).update(
            status=FAILED if final else PENDING, last_error=error,
            next_attempt_at=row.next_attempt_at if final else later, **fields)
    return final, later


def release_stuck(model, now, *, on_give_up=None):
    """Rows claimed longer than ``STUCK_AFTER`` ago lost their sender: those out of attempts
    fail (``on_give_up(row, error)`` is called for each, in its transaction), the others go back
    to pending, due now. Returns how many went back."""
    with scopes_disabled():
        stuck = model.objects.filter(status=SENDING, claimed_at__lt=now - STUCK_AFTER)
        spent = stuck.filter(attempts__gte=MAX_ATTEMPTS)
        if on_give_up is None:
            spent.update(status=FAILED, last_error=GAVE_UP)
        else:
            for row in spent:
                with transaction.atomic():
                    if stuck.filter(pk=row.pk).update(status=FAILED, last_error=GAVE_UP):
                        on_give_up(row, GAVE_UP)
        return stuck.update(status=PENDING, next_attempt_at=now)


def due_ids(model, now):
    """The ids due to be sent, oldest first, at most ``SWEEP_BATCH``."""
    with scopes_disabled():
        return list(model.objects.due(now).order_by("next_attempt_at", "pk")
                    .values_list("pk", flat=True)[:SWEEP_BATCH])
