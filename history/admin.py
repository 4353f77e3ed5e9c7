from django.contrib import admin

from .models import Change


@admin.register(Change)
class ChangeAdmin(admin.ModelAdmin):
    """Read-only: the history is append-only (a trigger refuses changes on PostgreSQL)."""

    list_display = ["at", "organization", "actor_label", "action", "object_type",
                    "object_label"]
    list_filter = ["organization", "object_type", "action", "actor_kind"]
    search_fields = ["object_label", "actor_label"]
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
