from django.contrib import admin
from mptt.admin import MPTTModelAdmin

from .models import (
    KPI,
    CheckIn,
    KeyResult,
    KPIValue,
    Objective,
    ObjectiveClose,
    ObjectiveParent,
    Perspective,
    StrategicGoal,
)


class KeyResultInline(admin.TabularInline):
    model = KeyResult
    fk_name = "objective"
    extra = 0
    fields = ["title", "kind", "start_value", "target_value", "current_value", "unit",
              "owner_team", "weight"]
    raw_id_fields = ["owner_team"]


@admin.register(Objective)
class ObjectiveAdmin(MPTTModelAdmin):
    list_display = ["title", "organization", "team", "cycle", "state", "is_local"]
    list_filter = ["organization", "state", "cycle"]
    search_fields = ["title"]
    raw_id_fields = ["team", "cycle", "parent", "created_by", "updated_by", "carried_from",
                     "strategic_goal"]
    inlines = [KeyResultInline]


@admin.register(KeyResult)
class KeyResultAdmin(admin.ModelAdmin):
    list_display = ["title", "organization", "objective", "owner_team", "confidence"]
    list_filter = ["organization"]
    raw_id_fields = ["objective", "owner_team", "owner", "feeds", "scored_by", "aligned_to"]


@admin.register(ObjectiveParent)
class ObjectiveParentAdmin(admin.ModelAdmin):
    list_display = ["objective", "parent", "share", "organization"]
    list_filter = ["organization"]
    raw_id_fields = ["objective", "parent"]


@admin.register(CheckIn)
class CheckInAdmin(admin.ModelAdmin):
    list_display = ["key_result", "organization", "value", "confidence", "author", "created_at",
                    "correction"]
    list_filter = ["organization"]
    raw_id_fields = ["key_result", "author", "corrected_by", "corrects"]


@admin.register(ObjectiveClose)
class ObjectiveCloseAdmin(admin.ModelAdmin):
    list_display = ["objective", "organization", "outcome", "next_step", "closed_at"]
    list_filter = ["organization", "outcome"]
    raw_id_fields = ["objective", "closed_by"]


@admin.register(Perspective)
class PerspectiveAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "position"]
    list_filter = ["organization"]


@admin.register(StrategicGoal)
class StrategicGoalAdmin(admin.ModelAdmin):
    list_display = ["title", "organization", "perspective", "horizon", "is_archived"]
    list_filter = ["organization"]
    raw_id_fields = ["perspective"]


@admin.register(KPI)
class KPIAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "organization", "health", "current_value", "current_at"]
    list_filter = ["organization", "health"]
    raw_id_fields = ["team"]


@admin.register(KPIValue)
class KPIValueAdmin(admin.ModelAdmin):
    list_display = ["kpi", "organization", "value", "at", "source", "author"]
    list_filter = ["organization", "source"]
    raw_id_fields = ["kpi", "author"]
