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
    immediate_alerts = models.BooleanField(default=True)

    objects = org_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="one_preference_row"),
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
                                             "recascade", "workflow", "password_reset"]),
                name="outbox_kind_valid"),
            models.CheckConstraint(
                condition=models.Q(status="sending", claimed_at__isnull=False)
                | ~models.Q(status="sending"), name="outbox_sending_is_claimed"),
        ]

    def __str__(self):
        return f"{self.kind} to {self.to}: {self.status}"

