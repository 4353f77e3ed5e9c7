"""The append-only history of every change (who, when, what, before and after).

One row per change of one object. Rows are only ever inserted: the model refuses an update or
a delete in code, and on PostgreSQL a trigger refuses them in the database too (migration 0002).
The organization and the person are kept without a database constraint, so that deleting a
person or an organization never has to rewrite the history (the person's name is kept in
``actor_label``).
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from orgs.models import Organization
from orgs.scoping import OrgQuerySet, org_manager


class AppendOnly(Exception):
    """History is never rewritten."""


class ChangeQuerySet(OrgQuerySet):
    def update(self, **kwargs):
        raise AppendOnly("The history is append-only: entries are never changed.")

    def delete(self):
        raise AppendOnly("The history is append-only: entries are never deleted.")

    def of(self, object_type, object_id):
        """The entries of one object and of the parts recorded within it (an objective's key
        results and shares, a workflow's stakeholders and milestones)."""
        return self.filter(
            models.Q(object_type=object_type, object_id=object_id)
            | models.Q(within_type=object_type, within_id=object_id))


class Change(models.Model):
    class Action(models.TextChoices):
        CREATED = "created", "created"
        CHANGED = "changed", "changed"
        DELETED = "deleted", "deleted"

    class ActorKind(models.TextChoices):
        PERSON = "person", "a person"
        API = "api", "an API token"
        DATA_SOURCE = "data_source", "a data source"
        SYSTEM = "system", "the system"

    organization = models.ForeignKey(Organization, on_delete=models.DO_NOTHING,
                                     db_constraint=False, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING,
                              db_constraint=False, null=True, blank=True, related_name="+")
    actor_kind = models.CharField(max_length=12, choices=ActorKind.choices,
                                  default=ActorKind.SYSTEM)
    actor_label = models.CharField(max_length=200)
    object_type = models.CharField(max_length=30)
    object_id = models.PositiveBigIntegerField()
    object_label = models.CharField(max_length=200)
    within_type = models.CharField(max_length=30, blank=True)
    within_id = models.PositiveBigIntegerField(null=True, blank=True)
    action = models.CharField(max_length=8, choices=Action.choices)
    # [{"field": name, "label": words, "before": text, "after": text}, ...]
    fields = models.JSONField(default=list, blank=True)

    objects = org_manager(ChangeQuerySet)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [
            models.Index(fields=["organization", "object_type", "object_id", "-at"],
                         name="history_of_object"),
            models.Index(fields=["organization", "within_type", "within_id", "-at"],
                         name="history_within_object"),
            models.Index(fields=["organization", "-at"], name="history_of_org"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(action__in=["created", "changed",
                                                                  "deleted"]),
                                   name="history_action_is_a_choice"),
            models.CheckConstraint(condition=models.Q(actor_kind__in=["person", "api",
                                                                      "data_source",
                                                                      "system"]),
                                   name="history_actor_kind_is_a_choice"),
        ]

    def __str__(self):
        return f"{self.actor_label} {self.action} {self.object_type} {self.object_label}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnly("The history is append-only: entries are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnly("The history is append-only: entries are never deleted.")
