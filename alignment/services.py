"""Write use cases of the cross-team workflow. The alignment lead (and org admins) run it; each
stakeholder team's owner or lead answers for the team; everyone in the organization reads it."""

import datetime as dt

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

import history
from nudges import events, outbox
from nudges.models import Preference
from okrs.models import KeyResult, Objective
from orgs import permissions
from orgs.models import Membership, Role, Team
from orgs.validation import Fields
from retros.models import Improvement, Retrospective

from . import steps
from .models import (
    Milestone,
    SignOffRequest,
    Stakeholder,
    StatusUpdate,
    StepOverride,
    Workflow,
)


def can_run(membership):
    return membership.role in permissions.MANAGERS


def can_sign_off(membership):
    """Leadership: org admins and the lead of the company unit."""
    if membership.role == Role.ADMIN:
        return True
    return Team.objects.for_org(membership.organization).filter(
        kind=Team.Kind.COMPANY, lead=membership.user).exists()


def answers_for(membership, workflow, team_id):
    """The team's owner in this workflow, its leads, or the people who run the workflow."""
    if can_run(membership) or permissions.can_edit_team_okrs(membership, team_id):
        return True
    return any(s.team_id == team_id and s.owner_id == membership.user_id
               for s in workflow.stakeholders.all())


def _run(membership, workflow):
    if not can_run(membership):
        raise PermissionDenied("Only the alignment lead and org admins run this workflow.")
    if workflow.is_closed:
        raise ValidationError("This workflow is closed.")


def start_workflow(*, membership, objective):
    org = membership.organization
    if not can_run(membership):
        raise PermissionDenied("Only the alignment lead and org admins start a workflow.")
    if objective.organization_id != org.pk or objective.is_retired:
        raise ValidationError({"objective": "Choose a live objective of this organization."})
    if objective.team.kind == Team.Kind.TEAM:
        raise ValidationError({"objective": "The workflow is for company and department "
                                            "objectives that need several teams."})
    if Workflow.objects.for_org(org).filter(cycle=objective.cycle, objective=objective).exists():
        raise ValidationError({"objective": "This objective already has a workflow this cycle."})
    return Workflow.objects.create(organization=org, cycle=objective.cycle, objective=objective,
                                   lead=membership.user, created_by=membership.user,
                                   impact=objective.why)


# Step 1 ----------------------------------------------------------------------------------------


def save_purpose(*, membership, workflow, purpose, impact):
    _run(membership, workflow)
    v = Fields(Workflow)
    if isinstance(purpose, str):  # one sentence: line breaks and runs of spaces become one
        purpose = " ".join(purpose.split())
    purpose = v.line("purpose", purpose, required=False)
    impact = v.text("impact", impact)
    v.done()
    if steps.sentence_count(purpose) > 1:
        raise ValidationError({"purpose": "Keep it to one sentence: if the teams cannot say the "
                                          "purpose in one, it is not shared yet."})
    changed = purpose != workflow.purpose
    workflow.purpose, workflow.impact = purpose, impact
    if changed:  # a new wording needs a new sign-off and must be shared again
        workflow.signed_off_by = workflow.signed_off_at = workflow.shared_at = None
    workflow.save()
    return workflow


def sign_off(*, membership, workflow):
    if not can_sign_off(membership):
        raise PermissionDenied("Sign-off is for leadership: an org admin or the company lead.")
    if not workflow.purpose:
        raise ValidationError("Write the shared purpose before signing it off.")
    workflow.signed_off_by, workflow.signed_off_at = membership.user, timezone.now()
    workflow.save(update_fields=["signed_off_by", "signed_off_at"])
    return workflow


# A second ask of the same wording before this is taken for a double click and sends nothing.
SIGN_OFF_ASK_AGAIN_AFTER = dt.timedelta(days=1)


def sign_off_people(org):
    """Leadership, who can sign off (``can_sign_off``): org admins and company unit leads."""
    company_leads = Team.objects.for_org(org).filter(kind=Team.Kind.COMPANY).values("lead_id")
    return (Membership.objects.for_org(org).select_related("user")
            .filter(Q(role=Role.ADMIN) | Q(user_id__in=company_leads))
            .order_by("user__full_name", "pk"))


def last_sign_off_request(workflow):
    return (SignOffRequest.objects.for_org(workflow.organization).select_related("requested_by")
            .filter(workflow=workflow).first())


def is_fresh(asked, workflow):
    """Whether asking again now would repeat ``asked``: same wording, asked recently."""
    return (asked.purpose == workflow.purpose
            and asked.created_at > timezone.now() - SIGN_OFF_ASK_AGAIN_AFTER)


def request_sign_off(*, membership, workflow):
    """The alignment lead asks leadership to sign off the purpose: one email to each person
    who can, through the outbox. Returns ``(request, created)``: a repeat of the same wording
    within SIGN_OFF_ASK_AGAIN_AFTER (a double click) records and sends nothing."""
    _run(membership, workflow)
    org = membership.organization
    with transaction.atomic():
        # Two clicks at once queue here: the second sees the first's row.
        current = Workflow.objects.for_org(org).select_for_update().get(pk=workflow.pk)
        if current.signed_off_at:
            raise ValidationError("The purpose is signed off already.")
        if not current.purpose:
            raise ValidationError("Write the shared purpose first: leadership signs off on it.")
        last = last_sign_off_request(current)
        if last is not None and is_fresh(last, current):
            return last, False
        people = [m.user for m in sign_off_people(org) if m.user_id != membership.user_id]
        if not people:
            raise ValidationError("Nobody else can sign off: make someone an org admin or the "
                                  "company unit's lead.")
        asked = SignOffRequest.objects.create(
            organization=org, workflow=current, purpose=current.purpose,
            requested_by=membership.user, recipients=len(people))
        link = settings.SITE_URL + reverse("workflow", args=[org.slug, current.pk])
        # The email goes at once (a sign-off holds the workflow up), to those who take reviews
        # by email (Settings); the in-app alert and chat follow their own choices (notify).
        prefs = {p.user_id: p for p in Preference.objects.for_org(org).filter(
            user_id__in=[u.pk for u in people])}
        for person in people:
            if not events.wants(prefs.get(person.pk), "reviews", "email"):
                continue
            outbox.queue(
                kind=outbox.Kind.WORKFLOW, organization=org, to=person.email,
                key=f"signoff:{asked.pk}:{person.pk}",
                subject=f"Sign-off asked: {current.objective.title}",
                text=f"{membership.user.display_name} asks you to sign off the shared purpose "
                     f"of a cross-team objective, {current.objective.title}.\n\n"
                     f"Purpose: {current.purpose}\n\nWhy it matters: {current.impact}\n\n"
                     f"Open the workflow to sign it off:\n{link}\n")
        events.notify(org, "signoff_requested", people, current, membership.user, email=False)
    return asked, True


def share_purpose(*, membership, workflow):
    """Mark the purpose shared and email it to every stakeholder team's lead."""
    _run(membership, workflow)
    teams = [s.team for s in workflow.stakeholders.select_related("team__lead")]
    if not workflow.purpose or not teams:
        raise ValidationError("Write the purpose and add the stakeholder teams first.")
    link = settings.SITE_URL + reverse("workflow", args=[workflow.organization.slug,
                                                         workflow.pk])
    with transaction.atomic():
        workflow.shared_at = timezone.now()
        workflow.save(update_fields=["shared_at"])
        for lead in {t.lead for t in teams if t.lead}:
            outbox.queue(
                kind=outbox.Kind.WORKFLOW, organization=workflow.organization, to=lead.email,
                subject=f"Shared purpose: {workflow.objective.title}",
                text=f"{membership.user.display_name} shared the purpose of a cross-team "
                     f"objective with your team.\n\n{workflow.purpose}\n\n"
                     f"Why it matters: {workflow.impact}\n\n{link}\n")
    return workflow


# Step 2 ----------------------------------------------------------------------------------------


def add_stakeholder(*, membership, workflow, team, owner, role):
    _run(membership, workflow)
    org = membership.organization
    errors = {}
    if team.organization_id != org.pk:
        errors["team"] = "Choose a team of this organization."
    elif workflow.stakeholders.filter(team=team).exists():
        errors["team"] = f"{team.name} is already a stakeholder."
    if not Membership.objects.for_org(org).filter(user=owner).exists():
        errors["owner"] = "The owner must be a member of the organization."
    if role not in Stakeholder.Role.values:
        errors["role"] = "Choose lead, contributor or reviewer."

    if errors:
        raise ValidationError(errors)
    return Stakeholder.objects.create(organization=org, workflow=workflow, team=team,
                                      owner=owner, role=role)


def remove_stakeholder(*, membership, stakeholder):
    _run(membership, stakeholder.workflow)
    stakeholder.delete()


# Step 3 ----------------------------------------------------------------------------------------


def save_kickoff(*, membership, workflow, kickoff_date, notes, success_measures):
    _run(membership, workflow)
    v = Fields(Workflow)
    v.day("kickoff_date", kickoff_date)
    notes = v.text("notes", notes, field="kickoff_notes")
    v.done()
    ids = [k.pk for k in success_measures]
    allowed = set(KeyResult.objects.for_org(membership.organization)
                  .filter(pk__in=ids, objective__cycle=workflow.cycle)
                  .values_list("pk", flat=True))
    if set(ids) - allowed:
        raise ValidationError({"success_measures": "Choose key results of this cycle."})
    workflow.kickoff_date, workflow.kickoff_notes = kickoff_date, notes
    workflow.save(update_fields=["kickoff_date", "kickoff_notes"])
    workflow.success_measures.set(ids)
    return workflow


def set_commitment(*, membership, stakeholder, commitment, note=""):
    workflow = stakeholder.workflow
    if not answers_for(membership, workflow, stakeholder.team_id):
        raise PermissionDenied("Only the team's owner or lead answers for the team.")
    if workflow.kickoff_closed_at:
        raise ValidationError("The kickoff is closed; commitments are settled.")
    v = Fields(Stakeholder)
    note = v.text("note", note, field="commitment_note")
    v.done()
    if commitment == Stakeholder.Commitment.CANNOT and not note:
        raise ValidationError({"note": "Say why the team cannot commit: the alignment lead "
                                       "needs it to resolve the escalation."})
    if commitment not in (Stakeholder.Commitment.COMMITTED, Stakeholder.Commitment.CANNOT):
        raise ValidationError({"commitment": "Commit, or say the team cannot."})
    stakeholder.commitment, stakeholder.commitment_note = commitment, note
    # A team that cannot commit raises an escalation to the alignment lead at once.
    stakeholder.escalated_at = timezone.now() if commitment == "cannot" else None
    stakeholder.resolved_at = None
    stakeholder.save()
    if commitment == "cannot" and workflow.lead:
        outbox.queue(
            kind=outbox.Kind.WORKFLOW, organization=workflow.organization,
            to=workflow.lead.email, subject=f"Escalation: {stakeholder.team.name} cannot commit",
            text=f"{stakeholder.team.name} cannot commit to “{workflow.objective.title}”.\n\n"
                 f"Reason: {note}\n\nResolve it before closing the kickoff.")
    return stakeholder


def resolve_escalation(*, membership, stakeholder, note):
    _run(membership, stakeholder.workflow)
    if stakeholder.commitment != Stakeholder.Commitment.CANNOT:
        raise ValidationError("There is no escalation to resolve for this team.")
    v = Fields(Stakeholder)
    note = v.text("note", note, field="commitment_note")
    v.done()
    if not note:
        raise ValidationError({"note": "Write down how it was resolved."})
    combined = f"{stakeholder.commitment_note}\nResolved: {note}"
    v.text("note", combined, field="commitment_note")
    v.done()
    stakeholder.resolved_at = timezone.now()
    stakeholder.commitment_note = combined
    stakeholder.save(update_fields=["resolved_at", "commitment_note"])
    return stakeholder


def close_kickoff(*, membership, workflow):
    _run(membership, workflow)
    missing = steps.can_close_kickoff(snapshot(workflow))
    if missing:
        raise ValidationError(" ".join(missing))
    workflow.kickoff_closed_at = timezone.now()
    workflow.save(update_fields=["kickoff_closed_at"])
    return workflow


# Step 4 and 6: the plan ------------------------------------------------------------------------


def _check_milestone(membership, workflow, owner_team, waits_on, dependencies, milestone=None):
    org = membership.organization
    errors = {}
    if owner_team is not None and owner_team.organization_id != org.pk:
        errors["owner_team"] = "Choose a team of this organization."
    if not can_run(membership) and not (
            owner_team and answers_for(membership, workflow, owner_team.pk)):
        raise PermissionDenied("You can plan milestones only for your own team.")
    if milestone is not None and milestone.pk and not plans_milestone(membership, milestone):
        raise PermissionDenied("You can change milestones only of your own team.")
    if any(m.workflow_id != workflow.pk for m in waits_on):
        errors["waits_on"] = "Choose milestones of this plan."
    if milestone is not None and milestone.pk:
        downstream = steps.revisit_downstream([milestone.pk], _unblocks(workflow))
        if milestone.pk in {m.pk for m in waits_on} or downstream & {m.pk for m in waits_on}:
            errors["waits_on"] = "A milestone cannot wait on itself or on what waits on it."
    if any(d.organization_id != org.pk or d.cycle_id != workflow.cycle_id for d in dependencies):
        errors["dependencies"] = "Choose dependencies of this cycle."
    if errors:
        raise ValidationError(errors)


def _unblocks(workflow):
    unblocks = {}
    through = Milestone.waits_on.through.objects.filter(from_milestone__workflow=workflow)
    for waiting, upstream in through.values_list("from_milestone_id", "to_milestone_id"):
        unblocks.setdefault(upstream, []).append(waiting)
    return unblocks


def save_milestone(*, membership, workflow, milestone=None, title, owner_team, start_date,
                   due_date, cross_team, waits_on=(), dependencies=()):
    """Create or change a milestone. When its date moves, everything downstream of it is
    flagged "revisit" for its owner."""
    if workflow.is_closed:
        raise ValidationError("This workflow is closed.")
    v = Fields(Milestone)
    title = v.line("title", title)
    v.day("start_date", start_date)
    v.day("due_date", due_date)
    v.flag("cross_team", cross_team)
    v.done()
    _check_milestone(membership, workflow, owner_team, waits_on, dependencies, milestone)
    if start_date and due_date and start_date > due_date:
        raise ValidationError({"start_date": "The start must come before the due date."})
    with transaction.atomic():
        moved = milestone is not None and milestone.pk and milestone.due_date != due_date
        milestone = milestone or Milestone(organization=membership.organization,
                                           workflow=workflow)
        milestone.title, milestone.owner_team = title, owner_team
        milestone.start_date, milestone.due_date = start_date, due_date
        milestone.cross_team = cross_team
        milestone.save()
        milestone.waits_on.set(waits_on)
        milestone.dependencies.set(dependencies)
        flagged = []
        if moved:
            flagged = flag_downstream(milestone, f"“{milestone.title}” moved to "
                                                 f"{due_date:%d %b}" if due_date else
                                      f"“{milestone.title}” lost its date")
    return milestone, flagged


def plans_milestone(membership, milestone):
    """Who may change or delete a milestone: whoever may plan it for its owner team."""
    if milestone.owner_team_id is None:
        return can_run(membership)
    return answers_for(membership, milestone.workflow, milestone.owner_team_id)


def delete_milestone(*, membership, milestone):
    """Take a milestone out of the plan. What waited on it is flagged "revisit" for its owners:
    their plan lost a step it counted on."""
    workflow = milestone.workflow
    if not plans_milestone(membership, milestone):
        raise PermissionDenied("You can delete milestones only of your own team.")
    if workflow.is_closed:
        raise ValidationError("This workflow is closed.")
    with transaction.atomic():
        flagged = flag_downstream(milestone, f"“{milestone.title}” was removed from the plan")
        milestone.delete()
    return flagged


def flag_downstream(milestone, reason):
    downstream = steps.revisit_downstream([milestone.pk], _unblocks(milestone.workflow))
    history.update(Milestone.objects.for_org(milestone.organization_id).filter(
        workflow=milestone.workflow_id, pk__in=downstream),
        needs_revisit=True, revisit_reason=reason[:300])
    return sorted(downstream)


def milestone_done(*, membership, milestone, done=True):
    if not answers_for(membership, milestone.workflow, milestone.owner_team_id):
        raise PermissionDenied("Only the owner team or the alignment lead marks this.")
    v = Fields(Milestone)
    v.flag("done", done)
    v.done()
    milestone.done_at = timezone.now() if done else None
    milestone.save(update_fields=["done_at"])
    if done:
        StatusUpdate.objects.create(
            organization=milestone.organization, workflow=milestone.workflow,
            team=milestone.owner_team, author=membership.user,
            text=f"Delivered: {milestone.title}")
    return milestone


def milestone_revisited(*, membership, milestone):
    if not answers_for(membership, milestone.workflow, milestone.owner_team_id):
        raise PermissionDenied("Only the owner team or the alignment lead clears this.")
    milestone.needs_revisit, milestone.revisit_reason = False, ""
    milestone.save(update_fields=["needs_revisit", "revisit_reason"])
    return milestone


def set_plan_lead(*, membership, workflow, lead):
    _run(membership, workflow)
    if not Membership.objects.for_org(membership.organization).filter(user=lead).exists():
        raise ValidationError({"lead": "The plan's lead must be a member."})
    workflow.lead = lead
    workflow.save(update_fields=["lead"])
    return workflow


# Step 5 ----------------------------------------------------------------------------------------


def save_cadence(*, membership, workflow, frequency, weekday, time, sync_format, dashboard_url,
                 async_updates):
    _run(membership, workflow)
    v = Fields(Workflow)
    v.choice("frequency", frequency, field="sync_frequency")
    if weekday is not None:
        v.choice("weekday", weekday, field="sync_weekday")
    sync_format = v.line("sync_format", sync_format, required=False)
    dashboard_url = v.line("dashboard_url", dashboard_url, required=False)
    if dashboard_url and "dashboard_url" not in v.errors:
        try:
            URLValidator(schemes=["http", "https"])(dashboard_url)
        except ValidationError as e:
            v.errors["dashboard_url"] = e.messages
    if time is not None and not isinstance(time, dt.time):
        v.refuse("time", "Enter a valid time.")
    v.flag("async_updates", async_updates)
    v.done()
    workflow.sync_frequency, workflow.sync_weekday, workflow.sync_time = frequency, weekday, time
    workflow.sync_format, workflow.dashboard_url = sync_format, dashboard_url
    workflow.async_updates = async_updates
    workflow.save()
    return workflow


def post_update(*, membership, workflow, team, text, is_blocker=False):
    if team is not None and not answers_for(membership, workflow, team.pk):
        raise PermissionDenied("You can post updates only for your own team.")
    if team is None and not can_run(membership):
        raise PermissionDenied("Choose your team.")
    v = Fields(StatusUpdate)
    text = v.text("text", text)
    v.flag("is_blocker", is_blocker)
    v.done()
    if not text:
        raise ValidationError({"text": "Write the update."})
    return StatusUpdate.objects.create(organization=membership.organization, workflow=workflow,
                                       team=team, author=membership.user, text=text,
                                       is_blocker=is_blocker)


def escalate_blocker(*, membership, update):
    if not (can_run(membership) or update.author_id == membership.user_id):
        raise PermissionDenied("Only who raised it or the alignment lead escalates it.")
    with transaction.atomic():
        update.escalated = True
        update.save(update_fields=["escalated"])
        events.notify(membership.organization, "blocker_escalated",
                      events.workflow_runners(update.workflow), update, membership.user)
    return update


def resolve_blocker(*, membership, update):
    """A blocker is settled: it leaves the inbox and stops climbing the escalation ladder."""
    if not (can_run(membership) or update.author_id == membership.user_id
            or answers_for(membership, update.workflow, update.team_id)):
        raise PermissionDenied("Only who raised it, its team or the alignment lead resolves it.")
    if not update.is_blocker or update.resolved_at:
        raise ValidationError("This blocker is resolved already.")
    if update.workflow.cycle.is_closed:
        raise ValidationError("This cycle is closed; its workflows can no longer change.")
    update.resolved_at, update.resolved_by = timezone.now(), membership.user
    update.save(update_fields=["resolved_at", "resolved_by"])
    return update


# Overrides and the retrospective ---------------------------------------------------------------


def override_step(*, membership, workflow, step, reason):
    _run(membership, workflow)
    if step not in steps.TITLES:
        raise ValidationError({"step": "No such step."})
    v = Fields(StepOverride)
    reason = v.text("reason", reason)
    v.done()
    if not reason:
        raise ValidationError({"reason": "Write why this step counts as done anyway."})
    StepOverride.objects.update_or_create(
        workflow=workflow, step=step,
        defaults={"organization": workflow.organization, "reason": reason,
                  "by": membership.user})


def clear_override(*, membership, workflow, step):
    _run(membership, workflow)
    StepOverride.objects.filter(workflow=workflow, step=step).delete()


def save_retro(*, membership, workflow, what_worked, friction, share_company_wide):
    if not can_run(membership):
        raise PermissionDenied("The alignment lead writes the retrospective.")
    v = Fields(Retrospective)
    what_worked = v.text("what_worked", what_worked)
    friction = v.text("friction", friction)
    v.flag("share_company_wide", share_company_wide)
    v.done()
    retro, _ = Retrospective.objects.update_or_create(
        workflow=workflow, defaults={"organization": workflow.organization,
                                     "what_worked": what_worked,
                                     "friction": friction,
                                     "share_company_wide": share_company_wide})
    return retro


def add_improvement(*, membership, workflow, title, owner):
    if not can_run(membership):
        raise PermissionDenied("The alignment lead records improvements.")
    v = Fields(Improvement)
    title = v.line("title", title, required=False)
    v.done()
    if not title:
        raise ValidationError({"title": "Say what to do differently."})
    if not Membership.objects.for_org(membership.organization).filter(user=owner).exists():
        raise ValidationError({"owner": "The owner must be a member."})
    retro, _ = Retrospective.objects.get_or_create(
        workflow=workflow, defaults={"organization": workflow.organization})
    return Improvement.objects.create(organization=workflow.organization, retrospective=retro,
                                      title=title, owner=owner)


def set_improvement_status(*, membership, improvement, status):
    if not (can_run(membership) or improvement.owner_id == membership.user_id):
        raise PermissionDenied("Only its owner or the alignment lead updates it.")
    if status not in Improvement.Status.values:
        raise ValidationError({"status": "Choose open, done or dropped."})
    improvement.status = status
    improvement.save(update_fields=["status"])
    return improvement


def close_workflow(*, membership, workflow):
    _run(membership, workflow)
    workflow.is_closed = True
    workflow.save(update_fields=["is_closed"])


# The data the rules read -----------------------------------------------------------------------


def snapshot(workflow, *, today=None, loaded=None):
    """The workflow as plain data for ``steps``: a fixed number of queries. ``loaded``: rows
    the caller already holds (``stakeholders`` with their teams, ``milestones``, ``retro`` and
    its ``improvements``), read from there instead of again."""
    loaded = loaded or {}
    stakeholders = loaded.get("stakeholders")
    if stakeholders is None:
        stakeholders = list(workflow.stakeholders.select_related("team"))
    milestones = loaded.get("milestones")
    if milestones is None:
        milestones = list(workflow.milestones.all())
    waits = {}
    deps = {}
    for mid, _ in Milestone.waits_on.through.objects.filter(
            from_milestone__workflow=workflow).values_list("from_milestone_id",
                                                           "to_milestone_id"):
        waits[mid] = waits.get(mid, 0) + 1
    for mid, _ in Milestone.dependencies.through.objects.filter(
            milestone__workflow=workflow).values_list("milestone_id", "dependency_id"):
        deps[mid] = deps.get(mid, 0) + 1
    updates = list(workflow.updates.filter(is_blocker=True).values_list("escalated", flat=True))
    if "retro" in loaded:
        retro, improvements = loaded["retro"], loaded["improvements"]
    else:
        retro = Retrospective.objects.filter(workflow=workflow).first()
        improvements = list(retro.improvements.all()) if retro else []
    return steps.WorkflowData(
        purpose=workflow.purpose, impact=workflow.impact,
        signed_off=workflow.signed_off_at is not None, shared=workflow.shared_at is not None,
        stakeholders=[steps.StakeholderData(
            team=s.team.name, owner=s.owner_id, role=s.role, commitment=s.commitment,
            escalated=s.escalated_at is not None, resolved=s.resolved_at is not None)
            for s in stakeholders],
        kickoff_date=workflow.kickoff_date, kickoff_notes=workflow.kickoff_notes,
        success_measures=workflow.success_measures.count(),
        kickoff_closed=workflow.kickoff_closed_at is not None, lead=workflow.lead_id,
        milestones=[steps.MilestoneData(
            title=m.title, owner_team=m.owner_team_id, due_date=m.due_date,
            done=m.done_at is not None, cross_team=m.cross_team, waits_on=waits.get(m.pk, 0),
            dependencies=deps.get(m.pk, 0), needs_revisit=m.needs_revisit) for m in milestones],
        sync_frequency=workflow.sync_frequency, sync_weekday=workflow.sync_weekday,
        sync_time=workflow.sync_time, sync_format=workflow.sync_format,
        dashboard_url=workflow.dashboard_url,
        open_blockers=len(updates), unescalated_blockers=sum(1 for e in updates if not e),
        retro_worked=retro.what_worked if retro else "",
        retro_friction=retro.friction if retro else "",
        improvements=len(improvements), today=today or timezone.localdate(),
    )


def candidate_objectives(membership, cycle):
    return (Objective.objects.for_org(membership.organization).filter(cycle=cycle).live()
            .exclude(team__kind=Team.Kind.TEAM).select_related("team")
            .order_by("team__level", "title"))
