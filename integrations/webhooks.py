"""Outbound webhooks: an organization's events, posted as signed JSON to the URLs it subscribes.

``emit(org, type, data)`` is the one way in. It writes one ``WebhookDelivery`` per active
subscription to the event, in the caller's transaction (the delivery commits with the change
that causes it, or not at all), and enqueues the sends with ``transaction.on_commit``. The body::

    {"id": "<event uuid>", "type": "check_in.created", "created_at": "<ISO 8601>",
     "organization": {"slug": ..., "name": ...}, "data": {...the object...}}

posted with ``Content-Type: application/json``, ``X-OKR-Event``, ``X-OKR-Event-Id`` (the same id
on every retry and redelivery: receivers deduplicate on it) and the signature headers of
``integrations.signing`` (HMAC-SHA256 of "<timestamp>.<body>" with the subscription's secret).

Deliveries go the outbox's way (``nudges.outbox``): claimed by a conditional UPDATE before the
send, marked delivered after a 2xx answer; on anything else back to pending with a later
attempt (1, 2, 4, 8, 16 minutes), failed after ``MAX_ATTEMPTS``; every attempt is logged with
its status code or error (``WebhookAttempt``). The sweep puts stuck rows back and sends due ones;
"Redeliver" puts a delivery back to pending at once.
"""

import json
import logging
import time
import uuid
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from django_scopes import scopes_disabled

from nudges import outbox
from orgs import permissions

from . import http, signing
from .models import Event, WebhookAttempt, WebhookDelivery, WebhookSubscription

log = logging.getLogger(__name__)
Status = WebhookDelivery.Status
MAX_ATTEMPTS = outbox.MAX_ATTEMPTS  # the claim, retries and sweep are the email outbox's
MAX_SUBSCRIPTIONS = 20
TIMEOUT = 10.0
MAX_ANSWER_BYTES = 65_536


# Emitting --------------------------------------------------------------------------------------


def emit(org, type, data, *, now=None):
    """Queue event ``type`` (an ``Event`` value) with ``data`` for every active subscription of
    ``org`` to it; sent once the transaction commits. Returns the deliveries (none when nobody
    subscribes: one query)."""
    Event(type)  # a typo is a bug, not a silent drop
    with scopes_disabled():
        subscriptions = [s for s in WebhookSubscription.objects.filter(
            organization_id=org.pk, is_active=True).only("pk", "events") if type in s.events]
    if not subscriptions:
        return []
    now = now or timezone.now()
    event_id = uuid.uuid4()
    body = json.dumps({
        "id": str(event_id), "type": type, "created_at": now.isoformat(),
        "organization": {"slug": org.slug, "name": org.name}, "data": data,
    }, ensure_ascii=False, default=str)
    with scopes_disabled():
        rows = WebhookDelivery.objects.bulk_create([
            WebhookDelivery(organization_id=org.pk, subscription_id=s.pk, event_id=event_id,
                            event_type=type, body=body, created_at=now, next_attempt_at=now)
            for s in subscriptions])
    from orgs.tasks import enqueue_on_commit

    from .tasks import deliver_webhook

    for row in rows:
        enqueue_on_commit(deliver_webhook, row.pk)
    return rows


# The objects in the payloads: ids, titles, values; the receiver calls the API for more.


def check_in_data(check_in):
    kr = check_in.key_result
    return {"check_in": {
        "id": check_in.pk, "key_result": {"id": kr.pk, "title": kr.title,
                                          "objective_id": kr.objective_id},
        "value": check_in.value, "is_done": check_in.is_done,
        "confidence": check_in.confidence, "note": check_in.note,
        "source": check_in.source, "author": check_in.author.email if check_in.author else None,
        "created_at": check_in.created_at.isoformat()}}


def dependency_data(dependency):
    return {"dependency": {
        "id": dependency.pk, "status": dependency.status, "need": dependency.need,
        "requesting_team_id": dependency.requesting_team_id,
        "providing_team_id": dependency.providing_team_id,
        "needed_by": dependency.needed_by, "response_note": dependency.response_note}}


def objective_data(objective):
    return {"objective": {"id": objective.pk, "title": objective.title,
                          "team_id": objective.team_id, "cycle_id": objective.cycle_id,
                          "parent_id": objective.parent_id}}


def cycle_data(cycle):
    return {"cycle": {"id": cycle.pk, "name": cycle.name, "start_date": cycle.start_date,
                      "end_date": cycle.end_date, "closed_at": cycle.closed_at}}


def emit_published(org, objectives):
    for objective in objectives:
        emit(org, Event.PUBLISHED, objective_data(objective))


HEALTH_CHANGES_MAX = 500


def emit_health_changes(cycle, data, changed_objectives, changed_key_results):
    """From a propagation run's diff: one "health.changed" event listing the objectives and key
    results whose effective health changed (risk causes alone do not count), at most
    ``HEALTH_CHANGES_MAX`` of them. No query unless something changed."""
    changes = []
    for kind, table, rows in (("objective", "objectives", changed_objectives),
                              ("key_result", "key_results", changed_key_results)):
        for row in rows:
            stored = data[table].get(row["id"], {})
            old = stored.get("effective_health") or None
            new = row["eff"] or None
            if old != new:
                changes.append({"type": kind, "id": row["id"], "title": stored.get("title", ""),
                                "from": old, "to": new})
    if not changes:
        return []
    org = cycle.organization
    return emit(org, Event.HEALTH, {
        "cycle": {"id": cycle.pk, "name": cycle.name},
        "changes": changes[:HEALTH_CHANGES_MAX],
        "truncated": len(changes) > HEALTH_CHANGES_MAX})


# Subscriptions ---------------------------------------------------------------------------------


def _check_admin(membership):
    if not permissions.can_open_console(membership):
        raise PermissionDenied("Only org admins and alignment leads manage webhooks.")


def save_subscription(*, membership, subscription=None, url, events, description="",
                      is_active=True):
    """Create or change a subscription. Returns (subscription, secret): the secret only when
    new (shown once)."""
    from .sources import fetch_options

    _check_admin(membership)
    org = membership.organization
    errors = {}
    url = (url or "").strip()
    try:
        http.check_url(url, **fetch_options(org))
    except http.FetchError as exc:
        errors["url"] = str(exc)
    events = [e for e in Event.values if e in set(events or [])]
    if not events:
        errors["events"] = "Choose at least one event."
    if subscription is None and WebhookSubscription.objects.for_org(org).count() >= \
            MAX_SUBSCRIPTIONS:
        errors["url"] = f"An organization has at most {MAX_SUBSCRIPTIONS} webhooks."
    if errors:
        raise ValidationError(errors)
    secret = None
    if subscription is None:
        secret = signing.new_secret()
        subscription = WebhookSubscription(organization=org, secret=secret,
                                           created_by=membership.user)
    subscription.url, subscription.events = url, events
    subscription.description, subscription.is_active = (description or "")[:120], is_active
    subscription.save()
    return subscription, secret


def regenerate_secret(*, membership, subscription):
    _check_admin(membership)
    secret = signing.new_secret()
    WebhookSubscription.objects.for_org(membership.organization).filter(
        pk=subscription.pk).update(secret=secret)
    subscription.secret = secret
    return secret


def delete_subscription(*, membership, subscription):
    _check_admin(membership)
    WebhookSubscription.objects.for_org(membership.organization).filter(
        pk=subscription.pk).delete()


def redeliver(*, membership, delivery, now=None):
    """Send a delivery again, now, whatever its state (the same event id and body, freshly
    signed). One being sent right now is left alone."""
    _check_admin(membership)
    now = now or timezone.now()
    updated = WebhookDelivery.objects.for_org(membership.organization).filter(
        pk=delivery.pk).exclude(status=Status.SENDING).update(
        status=Status.PENDING, attempts=0, next_attempt_at=now, last_error="")
    if not updated:
        raise ValidationError("This delivery is being sent right now; look again in a moment.")
    from orgs.tasks import enqueue_on_commit

    from .tasks import deliver_webhook

    enqueue_on_commit(deliver_webhook, delivery.pk)


# Sending ---------------------------------------------------------------------------------------


def deliver(pk, *, now=None):
    """Send one delivery if it is ours to send (the claim). Returns the status this call left it
    in, or None when there was nothing to claim."""
    now = now or timezone.now()
    if not outbox.claim(WebhookDelivery, pk, now):
        return None
    with scopes_disabled():
        row = WebhookDelivery.objects.select_related("subscription", "organization").get(pk=pk)
    from .sources import fetch_options

    body = row.body.encode()
    headers = {"Content-Type": "application/json; charset=utf-8",
               "X-OKR-Event": row.event_type, "X-OKR-Event-Id": str(row.event_id),
               **signing.headers(row.subscription.secret, body)}
    started = time.monotonic()
    status_code, error = None, ""
    try:
        response = http.request("POST", row.subscription.url, body=body, headers=headers,
                                total_timeout=TIMEOUT, max_bytes=MAX_ANSWER_BYTES,
                                **fetch_options(row.organization))
        status_code = response.status
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except http.FetchError as exc:
        status_code, error = exc.status, str(exc)
    except Exception as exc:  # noqa: BLE001 - any failure is logged and retried
        error = f"{type(exc).__name__}: {exc}"
    duration = round((time.monotonic() - started) * 1000)
    with scopes_disabled():
        WebhookAttempt.objects.create(organization_id=row.organization_id, delivery_id=row.pk,
                                      at=now, status_code=status_code, error=error[:300],
                                      duration_ms=duration)
    if not error:
        with scopes_disabled():
            WebhookDelivery.objects.filter(pk=pk).update(
                status=Status.SENT, sent_at=timezone.now(), last_error="",
                last_status_code=status_code)
        return Status.SENT
    return _failed(row, error[:300], status_code, now)


def _failed(row, error, status_code, now):
    final, later = outbox.give_back(WebhookDelivery, row, now, error=error,
                                    last_status_code=status_code)
    if final:
        log.error("Webhook delivery %s (subscription %s, organization %s) failed for good "
                  "after %s attempts: %s", row.pk, row.subscription_id, row.organization_id,
                  row.attempts, error)
        return Status.FAILED
    log.warning("Webhook delivery %s (subscription %s) not delivered, attempt %s, retried at "
                "%s: %s", row.pk, row.subscription_id, row.attempts, later.isoformat(), error)
    return Status.PENDING


def sweep(*, now=None):
    """Put deliveries whose sender died back to pending; return the ids due to be sent."""
    now = now or timezone.now()
    outbox.release_stuck(WebhookDelivery, now)
    return outbox.due_ids(WebhookDelivery, now)


# Settled deliveries (sent, or given up) older than this are deleted by the sweep, with their
# attempts: the log shows a month of traffic, and the table does not grow without end.
KEEP_SETTLED = timedelta(days=30)
PRUNE_BATCH = 1000


def prune(*, now=None):
    """Delete at most ``PRUNE_BATCH`` settled deliveries older than ``KEEP_SETTLED`` (oldest
    first), with their attempts; pending and in-flight ones are kept whatever their age.
    Returns how many deliveries went."""
    now = now or timezone.now()
    with scopes_disabled():
        old = list(WebhookDelivery.objects.filter(
            status__in=(Status.SENT, Status.FAILED), created_at__lt=now - KEEP_SETTLED)
            .order_by("created_at", "pk").values_list("pk", flat=True)[:PRUNE_BATCH])
        if not old:
            return 0
        WebhookAttempt.objects.filter(delivery_id__in=old).delete()
        WebhookDelivery.objects.filter(pk__in=old).delete()
    return len(old)

