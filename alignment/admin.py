"""The platform operators' admin: every model, across organizations (scopes are off under
/django-admin/, see orgs.middleware)."""

from django.contrib import admin

from .models import (
    Finding,
    FindingsReport,
    Milestone,
    RecascadeFlag,
    ReviewComment,
    RuleUnits,
    SignOffRequest,
    Stakeholder,
    StatusUpdate,
    StepOverride,
    Workflow,
)


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization"]
    list_filter = ["organization"]


@admin.register(SignOffRequest)
class SignOffRequestAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization", "created_at", "recipients"]
    list_filter = ["organization"]


@admin.register(StepOverride)
class StepOverrideAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization"]
    list_filter = ["organization"]


@admin.register(Stakeholder)
class StakeholderAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization"]
    list_filter = ["organization"]


@admin.register(Milestone)
class MilestoneAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization"]
    list_filter = ["organization"]


@admin.register(StatusUpdate)
class StatusUpdateAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization"]
    list_filter = ["organization"]


@admin.register(ReviewComment)
class ReviewCommentAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization"]
    list_filter = ["organization"]


@admin.register(RecascadeFlag)
class RecascadeFlagAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization"]
    list_filter = ["organization"]


@admin.register(FindingsReport)
class FindingsReportAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization", "computed_at"]
    list_filter = ["organization"]


@admin.register(Finding)
class FindingAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization", "rule", "severity"]
    list_filter = ["organization", "rule"]


@admin.register(RuleUnits)
class RuleUnitsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization", "stored_at"]
    list_filter = ["organization"]
    exclude = ["payload"]
