"""What one person's weekly digest says: only what needs them, in five sections."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, F, Q
from django.urls import reverse
from django.utils import timezone

from alignment.models import Milestone, Workflow
from dependencies.reasons import cause_sentence
from okrs.models import KeyResult, Objective
from okrs.selectors import key_results_to_score
from orgs import permissions
from orgs.models import Cycle

from . import inbox

DIGEST_ITEMS = 10  # per kind; the rest are counted, with a link to the inbox
MILESTONES_AHEAD = timedelta(days=14)


@dataclass
class Digest:
    check_ins: list = field(default_factory=list)
    upstream: list = field(default_factory=list)
    decisions: list = field(default_factory=list)
    milestones: list = field(default_factory=list)
    syncs: list = field(default_factory=list)
    # End of a cycle: one line per team with key results this person owes a score.
    scoring: list = field(default_factory=list)
    more: int = 0  # items of the inbox beyond those listed
    inbox_url: str = ""

    @property
    def empty(self):
        return not (self.check_ins or self.upstream or self.decisions or self.milestones
                    or self.syncs or self.scoring)

    def subject(self):
        parts = []
        for items, one, many in (
                (self.check_ins, "check-in due", "check-ins due"),
                (self.upstream, "risk upstream", "risks upstream"),
                (self.decisions, "decision waiting", "decisions waiting"),
                (self.milestones, "milestone due", "milestones due")):
            if items:
                parts.append(f"{len(items)} {one if len(items) == 1 else many}")
        to_score = sum(line["count"] for line in self.scoring)
        if to_score:
            parts.append(f"{to_score} key result{'s' if to_score > 1 else ''} to score")
        if self.syncs and not parts:
            parts.append(f"{len(self.syncs)} sync{'s' if len(self.syncs) > 1 else ''} this week")
        return ", ".join(parts)


def _url(name, *args):
    return settings.SITE_URL + reverse(name, args=args)


def next_sync(workflow, now, tz):
    """The next sync of a workflow after ``now``, in the organization's time zone."""
    if workflow.sync_weekday is None or workflow.sync_time is None:
        return None
    local = now.astimezone(tz)
    days = (workflow.sync_weekday - local.weekday()) % 7
    when = datetime.combine(local.date() + timedelta(days=days), workflow.sync_time, tz)
    if when <= local:
        when += timedelta(days=7)
    if workflow.sync_frequency == Workflow.Frequency.BIWEEKLY and workflow.kickoff_date:
        weeks = (when.date() - workflow.kickoff_date).days // 7
        if weeks % 2:
            when += timedelta(days=7)
    return when


def build(membership, *, now=None):
    """The digest of one member: a fixed number of queries, whatever the organization's size."""
    org, user = membership.organization, membership.user
    now = now or timezone.now()
    tz = ZoneInfo(org.timezone)
    today = now.astimezone(tz).date()
    slug = org.slug
    led = permissions.led_team_ids(membership)
    active = Cycle.objects.for_org(org).filter(status=Cycle.Status.ACTIVE)
    d = Digest()

    # Check-ins due and the decisions come from the inbox's selector, so both always agree.
    waiting = inbox.items_for(membership, now=now, oldest=DIGEST_ITEMS)
    for g in waiting["groups"]:
        if g["kind"].key == "score":
            continue  # listed per team below (``scoring``), from the same query
        for item in g["items"]:
            if g["kind"].key == "check_in":
                d.check_ins.append({"title": item.title, "objective": item.extra["objective"],
                                    "days": item.extra["days"],
                                    "url": settings.SITE_URL + item.url})
            else:
                d.decisions.append({"kind": item.label, "title": item.title,
                                    "url": settings.SITE_URL + item.url})
        if g["count"] > len(g["items"]):
            d.more += g["count"] - len(g["items"])
    d.inbox_url = _url("inbox", slug)

    krs = (KeyResult.objects.for_org(org)
           .filter(objective__cycle__in=active, owner=user).exclude(risk_causes=[])
           .exclude(objective__state=Objective.State.RETIRED)
           .select_related("objective", "owner_team"))
    for k in krs:
        d.upstream.append(_risk(k.title, k.effective_health, k.risk_causes,
                                _url("why_at_risk", slug, "k", k.pk), k.owner_team.name))
    for o in (Objective.objects.for_org(org).filter(cycle__in=active, team_id__in=led)
              .live().exclude(risk_causes=[]).select_related("team")):
        d.upstream.append(_risk(o.title, o.effective_health, o.risk_causes,
                                _url("why_at_risk", slug, "o", o.pk), o.team.name))

    mine = Q(owner_team_id__in=led) | Q(
        workflow__stakeholders__owner=user,
        workflow__stakeholders__team_id=F("owner_team_id"))
    for m in (Milestone.objects.for_org(org).filter(mine).filter(
            workflow__is_closed=False, done_at__isnull=True, due_date__gte=today,
            due_date__lte=today + MILESTONES_AHEAD).select_related("workflow__objective",
                                                                    "owner_team").distinct()):
        d.milestones.append({"title": m.title, "due": m.due_date,
                             "team": m.owner_team.name if m.owner_team else "",
                             "url": _url("workflow", slug, m.workflow_id) + "#step-6"})

    for w in (Workflow.objects.for_org(org).filter(is_closed=False, cycle__in=active)
              .filter(Q(lead=user) | Q(stakeholders__owner=user)).distinct()
              .select_related("objective")):
        when = next_sync(w, now, tz)
        if when is not None and when - now.astimezone(tz) <= timedelta(days=7):
            d.syncs.append({"title": w.objective.title, "when": when, "format": w.sync_format,
                            "url": _url("workflow", slug, w.pk)})

    for row in (key_results_to_score(org, membership, today=today).order_by()
                .values("owner_team", "owner_team__name", "objective__cycle",
                        "objective__cycle__name", "objective__cycle__end_date")
                .annotate(n=Count("pk")).order_by("owner_team__name", "owner_team")[:20]):
        d.scoring.append({"team": row["owner_team__name"], "count": row["n"],
                          "cycle": row["objective__cycle__name"],
                          "ends": row["objective__cycle__end_date"],
                          "url": _url("team", slug, row["owner_team"])
                          + f"?cycle={row['objective__cycle']}"})
    return d


def _risk(title, health, causes, url, team):
    """One item at risk because of other work, with its reasons worded apart (``reasons``)."""
    root = causes[0][0] if causes and causes[0] else {}
    sentences = [cause_sentence(path, team=team) for path in causes if path]
    return {"title": title, "health": health, "root": root.get("title", ""),
            "root_team": root.get("team", ""), "reasons": sentences,
            "reason": sentences[0] if sentences else "", "url": url}
