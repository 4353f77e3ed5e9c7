"""Tokens for the REST API: a person's own (personal access tokens) and the organization's
(service tokens, no person). Only a SHA-256 of the token is stored; the token itself is shown
once, when it is made."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from orgs.models import Organization
from orgs.scoping import org_manager
from orgs.validation import choice_constraint


class ApiToken(models.Model):
    class Scope(models.TextChoices):
        READ = "read", "Read"
        WRITE = "write", "Read and write"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    # The person it acts as; empty for an organization service token.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True,
                             blank=True, related_name="api_tokens")
    name = models.CharField(max_length=80)
    scope = models.CharField(max_length=5, choices=Scope.choices, default=Scope.READ)
    # The first characters of the token ("okrp_Ab3d…"), so a person can tell tokens apart.
    prefix = models.CharField(max_length=16)
    secret_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Written at most once a minute per token, not on every request.
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")

    objects = org_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["organization", "user", "-created_at"],
                                name="apitoken_owner_recent_idx")]
        constraints = [
            choice_constraint("scope", ["read", "write"]),
            models.CheckConstraint(condition=Q(expires_at__isnull=True)
                                   | Q(expires_at__gt=models.F("created_at")),
                                   name="apitoken_expires_after_creation"),
        ]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_service(self):
        return self.user_id is None

    @property
    def can_write(self):
        return self.scope == self.Scope.WRITE

    def is_active(self, now):
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
