from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from mptt.models import MPTTModel, TreeForeignKey

from orgs.models import Cycle, Organization, Team
from orgs.scoping import OrgQuerySet, OrgTreeQuerySet, org_manager, org_tree_manager
from orgs.trees import tree_constraints
from orgs.validation import choice_constraint


class Health(models.TextChoices):
    ON_TRACK = "on_track", "On track"
    AT_RISK = "at_risk", "At risk"
    OFF_TRACK = "off_track", "Off track"


class ProgressMode(models.TextChoices):
    KEY_RESULTS = "key_results", "Own key results"
    ALIGNED = "aligned", "Key results and aligned objectives"


class Commitment(models.TextChoices):
    """What success means for an objective: committed (1.0 is expected) or aspirational (a
    stretch: about 0.7 is a good result)."""

    COMMITTED = "committed", "Committed"
    ASPIRATIONAL = "aspirational", "Aspirational"


class ObjectiveQuerySet(OrgTreeQuerySet):
    def live(self):
        return self.exclude(state=Objective.State.RETIRED)

    def with_key_results(self):
        return self.select_related("team", "cycle").prefetch_related(
            models.Prefetch(
                "key_results",
                queryset=KeyResult.objects.select_related("owner_team", "owner",
                                                          "data_source").order_by(
                    "position", "pk"
                ),
            )
        )


class Objective(MPTTModel):
    """What a team wants to achieve in a cycle. Its parent is the objective it contributes to."""

    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        PROPOSED = "proposed", "Proposed"
        APPROVED = "approved", "Approved"
        PUBLISHED = "published", "Published"
        RETIRED = "retired", "Retired"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    cycle = models.ForeignKey(Cycle, on_delete=models.PROTECT, related_name="objectives")
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="objectives")
    parent = TreeForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
    )
    title = models.CharField(max_length=200)
    why = models.TextField("why it matters", max_length=2000, blank=True)
    success = models.TextField("what success looks like", max_length=2000, blank=True)
    tradeoffs = models.TextField("trade-offs considered", max_length=2000, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    # The state it had when it was retired: un-retiring brings it back to that state.
    retired_from = models.CharField(max_length=10, blank=True)
    is_local = models.BooleanField(
        default=False, help_text="A team priority that does not contribute to a parent objective."
    )
    theme = models.ForeignKey(
        "orgs.Theme", on_delete=models.SET_NULL, null=True, blank=True, related_name="objectives",
        help_text="Thematic model: the company theme this objective serves.")
    version = models.PositiveIntegerField(default=1)
    commitment = models.CharField(
        max_length=12, choices=Commitment.choices, default=Commitment.COMMITTED)
    strategic_goal = models.ForeignKey(
        "okrs.StrategicGoal", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="objectives",
        help_text="Company objectives: the long-term goal this objective serves.")
    # Carry-over: the objective of an earlier cycle this one continues (a draft copy).
    carried_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="carried_to")
    # End of cycle: the weighted mean of its key results' confirmed scores (0-1), once all are
    # scored.
    score = models.FloatField(null=True, blank=True)
    # Progress: its own key results only, or its key results (as one part, weighted
    # ``key_results_weight``) and each aligned objective (weighted by that objective's ``weight``).
    progress_mode = models.CharField(
        "progress counts", max_length=12, choices=ProgressMode.choices,
        default=ProgressMode.KEY_RESULTS)
    key_results_weight = models.DecimalField(
        "weight of its own key results", max_digits=5, decimal_places=2, default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0.01"))])
    weight = models.DecimalField(
        "weight in the objective it contributes to", max_digits=5, decimal_places=2,
        default=Decimal("1"), validators=[MinValueValidator(Decimal("0.01"))])
    # A recovery objective: drafted when one of its team's KPIs left its healthy band.
    recovery_kpi = models.ForeignKey(
        "okrs.KPI", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="recovery_objectives")
    # Written by the propagation (dependencies.network), read by the pages:
    # - rolled_progress: 0-1, its progress with its aligned objectives (mode "aligned" only);
    # - risk_above: the nearest company or department objective above it that is at risk or off
    #   track ({"id", "title", "team", "health"}), empty when none is;
    # - impact: on an at-risk company or department objective, what is affected below and
    #   downstream (counts, the first few, root causes ranked by weight), empty otherwise.
    rolled_progress = models.FloatField(null=True, blank=True)
    risk_above = models.JSONField(default=dict, blank=True)
    impact = models.JSONField(default=dict, blank=True)
    # Written by the propagation (dependencies.network): the worst of the objective's own health,
    # what rolls up into it and what it depends on, with the paths back to the root causes.
    effective_health = models.CharField(max_length=10, choices=Health.choices, blank=True)
    risk_causes = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = org_tree_manager(ObjectiveQuerySet)

    class MPTTMeta:
        order_insertion_by = ["title"]

    class Meta:
        indexes = [
            models.Index(fields=["organization", "cycle", "state"]),
            # The API's objective list: in change order, a page at a time (updated_since).
            models.Index(fields=["organization", "updated_at", "id"],
                         name="objective_org_updated_idx"),
        ]
        constraints = [
            # Tree integrity: unique (tree_id, lft) and (tree_id, rght) at commit, lft < rght.
            *tree_constraints("objective"),
            # Choice columns hold one of their choices, whatever path writes them.
            choice_constraint("state", ["draft", "proposed", "approved", "published", "retired"]),
            choice_constraint("retired_from", ["draft", "proposed", "approved", "published"],
                              blank=True),
            choice_constraint("effective_health", Health, blank=True),
            choice_constraint("progress_mode", ProgressMode),
            choice_constraint("commitment", Commitment),
            models.CheckConstraint(condition=models.Q(score__gte=0, score__lte=1)
                                   | models.Q(score__isnull=True),
                                   name="objective_score_between_0_and_1"),
            models.CheckConstraint(condition=models.Q(key_results_weight__gt=0),
                                   name="objective_key_results_weight_positive"),
            models.CheckConstraint(condition=models.Q(weight__gt=0),
                                   name="objective_weight_positive"),
        ]

    def __str__(self):
        return self.title

    @property
    def counts_aligned(self):
        return self.progress_mode == ProgressMode.ALIGNED

    @property
    def is_retired(self):
        return self.state == self.State.RETIRED


class ObjectiveParent(models.Model):
    """An objective contributes to another parent besides its primary one (``Objective.parent``,
    which keeps the tree layout). ``share`` is how much of the objective counts in that parent;
    the primary parent takes what the others leave (``primary_share``)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    objective = models.ForeignKey(Objective, on_delete=models.CASCADE, related_name="also_links")
    parent = models.ForeignKey(Objective, on_delete=models.CASCADE, related_name="extra_links")
    share = models.DecimalField(max_digits=5, decimal_places=4)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = org_manager()

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["objective", "parent"],
                                    name="objective_parent_once"),
            models.CheckConstraint(condition=models.Q(share__gt=0, share__lte=1),
                                   name="objective_parent_share_in_0_1"),
            models.CheckConstraint(condition=~models.Q(objective=models.F("parent")),
                                   name="objective_parent_not_itself"),
        ]

    def __str__(self):
        return f"{self.objective} also contributes to {self.parent} ({self.share})"


def primary_share(extra_shares):
    """The primary parent's share: what the extra parents' shares leave (1 with none)."""
    return Decimal(1) - sum((Decimal(s) for s in extra_shares), Decimal(0))


class Rollup(models.TextChoices):
    SUM = "sum", "Sum of contributors"
    MEAN = "mean", "Mean of contributors"


class KeyResult(models.Model):
    """A measurable result. Its owner team may differ from the objective's (shared objectives)."""

    class Kind(models.TextChoices):
        """What success means for it (``okrs.kinds`` says how each is measured and scored).
        "numeric" moves from start to target: up (increase) or down (decrease), as the two
        values say. Keep above / below hold ``target_value`` as their threshold."""

        NUMERIC = "numeric", "Increase or decrease to a target"
        KEEP_ABOVE = "keep_above", "Keep above a threshold"
        KEEP_BELOW = "keep_below", "Keep below a threshold"
        MILESTONE = "milestone", "Milestone (done or not)"
        BASELINE = "baseline", "Establish a baseline"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    objective = models.ForeignKey(Objective, on_delete=models.CASCADE, related_name="key_results")
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.NUMERIC)
    start_value = models.DecimalField(max_digits=16, decimal_places=4, null=True, blank=True)
    target_value = models.DecimalField(max_digits=16, decimal_places=4, null=True, blank=True)
    current_value = models.DecimalField(max_digits=16, decimal_places=4, null=True, blank=True)
    unit = models.CharField(max_length=20, blank=True)
    is_done = models.BooleanField(default=False)
    owner_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="owned_key_results")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_key_results",
    )
    weight = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0.01"))],
    )
    position = models.PositiveIntegerField(default=0)
    # The latest check-in, copied here in the same transaction so pages need no subquery.
    confidence = models.CharField(max_length=10, choices=Health.choices, blank=True)
    last_check_in_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    # Sharing a key result: a contributing KR (of another team's objective) feeds this one, whose
    # value can roll up from its contributors.
    feeds = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="contributors",
        help_text="The shared key result this one contributes to.",
    )
    rollup = models.CharField(
        "value from contributors", max_length=4, choices=Rollup.choices, blank=True,
        help_text="Take the current value from the key results that feed this one.",
    )
    # Aligned directly to another team's objective (same cycle): it counts there like an
    # aligned objective, in progress and in health.
    aligned_to = models.ForeignKey(
        Objective, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="aligned_key_results",
        help_text="Another team's objective this key result contributes to directly.")
    # Carry-over: the key result of an earlier cycle this one continues (its objective's copy
    # took it along, unfinished), so that links between carried key results follow them.
    carried_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="carried_to")
    effective_health = models.CharField(max_length=10, choices=Health.choices, blank=True)
    risk_causes = models.JSONField(default=list, blank=True)
    # End of cycle: the product proposes a score (0-1) from the data for its kind; the owner
    # confirms it (score == proposed_score) or overrides it with a reason.
    proposed_score = models.FloatField(null=True, blank=True)
    score = models.FloatField(null=True, blank=True)
    score_reason = models.CharField("reason", max_length=300, blank=True)
    scored_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+")
    scored_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = org_manager()

    class Meta:
        ordering = ["position", "pk"]
        indexes = [
            # The network page's "at risk" list: the few key results with a risk cause.
            models.Index(fields=["organization", "position", "id"],
                         condition=~models.Q(risk_causes=[]), name="keyresult_at_risk_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(weight__gt=0), name="key_result_weight_positive"
            ),
            # Choice columns hold one of their choices, whatever path writes them.
            choice_constraint("kind", ["numeric", "keep_above", "keep_below", "milestone",
                                       "baseline"]),
            choice_constraint("confidence", Health, blank=True),
            choice_constraint("rollup", Rollup, blank=True),
            choice_constraint("effective_health", Health, blank=True),
            models.CheckConstraint(condition=models.Q(score__gte=0, score__lte=1)
                                   | models.Q(score__isnull=True),
                                   name="key_result_score_between_0_and_1"),
            models.CheckConstraint(condition=models.Q(proposed_score__gte=0, proposed_score__lte=1)
                                   | models.Q(proposed_score__isnull=True),
                                   name="key_result_proposed_score_between_0_and_1"),
        ]

    def __str__(self):
        return self.title

    @property
    def is_milestone(self):
        return self.kind == self.Kind.MILESTONE

    @property
    def is_threshold(self):
        """Keep above or keep below: ``target_value`` is a threshold to hold all cycle."""
        return self.kind in (self.Kind.KEEP_ABOVE, self.Kind.KEEP_BELOW)

    @property
    def is_baseline(self):
        return self.kind == self.Kind.BASELINE


class CheckInQuerySet(OrgQuerySet):
    def live(self):
        """The check-ins that stand: not corrected or deleted since."""
        return self.filter(corrected_at__isnull=True)


class CheckIn(models.Model):
    """One report on a key result. History is appended, never rewritten: a mistaken check-in is
    marked corrected (edited, with the check-in that replaces it, or deleted), with who and when,
    and keeps its own values."""

    class Correction(models.TextChoices):
        EDITED = "edited", "Corrected"
        DELETED = "deleted", "Deleted"

    class Source(models.TextChoices):
        """Who or what reported it: a person in the app, a caller of the API (a person's or the
        organization's token), a KR's data source (webhook, scheduled pull, CSV of values), or
        an import."""
        PERSON = "person", "In the app"
        API = "api", "Through the API"
        DATA_SOURCE = "data_source", "Data source"
        IMPORT = "import", "Import"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    key_result = models.ForeignKey(KeyResult, on_delete=models.CASCADE, related_name="check_ins")
    value = models.DecimalField(max_digits=16, decimal_places=4, null=True, blank=True)
    is_done = models.BooleanField(null=True, blank=True)
    confidence = models.CharField(max_length=10, choices=Health.choices)
    note = models.TextField(max_length=2000, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="check_ins"
    )
    created_at = models.DateTimeField()
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.PERSON)
    # Corrections: set once on the check-in that was wrong; the replacement points back at it.
    correction = models.CharField(max_length=10, choices=Correction.choices, blank=True)
    corrected_at = models.DateTimeField(null=True, blank=True)
    corrected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+")
    correction_note = models.CharField("reason", max_length=300, blank=True)
    corrects = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="corrections",
        help_text="The mistaken check-in this one replaces.")

    objects = org_manager(CheckInQuerySet)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["key_result", "-created_at"]),
            # "Recent check-ins" on the home page: the newest few of the organization.
            models.Index(fields=["organization", "-created_at", "-id"],
                         name="checkin_org_recent_idx"),
        ]
        constraints = [
            choice_constraint("confidence", Health),
            choice_constraint("correction", ["edited", "deleted"], blank=True),
            choice_constraint("source", ["person", "api", "data_source", "import"]),
            # Corrected means: how (edited or deleted) and when, both or neither.
            models.CheckConstraint(
                condition=(models.Q(correction="", corrected_at__isnull=True)
                           | (~models.Q(correction="") & models.Q(corrected_at__isnull=False))),
                name="check_in_correction_has_a_time"),
        ]

    def __str__(self):
        return f"{self.key_result}: {self.value} ({self.confidence})"


class ObjectiveClose(models.Model):
    """The close form of an objective at the end of its cycle: how it ended and what the team
    learned. Read by the cycle review; never scores a person."""

    class Outcome(models.TextChoices):
        ACCOMPLISHED = "accomplished", "Accomplished"
        PARTLY = "partly", "Partly accomplished"
        MISSED = "missed", "Missed"
        DROPPED = "dropped", "Dropped"

    class NextStep(models.TextChoices):
        CARRY_OVER = "carry_over", "Carry over to the next cycle"
        DROP = "drop", "Drop it"
        BUSINESS_AS_USUAL = "bau", "Becomes business as usual"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    objective = models.OneToOneField(Objective, on_delete=models.CASCADE, related_name="close")
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    learned = models.TextField("what we learned", max_length=2000, blank=True)
    differently = models.TextField("what we would do differently", max_length=2000, blank=True)
    next_step = models.CharField("what happens next", max_length=10, choices=NextStep.choices)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    closed_at = models.DateTimeField()

    objects = org_manager()

    class Meta:
        constraints = [
            choice_constraint("outcome", ["accomplished", "partly", "missed", "dropped"]),
            choice_constraint("next_step", ["carry_over", "drop", "bau"]),
        ]

    def __str__(self):
        return f"{self.objective}: {self.get_outcome_display()}"


class Perspective(models.Model):
    """A group of strategic goals, as in a balanced scorecard (financial, customer, internal
    process, learning and growth). The organization can rename them."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=60)
    position = models.PositiveIntegerField(default=0)

    objects = org_manager()

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"],
                                    name="perspective_name_unique_in_org"),
        ]

    def __str__(self):
        return self.name


class StrategicGoal(models.Model):
    """A long-term goal above the quarter, with an optional horizon ("by 2028"). Company
    objectives link to one; the strategy page shows which cycles served it."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    perspective = models.ForeignKey(
        Perspective, on_delete=models.SET_NULL, null=True, blank=True, related_name="goals")
    title = models.CharField(max_length=200)
    description = models.TextField(max_length=2000, blank=True)
    horizon = models.CharField(max_length=40, blank=True, help_text='For example "by 2028".')
    position = models.PositiveIntegerField(default=0)
    is_archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = org_manager()

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self):
        return self.title


# Scorecards: the few health metrics a team keeps running (not the quarter's change) ---------


class KPI(models.Model):
    """One line of a team's scorecard: a metric with a direction and two bands. Higher is
    better: healthy at ``healthy_at`` or above, warning from ``warning_at`` up to it, unhealthy
    below. Lower is better: the same read downwards. No bands yet: no health."""

    MAX_PER_TEAM = 8

    class Direction(models.TextChoices):
        HIGHER = "higher", "Higher is better"
        LOWER = "lower", "Lower is better"

    class Health(models.TextChoices):
        HEALTHY = "healthy", "Healthy"
        WARNING = "warning", "Warning"
        UNHEALTHY = "unhealthy", "Unhealthy"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="kpis")
    name = models.CharField(max_length=80)
    unit = models.CharField(max_length=20, blank=True, help_text='For example "%" or "ms".')
    direction = models.CharField(max_length=6, choices=Direction.choices,
                                 default=Direction.HIGHER)
    healthy_at = models.DecimalField("healthy from", max_digits=16, decimal_places=4,
                                     null=True, blank=True)
    warning_at = models.DecimalField("warning from", max_digits=16, decimal_places=4,
                                     null=True, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    # The latest value and the health it gives, written with each value (pages read them).
    current_value = models.DecimalField(max_digits=16, decimal_places=4, null=True, blank=True)
    current_at = models.DateTimeField(null=True, blank=True)
    health = models.CharField(max_length=10, choices=Health.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = org_manager()

    class Meta:
        ordering = ["position", "pk"]
        indexes = [models.Index(fields=["organization", "health"], name="kpi_org_health")]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="kpi_name_unique_in_team"),
            choice_constraint("direction", ["higher", "lower"]),
            choice_constraint("health", ["healthy", "warning", "unhealthy"], blank=True),
            # Both bands or none; the warning band lies on the bad side of the healthy one.
            models.CheckConstraint(
                condition=models.Q(healthy_at__isnull=True, warning_at__isnull=True)
                | models.Q(direction="higher", healthy_at__gte=models.F("warning_at"))
                | models.Q(direction="lower", healthy_at__lte=models.F("warning_at")),
                name="kpi_bands_in_order"),
        ]

    def __str__(self):
        return self.name

    @property
    def has_bands(self):
        return self.healthy_at is not None and self.warning_at is not None


class KPIValue(models.Model):
    """One reading of a KPI, appended: typed by a person on the team page, or sent by a data
    source, the API or an import (the same sources as a check-in)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    kpi = models.ForeignKey(KPI, on_delete=models.CASCADE, related_name="values")
    value = models.DecimalField(max_digits=16, decimal_places=4)
    at = models.DateTimeField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                               blank=True, related_name="+")
    source = models.CharField(max_length=12, choices=CheckIn.Source.choices,
                              default=CheckIn.Source.PERSON)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = org_manager()

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["kpi", "-at"], name="kpi_value_recent")]
        constraints = [choice_constraint("source", CheckIn.Source)]

    def __str__(self):
        return f"{self.kpi}: {self.value}"
