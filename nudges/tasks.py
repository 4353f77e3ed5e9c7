import logging
from smtplib import SMTPException

from celery import shared_task
from django.utils import timezone

from . import services

log = logging.getLogger(__name__)


@shared_task
def send_due_digests():
    """Every 15 minutes: for each organization whose local digest time has come this week,
    claim the week's ledger rows and queue one send per member."""
    now = timezone.now()
    queued = 0
    for org in services.due_organizations(now):
        for digest_id in services.claim_week(org, now=now):
            send_digest.delay(digest_id)
            queued += 1
    return queued


@shared_task(bind=True, max_retries=5, default_retry_delay=60)
def send_digest(self, digest_id):
    try:
        return services.send_one(digest_id)
    except (OSError, SMTPException) as exc:
        services.record_error(digest_id, exc)
        if self.request.retries >= self.max_retries:
            services.mark_failed(digest_id, exc)
            log.error("Digest %s failed for good: %s", digest_id, exc)
            return "failed"
        # Exponential backoff: 1, 2, 4, 8, 16 minutes.
        raise self.retry(exc=exc, countdown=60 * 2 ** self.request.retries) from exc
