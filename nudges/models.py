"""Weekly digests: preferences per member and the digest ledger (one row per member,
organization and ISO week, claimed before the email is written); the outbox of every email."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from orgs.models import Organization
from orgs.scoping import OrgQuerySet, org_manager
from orgs.validation import choice_constraint


class Preference(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="nudge_preferences")
    weekly_digest = models.BooleanField(default=True)
    # Risk alerts by email (the name predates the other groups; unsubscribe links use it).
    immediate_alerts = models.BooleanField(default=True)
    # Each event group (nudges.events.GROUPS) by channel: in the app, by email, in team chat.
    requests_app = models.BooleanField(default=True)
    requests_email = models.BooleanField(default=True)
    requests_chat = models.BooleanField(default=True)
    reviews_app = models.BooleanField(default=True)
    reviews_email = models.BooleanField(default=True)
    reviews_chat = models.BooleanField(default=True)
    risks_chat = models.BooleanField(default=True)
    reminders_app = models.BooleanField(default=True)
    reminders_email = models.BooleanField(default=True)
    reminders_chat = models.BooleanField(default=True)
    # Emails wait while the person's local clock is in [quiet_from, quiet_until) (over midnight
    # when quiet_from is later); both empty: no quiet hours.
    quiet_from = models.TimeField(null=True, blank=True)
    quiet_until = models.TimeField(null=True, blank=True)

    objects = org_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="one_preference_row"),
            models.CheckConstraint(
                condition=models.Q(quiet_from__isnull=True, quiet_until__isnull=True)
                | models.Q(quiet_from__isnull=False, quiet_until__isnull=False),
                name="quiet_hours_both_or_none"),
        ]

    def __str__(self):
        return f"Preferences of {self.user_id} in {self.organization_id}"


class DigestQuerySet(OrgQuerySet):
    def failed(self):
        return self.filter(status=Digest.Status.FAILED)


class Digest(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        EMPTY = "empty", "Nothing to say"
        FAILED = "failed", "Failed"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="+")
    week = models.CharField(max_length=8, help_text="ISO year and week, e.g. 2027-W07")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    subject = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = org_manager(DigestQuerySet)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user", "week"],
                                    name="one_digest_per_week"),
            choice_constraint("status", ["pending", "sent", "empty", "failed"]),
        ]

    def __str__(self):
        return f"{self.week} to {self.user_id}: {self.status}"


class OutboundEmailQuerySet(OrgQuerySet):
    def due(self, now):
        return self.filter(status=OutboundEmail.Status.PENDING, next_attempt_at__lte=now)


class OutboundEmail(models.Model):
    """The outbox: every email the product sends is a row here first, written in the
    transaction of the change that causes it. A sender claims the row (pending -> sending, by a
    conditional UPDATE) before it talks to the mail server and marks it sent after, so reruns,
    concurrent senders and retries send nothing twice. The Message-ID is fixed when the row is
    made: if a worker dies mid-send and the sweep sends again, the copy has the same id."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    class Kind(models.TextChoices):
        DIGEST = "digest", "Weekly digest"
        ALERT = "alert", "Alert"
        INVITATION = "invitation", "Invitation"
        REVIEW = "review", "Review"
        RECASCADE = "recascade", "Re-cascade"
        WORKFLOW = "workflow", "Cross-team workflow"
        PASSWORD_RESET = "password_reset", "Password reset"
        EVENTS = "events", "Notifications"

    # Empty only for mail outside any organization, such as a password reset.
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+",
                                     null=True, blank=True)
    to = models.EmailField(max_length=254)
    subject = models.CharField(max_length=300)
    text_body = models.TextField()
    html_body = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)
    message_id = models.CharField(max_length=255, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    dedupe_key = models.CharField(max_length=200, unique=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    objects = org_manager(OutboundEmailQuerySet)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="outbox_due")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "sending", "sent", "failed"]),
                name="outbox_status_valid"),
            models.CheckConstraint(
                condition=models.Q(kind__in=["digest", "alert", "invitation", "review",
                                             "recascade", "workflow", "password_reset",
                                             "events"]),
                name="outbox_kind_valid"),
            models.CheckConstraint(
                condition=models.Q(status="sending", claimed_at__isnull=False)
                | ~models.Q(status="sending"), name="outbox_sending_is_claimed"),
        ]

    def __str__(self):
        return f"{self.kind} to {self.to}: {self.status}"



class EmailBundle(models.Model):
    """One person's notification email in the making: events within the bundling window join
    the open bundle (at most one per person and organization, a partial unique index), and the
    sweep writes it into the outbox as one email once ``due_at`` has passed."""

    class Status(models.TextChoices):
        OPEN = "open", "Collecting"
        SENT = "sent", "Written to the outbox"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="+")
    status = models.CharField(max_length=4, choices=Status.choices, default=Status.OPEN)
    due_at = models.DateTimeField()
    # Counts against the weekly cap on reminder emails.
    has_reminder = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    flushed_at = models.DateTimeField(null=True, blank=True)

    objects = org_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "due_at"], name="bundle_due")]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"],
                                    condition=models.Q(status="open"),
                                    name="one_open_bundle_per_person"),
            choice_constraint("status", ["open", "sent"]),
        ]

    def __str__(self):
        return f"Bundle to {self.user_id}: {self.status}"


class BundleItem(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    bundle = models.ForeignKey(EmailBundle, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=20)
    group = models.CharField(max_length=10)
    title = models.CharField(max_length=300)
    text = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = org_manager()

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self):
        return self.title


class ChatChannel(models.Model):
    """An incoming webhook of a chat tool, for the whole organization (no team) or one team."""

    class Tool(models.TextChoices):
        SLACK = "slack", "Slack"
        TEAMS = "teams", "Microsoft Teams"
        GENERIC = "generic", "Any URL that takes JSON (signed)"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey("orgs.Team", on_delete=models.CASCADE, null=True, blank=True,
                             related_name="+")
    tool = models.CharField(max_length=8, choices=Tool.choices)
    url = models.URLField("webhook URL", max_length=500)
    # HMAC-SHA256 key of the generic format's signature header.
    secret = models.CharField(max_length=64)
    requests = models.BooleanField("requests and escalations", default=True)
    reviews = models.BooleanField("reviews and sign-offs", default=True)
    risks = models.BooleanField("risk alerts", default=True)
    reminders = models.BooleanField(default=False)
    weekly_summary = models.BooleanField("weekly summary", default=True)
    is_active = models.BooleanField("on", default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    objects = org_manager()

    class Meta:
        ordering = ["team__name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "team"], name="one_channel_per_team"),
            models.UniqueConstraint(fields=["organization"], condition=models.Q(team=None),
                                    name="one_channel_per_organization"),
            choice_constraint("tool", ["slack", "teams", "generic"]),
        ]

    def __str__(self):
        return f"{self.get_tool_display()} channel of {self.team_id or 'the organization'}"


class ChatDeliveryQuerySet(OrgQuerySet):
    def due(self, now):
        return self.filter(status=ChatDelivery.Status.PENDING, next_attempt_at__lte=now)


class ChatDelivery(models.Model):
    """One post to a chat channel, in the outbox's way: written in the transaction of the
    change, claimed before it is sent, retried with backoff, swept when stuck."""

    Status = OutboundEmail.Status

    class Kind(models.TextChoices):
        EVENT = "event", "Event"
        SUMMARY = "summary", "Weekly summary"
        TEST = "test", "Test message"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    channel = models.ForeignKey(ChatChannel, on_delete=models.CASCADE, related_name="deliveries")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    title = models.CharField(max_length=300)
    body = models.TextField(help_text="The JSON exactly as posted (and signed).")
    dedupe_key = models.CharField(max_length=200, unique=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    objects = org_manager(ChatDeliveryQuerySet)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="chat_due")]
        constraints = [
            choice_constraint("status", ["pending", "sending", "sent", "failed"]),
            choice_constraint("kind", ["event", "summary", "test"]),
        ]

    def __str__(self):
        return f"{self.kind} to channel {self.channel_id}: {self.status}"
