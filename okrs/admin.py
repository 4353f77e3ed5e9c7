from django.contrib import admin
from mptt.admin import MPTTModelAdmin

from .models import CheckIn, KeyResult, Objective


class KeyResultInline(admin.TabularInline):
    model = KeyResult
    extra = 0
    fields = ["title", "kind", "start_value", "target_value", "current_value", "unit",
              "owner_team", "weight"]
    raw_id_fields = ["owner_team"]


@admin.register(Objective)
class ObjectiveAdmin(MPTTModelAdmin):
    list_display = ["title", "organization", "team", "cycle", "state", "is_local"]
    list_filter = ["organization", "state", "cycle"]
    search_fields = ["title"]
    raw_id_fields = ["team", "cycle", "parent", "created_by", "updated_by"]
    inlines = [KeyResultInline]


@admin.register(KeyResult)
class KeyResultAdmin(admin.ModelAdmin):
    list_display = ["title", "organization", "objective", "owner_team", "confidence"]
    list_filter = ["organization"]
    raw_id_fields = ["objective", "owner_team", "owner"]


@admin.register(CheckIn)
class CheckInAdmin(admin.ModelAdmin):
    list_display = ["key_result", "organization", "value", "confidence", "author", "created_at",
                    "correction"]
    list_filter = ["organization"]
    raw_id_fields = ["key_result", "author", "corrected_by", "corrects"]
