"""Celery tasks of the network: recompute a cycle, sweep what is still dirty, send alert emails.

Every task is idempotent. The propagation recomputes from current state; the alert email is
written into the outbox with the run (one per person per run), which sends it exactly once.
"""

import logging

from celery import shared_task
from django.conf import settings
from django.db import OperationalError
from django.template.loader import render_to_string
from django_scopes import scope, scopes_disabled

from orgs.models import Cycle
from orgs.tasks import enqueue_now

from . import network
from .models import AlertEmail, Notification

log = logging.getLogger(__name__)


# OperationalError covers a deadlock or serialization failure and orgs.db.WriteConflict (the run
# already retried its transaction a few times): Celery retries the task later.
@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=60,
             max_retries=8)
def propagate_cycle(cycle_id):
    with scopes_disabled():
        cycle = Cycle.objects.select_related("organization").filter(pk=cycle_id).first()
    if cycle is None:
        return None
    with scope(organization=cycle.organization):
        outcome = network.run(cycle)
    log.info("Propagated cycle %s: %s nodes, %s edges, %s changed, %.0f ms", cycle_id,
             outcome.nodes, outcome.edges, outcome.changed, outcome.total_ms)
    return outcome.changed


@shared_task
def sweep_network(full=False):
    """Re-enqueue every cycle still marked dirty (a task lost while the broker was down), or with
    ``full`` every running cycle (pace moves with the calendar, so health does too)."""
    with scopes_disabled():
        cycle_ids = network.recompute_all(dirty_only=not full)
    for cycle_id in cycle_ids:
        # Published to the broker, or run here when there is none or it is down.
        enqueue_now(propagate_cycle, cycle_id)
    return len(cycle_ids)


def queue_alert_email(email):
    """Write one person's alert email of a propagation run into the outbox, in the run's
    transaction (its key is the ledger row, so it is written once); the outbox sends it after
    the commit and retries it. Someone who turned alerts off gets none: the row is skipped."""
    from nudges import events, outbox
    from nudges.mail import UnsubscribableEmail
    from nudges.models import OutboundEmail
    from nudges.services import unsubscribe_url, wants

    org = email.organization
    with scopes_disabled():
        items = list(Notification.objects.filter(run_id=email.run_id, user_id=email.user_id)
                     .select_related("objective__team").order_by("kind", "title"))
        if not items or not wants(org, email.user_id, "alerts"):
            AlertEmail.objects.filter(pk=email.pk).update(status=AlertEmail.Status.SKIPPED)
            return None
    stop_url = unsubscribe_url(org, email.user, "alerts")
    ctx = {"org": org, "user": email.user, "items": items, "site_url": settings.SITE_URL,
           "worse": [i for i in items if i.kind == Notification.Kind.WORSE],
           "recovered": [i for i in items if i.kind == Notification.Kind.RECOVERED],
           "above": [i for i in items if i.kind == Notification.Kind.ABOVE],
           "impact": [i for i in items if i.kind == Notification.Kind.IMPACT],
           "unsubscribe_url": stop_url}
    message = UnsubscribableEmail(
        _subject(ctx), render_to_string("dependencies/email/alert.txt", ctx),
        [email.user.email], unsubscribe_url=stop_url)
    message.attach_alternative(render_to_string("dependencies/email/alert.html", ctx),
                               "text/html")
    return outbox.queue_message(message, kind=OutboundEmail.Kind.ALERT, key=f"alert:{email.pk}",
                                organization=org, not_before=events.after_quiet(org, email.user))


def _subject(ctx):
    worse, recovered = len(ctx["worse"]), len(ctx["recovered"])
    parts = []
    if worse:
        parts.append(f"{worse} item{'s' if worse > 1 else ''} at risk from upstream")
    if recovered:
        parts.append(f"{recovered} recovered")
    if ctx["impact"]:
        n = len(ctx["impact"])
        parts.append(f"{n} company or department objective{'s' if n > 1 else ''} at risk, "
                     "and what they affect")
    if ctx["above"]:
        n = len(ctx["above"])
        parts.append(f"{n} objective{'s' if n > 1 else ''} your work contributes to at risk")
    return f"{ctx['org'].name}: " + ", ".join(parts)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=60,
             max_retries=8)
def climb_ladders(now=None):
    """Move every unanswered request and unresolved blocker up the escalation ladder, in every
    organization with one open (``ladder.climb``; idempotent). ``now``: an ISO time, to replay
    a day."""
    from datetime import datetime

    from orgs.models import Organization

    from . import ladder

    when = datetime.fromisoformat(now) if now else None
    reached = 0
    with scopes_disabled():
        orgs = list(Organization.objects.all())
    for org in orgs:
        with scope(organization=org):
            reached += len(ladder.climb(org, now=when))
    return reached
