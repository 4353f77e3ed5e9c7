"""The OKR network beyond the tree: shared objectives, cross-team dependencies, the propagation's
bookkeeping, in-app alerts and recovery plans."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from okrs.models import Health, KeyResult, Objective, Rollup
from orgs.models import Cycle, Organization, Team
from orgs.scoping import OrgQuerySet, org_manager
from orgs.validation import choice_constraint


class ObjectiveShare(models.Model):
    """Another team takes part in an objective: it co-owns the whole OKR, or shares only the
    objective and brings key results of its own."""

    class Kind(models.TextChoices):
        WHOLE = "whole", "Whole OKR shared"
        OBJECTIVE = "objective", "Only the objective shared"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    objective = models.ForeignKey(Objective, on_delete=models.CASCADE, related_name="shares")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="objective_shares")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = org_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["objective", "team"], name="share_once_per_team"),
            choice_constraint("kind", ["whole", "objective"]),
        ]

    def __str__(self):
        return f"{self.objective} shared with {self.team} ({self.kind})"


class ContributionQuerySet(OrgQuerySet):
    def open(self):
        return self.filter(status__in=Contribution.OPEN)


class Contribution(models.Model):
    """A key result asks to feed another team's (shared) key result. The shared key result's
    owners (its team's lead, the leads above, an alignment lead) accept or decline; only an
    accepted contribution sets ``KeyResult.feeds`` and can make the shared value a sum or a
    mean. Declined, withdrawn and removed ones stay as history."""

    class Status(models.TextChoices):
        REQUESTED = "requested", "Waiting for an answer"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        WITHDRAWN = "withdrawn", "Withdrawn"
        REMOVED = "removed", "Removed"

    OPEN = (Status.REQUESTED, Status.ACCEPTED)

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    key_result = models.ForeignKey(KeyResult, on_delete=models.CASCADE,
                                   related_name="contributions_out")
    shared = models.ForeignKey(KeyResult, on_delete=models.CASCADE,
                               related_name="contributions_in")
    # What the shared key result's value becomes once accepted: "" keeps its own check-ins.
    rollup = models.CharField(max_length=4, choices=Rollup.choices, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    note = models.TextField("why it contributes", max_length=1000, blank=True)
    response_note = models.TextField(max_length=1000, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    responded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+")
    responded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = org_manager(ContributionQuerySet)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # A key result feeds one shared key result at a time, asked or accepted.
            models.UniqueConstraint(fields=["key_result"],
                                    condition=Q(status__in=["requested", "accepted"]),
                                    name="one_open_contribution_per_key_result"),
            models.CheckConstraint(condition=~Q(key_result=models.F("shared")),
                                   name="contribution_not_to_itself"),
            choice_constraint("status", ["requested", "accepted", "declined", "withdrawn",
                                         "removed"]),
            choice_constraint("rollup", Rollup, blank=True),
        ]

    def __str__(self):
        return f"{self.key_result} feeds {self.shared} ({self.status})"

    @property
    def is_open(self):
        return self.status in self.OPEN


class DependencyQuerySet(OrgQuerySet):
    def with_ends(self):
        return self.select_related(
            "organization", "cycle", "requesting_team", "providing_team", "created_by",
            "responded_by",
            "downstream_objective__team", "downstream_key_result__objective",
            "upstream_objective__team", "upstream_key_result__objective",
        )

    def open(self):
        return self.filter(status__in=Dependency.OPEN)


class Dependency(models.Model):
    """One team's objective or key result needs another team's objective or key result."""

    class Kind(models.TextChoices):
        """What the other team's part is (``dependencies.kinds`` holds each one's wording)."""
        DELEGATION = "delegation", "Delegation"
        SHARED = "shared", "Shared goal"
        SUPPORTING = "supporting", "Supporting"

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        COMMITTED = "committed", "Committed"
        DECLINED = "declined", "Declined"
        DELIVERED = "delivered", "Delivered"
        BROKEN = "broken", "Broken"
        WITHDRAWN = "withdrawn", "Withdrawn"

    OPEN = (Status.REQUESTED, Status.COMMITTED)
    # Statuses whose upstream health flows into the dependent node (see network.py).
    PROPAGATING = (Status.REQUESTED, Status.COMMITTED, Status.BROKEN)
    # Statuses that count as edges for the loop check: all but the withdrawn ones.
    IN_GRAPH = (Status.REQUESTED, Status.COMMITTED, Status.DECLINED, Status.DELIVERED,
                Status.BROKEN)

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="dependencies")
    # The side that depends (downstream): exactly one of the two is set.
    downstream_objective = models.ForeignKey(
        Objective, on_delete=models.CASCADE, null=True, blank=True, related_name="depends_on")
    downstream_key_result = models.ForeignKey(
        KeyResult, on_delete=models.CASCADE, null=True, blank=True, related_name="depends_on")
    # What it needs (upstream): exactly one of the two is set.
    upstream_objective = models.ForeignKey(
        Objective, on_delete=models.CASCADE, null=True, blank=True, related_name="needed_by")
    upstream_key_result = models.ForeignKey(
        KeyResult, on_delete=models.CASCADE, null=True, blank=True, related_name="needed_by")
    requesting_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="+")
    providing_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="+")
    # Before kinds existed, a dependency asked another team for something that enables our
    # work: "supporting" is the closest kind, and the default.
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.SUPPORTING)
    need = models.CharField("what exactly is needed", max_length=300)
    needed_by = models.DateField("needed by")
    fallback = models.TextField("if it slips", max_length=1000)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    response_note = models.TextField(max_length=1000, blank=True)
    responded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+")
    responded_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = org_manager(DependencyQuerySet)

    class Meta:
        ordering = ["needed_by", "pk"]
        verbose_name_plural = "dependencies"
        indexes = [
            models.Index(fields=["organization", "cycle", "status"]),
            models.Index(fields=["upstream_objective"]),
            models.Index(fields=["upstream_key_result"]),
            # The network page's list of a cycle's dependencies, in its order, a page at a time.
            models.Index(fields=["organization", "cycle", "needed_by", "id"],
                         name="dependency_cycle_order_idx"),
            # The API's dependency list: in change order, a page at a time (updated_since).
            models.Index(fields=["organization", "updated_at", "id"],
                         name="dependency_org_updated_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(downstream_objective__isnull=False, downstream_key_result__isnull=True)
                    | Q(downstream_objective__isnull=True, downstream_key_result__isnull=False)
                ),
                name="dependency_one_downstream",
            ),
            models.CheckConstraint(
                condition=(
                    Q(upstream_objective__isnull=False, upstream_key_result__isnull=True)
                    | Q(upstream_objective__isnull=True, upstream_key_result__isnull=False)
                ),
                name="dependency_one_upstream",
            ),
            choice_constraint("status", ["requested", "committed", "declined", "delivered",
                                         "broken", "withdrawn"]),
            choice_constraint("kind", ["delegation", "shared", "supporting"]),
        ]

    def __str__(self):
        return f"{self.downstream} needs {self.upstream}"

    @property
    def downstream(self):
        return self.downstream_objective or self.downstream_key_result

    @property
    def wording(self):
        """The words of its kind (``dependencies.kinds``)."""
        from .kinds import wording

        return wording(self.kind)

    @property
    def upstream(self):
        return self.upstream_objective or self.upstream_key_result

    @property
    def is_open(self):
        return self.status in self.OPEN


class DependencyEvent(models.Model):
    """The history of a dependency: requested, committed, declined, delivered, broken..."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    dependency = models.ForeignKey(Dependency, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(max_length=10, choices=Dependency.Status.choices)
    note = models.TextField(max_length=1000, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = org_manager()

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [choice_constraint("status", Dependency.Status)]

    def __str__(self):
        return f"{self.dependency_id}: {self.status}"


class NetworkState(models.Model):
    """Propagation bookkeeping for one cycle. A change marks the cycle dirty (and bumps the
    generation) in its own transaction; a run clears the flag only if no change came in since it
    started, so a lost task is redone by the periodic sweep."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    cycle = models.OneToOneField(Cycle, on_delete=models.CASCADE, related_name="network_state")
    dirty = models.BooleanField(default=True)
    generation = models.PositiveBigIntegerField(default=0)
    changed_at = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    last_nodes = models.PositiveIntegerField(default=0)
    last_edges = models.PositiveIntegerField(default=0)
    last_ms = models.PositiveIntegerField(default=0)
    # Rows the last run could not assess and left out ({kind, id, title, objective, reason}):
    # logged, and shown to the people who run the console on the Network page.
    skipped = models.JSONField(default=list, blank=True)
    # A digest of everything the last run read (``network.fingerprint``), taken before it read:
    # a run that finds the same digest has nothing to recompute. Empty: run in full.
    fingerprint = models.CharField(max_length=64, blank=True, default="")

    objects = org_manager()

    def __str__(self):
        return f"Network of {self.cycle_id} ({'dirty' if self.dirty else 'clean'})"


class NetworkSnapshot(models.Model):
    """What the last runs of a cycle kept in their process (rows with their versions, what each
    key result gave, own healths, the graph, the impacts: ``dependencies.snapshot``), saved so
    that a process that kept nothing (a worker restart) starts from it instead of from nothing.
    One row per cycle, replaced. Never trusted as it is: it is signed (a row damaged, or copied
    from another cycle or organization, is ignored), tied to the code and the database that
    made it, and every row, edge and result in it is checked before use as the process checks
    what it kept itself."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    cycle = models.OneToOneField(Cycle, on_delete=models.CASCADE, related_name="+")
    saved_at = models.DateTimeField()
    nodes = models.PositiveIntegerField(default=0)
    # The signature, the format, the code version and the database travel in the payload's
    # header (``snapshot.save``); only its size is a column.
    size = models.PositiveIntegerField(default=0)
    payload = models.BinaryField()

    objects = org_manager()

    def __str__(self):
        return f"Kept network of cycle {self.cycle_id} ({self.nodes} nodes, {self.size} bytes)"


class PropagationRun(models.Model):
    """One propagation that changed something people must hear about."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    changed = models.PositiveIntegerField(default=0)

    objects = org_manager()

    def __str__(self):
        return f"Run {self.pk} of cycle {self.cycle_id}"


class NotificationQuerySet(OrgQuerySet):
    def unread(self):
        return self.filter(read_at__isnull=True)


class Notification(models.Model):
    """An in-app alert for one person: something of theirs turned at risk because of something
    upstream, or recovered."""

    class Kind(models.TextChoices):
        WORSE = "worse", "Turned worse because of something upstream"
        RECOVERED = "recovered", "Recovered"
        ABOVE = "above", "The objective this contributes to is at risk"
        IMPACT = "impact", "A company or department objective turned at risk: its impact"
        REQUEST = "request", "A request to answer"
        # Events of nudges.events.notify: the link says where to act.
        ANSWERED = "answered", "A request was answered"
        DECLINED = "declined", "A request was declined"
        PROPOSAL = "proposal", "An objective was proposed for review"
        CHANGES = "changes", "Changes were requested"
        SIGNOFF = "signoff", "A sign-off is asked"
        BLOCKER = "blocker", "A blocker was escalated"
        ESCALATED = "escalated", "A request was escalated"
        ACTION = "action", "An action was assigned"
        REMINDER = "reminder", "A reminder"
        KPI = "kpi", "A scorecard KPI left its healthy band"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    # Empty for a request (a contribution to answer), which no propagation run raised.
    run = models.ForeignKey(PropagationRun, on_delete=models.CASCADE, null=True, blank=True,
                            related_name="notifications")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    health = models.CharField(max_length=10, choices=Health.choices, blank=True)
    # Empty only for an event about no objective (a KPI of a team's scorecard): its url says
    # where to act.
    objective = models.ForeignKey(Objective, on_delete=models.CASCADE, null=True, blank=True,
                                  related_name="+")
    key_result = models.ForeignKey(
        KeyResult, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    title = models.CharField(max_length=200)
    causes = models.JSONField(default=list, blank=True)
    # "above": the person's objectives below it ({"below": [...], "more": n}); "impact": the
    # impact summary of the objective (see ``Objective.impact``).
    details = models.JSONField(default=dict, blank=True)
    # Where to act on an event (a path inside the site); empty: the objective's page.
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    objects = org_manager(NotificationQuerySet)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "organization", "read_at"])]
        constraints = [
            choice_constraint("kind", ["worse", "recovered", "above", "impact", "request",
                                       "answered", "declined", "proposal", "changes",
                                       "signoff", "blocker", "escalated", "action",
                                       "reminder", "kpi"]),
            choice_constraint("health", Health, blank=True),
        ]

    def __str__(self):
        return f"{self.title}: {self.kind}"


class AlertEmail(models.Model):
    """The send ledger of alert emails: one per person per propagation run, claimed before it is
    sent, so a retried task sends nothing twice."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Turned off by the person"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(PropagationRun, on_delete=models.CASCADE, related_name="emails")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)

    objects = org_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "user"], name="one_alert_email_per_run"),
            choice_constraint("status", ["pending", "sent", "failed", "skipped"]),
        ]

    def __str__(self):
        return f"Alert email of run {self.run_id} to {self.user_id}: {self.status}"


class RecoveryAction(models.Model):
    """One step of a recovery plan on an at-risk company or department objective."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    objective = models.ForeignKey(
        Objective, on_delete=models.CASCADE, related_name="recovery_actions")
    title = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="recovery_actions")
    due_date = models.DateField()
    is_done = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = org_manager()

    class Meta:
        ordering = ["is_done", "due_date", "pk"]

    def __str__(self):
        return self.title


class EscalationStep(models.Model):
    """One rung of the escalation ladder that an unanswered dependency request, or an unresolved
    blocker of a workflow, has reached: who it reached and when (dependencies/ladder.py). A
    step whose person is the one of the step before is recorded as skipped and reaches nobody
    new."""

    class Step(models.IntegerChoices):
        LEAD = 1, "Team lead"
        HEAD = 2, "Department head"
        ALIGNMENT = 3, "Alignment lead"
        ADMIN = 4, "Org admin"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    dependency = models.ForeignKey(Dependency, on_delete=models.CASCADE, null=True, blank=True,
                                   related_name="escalation_steps")
    blocker = models.ForeignKey("alignment.StatusUpdate", on_delete=models.CASCADE, null=True,
                                blank=True, related_name="escalation_steps")
    step = models.PositiveSmallIntegerField(choices=Step.choices)
    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                               blank=True, related_name="+")
    is_skipped = models.BooleanField(default=False)
    reached_at = models.DateTimeField()

    objects = org_manager()

    class Meta:
        ordering = ["step", "pk"]
        indexes = [models.Index(fields=["organization", "person", "is_skipped"],
                                name="escalation_step_person_idx")]
        constraints = [
            models.CheckConstraint(
                condition=(Q(dependency__isnull=False, blocker__isnull=True)
                           | Q(dependency__isnull=True, blocker__isnull=False)),
                name="escalation_step_one_item"),
            models.UniqueConstraint(fields=["dependency", "step"],
                                    condition=Q(dependency__isnull=False),
                                    name="escalation_step_once_per_dependency"),
            models.UniqueConstraint(fields=["blocker", "step"],
                                    condition=Q(blocker__isnull=False),
                                    name="escalation_step_once_per_blocker"),
            choice_constraint("step", [1, 2, 3, 4]),
        ]

    def __str__(self):
        return f"Step {self.step} of {self.dependency_id or self.blocker_id}"
