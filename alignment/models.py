"""The 7-step cross-team workflow: one per shared objective per cycle."""

from django.conf import settings
from django.db import models

from dependencies.models import Dependency
from okrs.models import KeyResult, Objective
from orgs.models import Cycle, Organization, Team
from orgs.scoping import org_manager
from orgs.validation import choice_constraint

from . import rules


class Workflow(models.Model):
    class Frequency(models.TextChoices):
        WEEKLY = "weekly", "Weekly"
        BIWEEKLY = "biweekly", "Every two weeks"

    class Weekday(models.IntegerChoices):
        MONDAY = 0, "Monday"
        TUESDAY = 1, "Tuesday"
        WEDNESDAY = 2, "Wednesday"
        THURSDAY = 3, "Thursday"
        FRIDAY = 4, "Friday"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="workflows")
    objective = models.ForeignKey(Objective, on_delete=models.CASCADE, related_name="workflows")
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", help_text="The alignment lead who oversees the integrated plan.")
    is_closed = models.BooleanField(default=False)
    # Step 1: shared purpose.
    purpose = models.CharField("shared purpose", max_length=300, blank=True)
    impact = models.TextField("why it matters (business impact)", max_length=2000, blank=True)
    signed_off_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+")
    signed_off_at = models.DateTimeField(null=True, blank=True)
    shared_at = models.DateTimeField(null=True, blank=True)
    # Step 3: kickoff.
    kickoff_date = models.DateField(null=True, blank=True)
    kickoff_notes = models.TextField(max_length=5000, blank=True)
    kickoff_closed_at = models.DateTimeField(null=True, blank=True)
    success_measures = models.ManyToManyField(KeyResult, blank=True, related_name="+")
    # Step 5: cadence.
    sync_frequency = models.CharField(max_length=10, choices=Frequency.choices, blank=True)
    sync_weekday = models.PositiveSmallIntegerField(choices=Weekday.choices, null=True,
                                                    blank=True)
    sync_time = models.TimeField(null=True, blank=True)
    sync_format = models.CharField(max_length=200, blank=True,
                                   help_text="e.g. 25 minutes, video call, owners only")
    dashboard_url = models.URLField(blank=True)
    async_updates = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = org_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cycle", "objective"], name="one_workflow_per_cycle"),
            choice_constraint("sync_frequency", ["weekly", "biweekly"], blank=True),
            choice_constraint("sync_weekday", range(5), null=True),
        ]

    def __str__(self):
        return f"Workflow for {self.objective}"


class SignOffRequest(models.Model):
    """The alignment lead asked leadership to sign off a workflow's purpose: one row per
    request, emailed once to each person who can sign off (``recipients`` of them). A second
    click within ``services.SIGN_OFF_ASK_AGAIN_AFTER`` on the same wording asks nothing."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE,
                                 related_name="sign_off_requests")
    purpose = models.CharField("purpose asked about", max_length=300)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     null=True, related_name="+")
    recipients = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = org_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["workflow", "-created_at"],
                                name="signoff_request_latest")]

    def __str__(self):
        return f"Sign-off asked for {self.workflow_id}"


class StepOverride(models.Model):
    """The alignment lead marks a step done although the data does not say so, and why."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="overrides")
    step = models.PositiveSmallIntegerField()
    reason = models.TextField(max_length=1000)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                           related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = org_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workflow", "step"], name="one_override_per_step"),
        ]

    def __str__(self):
        return f"Step {self.step} overridden"


class Stakeholder(models.Model):
    class Role(models.TextChoices):
        LEAD = "lead", "Lead"
        CONTRIBUTOR = "contributor", "Contributor"
        REVIEWER = "reviewer", "Reviewer"

    class Commitment(models.TextChoices):
        PENDING = "pending", "Not answered yet"
        COMMITTED = "committed", "Committed"
        CANNOT = "cannot", "Cannot commit"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="stakeholders")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="+", help_text="One person, not a group.")
    role = models.CharField(max_length=12, choices=Role.choices, default=Role.CONTRIBUTOR)
    commitment = models.CharField(max_length=10, choices=Commitment.choices,
                                  default=Commitment.PENDING)
    commitment_note = models.TextField(max_length=1000, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    objects = org_manager()

    class Meta:
        ordering = ["team__name"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "team"], name="stakeholder_once"),
            choice_constraint("role", ["lead", "contributor", "reviewer"]),
            choice_constraint("commitment", ["pending", "committed", "cannot"]),
        ]

    def __str__(self):
        return f"{self.team} ({self.role})"


class Milestone(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="milestones")
    title = models.CharField(max_length=200)
    owner_team = models.ForeignKey(Team, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")
    start_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    cross_team = models.BooleanField(
        "needs another team", default=False,
        help_text="It cannot finish without another team's work: name what it waits on.")
    waits_on = models.ManyToManyField("self", symmetrical=False, blank=True,
                                      related_name="unblocks")
    dependencies = models.ManyToManyField(Dependency, blank=True, related_name="milestones")
    done_at = models.DateTimeField(null=True, blank=True)
    needs_revisit = models.BooleanField(default=False)
    revisit_reason = models.CharField(max_length=300, blank=True)

    objects = org_manager()

    class Meta:
        ordering = ["due_date", "pk"]

    def __str__(self):
        return self.title


class StatusUpdate(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="updates")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, null=True, blank=True,
                             related_name="+")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                               related_name="+")
    text = models.TextField(max_length=2000)
    is_blocker = models.BooleanField(default=False)
    escalated = models.BooleanField(default=False)
    # A blocker stays open (and climbs the escalation ladder) until someone marks it resolved.
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                    null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = org_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return self.text[:60]


class ReviewComment(models.Model):
    """The review thread of a proposed objective: comments, change requests, approvals."""

    class Kind(models.TextChoices):
        COMMENT = "comment", "Comment"
        SUBMITTED = "submitted", "Submitted for review"
        CHANGES = "changes", "Changes requested"
        APPROVED = "approved", "Approved"
        PUBLISHED = "published", "Published"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    objective = models.ForeignKey(Objective, on_delete=models.CASCADE,
                                  related_name="review_comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                               related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.COMMENT)
    text = models.TextField(max_length=2000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = org_manager()

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            choice_constraint("kind", ["comment", "submitted", "changes", "approved", "published"]),
        ]

    def __str__(self):
        return f"{self.kind}: {self.text[:40]}"


class RecascadeFlag(models.Model):
    """An objective aligned below one that changed in substance: its owners confirm it still
    fits, re-align it, or retire it."""

    class Resolution(models.TextChoices):
        OPEN = "open", "Needs review"
        CONFIRMED = "confirmed", "Still fits"
        REALIGNED = "realigned", "Re-aligned"
        RETIRED = "retired", "Retired"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    objective = models.ForeignKey(Objective, on_delete=models.CASCADE,
                                  related_name="recascade_flags")
    source = models.ForeignKey(Objective, on_delete=models.CASCADE, related_name="+")
    change = models.CharField(max_length=300)
    resolution = models.CharField(max_length=10, choices=Resolution.choices,
                                  default=Resolution.OPEN)
    note = models.CharField(max_length=500, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                    null=True, blank=True, related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = org_manager()

    class Meta:
        ordering = ["-created_at", "pk"]
        indexes = [
            # The re-cascade page: the open flags, newest first, a page at a time.
            models.Index(fields=["organization", "resolution", "-created_at", "id"],
                         name="recascade_open_recent_idx"),
        ]
        constraints = [
            choice_constraint("resolution", ["open", "confirmed", "realigned", "retired"]),
        ]

    def __str__(self):
        return f"{self.objective}: {self.resolution}"


class FindingsReport(models.Model):
    """The misalignment report of one cycle, as the last recompute left it: when it was
    computed and how many findings of each severity. No row yet: the report is being prepared.
    Written only by the recompute (``alignment.report.save``); pages only read it."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    cycle = models.OneToOneField(Cycle, on_delete=models.CASCADE, related_name="findings_report")
    computed_at = models.DateTimeField()
    total = models.PositiveIntegerField(default=0)
    high = models.PositiveIntegerField(default=0)
    medium = models.PositiveIntegerField(default=0)
    low = models.PositiveIntegerField(default=0)
    # A digest of what the rules that do not read the clock read when these findings were
    # computed and of their findings as stored (``alignment.report.prepare`` and ``save``):
    # while it holds, their findings are reused.
    inputs = models.CharField(max_length=64, blank=True, default="")

    objects = org_manager()

    def __str__(self):
        return f"Findings of {self.cycle_id}: {self.total}"


class Finding(models.Model):
    """One finding of the misalignment rules (``alignment.rules``) in one cycle, stored by the
    recompute. The objective, key result and dependency it names are links without a database
    constraint: the rows are derived, rewritten by every recompute, and removed with what they
    name."""

    class Severity(models.TextChoices):
        HIGH = rules.HIGH, "High"
        MEDIUM = rules.MEDIUM, "Medium"
        LOW = rules.LOW, "Low"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="+", db_index=False)
    rule = models.CharField(max_length=20, choices=list(rules.TITLES.items()))
    severity = models.CharField(max_length=6, choices=Severity.choices)
    rank = models.PositiveSmallIntegerField(help_text="0 high, 1 medium, 2 low: report order.")
    message = models.TextField()
    who = models.CharField(max_length=300, help_text="Who should act.")
    objective = models.ForeignKey(Objective, on_delete=models.CASCADE, null=True, blank=True,
                                  related_name="+", db_constraint=False, db_index=False)
    key_result = models.ForeignKey(KeyResult, on_delete=models.CASCADE, null=True, blank=True,
                                   related_name="+", db_constraint=False, db_index=False)
    dependency = models.ForeignKey(Dependency, on_delete=models.CASCADE, null=True, blank=True,
                                   related_name="+", db_constraint=False, db_index=False)

    objects = org_manager()

    class Meta:
        ordering = ["rank", "rule", "message", "pk"]
        indexes = [models.Index(fields=["cycle", "objective"], name="finding_cycle_objective")]
        constraints = [
            choice_constraint("rule", list(rules.TITLES)),
            choice_constraint("severity", [rules.HIGH, rules.MEDIUM, rules.LOW]),
        ]

    def __str__(self):
        return self.message[:60]


class RuleUnits(models.Model):
    """The results of the similarity rules' units (``alignment.rules.STORED_KINDS``) as the last
    run of a cycle that stored them used them: one row per cycle, replaced, written only by the
    recompute (``alignment.report``). Each result is filed under the md5 of its unit's whole
    input salted with the organization, the cycle and the code, so a new process finds only
    the results of inputs that did not change; ``checksum`` covers the payload (a damaged row
    is not read)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    cycle = models.OneToOneField(Cycle, on_delete=models.CASCADE, related_name="+")
    code = models.CharField(max_length=32, help_text="The rules' code version (md5).")
    checksum = models.CharField(max_length=32)
    units = models.PositiveIntegerField(default=0)
    payload = models.TextField(help_text="JSON: the digests of units with no result, and the "
                                         "results of the others by digest.")
    stored_at = models.DateTimeField()

    objects = org_manager()

    class Meta:
        verbose_name = verbose_name_plural = "rule units"

    def __str__(self):
        return f"Rule units of {self.cycle_id}: {self.units}"
