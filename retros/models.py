"""The cross-team retrospective that closes a workflow, and the improvements it carries into the
next cycle."""

from django.conf import settings
from django.db import models

from alignment.models import Workflow
from orgs.models import Organization
from orgs.scoping import org_manager
from orgs.validation import choice_constraint


class Retrospective(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    workflow = models.OneToOneField(Workflow, on_delete=models.CASCADE,
                                    related_name="retrospective")
    what_worked = models.TextField(max_length=5000, blank=True)
    friction = models.TextField("what caused friction", max_length=5000, blank=True)
    share_company_wide = models.BooleanField(
        default=False, help_text="Show it on the organization's learnings page.")
    updated_at = models.DateTimeField(auto_now=True)

    objects = org_manager()

    def __str__(self):
        return f"Retrospective of {self.workflow}"


class Improvement(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"
        DROPPED = "dropped", "Dropped"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    retrospective = models.ForeignKey(Retrospective, on_delete=models.CASCADE,
                                      related_name="improvements")
    title = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)

    objects = org_manager()

    class Meta:
        ordering = ["pk"]
        constraints = [choice_constraint("status", ["open", "done", "dropped"])]

    def __str__(self):
        return self.title
