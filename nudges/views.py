from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from orgs.decorators import org_view
from orgs.permissions import can_manage_members

from . import events, services
from .models import OutboundEmail, Preference

TIME = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")


class PreferenceForm(forms.ModelForm):
    timezone = forms.CharField(
        label="My time zone", required=False, max_length=64,
        help_text="For example Europe/Berlin or America/New_York. Empty: the organization's.")

    class Meta:
        model = Preference
        fields = ["weekly_digest", "immediate_alerts", *events.GRID_FIELDS,
                  "quiet_from", "quiet_until"]
        labels = {"weekly_digest": "Weekly digest: what needs me this week",
                  "immediate_alerts": "Risk alerts by email",
                  "quiet_from": "Quiet from", "quiet_until": "Quiet until"}
        widgets = {"quiet_from": TIME, "quiet_until": TIME}

    def clean_timezone(self):
        name = self.cleaned_data["timezone"].strip()
        if name and not events.is_time_zone(name):
            raise forms.ValidationError("Unknown time zone. Write it like Europe/Berlin.")
        return name

    def clean(self):
        data = super().clean()
        if bool(data.get("quiet_from")) != bool(data.get("quiet_until")):
            raise forms.ValidationError("Give both ends of the quiet hours, or neither.")
        return data

    def grid(self):
        """Rows of the group x channel table: (label, [(channel, field or None: always)])."""
        return [(label, [(channel, self[f] if f else None)
                         for channel, f in zip(events.CHANNELS.values(), fields, strict=True)])
                for label, fields in events.grid_rows()]


@org_view
@require_http_methods(["GET", "POST"])
def preferences(request):
    pref = Preference.objects.for_org(request.org).filter(user=request.user).first() or \
        Preference(organization=request.org, user=request.user)
    form = PreferenceForm(request.POST or None, instance=pref,
                          initial={"timezone": request.user.timezone})
    if request.method == "POST" and form.is_valid():
        services.save_preferences(form, user=request.user)
        messages.success(request, "Preferences saved.")
        return redirect("preferences", request.org.slug)
    org = request.org
    return render(request, "nudges/preferences.html", {
        "form": form, "weekday": dict(org._meta.get_field("digest_weekday").choices)[
            org.digest_weekday], "channels": events.CHANNELS.values(),
        "cap": events.reminder_cap(), "window": events.bundle_window().seconds // 60})


@org_view
def send_log(request):
    """Every email of the organization, newest first, from the outbox: admins only."""
    if not can_manage_members(request.membership):
        raise PermissionDenied("Only org admins see the send log.")
    rows = OutboundEmail.objects.for_org(request.org).defer("text_body", "html_body", "headers")
    status, kind = request.GET.get("status"), request.GET.get("kind")
    if status in OutboundEmail.Status.values:
        rows = rows.filter(status=status)
    if kind in OutboundEmail.Kind.values:
        rows = rows.filter(kind=kind)
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    query = urlencode({k: v for k, v in (("status", status), ("kind", kind)) if v})
    return render(request, "nudges/send_log.html", {
        "page": page, "statuses": OutboundEmail.Status.choices, "status": status,
        "kinds": OutboundEmail.Kind.choices, "kind": kind, "query": query,
        "section": "sendlog"})


@csrf_exempt  # one-click unsubscribe (RFC 8058): mail clients POST without a session
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token):
    found = services.read_unsubscribe_token(token)
    if found is None:
        return render(request, "nudges/unsubscribe.html", {"invalid": True}, status=400)
    org, user_id, kind = found
    what = {"digest": "weekly digest", "alerts": "immediate alert emails"}.get(
        kind, "notification emails (requests, reviews and reminders)")
    if request.method == "POST":
        services.unsubscribe(org, user_id, kind)
        return render(request, "nudges/unsubscribe.html", {"done": True, "org": org,
                                                           "what": what})
    return render(request, "nudges/unsubscribe.html", {"org": org, "token": token,
                                                       "what": what})
