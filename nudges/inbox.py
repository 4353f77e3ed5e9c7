"""What waits on one person ("Needs me"): one selector for the inbox page, the home page, the
nav count and the weekly digest, so they always agree.

Every kind is one queryset over one table. ``counts`` asks for all kinds in one query (a
subquery per kind); ``items_for`` asks one query per kind for its oldest few. The teams are
read once (the leads, the department heads and the check-in cadence come from that read), so
the cost is a fixed number of queries whatever the organization's size. An item leaves when
what it asks is done (answered, approved, signed off, resolved, checked in), never by being
read.
"""

import threading
import time as clock
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope
from redis.exceptions import RedisError

from alignment.models import (
    RecascadeFlag,
    ReviewComment,
    SignOffRequest,
    Stakeholder,
    StatusUpdate,
    Workflow,
)
from dependencies.models import Contribution, Dependency, EscalationStep, RecoveryAction
from integrations.models import DataSource
from okrs.models import KeyResult, Objective
from okrs.scoring import SCORING_WINDOW
from okrs.selectors import key_results_to_score_of_teams
from orgs import permissions, versions
from orgs.models import Cycle, Membership, Organization, Role, Team
from orgs.tasks import enqueue_now

# A team that sets no cadence takes its parent's; at the top, weekly.
CADENCE_DAYS = {Team.Cadence.WEEKLY: 7, Team.Cadence.BIWEEKLY: 14, Team.Cadence.MONTHLY: 30}
DEFAULT_CADENCE = Team.Cadence.WEEKLY
# A KR whose owner let this many reminders pass (periods after it fell due) goes to the lead.
IGNORED_REMINDERS = 3
OLDEST = 10  # items per kind on the inbox page; the rest a page at a time


@dataclass
class Kind:
    key: str
    label: str      # what the person does, as a short imperative
    heading: str    # the section of the inbox page
    empty: str = ""


KINDS = [
    Kind("request", "Answer a request", "Dependency requests to answer"),
    Kind("contribution", "Answer a request", "Key results asking to count in yours"),
    Kind("review", "Review", "Proposed objectives to review"),
    Kind("signoff", "Sign off", "Purposes to sign off"),
    Kind("recascade", "Confirm after a change", "Objectives to confirm after a change above"),
    Kind("escalation", "Escalation", "Escalated to you"),
    Kind("declined", "Escalation", "Declined requests to settle"),
    Kind("cannot", "Escalation", "Teams that cannot commit"),
    Kind("blocker", "Blocker", "Blockers to clear"),
    Kind("recovery", "Recovery action", "Your recovery actions"),
    Kind("check_in", "Check in", "Key results due for a check-in"),
    Kind("ignored", "Check-ins ignored", "Key results whose owner missed three check-ins"),
    Kind("score", "Score", "Key results to score"),
    Kind("source", "Fix a data source", "Data sources that keep failing"),
]
BY_KEY = {k.key: k for k in KINDS}
# The weekly digest lists check-ins due apart; everything else is its "decisions".
# The digest lists check-ins due on their own, and key results to score per team
# (``Digest.scoring``, from the same query as the inbox's "score").
DIGEST_DECISIONS = [k.key for k in KINDS if k.key not in ("check_in", "score")]


@dataclass
class Item:
    kind: str
    title: str
    since: datetime
    url: str
    pk: int
    detail: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def label(self):
        return BY_KEY[self.kind].label

    @property
    def actions(self):
        return ACTIONS.get(self.kind, [])


class Context:
    """One person in one organization at one moment: the teams read once."""

    def __init__(self, membership, *, now=None):
        self.membership = membership
        self.org = membership.organization
        self.user_id = membership.user_id
        self.now = now or timezone.now()
        self.today = self.now.astimezone(ZoneInfo(self.org.timezone)).date()
        rows = list(Team.objects.for_org(self.org).values_list(
            "id", "tree_id", "lft", "rght", "lead_id", "parent_id", "checkin_cadence", "kind"))
        led = [(t, lft, rght) for _, t, lft, rght, lead, *_ in rows if lead == self.user_id]
        self.led = frozenset(
            pk for pk, t, lft, rght, *_ in rows
            if any(t == lt and llft <= lft and rght <= lrght for lt, llft, lrght in led))
        if not hasattr(membership, "_led_team_ids"):
            membership._led_team_ids = self.led
        self.is_manager = membership.role in permissions.MANAGERS
        self.can_sign_off = membership.role == Role.ADMIN or any(
            r[7] == Team.Kind.COMPANY and r[4] == self.user_id for r in rows)
        own = {r[0]: r[6] for r in rows}
        parent = {r[0]: r[5] for r in rows}
        self.cadence = {}  # every team's cadence, its own or the nearest one above it
        for pk in own:
            chain, at = [], pk
            while at is not None and at not in self.cadence and not own.get(at):
                chain.append(at)
                at = parent.get(at)
            if at is None:
                value = DEFAULT_CADENCE
            else:
                value = self.cadence.setdefault(at, own.get(at) or DEFAULT_CADENCE)
            for t in chain:
                self.cadence[t] = value

    def period(self, team_id):
        return timedelta(days=CADENCE_DAYS[self.cadence.get(team_id, DEFAULT_CADENCE)])

    def due_q(self, reminders=0):
        """KRs due for a check-in by their owner team's cadence, with ``reminders`` periods
        let pass since: checked in at least (1 + reminders) periods ago, or never checked in
        (due at once) and created at least ``reminders`` periods ago. One condition per
        cadence in use."""
        groups = {}
        for team_id, cadence in self.cadence.items():
            if cadence != DEFAULT_CADENCE:
                groups.setdefault(cadence, []).append(team_id)
        others = [t for ids in groups.values() for t in ids]

        def late(cadence):
            period = timedelta(days=CADENCE_DAYS[cadence])
            return (Q(last_check_in_at__lte=self.now - (1 + reminders) * period)
                    | Q(last_check_in_at__isnull=True,
                        created_at__lte=self.now - reminders * period))

        q = ~Q(owner_team_id__in=others) & late(DEFAULT_CADENCE)
        for cadence, ids in groups.items():
            q |= Q(owner_team_id__in=ids) & late(cadence)
        return q

    def due_since(self, key_result, reminders=0):
        period = self.period(key_result.owner_team_id)
        if key_result.last_check_in_at is None:
            return key_result.created_at + reminders * period
        return key_result.last_check_in_at + (1 + reminders) * period


def cadence_of(team, ancestors):
    """A team's check-in cadence and the team it comes from (itself, the nearest above that
    sets one, or None for the default): ``ancestors`` from the top down."""
    for t in [team, *reversed(list(ancestors))]:
        if t.checkin_cadence:
            return Team.Cadence(t.checkin_cadence).label, t
    return Team.Cadence(DEFAULT_CADENCE).label, None


def _active(org):
    return Cycle.objects.for_org(org).filter(status=Cycle.Status.ACTIVE)


def _live_krs(ctx):
    return (KeyResult.objects.for_org(ctx.org)
            .filter(objective__cycle__in=_active(ctx.org), is_done=False)
            .exclude(objective__state=Objective.State.RETIRED))


def _latest_step(org):
    """Steps that are the latest reached (not skipped) of their item."""
    later = EscalationStep.objects.for_org(org).filter(
        is_skipped=False, step__gt=OuterRef("step")).filter(
        Q(dependency_id=OuterRef("dependency_id"), dependency__isnull=False)
        | Q(blocker_id=OuterRef("blocker_id"), blocker__isnull=False))
    return ~Exists(later)


# Each kind: the rows waiting on this person (None: not for this person), no aggregates.
def _q_request(ctx):
    if not ctx.led:
        return None
    return Dependency.objects.for_org(ctx.org).filter(
        cycle__in=_active(ctx.org), status=Dependency.Status.REQUESTED,
        providing_team_id__in=ctx.led)


def _q_contribution(ctx):
    if not ctx.led:
        return None
    return Contribution.objects.for_org(ctx.org).filter(
        status=Contribution.Status.REQUESTED, shared__objective__cycle__in=_active(ctx.org)).filter(
        Q(shared__owner_team_id__in=ctx.led) | Q(shared__objective__team_id__in=ctx.led))


def _q_review(ctx):
    if not ctx.is_manager:
        return None
    return Objective.objects.for_org(ctx.org).filter(
        cycle__in=_active(ctx.org), state=Objective.State.PROPOSED)


def _q_signoff(ctx):
    if not ctx.can_sign_off:
        return None
    asked = SignOffRequest.objects.for_org(ctx.org).filter(workflow_id=OuterRef("pk"))
    return Workflow.objects.for_org(ctx.org).filter(
        Exists(asked), signed_off_at__isnull=True, is_closed=False,
        cycle__in=_active(ctx.org)).exclude(purpose="")


def _q_recascade(ctx):
    if not ctx.led:
        return None
    return RecascadeFlag.objects.for_org(ctx.org).filter(
        resolution=RecascadeFlag.Resolution.OPEN, objective__team_id__in=ctx.led,
        objective__cycle__in=_active(ctx.org))


def _q_escalation(ctx):
    open_dependency = Q(dependency__status=Dependency.Status.REQUESTED,
                        dependency__cycle__status=Cycle.Status.ACTIVE)
    open_blocker = Q(blocker__resolved_at__isnull=True, blocker__workflow__is_closed=False,
                     blocker__workflow__cycle__status=Cycle.Status.ACTIVE)
    # A request to a team the person leads is already theirs to answer: listed once, there.
    return EscalationStep.objects.for_org(ctx.org).filter(
        person_id=ctx.user_id, is_skipped=False).filter(
        open_dependency | open_blocker).filter(_latest_step(ctx.org)).exclude(
        dependency__providing_team_id__in=ctx.led)


def _q_declined(ctx):
    if not ctx.is_manager:
        return None
    return Dependency.objects.for_org(ctx.org).filter(
        cycle__in=_active(ctx.org), status=Dependency.Status.DECLINED)


def _q_cannot(ctx):
    if not ctx.is_manager:
        return None
    return Stakeholder.objects.for_org(ctx.org).filter(
        commitment=Stakeholder.Commitment.CANNOT, resolved_at__isnull=True,
        workflow__is_closed=False, workflow__cycle__in=_active(ctx.org))


def _q_blocker(ctx):
    return StatusUpdate.objects.for_org(ctx.org).filter(
        is_blocker=True, resolved_at__isnull=True, workflow__lead_id=ctx.user_id,
        workflow__is_closed=False, workflow__cycle__in=_active(ctx.org)).exclude(
        author_id=ctx.user_id)


def _q_recovery(ctx):
    return RecoveryAction.objects.for_org(ctx.org).filter(
        owner_id=ctx.user_id, is_done=False).exclude(
        objective__cycle__status=Cycle.Status.CLOSED).exclude(
        objective__state=Objective.State.RETIRED)


def _q_check_in(ctx):
    return _live_krs(ctx).filter(owner_id=ctx.user_id).filter(ctx.due_q())


def _q_ignored(ctx):
    if not ctx.led:
        return None
    return (_live_krs(ctx).filter(owner_team_id__in=ctx.led, owner__isnull=False)
            .exclude(owner_id=ctx.user_id).filter(ctx.due_q(reminders=IGNORED_REMINDERS)))


def _q_score(ctx):
    """KRs of my teams (owner team or objective team) with no score while their cycle's scoring
    window is open: the same query as the digest's "key results to score"."""
    if not ctx.led:
        return None
    return key_results_to_score_of_teams(ctx.org, ctx.led, today=ctx.today)


def _q_source(ctx):
    """Data sources of KRs I own (or, with no owner, of my teams) failing 3 times in a row."""
    mine = Q(key_result__owner_id=ctx.user_id)
    if ctx.led:
        mine |= Q(key_result__owner__isnull=True, key_result__owner_team_id__in=ctx.led)
    return DataSource.objects.for_org(ctx.org).failing().filter(mine, is_active=True).filter(
        key_result__objective__cycle__in=_active(ctx.org))


QUERIES = {k.key: globals()[f"_q_{k.key}"] for k in KINDS}


def counts(ctx):
    """How many items of each kind wait on the person: one query for all kinds."""
    sizes = {}
    for key, query in QUERIES.items():
        qs = query(ctx)
        if qs is None:
            continue
        sizes[key] = Coalesce(Subquery(
            qs.order_by().annotate(one=Value(1, output_field=IntegerField())).values("one")
            .annotate(n=Count("pk", distinct=True)).values("n")[:1],
            output_field=IntegerField()), 0)
    if not sizes:
        return {k.key: 0 for k in KINDS}
    row = Organization.objects.filter(pk=ctx.org.pk).values(**sizes).first() or {}
    return {k.key: row.get(k.key, 0) for k in KINDS}


def _rows(ctx, key, qs, start, stop):
    slug = ctx.org.slug
    if key == "request":
        rows = qs.select_related("requesting_team").order_by("created_at", "pk")[start:stop]
        return [Item(key, f"{d.requesting_team.name} needs: {d.need}", d.created_at,
                     reverse("dependency", args=[slug, d.pk]), d.pk,
                     detail=f"Needed by {d.needed_by:%d %b}") for d in rows]
    if key == "contribution":
        rows = qs.select_related("key_result__owner_team", "shared").order_by(
            "created_at", "pk")[start:stop]
        return [Item(key, f"{c.key_result.owner_team.name} asks to count “{c.key_result.title}” "
                          f"in “{c.shared.title}”", c.created_at,
                     reverse("objective", args=[slug, c.shared.objective_id]) + "#network", c.pk)
                for c in rows]
    if key == "review":
        submitted = (ReviewComment.objects.for_org(ctx.org)
                     .filter(objective_id=OuterRef("pk"), kind=ReviewComment.Kind.SUBMITTED)
                     .order_by().values("objective_id").annotate(at=Max("created_at"))
                     .values("at")[:1])
        rows = qs.select_related("team").annotate(
            since=Coalesce(Subquery(submitted, output_field=DateTimeField()), "updated_at")
        ).order_by("since", "pk")[start:stop]
        return [Item(key, o.title, o.since, reverse("objective", args=[slug, o.pk]) + "#review",
                     o.pk, detail=o.team.name) for o in rows]
    if key == "signoff":
        first = (SignOffRequest.objects.for_org(ctx.org).filter(workflow_id=OuterRef("pk"))
                 .order_by().values("workflow_id").annotate(at=Min("created_at")).values("at")[:1])
        rows = qs.select_related("objective").annotate(
            since=Subquery(first, output_field=DateTimeField())).order_by("since", "pk")[
            start:stop]
        return [Item(key, w.objective.title, w.since,
                     reverse("workflow", args=[slug, w.pk]) + "#step-1", w.pk, detail=w.purpose)
                for w in rows]
    if key == "recascade":
        rows = qs.select_related("objective").order_by("created_at", "pk")[start:stop]
        return [Item(key, f.objective.title, f.created_at,
                     reverse("recascade", args=[slug]) + f"?cycle={f.objective.cycle_id}", f.pk,
                     detail=f.change) for f in rows]
    if key == "escalation":
        rows = qs.select_related("dependency__requesting_team", "dependency__providing_team",
                                 "blocker__workflow__objective", "blocker__team").order_by(
            "reached_at", "pk")[start:stop]
        items = []
        for s in rows:
            if s.dependency_id:
                d = s.dependency
                title = f"{d.requesting_team.name} needs {d.providing_team.name}: {d.need}"
                url = reverse("dependency", args=[slug, d.pk])
            else:
                b = s.blocker
                title = f"Blocker in “{b.workflow.objective.title}”: {b.text}"
                url = reverse("workflow", args=[slug, b.workflow_id]) + "#step-6"
            items.append(Item(key, title, s.reached_at, url, s.pk,
                              detail=f"Unanswered; reached you as {s.get_step_display().lower()}"))
        return items
    if key == "declined":
        rows = qs.select_related("requesting_team", "providing_team").annotate(
            since=Coalesce("responded_at", "updated_at")).order_by("since", "pk")[start:stop]
        return [Item(key, f"{d.providing_team.name} declined {d.requesting_team.name}: {d.need}",
                     d.since, reverse("dependency", args=[slug, d.pk]), d.pk,
                     detail=d.response_note) for d in rows]
    if key == "cannot":
        rows = qs.select_related("team", "workflow__objective").order_by(
            "escalated_at", "pk")[start:stop]
        return [Item(key, f"{s.team.name} cannot commit to “{s.workflow.objective.title}”",
                     s.escalated_at or ctx.now, reverse("workflow", args=[slug, s.workflow_id]),
                     s.pk, detail=s.commitment_note) for s in rows]
    if key == "blocker":
        rows = qs.select_related("workflow__objective", "team").order_by(
            "created_at", "pk")[start:stop]
        return [Item(key, b.text, b.created_at,
                     reverse("workflow", args=[slug, b.workflow_id]) + "#step-6", b.pk,
                     detail=f"{b.team.name if b.team else 'Plan'} · {b.workflow.objective.title}")
                for b in rows]
    if key == "recovery":
        rows = qs.select_related("objective").order_by("created_at", "pk")[start:stop]
        return [Item(key, a.title, a.created_at,
                     reverse("objective", args=[slug, a.objective_id]) + "#recovery", a.pk,
                     detail=f"Due {a.due_date:%d %b} · {a.objective.title}") for a in rows]
    if key in ("check_in", "ignored"):
        rows = qs.select_related("objective", "owner").order_by(
            F("last_check_in_at").asc(nulls_first=True), "created_at", "pk")[start:stop]
        items = []
        reminders = IGNORED_REMINDERS if key == "ignored" else 0
        for k in rows:
            days = (ctx.now - k.last_check_in_at).days if k.last_check_in_at else None
            last = f"no check-in for {days} days" if days is not None else "no check-in yet"
            detail = k.objective.title + " · " + last
            if key == "ignored":
                detail = f"{k.owner.display_name}: {last}, {IGNORED_REMINDERS} reminders missed"
            items.append(Item(key, k.title, ctx.due_since(k, reminders),
                              reverse("check_in", args=[slug, k.pk]), k.pk, detail=detail,
                              extra={"objective": k.objective.title, "days": days}))
        return items
    if key == "score":
        rows = qs.select_related("objective__cycle").order_by(
            "objective__cycle__end_date", "pk")[start:stop]
        return [Item(key, k.title, timezone.make_aware(datetime.combine(
                    k.objective.cycle.end_date - SCORING_WINDOW, time.min)),
                     reverse("objective", args=[slug, k.objective_id]), k.pk,
                     detail=f"{k.objective.title} · {k.objective.cycle.name} ends "
                            f"{k.objective.cycle.end_date:%d %b}") for k in rows]
    if key == "source":
        rows = qs.select_related("key_result").order_by("last_error_at", "pk")[start:stop]
        return [Item(key, s.key_result.title, s.last_error_at or ctx.now,
                     reverse("data_source", args=[slug, s.key_result_id]), s.pk,
                     detail=f"{s.get_kind_display()}, {s.failures} failures in a row: "
                            f"{s.last_error}") for s in rows]
    raise KeyError(key)


def items_of(ctx, key, *, start=0, stop=OLDEST):
    qs = QUERIES[key](ctx)
    return [] if qs is None else _rows(ctx, key, qs, start, stop)


def items_for(membership, *, now=None, oldest=OLDEST, kinds=None):
    """Everything waiting on the person, grouped by kind, oldest first: ``{"total": n,
    "groups": [{"kind": Kind, "count": n, "items": [...]}...]}`` for kinds with any item.
    Queries: the teams, the counts, one per kind that can hold something for this person."""
    ctx = Context(membership, now=now)
    sizes = (counts(ctx) if now is not None
             else cached_counts(membership, ctx, again=True, fresh=True))
    groups = []
    for k in KINDS:
        if kinds is not None and k.key not in kinds:
            continue
        qs = QUERIES[k.key](ctx)
        if qs is None:
            continue
        # Asked even when the count is 0: the number of queries depends on the person's role
        # and teams, never on what the organization holds.
        items = _rows(ctx, k.key, qs, 0, oldest)
        if sizes[k.key]:
            groups.append({"kind": k, "count": sizes[k.key], "items": items})
    return {"total": sum(sizes[k] for k in (kinds or sizes)), "groups": groups, "ctx": ctx}


# The nav's count is kept per person with the organization's "inbox" version it was counted
# at (``orgs.versions``: every write to a table the kinds read moves it) and when. A count is
# current while the version has not moved and it is younger than ``COUNT_TTL`` (what appears
# with time alone: a key result falling due, a scoring window opening). A count that is not
# current is still shown, and counted again after the response (by the worker with a broker,
# in a background thread without one): nobody's page waits for it. Except after a person's own
# change: a request that writes (POST...) counts its author again before it answers (the
# middleware below), so the next page shows what they did; and the inbox page, whose content
# the counts are, always counts what is not current.
COUNT_TTL = 60
KEEP = 24 * 3600  # a count not current is shown until counted again, for at most this long
RECOUNT_PENDING = 60  # one recount asked for per person at a time, for at most this long


def _count_key(membership):
    return f"inbox:n:{membership.organization_id}:{membership.user_id}:{membership.role}"


def cached_counts(membership, ctx=None, *, again=False, fresh=False):
    """``counts`` for the person: the nav's count, the home page's and the inbox page's counts
    share it. ``ctx``: a Context already built for the same person and moment; ``again``:
    ignore what this request (this membership object) counted before; ``fresh``: a count that
    is not current is counted now rather than shown (also inside a request that writes)."""
    sizes = None if again else getattr(membership, "_inbox_counts", None)
    if sizes is not None:  # counted earlier in this request
        return sizes
    sizes = _kept_counts(membership, ctx, fresh or getattr(_request, "writes", False))
    membership._inbox_counts = sizes  # the nav's count on the same page asks nothing more
    return sizes


def _kept_counts(membership, ctx, fresh):
    if not versions._cache_up():
        return counts(ctx or Context(membership))
    try:
        current = versions.version(membership.organization_id, "inbox")
        kept = cache.get(_count_key(membership))
    except (RedisError, OSError) as error:
        versions._cache_failed(error)
        return counts(ctx or Context(membership))
    if kept is not None:
        if kept["v"] == current and clock.time() - kept["at"] < COUNT_TTL:
            return kept["sizes"]
        if not fresh:
            recount_later(membership)
            return kept["sizes"]
    return _count_and_keep(membership, ctx, current)


def _count_and_keep(membership, ctx=None, current=None):
    """Count now and keep the count with the version taken before the rows were read (a write
    during the count moves it: the count is then not current, and counted again)."""
    started = clock.time()
    try:
        if current is None:
            current = versions.version(membership.organization_id, "inbox")
    except (RedisError, OSError) as error:
        versions._cache_failed(error)
        return counts(ctx or Context(membership))
    sizes = counts(ctx or Context(membership))
    key = _count_key(membership)
    try:
        kept = cache.get(key)
        if kept is None or kept["at"] <= started:  # never over a count begun later
            cache.set(key, {"sizes": sizes, "v": current, "at": started}, KEEP)
    except (RedisError, OSError) as error:
        versions._cache_failed(error)
    return sizes


def recount_later(membership):
    """Count the person again after the response (or now, outside a request)."""
    try:
        if not cache.add(f"{_count_key(membership)}:again", 1, RECOUNT_PENDING):
            return  # already asked for
    except (RedisError, OSError) as error:
        versions._cache_failed(error)
        return
    later = getattr(_request, "later", None)
    if later is not None:
        later[membership.organization_id, membership.user_id] = membership
    else:
        _recount_now_or_later(membership)


def recount(org_id, user_id):
    """The person's count, counted again and kept (the task behind ``recount_later``)."""
    with scope(organization=org_id):
        membership = (Membership.objects.for_org(org_id).filter(user_id=user_id)
                      .select_related("organization").first())
    if membership is None:
        return None
    try:
        with scope(organization=membership.organization):
            return _count_and_keep(membership)
    finally:
        try:
            cache.delete(f"{_count_key(membership)}:again")
        except (RedisError, OSError) as error:
            versions._cache_failed(error)


def _enqueue_recount(org_id, user_id):
    from .tasks import recount_inbox

    enqueue_now(recount_inbox, org_id, user_id, defer=True)


def _recount_now_or_later(membership):
    """In-process and not deferred (``TASKS_DEFER_IN_PROCESS`` off: tests), with the person at
    hand; else the task, by id (the worker, or a thread after the response)."""
    from .tasks import recount_inbox

    if recount_inbox.app.conf.task_always_eager and not settings.TASKS_DEFER_IN_PROCESS:
        try:
            with scope(organization=membership.organization):
                _count_and_keep(membership)
        finally:
            cache.delete(f"{_count_key(membership)}:again")
        return
    _enqueue_recount(membership.organization_id, membership.user_id)


# The request being answered in this thread: whether it writes, and the recounts it asked for,
# enqueued when the response is closed (``request_finished``), after the person has it.
_request = threading.local()
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class InboxCountMiddleware:
    """A request that writes counts its author's inbox again before it answers, when what
    the count reads has moved: the next page shows the person's own change. Recounts asked
    for during any request run after its response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        _request.later = {}
        _request.writes = request.method in UNSAFE_METHODS
        response = self.get_response(request)
        membership = getattr(request, "membership", None)
        if _request.writes and membership is not None:
            membership.__dict__.pop("_inbox_counts", None)
            with scope(organization=membership.organization):
                cached_counts(membership, fresh=True)
        return response


def after_response(**kwargs):
    """``request_finished``: enqueue the recounts the request asked for."""
    later = getattr(_request, "later", None) or {}
    _request.later, _request.writes = None, False
    for membership in later.values():
        _recount_now_or_later(membership)


def total_for(membership, *, now=None):
    """The nav's count: from the cache while nothing it reads has changed; else two queries
    (the teams, then every kind's count at once)."""
    if now is not None:
        return sum(counts(Context(membership, now=now)).values())
    return sum(cached_counts(membership).values())


def summary(membership):
    """The home page's "Needs me": the count of each kind (the nav's count comes from the same
    query, or the same cache entry). The oldest few items load after the page (``oldest``), so
    the home page pays at most two queries for it."""
    sizes = cached_counts(membership)
    return {"total": sum(sizes.values()),
            "groups": [{"kind": k, "count": sizes[k.key]} for k in KINDS if sizes[k.key]]}


def oldest(membership, *, few=3):
    """The oldest few items of all kinds."""
    return since_ascending(items_for(membership, oldest=few)["groups"])[:few]


def since_ascending(groups):
    return sorted((i for g in groups for i in g["items"]), key=lambda i: (i.since, i.kind))



# Acting in place ------------------------------------------------------------------------------

@dataclass
class Action:
    do: str
    label: str
    note: str = ""      # the note's label when one is asked for ("" asks none)
    required: bool = False
    confirm: str = ""   # the question asked first (a destructive answer)
    primary: bool = False


ACTIONS = {
    "request": [Action("commit", "Commit", primary=True),
                Action("decline", "Decline", note="Reason", required=True,
                       confirm="Decline this request?")],
    "contribution": [Action("accept", "Accept", primary=True),
                     Action("decline", "Decline", note="Note")],
    "review": [Action("approve", "Approve", primary=True),
               Action("return", "Return", note="What to change", required=True)],
    "signoff": [Action("sign_off", "Sign off", primary=True)],
    "recascade": [Action("confirm", "Still fits", primary=True)],
    "blocker": [Action("resolve", "Mark resolved", primary=True)],
    "recovery": [Action("done", "Done", primary=True)],
}


def act(membership, kind, pk, do, note=""):
    """Do what an item asks, through the service that owns it; returns what to say. Lookups
    are scoped to the organization: a foreign or unknown id is None (the view's 404)."""
    from alignment import cascade
    from alignment import services as workflows
    from dependencies import services as network

    org = membership.organization
    membership.__dict__.pop("_inbox_counts", None)  # what this request counted may change
    allowed = {a.do for a in ACTIONS.get(kind, [])}
    if do not in allowed:
        return None
    if kind == "request":
        d = Dependency.objects.for_org(org).with_ends().filter(pk=pk).first()
        if d is None:
            return None
        status = Dependency.Status.COMMITTED if do == "commit" else Dependency.Status.DECLINED
        network.answer_dependency(membership=membership, dependency=d, status=status, note=note)
        return f"{'Committed to' if do == 'commit' else 'Declined'}: {d.need}."
    if kind == "contribution":
        c = Contribution.objects.for_org(org).select_related(
            "key_result__objective__cycle", "key_result__objective__team",
            "key_result__owner_team", "shared__objective__cycle", "shared__objective__team",
            "shared__owner_team").filter(pk=pk).first()
        if c is None:
            return None
        network.answer_contribution(membership=membership, contribution=c,
                                    accept=do == "accept", note=note)
        return (f"{'Accepted' if do == 'accept' else 'Declined'}: “{c.key_result.title}” "
                f"{'now counts' if do == 'accept' else 'does not count'} in “{c.shared.title}”.")
    if kind == "review":
        o = Objective.objects.for_org(org).select_related("team__lead", "cycle", "theme").filter(
            pk=pk).first()
        if o is None:
            return None
        if do == "approve":
            cascade.approve(membership=membership, objective=o, note=note)
            return f"Approved: {o.title}."
        cascade.request_changes(membership=membership, objective=o, text=note)
        return f"Returned to the team: {o.title}."
    if kind == "signoff":
        w = Workflow.objects.for_org(org).select_related("objective").filter(pk=pk).first()
        if w is None:
            return None
        workflows.sign_off(membership=membership, workflow=w)
        return f"Signed off: {w.objective.title}."
    if kind == "recascade":
        f = RecascadeFlag.objects.for_org(org).select_related(
            "objective__team", "objective__cycle").filter(pk=pk).first()
        if f is None:
            return None
        cascade.confirm_fits(membership=membership, flag=f, note=note)
        return f"Confirmed: {f.objective.title} still fits."
    if kind == "blocker":
        b = StatusUpdate.objects.for_org(org).select_related("workflow").filter(
            pk=pk, is_blocker=True).first()
        if b is None:
            return None
        workflows.resolve_blocker(membership=membership, update=b)
        return "Blocker resolved."
    if kind == "recovery":
        a = RecoveryAction.objects.for_org(org).select_related("objective__team").filter(
            pk=pk).first()
        if a is None:
            return None
        network.set_recovery_action_done(membership=membership, action=a, done=True)
        return f"Done: {a.title}."
    return None


def act_target_exists(membership, kind, pk):
    """The dependency a decline is about, when it is this organization's (else None)."""
    if kind != "request":
        return None
    return Dependency.objects.for_org(membership.organization).filter(pk=pk).first()
