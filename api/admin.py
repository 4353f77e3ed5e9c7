"""Platform operators see tokens (never their secrets: only a hash is stored)."""

from django.contrib import admin

from .models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "organization", "user", "scope", "created_at",
                    "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["organization", "scope"]
    raw_id_fields = ["user", "created_by", "revoked_by"]
    readonly_fields = ["prefix", "secret_hash", "created_at", "last_used_at"]
