"""Chat channels: events and the weekly team summary posted to an incoming webhook.

A channel belongs to the organization (no team) or to one team, and names its tool:

- Slack: ``{"text": ..., "blocks": [...]}`` (a section in mrkdwn, a context line). Slack's
  incoming webhooks take no signature (the secret URL is the credential);
- Microsoft Teams: a MessageCard (title, text, an "Open" button). Teams' incoming webhooks take
  no signature either;
- generic JSON: ``{"event", "group", "organization", "team", "title", "text", "url",
  "sent_at"}``, signed: ``X-OKR-Signature: sha256=<hex HMAC-SHA256 of the body with the
  channel's secret>``, with the delivery's key in ``X-OKR-Delivery``.

Every post is a ``ChatDelivery`` row first, written in the transaction of the change, and goes
the outbox's way (``outbox``): claimed by a conditional UPDATE before it is sent, marked sent
after; a failure goes back to pending with a later attempt (1, 2, 4, 8, 16 minutes), failed
after ``MAX_ATTEMPTS``; the outbox sweep puts stuck ones back and sends due ones.

Posts go through the guarded client (``integrations.http``): only http(s) URLs, the host
resolved once and connected to at the address that was checked (no DNS rebinding), no redirect
followed, no proxy, a short timeout (``CHAT_WEBHOOK_TIMEOUT`` seconds), a size limit on the
answer, and unless ``CHAT_WEBHOOK_ALLOW_PRIVATE_HOSTS`` no host that resolves to a loopback,
private, link-local or reserved address.
"""

import hashlib
import hmac
import http.client
import json
import logging
import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from integrations import http as guarded

from . import outbox
from .models import ChatChannel, ChatDelivery

log = logging.getLogger(__name__)
Status = ChatDelivery.Status
SIGNATURE_HEADER = "X-OKR-Signature"
TEXT_MAX = 2500


def new_secret():
    return secrets.token_hex(32)


def timeout():
    return getattr(settings, "CHAT_WEBHOOK_TIMEOUT", 5)


# The URL -----------------------------------------------------------------------------------


def check_url(url):
    """A ValidationError when ``url`` is no webhook we post to (the guarded client's check:
    ``integrations.http.check_url``)."""
    try:
        guarded.check_url(url, allow_private=_allow_private())
    except guarded.FetchError as exc:
        raise ValidationError(str(exc)) from None


def _allow_private():
    return getattr(settings, "CHAT_WEBHOOK_ALLOW_PRIVATE_HOSTS", False)


# Message formats ---------------------------------------------------------------------------


def _slack_escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _teams_escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(channel, *, kind, group, title, text, url, org, team_name=None, now=None):
    """The JSON body a channel's tool expects, as a dict."""
    now = now or timezone.now()
    text = (text or "")[:TEXT_MAX]
    if channel.tool == ChatChannel.Tool.SLACK:
        head = f"*<{url}|{_slack_escape(title)}>*" if url else f"*{_slack_escape(title)}*"
        body = head + (f"\n{_slack_escape(text)}" if text else "")
        return {"text": f"{title} {url}".strip(), "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": body}},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": _slack_escape(team_name or org.name)}]}]}
    if channel.tool == ChatChannel.Tool.TEAMS:
        card = {"@type": "MessageCard", "@context": "https://schema.org/extensions",
                "summary": title[:150], "themeColor": "2563EB", "title": _teams_escape(title),
                "text": _teams_escape(text) or _teams_escape(team_name or org.name)}
        if url:
            card["potentialAction"] = [{"@type": "OpenUri", "name": "Open",
                                        "targets": [{"os": "default", "uri": url}]}]
        return card
    return {"event": kind, "group": group, "organization": org.slug, "team": team_name,
            "title": title, "text": text, "url": url, "sent_at": now.isoformat()}


def sign(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers_for(channel, delivery, body):
    headers = {"Content-Type": "application/json; charset=utf-8",
               "User-Agent": "okr-alignment-webhook/1"}
    if channel.tool == ChatChannel.Tool.GENERIC:
        headers[SIGNATURE_HEADER] = sign(channel.secret, body)
        headers["X-OKR-Delivery"] = delivery.dedupe_key
    return headers


# Queueing ----------------------------------------------------------------------------------


def queue(channel, *, kind, title, body, key=None, enqueue=True):
    """Write one post into the chat outbox; it is sent once the transaction commits."""
    key = key or f"chat:{uuid.uuid4().hex}"
    with scopes_disabled():
        row, created = ChatDelivery.objects.get_or_create(dedupe_key=key, defaults={
            "organization_id": channel.organization_id, "channel": channel, "kind": kind,
            "title": title[:300], "body": json.dumps(body, ensure_ascii=False)})
    if created and enqueue:
        from orgs.tasks import enqueue_on_commit

        from .tasks import deliver_chat

        enqueue_on_commit(deliver_chat, row.pk)
    return row


def channels_for(org, group, team_ids, *, team_channels=True):
    rows = ChatChannel.objects.for_org(org).filter(is_active=True, **{group: True})
    where = Q(team__isnull=True)
    if team_channels and team_ids:
        where |= Q(team_id__in=team_ids)
    return list(rows.filter(where).select_related("team"))


def queue_event(org, event, *, chat_wanted=True):
    """Post an event (``events.Event``) to the organization's channel and its teams'."""
    rows = []
    for channel in channels_for(org, event.group, event.team_ids, team_channels=chat_wanted):
        text = "\n".join(t for t in (event.text, f"By {event.actor}." if event.actor else "")
                         if t)
        body = payload(channel, kind=event.kind, group=event.group, title=event.title,
                       text=text, url=event.url, org=org,
                       team_name=channel.team.name if channel.team else None)
        rows.append(queue(channel, kind=ChatDelivery.Kind.EVENT, title=event.title, body=body))
    return rows


def send_test(channel, *, actor):
    """Post a test message now; returns the delivery as it stands after one attempt."""
    org = channel.organization
    where = channel.team.name if channel.team else org.name
    title = f"Test message from {org.name}"
    body = payload(channel, kind="test", group="test", title=title,
                   text=f"{actor.display_name} sent this to check the {where} channel. "
                        "If you read it here, the channel works.",
                   url=settings.SITE_URL + reverse("home", args=[org.slug]), org=org,
                   team_name=channel.team.name if channel.team else None)
    row = queue(channel, kind=ChatDelivery.Kind.TEST, title=title, body=body, enqueue=False)
    deliver(row.pk)
    with scopes_disabled():
        row.refresh_from_db()
    return row


# Sending -----------------------------------------------------------------------------------


class PostFailed(Exception):
    """The webhook answered, but not with a 2xx."""


def post(url, body, headers):
    """POST ``body`` to ``url`` through the guarded client (the address checked once and
    connected to as checked, no redirects, time and size limits); raises on anything but a 2xx
    answer."""
    response = guarded.request("POST", url, body=body, headers=headers,
                               allow_private=_allow_private(), total_timeout=timeout(),
                               max_bytes=2048 * 1024)
    if not 200 <= response.status < 300:
        reason = http.client.responses.get(response.status, "")
        raise PostFailed(f"HTTP {response.status}: {reason}".rstrip(": "))
    return response.status


def deliver(pk, *, now=None):
    """Send one delivery if it is ours to send (the outbox's claim). Returns the status this
    call left it in, or None when there was nothing to claim."""
    now = now or timezone.now()
    if not outbox.claim(ChatDelivery, pk, now):
        return None
    with scopes_disabled():
        row = ChatDelivery.objects.select_related("channel").get(pk=pk)
    body = row.body.encode()
    try:
        post(row.channel.url, body, headers_for(row.channel, row, body))
    except Exception as exc:  # noqa: BLE001 - any failure is retried or given up
        return _failed(row, exc, now)
    with scopes_disabled():
        ChatDelivery.objects.filter(pk=pk).update(status=Status.SENT, sent_at=timezone.now(),
                                                  last_error="")
    return Status.SENT


def _describe(exc):
    if isinstance(exc, PostFailed):
        return str(exc)
    if isinstance(exc, guarded.FetchError):
        return f"Cannot deliver to the webhook: {exc}"
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return f"{type(exc).__name__}: {exc}"


def _failed(row, exc, now):
    error = _describe(exc)[:300]
    final, later = outbox.give_back(ChatDelivery, row, now, error=error)
    if final:
        log.error("Chat post %s (channel %s, organization %s) failed for good after %s "
                  "attempts: %s", row.pk, row.channel_id, row.organization_id, row.attempts,
                  error)
        return Status.FAILED
    log.warning("Chat post %s (channel %s) not sent, attempt %s, retried at %s: %s", row.pk,
                row.channel_id, row.attempts, later.isoformat(), error)
    return Status.PENDING


def sweep(*, now=None):
    """Put deliveries whose sender died back to pending; return the ids due to be sent."""
    now = now or timezone.now()
    outbox.release_stuck(ChatDelivery, now)
    return outbox.due_ids(ChatDelivery, now)


# The weekly summary ------------------------------------------------------------------------


def summary_text(org, team, now):
    """Key results of the active cycles (of the team and the units below it, or of the whole
    organization): how many, by health, how many checked in this week. Fixed queries."""
    from django.db.models import Count

    from okrs.models import KeyResult, Objective
    from orgs.models import Cycle

    krs = (KeyResult.objects.for_org(org)
           .filter(objective__cycle__status=Cycle.Status.ACTIVE)
           .exclude(objective__state=Objective.State.RETIRED))
    if team is not None:
        krs = krs.filter(owner_team__tree_id=team.tree_id, owner_team__lft__gte=team.lft,
                         owner_team__rght__lte=team.rght)
    health = dict(krs.values_list("effective_health").annotate(n=Count("pk"))
                  .values_list("effective_health", "n"))
    total = sum(health.values())
    if not total:
        return "No key results in a running cycle."
    fresh = krs.filter(last_check_in_at__gte=now - timedelta(days=7)).count()
    parts = [f"{total} key result{'s' if total != 1 else ''}"]
    for value, label in (("on_track", "on track"), ("at_risk", "at risk"),
                         ("off_track", "off track")):
        if health.get(value):
            parts.append(f"{health[value]} {label}")
    return (", ".join(parts) + f". {fresh} checked in during the last 7 days, "
            f"{total - fresh} not.")


def queue_weekly_summaries(org, *, week, now=None):
    """Once per channel and ISO week (the key says so): the summary of its team, or of the
    organization."""
    now = now or timezone.now()
    rows = []
    for channel in (ChatChannel.objects.for_org(org).filter(is_active=True, weekly_summary=True)
                    .select_related("team")):
        name = channel.team.name if channel.team else org.name
        title = f"Weekly summary of {name}, {week}"
        url = settings.SITE_URL + reverse("home", args=[org.slug])
        body = payload(channel, kind="weekly_summary", group="summary", title=title,
                       text=summary_text(org, channel.team, now), url=url, org=org,
                       team_name=channel.team.name if channel.team else None, now=now)
        rows.append(queue(channel, kind=ChatDelivery.Kind.SUMMARY, title=title, body=body,
                          key=f"summary:{channel.pk}:{week}"))
    return rows
