"""Events and immediate notifications: one function, ``notify``, for every event.

An event (a request raised, answered or declined, a proposal, changes requested, a sign-off
asked, a blocker or request escalated, an action assigned, a reminder) tells the people it
concerns, each by the channels they chose for the event's group (``GROUPS``):

- in the app: a ``Notification`` row at once (the alerts page and the count in the nav);
- by email: an item in the person's open ``EmailBundle``. Every event within the bundling
  window (``NOTIFY_BUNDLE_MINUTES``, from the first one) joins the same bundle, so a burst is
  one email. The sweep writes a due bundle into the outbox (``flush_due``). A bundle due in
  the person's quiet hours waits until they end, in the person's time zone (their own, or the
  organization's). Reminder emails are capped per person and week
  (``NOTIFY_REMINDER_WEEKLY_CAP``); requests and risk alerts never are;
- in chat: a post to the organization's channel and the channels of the teams concerned,
  when the channel takes the event's group (``chat``); a team's channel is skipped when every
  recipient turned chat off for the group.

At most one open bundle per person (a partial unique index): an event inserts one with
``ON CONFLICT DO NOTHING`` and then locks whichever is open, so on PostgreSQL two events at the
same moment for one person land in one bundle and one email; the flush takes the same lock.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from orgs import permissions
from orgs.models import Membership

from . import outbox
from .mail import UnsubscribableEmail
from .models import BundleItem, EmailBundle, OutboundEmail, Preference

log = logging.getLogger(__name__)

GROUPS = {
    "requests": "Requests to me",
    "reviews": "Reviews",
    "risks": "Risk alerts",
    "reminders": "Reminders",
}
CHANNELS = {"app": "In the app", "email": "Email", "chat": "Team chat"}
# The preferences table: per group, its field for each channel (None: always on).
GRID = {
    "requests": ["requests_app", "requests_email", "requests_chat"],
    "reviews": ["reviews_app", "reviews_email", "reviews_chat"],
    "risks": [None, "immediate_alerts", "risks_chat"],
    "reminders": ["reminders_app", "reminders_email", "reminders_chat"],
}
GRID_FIELDS = [f for fields in GRID.values() for f in fields if f and f != "immediate_alerts"]


def grid_rows():
    return [(GROUPS[g], fields) for g, fields in GRID.items()]


def is_time_zone(name):
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


# Groups whose emails are never capped (reviews are not reminders either).
UNCAPPED = {"requests", "risks", "reviews"}

# event kind -> (group, Notification kind)
EVENTS = {
    "request_raised": ("requests", "request"),
    "request_answered": ("requests", "answered"),
    "request_declined": ("requests", "declined"),
    "request_escalated": ("requests", "escalated"),
    "blocker_escalated": ("requests", "blocker"),
    "action_assigned": ("requests", "action"),
    "proposal_submitted": ("reviews", "proposal"),
    "changes_requested": ("reviews", "changes"),
    "signoff_requested": ("reviews", "signoff"),
    "at_risk": ("risks", "worse"),
    "reminder": ("reminders", "reminder"),
    "kpi_left_band": ("risks", "kpi"),
}


def bundle_window():
    return timedelta(minutes=getattr(settings, "NOTIFY_BUNDLE_MINUTES", 10))


def reminder_cap():
    return getattr(settings, "NOTIFY_REMINDER_WEEKLY_CAP", 3)


# Preferences -------------------------------------------------------------------------------


def wants(pref, group, channel):
    """Whether a person (their Preference row, or None for the defaults) wants ``group`` by
    ``channel``. Risk alerts always show in the app; their email is ``immediate_alerts``."""
    if group == "risks" and channel == "app":
        return True
    if group == "risks" and channel == "email":
        return pref is None or pref.immediate_alerts
    return pref is None or getattr(pref, f"{group}_{channel}")


def zone_of(user, org):
    for name in (getattr(user, "timezone", ""), org.timezone):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def is_quiet(local_time, start, end):
    if start is None or end is None or start == end:
        return False
    if start < end:
        return start <= local_time < end
    return local_time >= start or local_time < end  # over midnight, e.g. 20:00-08:00


def after_quiet_hours(moment, pref, tz):
    """``moment`` itself, or when it falls in the person's quiet hours, the end of them."""
    if pref is None or not is_quiet(moment.astimezone(tz).time().replace(tzinfo=None),
                                     pref.quiet_from, pref.quiet_until):
        return moment
    local = moment.astimezone(tz)
    end = datetime.combine(local.date(), pref.quiet_until, tz)
    if end <= local:
        end += timedelta(days=1)
    return end


def after_quiet(org, user, now=None):
    """When an email to ``user`` may go: now, or the end of their quiet hours (None: now)."""
    now = now or timezone.now()
    with scopes_disabled():
        pref = Preference.objects.filter(organization=org, user=user).first()
    later = after_quiet_hours(now, pref, zone_of(user, org))
    return later if later > now else None


def week_start(moment, tz):
    local = moment.astimezone(tz)
    return datetime.combine(local.date() - timedelta(days=local.weekday()), time(0), tz)


# What an event says ------------------------------------------------------------------------


@dataclass
class Event:
    kind: str
    group: str
    title: str
    text: str = ""
    path: str = ""  # where to act, inside the site
    objective_id: int | None = None
    key_result_id: int | None = None
    team_ids: list = field(default_factory=list)
    actor: str = ""

    @property
    def url(self):
        return settings.SITE_URL + self.path if self.path else settings.SITE_URL


def describe(org, kind, subject, actor=None, note=""):
    """The title, text, link, objective and teams of an event about ``subject``."""
    from alignment.models import StatusUpdate, Workflow
    from dependencies.models import Dependency, RecoveryAction
    from okrs.models import KPI, KeyResult, Objective

    group = EVENTS[kind][0]
    slug = org.slug
    who = actor.display_name if actor is not None else ""
    e = Event(kind=kind, group=group, title="", text=note.strip(), actor=who)
    if isinstance(subject, Dependency):
        ask, give = subject.requesting_team.name, subject.providing_team.name
        e.path = reverse("dependency", args=[slug, subject.pk])
        e.objective_id = (subject.downstream_objective_id
                          or subject.downstream_key_result.objective_id)
        e.team_ids = [subject.requesting_team_id, subject.providing_team_id]
        e.title = {
            "request_raised": subject.wording.ask.format(
                requester=ask, provider=give, need=subject.need),
            "request_answered": f"{give} committed to what {ask} needs: {subject.need}",
            "request_declined": f"{give} declined what {ask} needs: {subject.need}",
            "request_escalated": f"Escalated: {ask} still waits on {give}: {subject.need}",
        }.get(kind, f"{ask} and {give}: {subject.need}")
    elif isinstance(subject, Objective):
        e.path = reverse("objective", args=[slug, subject.pk])
        e.objective_id, e.team_ids = subject.pk, [subject.team_id]
        if kind == "proposal_submitted":
            e.path = reverse("review", args=[slug])
        e.title = {
            "proposal_submitted": f"Proposed for review: {subject.title}",
            "changes_requested": f"Changes requested: {subject.title}",
        }.get(kind, subject.title)
    elif isinstance(subject, Workflow):
        e.path = reverse("workflow", args=[slug, subject.pk])
        e.objective_id, e.team_ids = subject.objective_id, [subject.objective.team_id]
        e.title = {"signoff_requested": f"Sign-off asked: {subject.objective.title}"}.get(
            kind, subject.objective.title)
    elif isinstance(subject, StatusUpdate):
        objective = subject.workflow.objective
        e.path = reverse("workflow", args=[slug, subject.workflow_id])
        e.objective_id = objective.pk
        e.team_ids = [t for t in (subject.team_id, objective.team_id) if t]
        e.title = f"Blocker escalated on “{objective.title}”"
        e.text = "\n".join(t for t in (subject.text, e.text) if t)
    elif isinstance(subject, RecoveryAction):
        e.path = reverse("objective", args=[slug, subject.objective_id])
        e.objective_id, e.team_ids = subject.objective_id, [subject.objective.team_id]
        e.title = f"A recovery action for you: {subject.title}"
        e.text = "\n".join(t for t in (f"Due {subject.due_date:%d %b %Y}, for "
                                       f"“{subject.objective.title}”.", e.text) if t)
    elif isinstance(subject, KeyResult):
        e.path = reverse("check_in", args=[slug, subject.pk])
        e.objective_id, e.key_result_id = subject.objective_id, subject.pk
        e.team_ids = [subject.owner_team_id]
        e.title = {"reminder": f"Check in on {subject.title}"}.get(kind, subject.title)
    elif isinstance(subject, KPI):  # a scorecard's KPI left its healthy band
        e.path = reverse("team", args=[slug, subject.team_id]) + "#scorecard"
        e.team_ids = [subject.team_id]
        e.title = (f"{subject.team.name}: {subject.name} is "
                   f"{subject.get_health_display().lower()}")
        e.text = "\n".join(t for t in (
            "Draft a recovery objective from the team's scorecard.", e.text) if t)
    elif getattr(subject, "workflow_id", None):  # a stakeholder, a milestone: its workflow
        workflow = subject.workflow
        e.path = reverse("workflow", args=[slug, workflow.pk])
        e.objective_id, e.team_ids = workflow.objective_id, [workflow.objective.team_id]
        e.title = f"{GROUPS[group]}: {workflow.objective.title}"
    elif getattr(subject, "shared_id", None):  # a contribution request
        # Where the request is answered: the shared key result's objective, its network part.
        e.path = reverse("objective", args=[slug, subject.shared.objective_id]) + "#network"
        e.objective_id, e.key_result_id = subject.shared.objective_id, subject.shared_id
        e.team_ids = [subject.shared.owner_team_id, subject.key_result.owner_team_id]
        kr, shared = subject.key_result.title, subject.shared.title
        ask = f"{subject.key_result.owner_team.name} asks to count “{kr}” in “{shared}”"
        e.title = {
            "request_escalated": f"Escalated: {ask}",
            "request_answered": f"Accepted: “{kr}” counts in “{shared}”",
            "request_declined": f"Declined: “{kr}” does not count in “{shared}”",
        }.get(kind, ask)
    else:
        raise TypeError(f"No event is about a {type(subject).__name__}.")
    e.title = " ".join(e.title.split())[:200]
    return e


# Who is told -------------------------------------------------------------------------------


def managers(org):
    """Alignment leads and org admins: reviews, and requests nobody leads."""
    return list(Membership.objects.for_org(org).filter(role__in=permissions.MANAGERS)
                .values_list("user_id", flat=True))


def leads_of(*teams):
    return [t.lead_id for t in teams if t is not None and t.lead_id]


def dependency_askers(dependency):
    """Who waits on an answer: whoever recorded the request and the requesting team's lead."""
    return [dependency.created_by_id, dependency.requesting_team.lead_id]


def dependency_answerers(dependency):
    """Who answers a request: the providing team's lead, or the managers when it has none."""
    return leads_of(dependency.providing_team) or managers(dependency.organization)


def workflow_runners(workflow):
    return [workflow.lead_id] if workflow.lead_id else managers(workflow.organization)


# notify ------------------------------------------------------------------------------------


def notify(org, kind, recipients, subject, actor=None, *, note="", now=None, email=True):
    """Tell ``recipients`` (users or user ids; the actor and non-members are left out) about
    an event of ``kind`` (``EVENTS``) about ``subject``, in the app, by bundled email and in
    chat, each as they chose. Call it inside the transaction of the change: everything it
    writes commits with the change, or not at all. ``email=False`` where the service sends
    its own email (the sign-off request). Returns the ids of the people told."""
    if kind not in EVENTS:
        raise ValueError(f"Unknown event kind {kind!r}.")
    now = now or timezone.now()
    ids = {getattr(r, "pk", r) for r in recipients} - {None, getattr(actor, "pk", None)}
    event = describe(org, kind, subject, actor, note)
    with scope(organization=org), transaction.atomic():
        people = [m.user for m in Membership.objects.for_org(org)
                  .filter(user_id__in=ids, user__is_active=True).select_related("user")]
        prefs = {p.user_id: p for p in Preference.objects.for_org(org)
                 .filter(user_id__in=[u.pk for u in people])}
        _in_app(org, event, [u for u in people if wants(prefs.get(u.pk), event.group, "app")])
        for user in people:
            if email and wants(prefs.get(user.pk), event.group, "email"):
                add_to_bundle(org, user, event, prefs.get(user.pk), now=now)
        from . import chat

        chat.queue_event(org, event, chat_wanted=not people or any(
            wants(prefs.get(u.pk), event.group, "chat") for u in people))
    return [u.pk for u in people]


def notify_escalated(item, person, *, now=None):
    """An item climbed the escalation ladder to ``person``: a blocker (a workflow's status
    update) or a request (a dependency, a contribution)."""
    from alignment.models import StatusUpdate

    kind = "blocker_escalated" if isinstance(item, StatusUpdate) else "request_escalated"
    return notify(item.organization, kind, [person], item, now=now)


def _in_app(org, event, people):
    from dependencies.models import Notification

    Notification.objects.bulk_create([Notification(
        organization=org, user=user, kind=EVENTS[event.kind][1], objective_id=event.objective_id,
        key_result_id=event.key_result_id, title=event.title, url=event.path,
        details={"text": event.text[:1000], "actor": event.actor} if event.text or event.actor
        else {}) for user in people])


def add_to_bundle(org, user, event, pref, *, now):
    """Put one event into the person's open bundle (made if none is open). Returns the
    bundle, or None when the weekly cap on reminder emails is reached."""
    tz = zone_of(user, org)
    if event.group not in UNCAPPED:
        week = EmailBundle.objects.for_org(org).filter(
            user=user, has_reminder=True, created_at__gte=week_start(now, tz))
        if week.count() >= reminder_cap() and not week.filter(
                status=EmailBundle.Status.OPEN).exists():
            return None
    due = after_quiet_hours(now + bundle_window(), pref, tz)
    with transaction.atomic():
        bundle = None
        for _ in range(3):  # a flush may take the open bundle between our insert and lock
            EmailBundle.objects.bulk_create(
                [EmailBundle(organization=org, user=user, due_at=due, created_at=now)],
                ignore_conflicts=True)
            bundle = (EmailBundle.objects.for_org(org).select_for_update()
                      .filter(user=user, status=EmailBundle.Status.OPEN).first())
            if bundle is not None:
                break
        if bundle is None:
            raise RuntimeError(f"No open bundle for user {user.pk} after three tries.")
        BundleItem.objects.create(organization=org, bundle=bundle, kind=event.kind,
                                  group=event.group, title=event.title, text=event.text[:2000],
                                  url=event.url[:500], created_at=now)
        if event.group not in UNCAPPED and not bundle.has_reminder:
            EmailBundle.objects.for_org(org).filter(pk=bundle.pk).update(has_reminder=True)
    return bundle


# Flushing bundles --------------------------------------------------------------------------

FLUSH_BATCH = 500


def due_bundles(now=None):
    now = now or timezone.now()
    with scopes_disabled():
        return list(EmailBundle.objects.filter(status=EmailBundle.Status.OPEN, due_at__lte=now)
                    .order_by("due_at", "pk").values_list("pk", flat=True)[:FLUSH_BATCH])


def flush_due(now=None):
    """Write every due bundle into the outbox: returns how many emails were queued."""
    now = now or timezone.now()
    return sum(1 for pk in due_bundles(now) if flush(pk, now=now) is not None)


def flush(pk, *, now=None):
    """Close one due bundle and write its email into the outbox (key ``bundle:<id>``, so a
    rerun writes nothing twice). Items whose group the person turned off since are dropped.
    Returns the outbox row, or None."""
    now = now or timezone.now()
    with scopes_disabled(), transaction.atomic():
        bundle = (EmailBundle.objects.select_for_update(of=("self",))
                  .select_related("organization", "user")
                  .filter(pk=pk, status=EmailBundle.Status.OPEN, due_at__lte=now).first())
        if bundle is None:
            return None
        EmailBundle.objects.filter(pk=pk).update(status=EmailBundle.Status.SENT, flushed_at=now)
        org, user = bundle.organization, bundle.user
        pref = Preference.objects.filter(organization=org, user=user).first()
        items = [i for i in bundle.items.all() if wants(pref, i.group, "email")]
        if not items or not user.is_active:
            return None
        return outbox.queue_message(render_bundle(org, user, items),
                                    kind=OutboundEmail.Kind.EVENTS, key=f"bundle:{bundle.pk}",
                                    organization=org)


def bundle_subject(org, items):
    if len(items) == 1:
        return f"{org.name}: {items[0].title}"
    return f"{org.name}: {len(items)} updates, the first: {items[0].title}"


def render_bundle(org, user, items):
    from .services import unsubscribe_url

    stop_url = unsubscribe_url(org, user, "events")
    ctx = {"org": org, "user": user, "items": items, "unsubscribe_url": stop_url,
           "preferences_url": settings.SITE_URL + reverse("preferences", args=[org.slug])}
    message = UnsubscribableEmail(bundle_subject(org, items),
                                  render_to_string("nudges/email/events.txt", ctx), [user.email],
                                  unsubscribe_url=stop_url)
    message.attach_alternative(render_to_string("nudges/email/events.html", ctx), "text/html")
    return message


# Risk alerts -------------------------------------------------------------------------------


def risk_run(org, notes):
    """A propagation run's alerts (its Notification rows) in chat: one post per run to the
    organization's channel and the channels of the teams whose work turned at risk. Their
    in-app alerts and the one email per person and run are the run's own (dependencies.network)."""
    worse = {}
    for n in notes:
        if n.kind == "worse":
            worse.setdefault((n.objective_id, n.key_result_id), n)
    if not worse:
        return []
    from okrs.models import Objective

    with scope(organization=org):
        teams = dict(Objective.objects.for_org(org).filter(
            pk__in={k[0] for k in worse}).values_list("pk", "team_id"))
        prefs = {p.user_id: p for p in Preference.objects.for_org(org).filter(
            user_id__in={n.user_id for n in notes})}
        items = list(worse.values())
        lines = [f"- {n.title}: {n.get_health_display().lower()}" for n in items[:5]]
        if len(items) > 5:
            lines.append(f"and {len(items) - 5} more")
        title = (f"{items[0].title} turned {items[0].get_health_display().lower()} because of "
                 "other work" if len(items) == 1 else
                 f"{len(items)} items turned at risk because of other work")
        event = Event(kind="at_risk", group="risks", title=title[:200], text="\n".join(lines),
                      path=reverse("notifications", args=[org.slug]),
                      team_ids=sorted({t for t in teams.values() if t}))
        from . import chat

        return chat.queue_event(org, event, chat_wanted=any(
            wants(prefs.get(u), "risks", "chat") for u in {n.user_id for n in notes}))
