"""The escalation ladder: an unanswered dependency request, or an unresolved blocker of a
workflow, climbs after the organization's days to the team's lead, then the department head,
then an alignment lead, then an org admin. Each step reached is recorded on the item
(``EscalationStep``); a step whose person is the one of the step before reaches nobody new and
is recorded as skipped. The periodic sweep (``tasks.climb_ladders``) runs ``climb``; it is
idempotent, and a fixed ``now`` replays any day.
"""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.urls import reverse
from django.utils import timezone

from orgs.models import Cycle, Membership, Role, Team

from .models import Dependency, EscalationStep

Step = EscalationStep.Step
BATCH = 500


def step_days(org):
    """Days after an item was raised when it reaches each step, in step order."""
    return {Step.LEAD: org.ladder_lead_days, Step.HEAD: org.ladder_head_days,
            Step.ALIGNMENT: org.ladder_alignment_days, Step.ADMIN: org.ladder_admin_days}


class _People:
    """Who stands on each step, from one read of the teams and one of the managers."""

    def __init__(self, org):
        self.teams = {t["id"]: t for t in Team.objects.for_org(org).values(
            "id", "parent_id", "kind", "lead_id")}
        managers = list(Membership.objects.for_org(org)
                        .filter(role__in=[Role.ALIGNMENT_LEAD, Role.ADMIN])
                        .order_by("user__full_name", "user__email", "pk")
                        .values_list("role", "user_id"))
        self.alignment = next((u for r, u in managers if r == Role.ALIGNMENT_LEAD), None)
        self.admin = next((u for r, u in managers if r == Role.ADMIN), None)

    def head_of(self, team_id):
        """The lead of the top-level department above (or at) the team."""
        head, team = None, self.teams.get(team_id)
        while team is not None:
            if team["kind"] == Team.Kind.DEPARTMENT:
                head = team["lead_id"]
            team = self.teams.get(team["parent_id"])
        return head

    def on(self, step, team_id, *, alignment_lead=None):
        if step == Step.LEAD:
            return (self.teams.get(team_id) or {}).get("lead_id")
        if step == Step.HEAD:
            return self.head_of(team_id)
        if step == Step.ALIGNMENT:
            return alignment_lead or self.alignment
        return self.admin


def _open_dependencies(org):
    return (Dependency.objects.for_org(org)
            .filter(status=Dependency.Status.REQUESTED)
            .exclude(cycle__status=Cycle.Status.CLOSED))


def _open_blockers(org):
    from alignment.models import StatusUpdate

    return (StatusUpdate.objects.for_org(org)
            .filter(is_blocker=True, resolved_at__isnull=True, workflow__is_closed=False)
            .exclude(workflow__cycle__status=Cycle.Status.CLOSED))


def climb(org, *, now=None):
    """Record every step that open items of ``org`` have reached by ``now``; returns the steps
    that reached someone (skipped ones aside). Queries grow with the number of steps reached,
    not with the organization: items that have climbed every step due are not loaded."""
    now = now or timezone.now()
    days = step_days(org)
    first_due = now - timedelta(days=days[Step.LEAD])
    people = None
    reached = []
    sources = [
        ("dependency", _open_dependencies(org).filter(created_at__lte=first_due),
         lambda d: (d.providing_team_id, d.created_by_id, None)),
        ("blocker", _open_blockers(org).filter(created_at__lte=first_due)
         .select_related("workflow"),
         lambda b: (b.team_id, b.author_id, b.workflow.lead_id)),
    ]
    for field, rows, who in sources:
        rows = rows.annotate(climbed=Count("escalation_steps")).order_by("created_at", "pk")
        # Only rows with a step still due: fewer recorded steps than steps due by their age.
        pending = Q()
        for s in Step:
            pending |= Q(created_at__lte=now - timedelta(days=days[s]), climbed__lt=int(s))
        for item in rows.filter(pending)[:BATCH]:
            if people is None:
                people = _People(org)
            reached += _climb_one(org, field, item, who(item), days, people, now)
    return reached


def _climb_one(org, field, item, who, days, people, now):
    team_id, raised_by, alignment_lead = who
    done = {s.step: s for s in EscalationStep.objects.for_org(org).filter(**{field: item})}
    previous = raised_by if field == "blocker" else None
    reached = []
    for s in Step:
        if item.created_at + timedelta(days=days[s]) > now:
            break
        if s in done:
            if not done[s].is_skipped:
                previous = done[s].person_id
            continue
        person = people.on(s, team_id, alignment_lead=alignment_lead)
        skipped = person is None or person == previous
        try:
            with transaction.atomic():
                row = EscalationStep.objects.create(
                    organization=org, step=s, person_id=person, is_skipped=skipped,
                    reached_at=item.created_at + timedelta(days=days[s]), **{field: item})
        except IntegrityError:  # a concurrent sweep recorded it first
            continue
        if not skipped:
            previous = person
            notify_escalated(row, item)
            reached.append(row)
    return reached


def notify_escalated(step, item):
    """Tell the person an item reached: the "escalated" event (an in-app alert at once, an
    email per their preferences, the chat channels), as every other event."""
    from nudges import events

    events.notify_escalated(item, step.person)


def item_url(org, step):
    if step.dependency_id:
        return reverse("dependency", args=[org.slug, step.dependency_id])
    return reverse("workflow", args=[org.slug, step.blocker.workflow_id]) + "#step-6"


def absolute(path):
    return settings.SITE_URL + path


def steps_of(org, *, dependency=None, blocker=None):
    """The ladder of an item for its page (both sides see it): the steps reached, in order,
    with their people and the day each was reached, and the next step while it is open."""
    item = dependency if dependency is not None else blocker
    field = {"dependency": dependency} if dependency is not None else {"blocker": blocker}
    steps = list(EscalationStep.objects.for_org(org).filter(**field).select_related("person"))
    days = step_days(org)
    for s in steps:
        s.day = days[s.step]
    is_open = (dependency.status == Dependency.Status.REQUESTED if dependency is not None
               else blocker.resolved_at is None)
    upcoming = None
    if is_open and len(steps) < len(Step):
        step = Step(len(steps) + 1) if not steps else Step(max(s.step for s in steps) + 1)
        upcoming = {"label": step.label.lower(), "day": days[step],
                    "at": item.created_at + timedelta(days=days[step])}
    return {"steps": steps, "next": upcoming}


def escalated_blockers(org, *, limit=10):
    """Unresolved workflow blockers that climbed the ladder (or were escalated by hand), oldest
    first, with the person each has reached: for the Network page's escalations. Two
    queries."""
    reached = EscalationStep.objects.for_org(org).filter(
        blocker_id=OuterRef("pk"), is_skipped=False)
    qs = (_open_blockers(org).filter(Q(Exists(reached)) | Q(escalated=True))
          .select_related("workflow__objective", "team").order_by("created_at", "pk"))
    latest = (EscalationStep.objects.for_org(org).filter(blocker_id=OuterRef("pk"),
                                                         is_skipped=False)
              .order_by("-step").values("person__full_name")[:1])
    rows = list(qs.annotate(reached=Subquery(latest))[:limit])
    return rows, (len(rows) if len(rows) < limit else qs.count())
