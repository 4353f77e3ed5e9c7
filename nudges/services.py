"""Sending the weekly digest: who is due, the ledger, the email, unsubscribing.

Exactly one digest per member, organization and ISO week: the ledger row (unique per member and
week) is claimed first; its email is then written into the outbox once, under the key
``digest:<ledger id>``, and the outbox sends it once (``outbox`` says the one exception). A rerun, a
second beat or a task delivered twice finds the row or the email and sends nothing again.
Members are walked in batches, without one long transaction.
"""

import logging
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from orgs.models import Membership, Organization

from . import content, outbox
from .mail import UnsubscribableEmail
from .models import Digest, OutboundEmail, Preference

log = logging.getLogger(__name__)
BATCH = 500
UNSUBSCRIBE_SALT = "nudges.unsubscribe"


def week_of(moment, tz):
    year, week, _ = moment.astimezone(tz).isocalendar()
    return f"{year}-W{week:02d}"


def is_due(org, now):
    """The organization's local digest day and hour have come, less than a day ago: a beat
    that was down for a few hours still catches up, and the ledger keeps it to one per week."""
    tz = ZoneInfo(org.timezone)
    local = now.astimezone(tz)
    scheduled = datetime.combine(local.date() - timedelta(days=local.weekday())
                                 + timedelta(days=org.digest_weekday),
                                 time(org.digest_hour), tz)
    return timedelta(0) <= local - scheduled < timedelta(days=1)


def wants_digest(org, user_id):
    pref = Preference.objects.filter(organization=org, user_id=user_id).first()
    return pref is None or pref.weekly_digest


def claim_week(org, *, now=None):
    """Create this week's ledger rows for every member who wants a digest, in batches; return
    the ids of rows still to send (new ones, and pending ones from an interrupted run)."""
    now = now or timezone.now()
    with scope(organization=org):
        return _claim(org, week_of(now, ZoneInfo(org.timezone)))


def _claim(org, week):
    opted_out = set(Preference.objects.filter(organization=org, weekly_digest=False)
                    .values_list("user_id", flat=True))
    user_ids = (Membership.objects.filter(organization=org, user__is_active=True)
                .order_by("pk").values_list("user_id", flat=True))
    batch = []
    for user_id in user_ids.iterator(chunk_size=BATCH):
        if user_id in opted_out:
            continue
        batch.append(Digest(organization=org, user_id=user_id, week=week))
        if len(batch) == BATCH:
            Digest.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    if batch:
        Digest.objects.bulk_create(batch, ignore_conflicts=True)
    return list(Digest.objects.filter(organization=org, week=week,
                                      status=Digest.Status.PENDING).values_list("pk", flat=True))


KINDS = {"digest": "weekly_digest", "alerts": "immediate_alerts", "events": "requests_email"}
# What each kind's unsubscribe link turns off: "events" is the bundled notification email.
UNSUBSCRIBES = {"digest": ["weekly_digest"], "alerts": ["immediate_alerts"],
                "events": ["requests_email", "reviews_email", "reminders_email"]}


def unsubscribe_token(org, user, kind="digest"):
    return signing.dumps({"o": org.pk, "u": user.pk, "k": kind}, salt=UNSUBSCRIBE_SALT)


def unsubscribe_url(org, user, kind="digest"):
    return settings.SITE_URL + reverse("unsubscribe", args=[unsubscribe_token(org, user, kind)])


def wants(org, user_id, kind):
    with scope(organization=org):
        pref = Preference.objects.filter(organization=org, user_id=user_id).first()
    return pref is None or getattr(pref, KINDS[kind])


def read_unsubscribe_token(token):
    """(organization, user_id, kind) from a token, or None when it is not ours."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    with scopes_disabled():
        org = Organization.objects.filter(pk=data.get("o")).first()
        member = org and Membership.objects.filter(organization=org, user_id=data.get("u"))
        if not org or not member.exists() or data.get("k", "digest") not in KINDS:
            return None
    return org, data["u"], data.get("k", "digest")


def unsubscribe(org, user_id, kind="digest"):
    with scope(organization=org):
        Preference.objects.update_or_create(organization=org, user_id=user_id,
                                            defaults=dict.fromkeys(UNSUBSCRIBES[kind], False))


def render_digest(membership, digest, *, now=None):
    org = membership.organization
    stop_url = unsubscribe_url(org, membership.user)
    ctx = {"org": org, "user": membership.user, "d": digest, "site_url": settings.SITE_URL,
           "home_url": settings.SITE_URL + reverse("home", args=[org.slug]),
           "preferences_url": settings.SITE_URL + reverse("preferences", args=[org.slug]),
           "unsubscribe_url": stop_url}
    subject = f"{org.name}: {digest.subject()}"
    message = UnsubscribableEmail(
        subject, render_to_string("nudges/email/digest.txt", ctx), [membership.user.email],
        unsubscribe_url=stop_url)
    message.attach_alternative(render_to_string("nudges/email/digest.html", ctx), "text/html")
    return message


ALREADY = "already"  # another run, task or the sweep wrote or sent it
WAITING = "waiting"  # in the outbox, to be retried later (the mail server failed before)


def send_one(digest_id, *, now=None):
    """Write one claimed digest into the outbox (once: its key names the ledger row) and send
    it. Returns what this call did: "sent"; "empty" (nothing to say); "pending" (the mail server
    failed: the outbox retries later); "failed" (the outbox gave up); "waiting" (it failed
    before and waits for its retry time); or "already" when another sender has it or had it."""
    now = now or timezone.now()
    with scopes_disabled():
        row = Digest.objects.select_related("organization", "user").filter(pk=digest_id).first()
        if row is None or row.status != Digest.Status.PENDING:
            return ALREADY
        queued = OutboundEmail.objects.filter(dedupe_key=digest_key(row)).first()
    if queued is None:
        queued = _write_digest(row, now)
        if queued is None:
            return Digest.Status.EMPTY
    done = outbox.deliver(queued.pk)
    if done is None:
        with scopes_disabled():
            waiting = OutboundEmail.objects.filter(
                pk=queued.pk, status=OutboundEmail.Status.PENDING).exists()
        return WAITING if waiting else ALREADY
    return done


def digest_key(row):
    return f"digest:{row.pk}"


def _write_digest(row, now):
    org = row.organization
    with scope(organization=org):
        membership = (Membership.objects.filter(organization=org, user=row.user)
                      .select_related("organization", "user").first())
        digest = None
        if membership is not None and wants_digest(org, row.user_id):
            digest = content.build(membership, now=now)
        if digest is None or digest.empty:
            Digest.objects.filter(pk=row.pk, status=Digest.Status.PENDING).update(
                status=Digest.Status.EMPTY)
            return None
        message = render_digest(membership, digest, now=now)
        with transaction.atomic():
            Digest.objects.filter(pk=row.pk).update(subject=message.subject[:200])
            # Sent right below, by this call: no separate task.
            return outbox.queue_message(message, kind=OutboundEmail.Kind.DIGEST,
                                        key=digest_key(row), organization=org, enqueue=False)


def due_organizations(now):
    with scopes_disabled():
        return [org for org in Organization.objects.all() if is_due(org, now)]



def save_preferences(form, *, user):
    """A valid preferences form: the person's choices in this organization, and their own
    time zone (for every organization)."""
    with transaction.atomic():
        form.save()
        if user.timezone != form.cleaned_data["timezone"]:
            user.timezone = form.cleaned_data["timezone"]
            user.save(update_fields=["timezone"])
    return form.instance


def save_channel(form, *, membership):
    """A valid chat channel form (console only): a new channel gets its signing secret."""
    from . import chat

    channel = form.instance
    if not channel.secret:
        channel.secret = chat.new_secret()
    if channel.pk is None:
        channel.created_by = membership.user
    channel.organization = membership.organization
    return form.save()


def delete_channel(channel, *, membership):
    from .models import ChatChannel

    ChatChannel.objects.for_org(membership.organization).filter(pk=channel.pk).delete()
