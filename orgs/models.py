from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from mptt.models import MPTTModel, TreeForeignKey

from .scoping import org_manager, org_tree_manager
from .trees import tree_constraints
from .validation import choice_constraint


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, email):
        """Sign-in: an email address is the same whatever its case."""
        return self.get(email__iexact=email)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. People sign in with their email address; OKRs belong to teams, not to them."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False, help_text="Can open the platform admin.")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    # Empty: the organization's time zone. Emails wait out quiet hours in this one.
    timezone = models.CharField("time zone", max_length=64, blank=True, default="")

    objects = UserManager()

    EMAIL_FIELD = "email"
    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        ordering = ["full_name", "email"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_unique_ignoring_case")
        ]

    def __str__(self):
        return self.display_name

    def save(self, *args, **kwargs):
        # Stored in lower case, however it was typed (the admin, a factory, a shell), so that
        # every comparison of addresses agrees with sign-in.
        self.email = self.email.lower()
        super().save(*args, **kwargs)

    @property
    def display_name(self):
        return self.full_name or self.email.split("@")[0]

    def get_full_name(self):
        return self.display_name

    def get_short_name(self):
        return self.display_name.split(" ")[0]


class Organization(models.Model):
    """The tenant. Every other row of the product belongs to exactly one."""

    class AlignmentModel(models.TextChoices):
        STRICT = "strict", "Strict: every team objective contributes to a parent"
        FLEXIBLE = "flexible", "Flexible: some local team priorities are fine"
        THEMATIC = "thematic", "Thematic: teams align to company themes"

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    alignment_model = models.CharField(
        max_length=10, choices=AlignmentModel.choices, default=AlignmentModel.FLEXIBLE
    )
    local_share_limit = models.PositiveSmallIntegerField(
        "allowed share of local objectives (%)", default=35,
        validators=[MaxValueValidator(100)],
        help_text="Flexible model: above this share of local team objectives, the misalignment "
                  "report flags the team or the organization.",
    )
    timezone = models.CharField(
        "time zone", max_length=64, default="UTC",
        help_text="The organization's time zone, e.g. Europe/Berlin: the weekly digest goes out "
                  "at its local hour.")
    digest_weekday = models.PositiveSmallIntegerField(
        "digest day", default=0, choices=[(0, "Monday"), (1, "Tuesday"), (2, "Wednesday"),
                                          (3, "Thursday"), (4, "Friday"), (5, "Saturday"),
                                          (6, "Sunday")])
    digest_hour = models.PositiveSmallIntegerField(
        "digest hour (local)", default=9, validators=[MaxValueValidator(23)])
    escalate_after_days = models.PositiveSmallIntegerField(
        "escalate unanswered requests after (days)", default=5,
        help_text="A dependency request with no answer after this many days is escalated to "
                  "the alignment lead.",
    )
    # The escalation ladder of an unanswered request or an unresolved workflow blocker: the
    # days after it was raised when it reaches each step (dependencies/ladder.py).
    ladder_lead_days = models.PositiveSmallIntegerField(
        "to the team's lead after (days)", default=3, validators=[MaxValueValidator(365)])
    ladder_head_days = models.PositiveSmallIntegerField(
        "to the department head after (days)", default=7, validators=[MaxValueValidator(365)])
    ladder_alignment_days = models.PositiveSmallIntegerField(
        "to an alignment lead after (days)", default=14, validators=[MaxValueValidator(365)])
    ladder_admin_days = models.PositiveSmallIntegerField(
        "to an org admin after (days)", default=21, validators=[MaxValueValidator(365)])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            # Choice columns hold one of their choices, whatever path writes them.
            choice_constraint("alignment_model", ["strict", "flexible", "thematic"]),
            choice_constraint("digest_weekday", range(7)),
            models.CheckConstraint(
                condition=Q(ladder_lead_days__lte=models.F("ladder_head_days"),
                            ladder_head_days__lte=models.F("ladder_alignment_days"),
                            ladder_alignment_days__lte=models.F("ladder_admin_days")),
                name="ladder_days_in_order"),
        ]

    def __str__(self):
        return self.name


class Theme(models.Model):
    """A company theme: in the thematic model, team objectives pick one instead of a parent."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="themes")
    name = models.CharField(max_length=80)
    description = models.CharField(max_length=300, blank=True)

    objects = org_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="theme_name_unique"),
        ]

    def __str__(self):
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", "Org admin"
    ALIGNMENT_LEAD = "alignment_lead", "Alignment lead"
    TEAM_LEAD = "team_lead", "Department head / team lead"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


class Team(MPTTModel):
    """A unit of the org tree: the company at the root, departments, then teams."""

    class Kind(models.TextChoices):
        COMPANY = "company", "Company"
        DEPARTMENT = "department", "Department"
        TEAM = "team", "Team"

    class Cadence(models.TextChoices):
        WEEKLY = "weekly", "Weekly"
        BIWEEKLY = "biweekly", "Every two weeks"
        MONTHLY = "monthly", "Monthly"

    class TeamType(models.TextChoices):
        PRODUCT = "product", "Product team"
        ENABLING = "enabling", "Enabling team"
        SHARED = "shared", "Shared service"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="teams")
    parent = TreeForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
    )
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.TEAM)
    team_type = models.CharField(max_length=12, choices=TeamType.choices, default=TeamType.PRODUCT)
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="led_teams",
        help_text="One named owner, never a committee.",
    )
    charter = models.TextField(
        max_length=1500, blank=True, help_text="One paragraph: why this team exists."
    )
    # Replaced by the KPIs of okrs.KPI (okrs 0016 turned each {"name", "target"} line into
    # one); nothing reads or edits it any more. Kept only so that branches merged in the same
    # round still load; drop it in a migration after the merge.
    scorecard = models.JSONField(default=list, blank=True)
    # How often its key results want a check-in; empty: as the team above it (weekly at the top).
    checkin_cadence = models.CharField("check-in cadence", max_length=10,
                                       choices=Cadence.choices, blank=True)

    objects = org_tree_manager()

    class MPTTMeta:
        order_insertion_by = ["name"]

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"],
                                    name="team_name_unique_in_org"),
            # Tree integrity: unique (tree_id, lft) and (tree_id, rght) at commit, lft < rght.
            *tree_constraints("team"),
            # Choice columns hold one of their choices, whatever path writes them.
            choice_constraint("kind", ["company", "department", "team"]),
            choice_constraint("team_type", ["product", "enabling", "shared"]),
            choice_constraint("checkin_cadence", ["weekly", "biweekly", "monthly"], blank=True),
        ]

    def __str__(self):
        return self.name

    @property
    def is_company(self):
        return self.kind == self.Kind.COMPANY


class Membership(models.Model):
    """A person's place in an organization: one role, and the teams they belong to."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    teams = models.ManyToManyField(Team, blank=True, related_name="memberships")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = org_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"],
                                    name="one_membership_per_org"),
            choice_constraint("role", Role),
        ]

    def __str__(self):
        return f"{self.user} in {self.organization} ({self.get_role_display()})"


class Cycle(models.Model):
    """A planning period, usually a quarter."""

    class Status(models.TextChoices):
        PLANNING = "planning", "Planning"
        ACTIVE = "active", "Active"
        CLOSED = "closed", "Closed"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="cycles")
    name = models.CharField(max_length=60)
    start_date = models.DateField()
    end_date = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PLANNING)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+")

    objects = org_manager()

    class Meta:
        ordering = ["-start_date"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="cycle_name_unique_in_org"
            ),
            models.CheckConstraint(
                condition=Q(end_date__gt=models.F("start_date")), name="cycle_ends_after_start"
            ),
            choice_constraint("status", ["planning", "active", "closed"]),
        ]

    def __str__(self):
        return self.name

    @property
    def is_closed(self):
        """A closed cycle is read-only: pages offer no change and services refuse one."""
        return self.status == self.Status.CLOSED


class Invitation(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    team = models.ForeignKey(Team, on_delete=models.SET_NULL, null=True, blank=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = org_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [choice_constraint("role", Role)]

    def __str__(self):
        return f"{self.email} to {self.organization}"

    @property
    def is_pending(self):
        return self.accepted_at is None and self.revoked_at is None
