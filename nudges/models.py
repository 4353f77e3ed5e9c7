"""Weekly digests: preferences per member and the send ledger (one row per member,
organization and ISO week, claimed before sending)."""

from django.conf import settings
from django.db import models

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
