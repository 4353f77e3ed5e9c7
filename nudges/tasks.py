import logging
from zoneinfo import ZoneInfo

from celery import shared_task
from django.utils import timezone
from django_scopes import scope

from orgs.tasks import enqueue_now

from . import chat, events, outbox, services

log = logging.getLogger(__name__)


@shared_task
def send_due_digests():
    """Every 15 minutes: for each organization whose local digest time has come, claim the
    week's ledger rows and queue one send per member."""
    now = timezone.now()
    queued = 0
    for org in services.due_organizations(now):
        for digest_id in services.claim_week(org, now=now):
            enqueue_now(send_digest, digest_id)
            queued += 1
        with scope(organization=org):  # the weekly team summaries in chat, once a week
            chat.queue_weekly_summaries(org, week=services.week_of(now, ZoneInfo(org.timezone)),
                                        now=now)
    return queued


@shared_task
def send_digest(digest_id):
    """Write one member's digest into the outbox and send it. A mail server that fails leaves
    the email in the outbox, retried with backoff by the sweep."""
    return services.send_one(digest_id)


@shared_task
def deliver_email(email_id):
    """Send one outbox row, if no one else has (the claim decides)."""
    return outbox.deliver(email_id)


@shared_task
def deliver_chat(delivery_id):
    """Post one chat delivery, if no one else has (the claim decides)."""
    return chat.deliver(delivery_id)


@shared_task
def sweep_outbox():
    """Every minute: notification bundles whose window has passed become emails; emails and
    chat posts due for a retry, or whose sender died, are sent again."""
    events.flush_due()
    due = outbox.sweep()
    for email_id in due:
        enqueue_now(deliver_email, email_id)
    posts = chat.sweep()
    for delivery_id in posts:
        enqueue_now(deliver_chat, delivery_id)
    return len(due) + len(posts)


@shared_task
def recount_inbox(org_id, user_id):
    """Count what waits on one person again, for the nav (``inbox.recount_later``)."""
    from . import inbox

    inbox.recount(org_id, user_id)
