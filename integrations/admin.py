from django.contrib import admin

from .models import (
    DataSource,
    IntegrationSettings,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)


@admin.register(IntegrationSettings)
class IntegrationSettingsAdmin(admin.ModelAdmin):
    list_display = ["organization", "allow_private_addresses"]


@admin.register(DataSource)
class DataSourceAdmin(admin.ModelAdmin):
    list_display = ["key_result", "organization", "kind", "is_active", "failures",
                    "last_error_at", "next_pull_at"]
    list_filter = ["kind", "is_active"]
    exclude = ["secret"]
    raw_id_fields = ["key_result", "created_by"]


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["url", "organization", "is_active", "created_at"]
    exclude = ["secret"]
    raw_id_fields = ["created_by"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["event_type", "organization", "status", "attempts", "last_status_code",
                    "created_at"]
    list_filter = ["status", "event_type"]
    raw_id_fields = ["subscription"]


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(admin.ModelAdmin):
    list_display = ["delivery", "organization", "at", "status_code", "error"]
    raw_id_fields = ["delivery"]
