"""The platform operators' admin: every model, across organizations (scopes are off under
/django-admin/, see orgs.middleware). The outbox is read-only here but for one repair: send a
failed email again."""

from django.contrib import admin
from django.utils import timezone

from .models import Digest, OutboundEmail, Preference


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
