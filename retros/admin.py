"""The platform operators' admin: every model, across organizations (scopes are off under
/django-admin/, see orgs.middleware)."""

from django.contrib import admin

from .models import Improvement, Retrospective


@admin.register(Retrospective)
class RetrospectiveAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization"]
    list_filter = ["organization"]


@admin.register(Improvement)
class ImprovementAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization"]
    list_filter = ["organization"]
