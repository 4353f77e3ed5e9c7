import logging
from smtplib import SMTPException

from celery import shared_task
from django.utils import timezone

from . import services

log = logging.getLogger(__name__)


@shared_task
def send_due_digests():
    """Every 15 minutes: for each organization whose local digest time has come, claim the
    week's ledger rows and queue one send per member."""
    now = timezone.now()
    queued = 0
    for org in services.due_organizations(now):
        for digest_id in services.claim_week(org, now=now):
            send_digest.delay(digest_id)
            queued += 1
    return queued


@shared_task(bind=True, max_retries=5)
def send_digest(self, digest_id):
    """Send one digest. On a worker, an SMTP error retries with exponential backoff (1, 2, 4,
    8, 16 minutes); in-process (no broker) the retries happen at once. After the last one the
    ledger row is marked failed, and the send log shows why."""
    tries = self.max_retries + 1 if self.request.is_eager else 1
    for _ in range(tries):
        try:
            return services.send_one(digest_id)
        except (OSError, SMTPException) as exc:
            services.record_error(digest_id, exc)
            error = exc
            if not self.request.is_eager and self.request.retries < self.max_retries:
                raise self.retry(exc=exc, countdown=60 * 2 ** self.request.retries) from exc
    services.mark_failed(digest_id, error)
    log.error("Digest %s failed for good: %s", digest_id, error)
    return "failed"
