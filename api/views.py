"""Pages: a person's API tokens, the organization's service tokens (admin console), and the
API's browsable docs."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse

from orgs.confirm import ask_first, confirm_page, is_confirmed
from orgs.decorators import org_view, post_only
from orgs.permissions import can_manage_members

from .endpoints import api
from .forms import TokenForm
from .models import ApiToken
from .tokens import can_revoke, create_token, revoke_token

PAGE_SIZE = 20


def docs(request):
    """Swagger UI over /api/v1/openapi.json, served from ninja's own static files (no CDN: a
    self-hosted install works offline)."""
    return api.docs.render_page(request, api)


def _tokens_page(request, *, service):
    membership = request.membership
    if service and not can_manage_members(membership):
        raise PermissionDenied("Only org admins can manage service tokens.")
    created = None
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            token, text = create_token(membership=membership, service=service,
                                       **form.cleaned_data)
        except ValidationError as e:
            for field, errors in e.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            created = (token, text)  # shown once, on this response only
            form = TokenForm()
    qs = ApiToken.objects.for_org(request.org).select_related("user")
    qs = qs.filter(user__isnull=True) if service else qs.filter(user=request.user)
    tokens = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    template = "api/service_tokens.html" if service else "api/tokens.html"
    return render(request, template, {
        "form": form, "tokens": tokens, "created": created, "service": service,
        "section": "api" if service else None,
        "revoke_url": "service_token_revoke" if service else "api_token_revoke"},
        status=201 if created else 200)


@org_view
def api_tokens(request):
    return _tokens_page(request, service=False)


@org_view(console=True)
def service_tokens(request):
    return _tokens_page(request, service=True)


def _revoke(request, token_pk, *, service):
    token = ApiToken.objects.for_org(request.org).filter(pk=token_pk).first()
    if token is None or token.is_service != service or (
            not service and token.user_id != request.user.pk):
        raise Http404("No such token.")
    if not can_revoke(request.membership, token):
        raise PermissionDenied("You can revoke only your own tokens.")
    back = reverse("service_tokens" if service else "api_tokens", args=[request.org.slug])
    if request.method == "GET":
        return confirm_page(
            request, question=f"Revoke the token “{token.name}”?",
            consequence="Every program that uses it is refused from now on. This cannot be "
                        "undone; make a new token if you need one.",
            action=request.path, button="Revoke", cancel=back,
            template="orgs/console/confirm.html" if service else "_confirm.html",
            extra={"section": "api"} if service else None)
    if refused := post_only(request):
        return refused
    if not is_confirmed(request):
        return ask_first(request)
    revoke_token(membership=request.membership, token=token)
    messages.success(request, f"The token “{token.name}” is revoked.")
    return redirect(back)


@org_view
def api_token_revoke(request, token_pk):
    return _revoke(request, token_pk, service=False)


@org_view(console=True)
def service_token_revoke(request, token_pk):
    return _revoke(request, token_pk, service=True)
