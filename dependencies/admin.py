"""The platform operators' admin: every model, across organizations (scopes are off under
/django-admin/, see orgs.middleware)."""

from django.contrib import admin

from .models import (
    AlertEmail,
    Contribution,
    Dependency,
    DependencyEvent,
    EscalationStep,
    NetworkSnapshot,
    NetworkState,
    Notification,
    ObjectiveShare,
    PropagationRun,
    RecoveryAction,
)


@admin.register(Dependency)
class DependencyAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization"]
    list_filter = ["organization"]


@admin.register(Contribution)
class ContributionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "status", "organization"]
    list_filter = ["organization", "status"]
    raw_id_fields = ["key_result", "shared", "requested_by", "responded_by"]


@admin.register(DependencyEvent)
class DependencyEventAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization"]
    list_filter = ["organization"]


@admin.register(ObjectiveShare)
class ObjectiveShareAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization"]
    list_filter = ["organization"]


@admin.register(NetworkState)
class NetworkStateAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization"]
    list_filter = ["organization"]


@admin.register(NetworkSnapshot)
class NetworkSnapshotAdmin(admin.ModelAdmin):
    list_display = ["__str__", "saved_at", "organization"]
    list_filter = ["organization"]
    exclude = ["payload"]  # a signed binary: shown by its size, deleted to start from nothing
    # Written only by the workers, under a signature of its organization, cycle and bytes: read
    # or deleted here, never made or edited by hand.
    readonly_fields = ["organization", "cycle", "saved_at", "nodes", "size"]

    def has_add_permission(self, request):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).defer("payload")  # megabytes each


@admin.register(PropagationRun)
class PropagationRunAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization"]
    list_filter = ["organization"]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization"]
    list_filter = ["organization"]


@admin.register(AlertEmail)
class AlertEmailAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization"]
    list_filter = ["organization"]


@admin.register(RecoveryAction)
class RecoveryActionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization"]
    list_filter = ["organization"]


@admin.register(EscalationStep)
class EscalationStepAdmin(admin.ModelAdmin):
    list_display = ["__str__", "step", "person", "is_skipped", "reached_at", "organization"]
    list_filter = ["organization", "step"]
    raw_id_fields = ["dependency", "blocker", "person"]
