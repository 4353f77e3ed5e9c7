"""The platform operators' admin: every model, across organizations (scopes are off under
/django-admin/, see orgs.middleware). The outbox is read-only here but for one repair: send a
failed email again."""

from django.contrib import admin
from django.utils import timezone

from .models import (
    BundleItem,
    ChatChannel,
    ChatDelivery,
    Digest,
    EmailBundle,
    OutboundEmail,
    Preference,
)


@admin.register(Preference)
class PreferenceAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization", "weekly_digest", "immediate_alerts"]
    list_filter = ["organization"]
    raw_id_fields = ["user"]


@admin.register(Digest)
class DigestAdmin(admin.ModelAdmin):
    list_display = ["week", "user", "organization", "status", "attempts", "sent_at"]
    list_filter = ["status", "organization"]
    raw_id_fields = ["user"]


@admin.action(description="Send again (failed emails only)")
def send_again(modeladmin, request, queryset):
    count = queryset.filter(status=OutboundEmail.Status.FAILED).update(
        status=OutboundEmail.Status.PENDING, attempts=0, next_attempt_at=timezone.now())
    modeladmin.message_user(request, f"{count} emails go again with the next sweep.")


@admin.register(OutboundEmail)
class OutboundEmailAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "to", "subject", "status", "attempts", "organization"]
    list_filter = ["status", "kind", "organization"]
    search_fields = ["to", "subject", "dedupe_key", "message_id"]
    actions = [send_again]
    readonly_fields = [f.name for f in OutboundEmail._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(EmailBundle)
class EmailBundleAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "organization", "status", "due_at", "has_reminder"]
    list_filter = ["status", "organization"]
    raw_id_fields = ["user"]


@admin.register(BundleItem)
class BundleItemAdmin(admin.ModelAdmin):
    list_display = ["created_at", "title", "kind", "group", "organization"]
    list_filter = ["group", "organization"]
    raw_id_fields = ["bundle"]


@admin.register(ChatChannel)
class ChatChannelAdmin(admin.ModelAdmin):
    list_display = ["__str__", "organization", "tool", "is_active"]
    list_filter = ["tool", "organization"]
    raw_id_fields = ["team", "created_by"]
    exclude = ["secret"]


@admin.register(ChatDelivery)
class ChatDeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "title", "status", "attempts", "organization"]
    list_filter = ["status", "kind", "organization"]
    readonly_fields = [f.name for f in ChatDelivery._meta.fields]

    def has_add_permission(self, request):
        return False
