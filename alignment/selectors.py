from django.utils import timezone

from orgs import versions
from retros.models import Improvement, Retrospective

from . import gantt, steps
from .models import Milestone, Stakeholder, StepOverride, Workflow
from .services import snapshot


def workflows_for(org, cycle):
    return list(Workflow.objects.for_org(org).filter(cycle=cycle)
                .select_related("objective__team", "lead").order_by("objective__title"))


def previous_improvements(org, workflow, team_ids):
    """Improvements from earlier cycles' retrospectives of the same objective (same title) or
    the same teams: step 1 shows them with their status."""
    earlier = (Workflow.objects.for_org(org).exclude(pk=workflow.pk)
               .filter(cycle__start_date__lt=workflow.cycle.start_date))
    teams_of = {}
    for wf_id, team_id in Stakeholder.objects.for_org(org).filter(
            workflow__in=earlier).values_list("workflow_id", "team_id"):
        teams_of.setdefault(wf_id, set()).add(team_id)
    mine = set(team_ids)
    # The same objective (by title: objectives are per cycle), or the same teams: at least two
    # of this workflow's teams ran that one together.
    same = set(earlier.filter(objective__title=workflow.objective.title)
               .values_list("pk", flat=True))
    same |= {wf for wf, teams in teams_of.items() if len(teams & mine) >= 2}
    return list(Improvement.objects.for_org(org)
                .filter(retrospective__workflow__in=same)
                .select_related("owner", "retrospective__workflow__cycle"))


def workflow_page(org, workflow, *, today=None):
    """What the workflow page (and its outputs) show. The stakeholders come from
    ``workflow``'s prefetch when the view loaded them (``views._workflow``, with their teams,
    leads and owners); the rows the steps' rules read are read once, for both."""
    today = today or timezone.localdate()
    if "stakeholders" in getattr(workflow, "_prefetched_objects_cache", {}):
        stakeholders = list(workflow.stakeholders.all())
    else:
        stakeholders = list(workflow.stakeholders.select_related("team__lead", "owner"))
    milestones = list(Milestone.objects.for_org(org).filter(workflow=workflow)
                      .select_related("owner_team")
                      .prefetch_related("waits_on", "dependencies__requesting_team",
                                        "dependencies__providing_team"))
    retro = Retrospective.objects.for_org(org).filter(workflow=workflow).first()
    improvements = list(retro.improvements.select_related("owner")) if retro else []
    data = snapshot(workflow, today=today, loaded={
        "stakeholders": stakeholders, "milestones": milestones, "retro": retro,
        "improvements": improvements})
    overrides = {o.step: o for o in StepOverride.objects.for_org(org).filter(workflow=workflow)
                 .select_related("by")}
    status = steps.status(data, workflow.cycle.start_date, workflow.cycle.end_date,
                          {n: f"{o.reason} ({o.by.display_name if o.by else 'someone'}, "
                              f"{o.created_at:%d %b %Y})" for n, o in overrides.items()})
    for m in milestones:
        m.is_late = steps.late(steps.MilestoneData(m.title, due_date=m.due_date,
                                                   done=m.done_at is not None), today)
    bars = [gantt.Bar(m.pk, m.title, m.owner_team.name if m.owner_team else "", m.start_date,
                      m.due_date, m.done_at is not None, m.is_late,
                      tuple(w.pk for w in m.waits_on.all())) for m in milestones]
    return {
        "steps": status,
        "overrides": overrides,
        "stakeholders": stakeholders,
        "milestones": milestones,
        "gantt": gantt.render(bars, workflow.cycle.start_date, workflow.cycle.end_date, today),
        "updates": list(workflow.updates.select_related("team", "author")[:30]),
        "success_measures": list(workflow.success_measures.select_related("owner_team")),
        "retro": retro,
        "improvements": improvements,
        "previous_improvements": previous_improvements(
            org, workflow, [s.team_id for s in stakeholders]),
        "agenda": agenda(workflow, stakeholders),
        "today": today,
    }


PAGE_TTL = 600  # seconds; a change of what the page reads moves the "workflow" version first


def cached_workflow_page(org, workflow):
    """``workflow_page`` for today, computed once per change of what it reads (the topic
    "workflow" of ``orgs.versions``) and read from the cache until then: it is the same for
    every reader. Without Redis, each process keeps its own copy (``PAGE_TTL``)."""
    today = timezone.localdate()
    return versions.read_through(
        org.pk, "workflow", f"workflow-page:{org.pk}:{workflow.pk}:{today.isoformat()}",
        lambda: workflow_page(org, workflow, today=today), PAGE_TTL)


def agenda(workflow, stakeholders):
    """The kickoff agenda, generated from steps 1 and 2."""
    items = [f"Shared purpose: {workflow.purpose or '(not written yet)'}"]
    if workflow.impact:
        items.append(f"Why it matters: {workflow.impact}")
    for s in stakeholders:
        items.append(f"{s.team.name} ({s.get_role_display().lower()}, owner "
                     f"{s.owner.display_name}): role, contribution and commitment")
    items += ["Dependencies, risks and conflicts between teams",
              "How success is measured: the key results we agree on",
              "Each team commits, or says why it cannot"]
    return items


def learnings(org):
    return list(Retrospective.objects.for_org(org).filter(share_company_wide=True)
                .select_related("workflow__objective", "workflow__cycle")
                .prefetch_related("improvements__owner")
                .order_by("-workflow__cycle__start_date"))


def objective_alignment(org, objective, membership, *, rows=None):
    """What the objective page shows of cascading: its findings, review thread and any open
    re-cascade request (``rows``: those, already read by ``objective_alignment_rows``), and
    what this person may do there."""
    from orgs.permissions import can_edit_objective, can_publish

    return {
        **(objective_alignment_rows(org, objective) if rows is None else rows),
        "can_review": can_publish(membership),
        "can_propose": objective.state == "draft" and can_edit_objective(membership, objective),
    }


def objective_alignment_rows(org, objective):
    """The part of ``objective_alignment`` that every reader sees alike. Four queries."""
    from . import report
    from .models import RecascadeFlag, ReviewComment

    return {
        "findings": report.for_objective(org, objective.cycle, objective.pk),
        "findings_ready": report.summary(org, objective.cycle) is not None,
        "thread": list(ReviewComment.objects.for_org(org).filter(objective=objective)
                       .select_related("author")),
        "recascade": list(RecascadeFlag.objects.for_org(org).filter(
            objective=objective, resolution="open").select_related("source")),
    }
