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

from . import services
from .models import OutboundEmail, Preference


class PreferenceForm(forms.ModelForm):
    class Meta:
        model = Preference
        fields = ["weekly_digest", "immediate_alerts"]
        labels = {"weekly_digest": "Weekly digest: what needs me this week",
                  "immediate_alerts": "Immediate alerts when something upstream puts my work "
                                      "at risk"}


@org_view
@require_http_methods(["GET", "POST"])
def preferences(request):
    pref = Preference.objects.for_org(request.org).filter(user=request.user).first() or \
        Preference(organization=request.org, user=request.user)
    form = PreferenceForm(request.POST or None, instance=pref)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Email preferences saved.")
        return redirect("preferences", request.org.slug)
    org = request.org
    return render(request, "nudges/preferences.html", {
        "form": form, "weekday": dict(org._meta.get_field("digest_weekday").choices)[
            org.digest_weekday]})


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
