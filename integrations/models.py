"""Data sources that feed a key result's value, and outbound webhooks of an organization."""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from orgs.models import Organization
from orgs.scoping import OrgQuerySet, org_manager
from orgs.validation import choice_constraint

# After this many failures in a row, a data source asks its key result's owner to look.
FAILURES_BEFORE_INBOX = 3
MIN_INTERVAL = 5  # minutes between two pulls, at least
MAX_INTERVAL = 7 * 24 * 60


class IntegrationSettings(models.Model):
    """An organization's integration settings (one row, made on first use)."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="+")
    allow_private_addresses = models.BooleanField(
        "allow private network addresses", default=False,
        help_text="Let scheduled pulls and outbound webhooks reach addresses inside a private "
                  "network (10.x, 192.168.x, localhost). Leave off unless the service you call "
                  "runs inside your own network.")

    objects = org_manager()

    def __str__(self):
        return f"Integration settings of {self.organization_id}"


class DataSourceQuerySet(OrgQuerySet):
    def failing(self):
        return self.filter(failures__gte=FAILURES_BEFORE_INBOX)


class DataSource(models.Model):
    """Where a key result's value comes from, besides people: an inbound webhook (a secret URL,
    signed requests) or a scheduled pull of a JSON document. One per key result."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Inbound webhook"
        PULL = "pull", "Scheduled pull"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    key_result = models.OneToOneField("okrs.KeyResult", on_delete=models.CASCADE,
                                      related_name="data_source")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    # The inbound webhook's address names the source by this token; the secret signs requests.
    token = models.CharField(max_length=64, unique=True)
    secret = models.CharField(max_length=64)
    url = models.URLField("JSON address", max_length=500, blank=True)
    json_path = models.CharField(
        "path to the value", max_length=200, blank=True,
        help_text="Dots between keys, numbers for list positions: data.total or "
                  "issues.0.count. Leave empty when the document is the number itself.")
    interval_minutes = models.PositiveIntegerField(
        "pull every (minutes)", default=60,
        validators=[MinValueValidator(MIN_INTERVAL), MaxValueValidator(MAX_INTERVAL)])
    next_pull_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField("on", default=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveSmallIntegerField("failures in a row", default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    objects = org_manager(DataSourceQuerySet)

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["kind", "is_active", "next_pull_at"],
                                name="data_source_due")]
        constraints = [
            choice_constraint("kind", ["webhook", "pull"]),
            models.CheckConstraint(
                condition=models.Q(interval_minutes__gte=MIN_INTERVAL,
                                   interval_minutes__lte=MAX_INTERVAL),
                name="data_source_interval_range"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} of key result {self.key_result_id}"

    @property
    def is_failing(self):
        return self.failures >= FAILURES_BEFORE_INBOX


class Event(models.TextChoices):
    """What an outbound webhook can subscribe to."""
    CHECK_IN = "check_in.created", "A check-in is recorded"
    HEALTH = "health.changed", "Health changes after a recompute"
    DEPENDENCY = "dependency.answered", "A dependency is answered"
    PUBLISHED = "objective.published", "An objective is published"
    CYCLE_CLOSED = "cycle.closed", "A cycle is closed"


class WebhookSubscription(models.Model):
    """A URL of another system that receives the organization's events, signed."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    url = models.URLField("URL", max_length=500)
    description = models.CharField(max_length=120, blank=True)
    secret = models.CharField(max_length=64)
    events = models.JSONField(default=list)
    is_active = models.BooleanField("on", default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    objects = org_manager()

    class Meta:
        ordering = ["pk"]

    def __str__(self):
        return f"Webhook {self.url}"

    def event_labels(self):
        return [Event(e).label for e in self.events if e in Event.values]


class WebhookDeliveryQuerySet(OrgQuerySet):
    def due(self, now):
        return self.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)


class WebhookDelivery(models.Model):
    """One event for one subscription, in the outbox's way: written in the transaction of the
    change, claimed before it is sent, retried with backoff, swept when stuck."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        SENDING = "sending", "Sending"
        SENT = "sent", "Delivered"
        FAILED = "failed", "Failed"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE,
                                     related_name="deliveries")
    event_id = models.UUIDField(default=uuid.uuid4)
    event_type = models.CharField(max_length=40, choices=Event.choices)
    body = models.TextField(help_text="The JSON exactly as posted (and signed).")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    objects = org_manager(WebhookDeliveryQuerySet)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_due"),
                   models.Index(fields=["status", "created_at"], name="webhook_settled")]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "event_id"],
                                    name="one_delivery_per_event_and_subscription"),
            choice_constraint("status", ["pending", "sending", "sent", "failed"]),
            choice_constraint("event_type", Event.values),
        ]

    def __str__(self):
        return f"{self.event_type} {self.event_id} to subscription {self.subscription_id}"


class WebhookAttempt(models.Model):
    """One try at a delivery: the log."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE,
                                 related_name="attempt_log")
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    objects = org_manager()

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self):
        return f"Attempt at {self.at:%Y-%m-%d %H:%M} of delivery {self.delivery_id}"

    @property
    def ok(self):
        return self.status_code is not None and 200 <= self.status_code < 300
