"""Making, revoking and checking API tokens.

A token is ``okrp_`` (a person's) or ``okrs_`` (the organization's service token) followed by
a random 32-byte secret in URL-safe base64. Only its SHA-256 is stored, so a stolen database
holds no usable token; the token is shown once, when it is made.
"""

import hashlib
import secrets
from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django_scopes import scopes_disabled

from orgs import permissions
from orgs.validation import Fields

from .models import ApiToken

PERSONAL_PREFIX = "okrp_"
SERVICE_PREFIX = "okrs_"
SHOWN_PREFIX_LENGTH = 12
LAST_USED_EVERY = timedelta(minutes=1)
# Expiry offered in the form, in days; None: never.
EXPIRY_CHOICES = [(30, "In 30 days"), (90, "In 90 days"), (365, "In a year"), (None, "Never")]


def hash_token(token):
    return hashlib.sha256(token.encode()).hexdigest()


def _new_secret(prefix):
    return prefix + secrets.token_urlsafe(32)


def _clean(name, scope, expires_in_days):
    v = Fields(ApiToken)
    name = v.line("name", name)
    v.choice("scope", scope)
    if expires_in_days not in [days for days, _ in EXPIRY_CHOICES]:
        v.refuse("expires_in_days", "Choose when the token expires.")
    v.done()
    return name


def create_token(*, membership, name, scope, expires_in_days, service=False):
    """Make a token; returns ``(token_row, token_text)``. The text is never stored: show it now.
    A personal token acts as ``membership``'s person; a service token (org admins only) acts
    for the organization with no person."""
    if service and not permissions.can_manage_members(membership):
        raise PermissionDenied("Only org admins can make service tokens.")
    name = _clean(name, scope, expires_in_days)
    text = _new_secret(SERVICE_PREFIX if service else PERSONAL_PREFIX)
    now = timezone.now()
    with transaction.atomic():
        token = ApiToken.objects.create(
            organization=membership.organization, user=None if service else membership.user,
            name=name, scope=scope, prefix=text[:SHOWN_PREFIX_LENGTH],
            secret_hash=hash_token(text), created_by=membership.user,
            expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None)
    return token, text


def can_revoke(membership, token):
    if token.is_service:
        return permissions.can_manage_members(membership)
    return token.user_id == membership.user_id or permissions.can_manage_members(membership)


def revoke_token(*, membership, token):
    if not can_revoke(membership, token):
        raise PermissionDenied("You can revoke only your own tokens.")
    ApiToken.objects.for_org(membership.organization).filter(
        pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now(),
                                                     revoked_by=membership.user)


class TokenRefused(Exception):
    """The request named a token that is unknown, revoked or expired (401)."""


def token_for(text):
    """The live token this text names, whatever its organization (the caller then checks that
    it is the organization of the URL). Found by its hash, before any organization is known,
    as a session is found by its key: the one lookup outside an organization scope."""
    if not text.startswith((PERSONAL_PREFIX, SERVICE_PREFIX)):
        raise TokenRefused("This is not an API token of this product.")
    with scopes_disabled():
        token = ApiToken.objects.select_related("organization", "user").filter(
            secret_hash=hash_token(text)).first()
    now = timezone.now()
    if token is None:
        raise TokenRefused("This token is unknown.")
    if token.revoked_at is not None:
        raise TokenRefused("This token was revoked.")
    if not token.is_active(now):
        raise TokenRefused("This token has expired.")
    if token.user is not None and not token.user.is_active:
        raise TokenRefused("This token's person can no longer sign in.")
    return token


def note_use(token):
    """Record when the token was last used: one UPDATE a minute at most, not one per request."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        with scopes_disabled():
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
