"""A key result's data source page, and the outbound webhooks in the admin console."""

import hashlib
import json
import time

from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from okrs.access import access_key_result
from orgs.confirm import ask_first, confirm_page, is_confirmed
from orgs.decorators import org_view, post_only
from orgs.permissions import can_manage_members

from . import signing, sources, webhooks
from .forms import CsvForm, PrivateAddressesForm, SourceForm, SubscriptionForm
from .models import DataSource, WebhookAttempt, WebhookDelivery, WebhookSubscription

# A key result's data source ---------------------------------------------------------------------


def _managed_key_result(request, pk):
    key_result = access_key_result(request.membership, pk)
    if not sources.can_manage(request.membership, key_result):
        raise PermissionDenied("Only the owner team's lead or an admin sets up data sources.")
    source = DataSource.objects.for_org(request.org).filter(key_result=key_result).first()
    return key_result, source


def _show_secret_once(request, key, secret):
    """Keep a new secret in the (server-side) session for the next page only: the redirect after
    the POST shows it once, a reload does not."""
    request.session[NEW_SECRET_SESSION_KEY] = {"key": key, "secret": secret}


def _secret_to_show(request, key):
    held = request.session.get(NEW_SECRET_SESSION_KEY)
    if held and held.get("key") == key:
        del request.session[NEW_SECRET_SESSION_KEY]
        return held["secret"]
    return None


NEW_SECRET_SESSION_KEY = "integrations_new_secret"


def _webhook_url(request, source):
    return request.build_absolute_uri(reverse("data_source_webhook", args=[source.token]))


def _source_page(request, key_result, source, *, form=None, csv_form=None, preview=None,
                 secret=None, status=200):
    if form is None:
        initial = {"kind": source.kind, "url": source.url, "json_path": source.json_path,
                   "interval_minutes": source.interval_minutes,
                   "is_active": source.is_active} if source else None
        form = SourceForm(initial=initial)
    return render(request, "integrations/data_source.html", {
        "key_result": key_result, "objective": key_result.objective, "source": source,
        "form": form, "csv_form": csv_form or CsvForm(), "preview": preview, "secret": secret,
        "webhook_url": _webhook_url(request, source) if source else None,
        "signature_header": signing.SIGNATURE_HEADER,
        "timestamp_header": signing.TIMESTAMP_HEADER,
        "closed": key_result.objective.cycle.is_closed}, status=status)


@org_view
@require_http_methods(["GET", "POST"])
def data_source(request, key_result_pk):
    key_result, source = _managed_key_result(request, key_result_pk)
    if request.method == "GET":
        secret = _secret_to_show(request, f"source:{source.pk}") if source else None
        return _source_page(request, key_result, source, secret=secret)
    form = SourceForm(request.POST)
    if form.is_valid():
        try:
            saved, secret = sources.save_source(membership=request.membership,
                                                key_result=key_result, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            if secret is None:
                messages.success(request, "Data source saved.")
            else:
                _show_secret_once(request, f"source:{saved.pk}", secret)
                messages.success(request, "Data source set up. Copy the secret now: it is "
                                          "shown only once.")
            return redirect("data_source", request.org.slug, key_result.pk)
    return _source_page(request, key_result, source, form=form, status=422)


def _add_errors(form, exc):
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@org_view
def data_source_secret(request, key_result_pk):
    key_result, source = _managed_key_result(request, key_result_pk)
    if (refused := post_only(request)) is not None:
        return refused
    if source is None:
        raise Http404("This key result has no data source.")
    if not is_confirmed(request):
        return ask_first(request, url=reverse("data_source", args=[request.org.slug,
                                                                   key_result.pk]))
    try:
        secret = sources.regenerate_secret(membership=request.membership, source=source)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("data_source", request.org.slug, key_result.pk)
    _show_secret_once(request, f"source:{source.pk}", secret)
    messages.success(request, "New secret made; the old one no longer works. Copy it now: it "
                              "is shown only once.")
    return redirect("data_source", request.org.slug, key_result.pk)


@org_view
def data_source_pull(request, key_result_pk):
    key_result, source = _managed_key_result(request, key_result_pk)
    if (refused := post_only(request)) is not None:
        return refused
    if source is None or source.kind != DataSource.Kind.PULL:
        raise Http404("This key result has no scheduled pull.")
    if key_result.objective.cycle.is_closed:
        messages.error(request, "This cycle is closed; its key results take no more values.")
    elif sources.pull(source.pk) is not None:
        messages.success(request, "Pulled: the value is checked in.")
    else:
        source.refresh_from_db()
        messages.error(request, f"The pull failed: {source.last_error}")
    return redirect("data_source", request.org.slug, key_result.pk)


@org_view
def data_source_values(request, key_result_pk):
    """A CSV of dated values: "Check the file" lists its rows and errors; "Import" checks each
    row in, all or nothing."""
    key_result, source = _managed_key_result(request, key_result_pk)
    if (refused := post_only(request)) is not None:
        return refused
    csv_form = CsvForm(request.POST, request.FILES)
    if not csv_form.is_valid():
        return _source_page(request, key_result, source, csv_form=csv_form, status=422)
    data = csv_form.cleaned_data["file"].read(sources.MAX_CSV_BYTES + 1)
    rows, errors = sources.read_csv(key_result, data)
    if request.POST.get("apply") == "yes" and not errors:
        try:
            done = sources.import_csv(membership=request.membership, key_result=key_result,
                                      data=data)
        except ValidationError as exc:
            csv_form.add_error("file", exc.messages)
        else:
            messages.success(request, f"{len(done)} values checked in.")
            return redirect("data_source", request.org.slug, key_result.pk)
    return _source_page(request, key_result, source, csv_form=csv_form,
                        preview={"rows": rows[:200], "count": len(rows), "errors": errors[:200],
                                 "error_count": len(errors)},
                        status=422 if errors else 200)


@org_view
def data_source_remove(request, key_result_pk):
    key_result, source = _managed_key_result(request, key_result_pk)
    if source is None:
        raise Http404("This key result has no data source.")
    back = reverse("data_source", args=[request.org.slug, key_result.pk])
    if request.method == "GET":
        return confirm_page(
            request, question=f"Remove the data source of “{key_result.title}”?",
            consequence="No more values arrive from it; its address and secret stop working. "
                        "The check-ins it made stay.",
            action=request.path, button="Remove", cancel=back)
    if (refused := post_only(request)) is not None:
        return refused
    if not is_confirmed(request):
        return ask_first(request)
    sources.remove_source(membership=request.membership, source=source)
    messages.success(request, "The data source is removed.")
    return redirect("data_source", request.org.slug, key_result.pk)


WEBHOOK_RATE = 60  # requests per minute and data source; more answer 429


def _within_rate(token):
    """Count one request to a data source's address in this minute (the cache: Redis in
    production). When the cache is down, the limit is not applied."""
    key = f"hook:{hashlib.sha256(token.encode()).hexdigest()[:32]}:{int(time.time() // 60)}"
    try:
        cache.add(key, 0, timeout=120)
        return cache.incr(key) <= WEBHOOK_RATE
    except Exception:  # noqa: BLE001 - fail open, as orgs.ratelimit does
        return True


@csrf_exempt  # a machine posts here, authenticated by the signature, not by a session
@require_POST
def data_source_webhook(request, token):
    """The inbound webhook of one key result: {"value": 42, "note": "..."} (or {"done": true}
    for a milestone), signed (see integrations.signing)."""
    if not _within_rate(token):
        return JsonResponse({"error": f"More than {WEBHOOK_RATE} requests in a minute; send "
                                      "less often."}, status=429)
    try:
        check_in = sources.receive(
            token, body=request.body[:sources.MAX_WEBHOOK_BYTES + 1],
            timestamp=request.headers.get(signing.TIMESTAMP_HEADER, ""),
            signature=request.headers.get(signing.SIGNATURE_HEADER, ""))
    except sources.Refused as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status)
    return JsonResponse({"check_in": check_in.pk, "key_result": check_in.key_result_id,
                         "value": None if check_in.value is None else str(check_in.value),
                         "is_done": check_in.is_done}, status=201)


# Outbound webhooks (admin console) ---------------------------------------------------------------


def _subscription(request, pk):
    row = WebhookSubscription.objects.for_org(request.org).filter(pk=pk).first()
    if row is None:
        raise Http404("No such webhook.")
    return row


def _delivery(request, pk):
    row = (WebhookDelivery.objects.for_org(request.org).select_related("subscription")
           .filter(pk=pk).first())
    if row is None:
        raise Http404("No such delivery.")
    return row


def _subscriptions_page(request, form, *, status=200):
    rows = WebhookSubscription.objects.for_org(request.org)
    page = Paginator(rows, 25).get_page(request.GET.get("page"))
    settings_row = sources.settings_for(request.org)
    return render(request, "integrations/webhooks.html", {
        "page": page, "form": form, "section": "webhooks",
        "private_form": PrivateAddressesForm(initial={
            "allow_private_addresses": settings_row.allow_private_addresses}),
        "may_change_settings": can_manage_members(request.membership)}, status=status)


@org_view(console=True)
@require_http_methods(["GET", "POST"])
def subscriptions(request):
    form = SubscriptionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            row, secret = webhooks.save_subscription(membership=request.membership,
                                                     **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            _show_secret_once(request, f"webhook:{row.pk}", secret)
            messages.success(request, "Webhook added. Copy its secret now: it is shown only "
                                      "once.")
            return redirect("webhook", request.org.slug, row.pk)
    return _subscriptions_page(request, form, status=422 if form.errors else 200)


@org_view(console=True)
def integration_settings(request):
    if (refused := post_only(request)) is not None:
        return refused
    form = PrivateAddressesForm(request.POST)
    form.is_valid()
    sources.set_allow_private(membership=request.membership,
                              allow=form.cleaned_data.get("allow_private_addresses", False))
    messages.success(request, "Integration settings saved.")
    return redirect("webhooks", request.org.slug)


def _subscription_page(request, row, *, form=None, secret=None, status=200):
    if form is None:
        form = SubscriptionForm(initial={"url": row.url, "description": row.description,
                                         "events": row.events, "is_active": row.is_active})
    deliveries = WebhookDelivery.objects.for_org(request.org).filter(subscription=row).defer(
        "body")
    page = Paginator(deliveries, 20).get_page(request.GET.get("page"))
    return render(request, "integrations/webhook.html", {
        "subscription": row, "form": form, "page": page, "secret": secret,
        "section": "webhooks", "signature_header": signing.SIGNATURE_HEADER,
        "timestamp_header": signing.TIMESTAMP_HEADER}, status=status)


@org_view(console=True)
@require_http_methods(["GET", "POST"])
def subscription(request, subscription_pk):
    row = _subscription(request, subscription_pk)
    if request.method == "GET":
        return _subscription_page(request, row,
                                  secret=_secret_to_show(request, f"webhook:{row.pk}"))
    form = SubscriptionForm(request.POST)
    if form.is_valid():
        try:
            webhooks.save_subscription(membership=request.membership, subscription=row,
                                       **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, "Webhook saved.")
            return redirect("webhook", request.org.slug, row.pk)
    return _subscription_page(request, row, form=form, status=422)


@org_view(console=True)
def subscription_secret(request, subscription_pk):
    row = _subscription(request, subscription_pk)
    if (refused := post_only(request)) is not None:
        return refused
    if not is_confirmed(request):
        return ask_first(request, url=reverse("webhook", args=[request.org.slug, row.pk]))
    secret = webhooks.regenerate_secret(membership=request.membership, subscription=row)
    _show_secret_once(request, f"webhook:{row.pk}", secret)
    messages.success(request, "New secret made; the old one no longer verifies. Copy it now: it "
                              "is shown only once.")
    return redirect("webhook", request.org.slug, row.pk)


@org_view(console=True)
def subscription_delete(request, subscription_pk):
    row = _subscription(request, subscription_pk)
    if request.method == "GET":
        return confirm_page(
            request, question=f"Remove the webhook to {row.url}?",
            consequence="Nothing more is posted there, and deliveries still waiting are "
                        "dropped with their log.",
            action=request.path, button="Remove",
            cancel=reverse("webhook", args=[request.org.slug, row.pk]),
            template="orgs/console/confirm.html", extra={"section": "webhooks"})
    if (refused := post_only(request)) is not None:
        return refused
    if not is_confirmed(request):
        return ask_first(request)
    webhooks.delete_subscription(membership=request.membership, subscription=row)
    messages.success(request, "The webhook is removed.")
    return redirect("webhooks", request.org.slug)


@org_view(console=True)
def delivery(request, delivery_pk):
    row = _delivery(request, delivery_pk)
    attempts = WebhookAttempt.objects.for_org(request.org).filter(delivery=row)[:20]
    try:
        body = json.dumps(json.loads(row.body), indent=2, ensure_ascii=False)
    except ValueError:
        body = row.body
    return render(request, "integrations/delivery.html", {
        "delivery": row, "body": body, "attempts": attempts, "section": "webhooks"})


@org_view(console=True)
def delivery_redeliver(request, delivery_pk):
    row = _delivery(request, delivery_pk)
    if (refused := post_only(request)) is not None:
        return refused
    try:
        webhooks.redeliver(membership=request.membership, delivery=row)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Sent again: the log below shows the answer.")
    return redirect("webhook_delivery", request.org.slug, row.pk)
