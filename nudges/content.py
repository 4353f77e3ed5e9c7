"""What one person's weekly digest says: only what needs them, in five sections."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, F, Q
from django.urls import reverse
from django.utils import timezone

from alignment.models import Milestone, RecascadeFlag, Stakeholder, Workflow
from dependencies.models import Contribution, Dependency
from dependencies.reasons import cause_sentence
from dependencies.services import escalated
from okrs.models import KeyResult, Objective
from okrs.selectors import key_results_to_score
from orgs import permissions
from orgs.models import Cycle

CHECK_IN_AFTER = timedelta(days=7)
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
    manager = membership.role in permissions.MANAGERS
    active = Cycle.objects.for_org(org).filter(status=Cycle.Status.ACTIVE)
    d = Digest()

    krs = (KeyResult.objects.for_org(org)
           .filter(objective__cycle__in=active, owner=user)
           .exclude(objective__state=Objective.State.RETIRED)
           .select_related("objective", "owner_team"))
    for k in krs:
        if k.last_check_in_at is None or now - k.last_check_in_at >= CHECK_IN_AFTER:
            days = (now - k.last_check_in_at).days if k.last_check_in_at else None
            d.check_ins.append({"title": k.title, "objective": k.objective.title,
                                "days": days, "url": _url("check_in", slug, k.pk)})
        if k.risk_causes:
            d.upstream.append(_risk(k.title, k.effective_health, k.risk_causes,
                                    _url("why_at_risk", slug, "k", k.pk), k.owner_team.name))
    for o in (Objective.objects.for_org(org).filter(cycle__in=active, team_id__in=led)
              .live().exclude(risk_causes=[]).select_related("team")):
        d.upstream.append(_risk(o.title, o.effective_health, o.risk_causes,
                                _url("why_at_risk", slug, "o", o.pk), o.team.name))

    # A dependency is one decision per person: when it is escalated and this person sees the
    # escalations, it is listed there only, not also as a request to answer.
    escalations = escalated(org) if manager else []
    listed = {dep.pk for dep in escalations}
    for dep in (Dependency.objects.for_org(org).filter(
            cycle__in=active, status=Dependency.Status.REQUESTED, providing_team_id__in=led)
            .exclude(pk__in=listed).select_related("requesting_team")):
        d.decisions.append({"kind": "Answer a request",
                            "title": f"{dep.requesting_team.name} needs: {dep.need}",
                            "url": _url("dependency", slug, dep.pk)})
    for c in (Contribution.objects.for_org(org).filter(
            status=Contribution.Status.REQUESTED, shared__objective__cycle__in=active)
            .filter(Q(shared__owner_team_id__in=led) | Q(shared__objective__team_id__in=led))
            .select_related("key_result__owner_team", "shared")):
        d.decisions.append({"kind": "Answer a request",
                            "title": f"{c.key_result.owner_team.name} asks to count "
                                     f"“{c.key_result.title}” in “{c.shared.title}”",
                            "url": _url("objective", slug, c.shared.objective_id) + "#network"})
    for f in (RecascadeFlag.objects.for_org(org).filter(
            resolution="open", objective__team_id__in=led, objective__cycle__in=active)
            .select_related("objective")):
        d.decisions.append({"kind": "Confirm after a change", "title": f.objective.title,
                            "url": _url("recascade", slug)})
    if manager:
        proposed = Objective.objects.for_org(org).filter(
            cycle__in=active, state=Objective.State.PROPOSED).count()
        if proposed:
            d.decisions.append({"kind": "Review", "title": f"{proposed} proposed objective"
                                f"{'s' if proposed > 1 else ''}", "url": _url("review", slug)})
        for dep in escalations:
            d.decisions.append({"kind": "Escalation",
                                "title": f"{dep.requesting_team.name} needs "
                                         f"{dep.providing_team.name}: {dep.need}",
                                "url": _url("dependency", slug, dep.pk)})
        for s in (Stakeholder.objects.for_org(org).filter(
                commitment="cannot", resolved_at__isnull=True, workflow__is_closed=False)
                .select_related("team", "workflow__objective")):
            d.decisions.append({"kind": "Escalation",
                                "title": f"{s.team.name} cannot commit to "
                                         f"“{s.workflow.objective.title}”",
                                "url": _url("workflow", slug, s.workflow_id)})

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
