"""Bidirectional cascading: teams propose, the alignment lead reviews and publishes; when a
company or department objective changes in substance mid-cycle, everything aligned below it is
flagged for its owners to confirm, re-align or retire."""

from types import SimpleNamespace

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

import history
from dependencies import network
from integrations import webhooks
from nudges import events, outbox
from okrs import services as okr_services
from okrs.models import Objective
from orgs import permissions
from orgs.models import Team, Theme
from orgs.services import lock_organization
from orgs.validation import Fields

from .models import RecascadeFlag, ReviewComment

State = Objective.State


def _say(objective, membership, kind, text=""):
    return ReviewComment.objects.create(organization=objective.organization, objective=objective,
                                        author=membership.user, kind=kind, text=text.strip())


def _clean(model, name, value, field):
    v = Fields(model)
    value = v.text(name, value, field=field)
    v.done()
    return value


def _lock(membership, objective):
    if objective.cycle.is_closed:
        raise ValidationError("This cycle is closed; its objectives can no longer change.")
    lock_organization(membership.organization)  # first: the lock order of docs/architecture.md
    return Objective.objects.for_org(membership.organization).select_for_update(
        no_key=True).get(pk=objective.pk)


def submit_for_review(*, membership, objective, note=""):
    """A team proposes its draft objective to the alignment lead."""
    if not permissions.can_edit_objective(membership, objective):
        raise PermissionDenied("Only the team's leads propose its objectives.")
    note = _clean(ReviewComment, "note", note, "text")
    with transaction.atomic():
        current = _lock(membership, objective)
        if current.state != State.DRAFT:
            raise ValidationError("Only a draft can be proposed.")
        current.state, current.version = State.PROPOSED, current.version + 1
        current.save(update_fields=["state", "version", "updated_at"])
        _say(current, membership, ReviewComment.Kind.SUBMITTED, note)
        events.notify(membership.organization, "proposal_submitted",
                      events.managers(membership.organization), current, membership.user,
                      note=note)
    return current


def approve(*, membership, objective, note=""):
    if not permissions.can_publish(membership):
        raise PermissionDenied("Only alignment leads and org admins review objectives.")
    note = _clean(ReviewComment, "note", note, "text")
    with transaction.atomic():
        current = _lock(membership, objective)
        if current.state != State.PROPOSED:
            raise ValidationError("Only a proposed objective can be approved.")
        current.state, current.version = State.APPROVED, current.version + 1
        current.save(update_fields=["state", "version", "updated_at"])
        _say(current, membership, ReviewComment.Kind.APPROVED, note)
    return current


def request_changes(*, membership, objective, text):
    if not permissions.can_publish(membership):
        raise PermissionDenied("Only alignment leads and org admins review objectives.")
    text = _clean(ReviewComment, "text", text, "text")
    if not text:
        raise ValidationError({"text": "Say what should change, so the team can act on it."})
    with transaction.atomic():
        current = _lock(membership, objective)
        if current.state not in (State.PROPOSED, State.APPROVED):
            raise ValidationError("Only a proposed or approved objective can go back.")
        current.state, current.version = State.DRAFT, current.version + 1
        current.save(update_fields=["state", "version", "updated_at"])
        _say(current, membership, ReviewComment.Kind.CHANGES, text)
        events.notify(membership.organization, "changes_requested", events.leads_of(current.team),
                      current, membership.user, note=text)
    return current


def comment(*, membership, objective, text):
    if not (permissions.can_publish(membership)
            or permissions.can_edit_team_okrs(membership, objective.team_id)):
        raise PermissionDenied("Only the team's leads and the alignment lead discuss this.")
    text = _clean(ReviewComment, "text", text, "text")
    if not text:
        raise ValidationError({"text": "Write a comment."})
    return _say(objective, membership, ReviewComment.Kind.COMMENT, text)


def publish_cycle(*, membership, cycle):
    """Publish every approved objective of the cycle together."""
    if not permissions.can_publish(membership):
        raise PermissionDenied("Only alignment leads and org admins publish.")
    with transaction.atomic():
        lock_organization(membership.organization)
        approved = list(Objective.objects.for_org(membership.organization)
                        .filter(cycle=cycle, state=State.APPROVED)
                        .select_for_update(no_key=True))
        history.update(Objective.objects.for_org(membership.organization).filter(
            pk__in=[o.pk for o in approved]), state=State.PUBLISHED, updated_at=timezone.now())
        ReviewComment.objects.bulk_create([
            ReviewComment(organization=membership.organization, objective=o,
                          author=membership.user, kind=ReviewComment.Kind.PUBLISHED)
            for o in approved])
        if approved:
            network.mark_changed(cycle)  # published key results can turn stale: findings
        webhooks.emit_published(membership.organization, approved)
    return len(approved)


# Re-cascading ----------------------------------------------------------------------------------


def flag_descendants(*, membership, objective, change):
    """Flag every live objective aligned below ``objective`` (at any depth) for review and tell
    their teams' leads. Called when a company or department objective changes in substance."""
    if objective.team.kind == Team.Kind.TEAM:
        return []
    below = list(objective.get_descendants().exclude(state=State.RETIRED)
                 .select_related("team__lead"))
    # And what contributes to it, or to anything below it, as an extra parent (with what is
    # aligned below that): several parents, one change to review.
    subtree = [objective.pk, *(o.pk for o in below)]
    also = list(Objective.objects.for_org(objective.organization).filter(
        also_links__parent__in=subtree).exclude(state=State.RETIRED).exclude(pk__in=subtree)
        .select_related("team__lead").distinct())
    for o in also:
        below += [o, *o.get_descendants().exclude(state=State.RETIRED)
                  .select_related("team__lead")]
    below = list({o.pk: o for o in below}.values())
    if not below:
        return []
    RecascadeFlag.objects.bulk_create([
        RecascadeFlag(organization=objective.organization, objective=o, source=objective,
                      change=change[:300]) for o in below])
    leads = {o.team.lead for o in below if o.team.lead}
    link = settings.SITE_URL + reverse("recascade", args=[objective.organization.slug])
    for lead in leads:
        outbox.queue(kind=outbox.Kind.RECASCADE, organization=objective.organization,
                     to=lead.email, subject=f"Please review: {objective.title} changed",
                     text=f"{change}\n\nObjectives of your team aligned below it need a look: "
                          f"confirm they still fit, re-align or retire them.\n\n{link}\n")
    return below


def _open_flag(membership, flag):
    if flag.resolution != RecascadeFlag.Resolution.OPEN:
        raise ValidationError("This one has been answered already.")
    if not permissions.can_edit_team_okrs(membership, flag.objective.team_id):
        raise PermissionDenied("Only the objective's team leads answer this.")


def _resolve(flag, membership, resolution, note=""):
    RecascadeFlag.objects.filter(objective=flag.objective, resolution="open").update(
        resolution=resolution, note=note[:500], resolved_by=membership.user,
        resolved_at=timezone.now())


def confirm_fits(*, membership, flag, note=""):
    _open_flag(membership, flag)
    note = _clean(RecascadeFlag, "note", note, "note")
    _resolve(flag, membership, RecascadeFlag.Resolution.CONFIRMED, note)


def realign(*, membership, flag, parent):
    _open_flag(membership, flag)
    o = flag.objective
    if parent.pk == o.parent_id:
        # Nothing would move: refused, so the flag is not answered "re-aligned" for nothing.
        # (If the parent changed since ``o`` was read, its version tells: a stale edit.)
        raise ValidationError({"parent": "That is where it is already."})
    with transaction.atomic():
        okr_services.update_objective(
            membership=membership, objective=o, version=o.version, title=o.title, why=o.why,
            team=o.team, parent=parent, is_local=False, state=o.state, theme=o.theme)
        _resolve(flag, membership, RecascadeFlag.Resolution.REALIGNED,
                 f"Now contributes to “{parent.title}”.")


def retire(*, membership, flag):
    _open_flag(membership, flag)
    with transaction.atomic():
        okr_services.retire_objective(membership=membership, objective=flag.objective)
        _resolve(flag, membership, RecascadeFlag.Resolution.RETIRED)


def add_theme(*, membership, name, description=""):
    """A company theme, for the thematic alignment model."""
    if not permissions.can_publish(membership):
        raise PermissionDenied("Only alignment leads and org admins change these settings.")
    org = membership.organization
    v = Fields(Theme)
    name = v.line("name", name)
    description = v.line("description", description, required=False)
    v.done()
    if Theme.objects.for_org(org).filter(name__iexact=name).exists():
        raise ValidationError({"name": "That theme exists already."})
    return Theme.objects.create(organization=org, name=name, description=description)


def progress(org, cycle):
    """Per changed objective: how many flags are confirmed, re-aligned, retired, still open.
    Counted in SQL, so a change with thousands of flags costs one row per answer kind."""
    rows = {}
    counts = (RecascadeFlag.objects.for_org(org).filter(source__cycle=cycle)
              .values("source_id", "source__title", "change", "resolution")
              .annotate(n=Count("pk")).order_by("source_id"))
    for c in counts:
        # The changed objective's id and title come with the counts (no second query).
        entry = rows.setdefault(c["source_id"], {
            "change": c["change"], "confirmed": 0, "realigned": 0, "retired": 0, "open": 0,
            "source": SimpleNamespace(pk=c["source_id"], title=c["source__title"])})
        entry[c["resolution"]] = entry.get(c["resolution"], 0) + c["n"]
    return list(rows.values())
