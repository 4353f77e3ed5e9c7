"""Sign-in throttling and the client address, on top of django-axes.

Failed sign-ins are counted in the database (axes' AccessAttempt rows), so every gunicorn worker
sees the same counts. Two limits hold at once:

- an account: AXES_FAILURE_LIMIT failures for one email address, from any address, within
  AXES_COOLOFF_TIME lock that account;
- an address: SIGNIN_ADDRESS_FAILURE_LIMIT failures from one client address, across any
  accounts, within the same time lock that address. It is higher than the account limit
  because an office behind one NAT address shares it.

While locked, even the right password is refused, with a page that says how long to wait.
A successful sign-in clears that account's failures (not the address's: an attacker who owns
one account must not wipe the count of guesses made at other accounts).
"""

import ipaddress
import math

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Max, Sum
from django.shortcuts import render
from django.utils import timezone


def normalize_email(value):
    """The account key: an email address is the same account whatever its case or spacing
    (orgs.User stores it lowercased and signs in case-insensitively)."""
    return (value or "").strip().lower()


def username_of(request, credentials=None):
    """AXES_USERNAME_CALLABLE: the normalized email of a sign-in attempt."""
    if credentials:
        return normalize_email(credentials.get(settings.AXES_USERNAME_FORM_FIELD))
    data = getattr(request, "POST", None) or {}
    return normalize_email(data.get(settings.AXES_USERNAME_FORM_FIELD))


def client_ip(request):
    """The client's address. Behind TRUSTED_PROXY_COUNT reverse proxies that each append the
    address they saw to X-Forwarded-For, the client is the entry that many places from the
    right; entries further left were written by the client and are not trusted. With no proxy
    configured (the default), only REMOTE_ADDR counts: a forged header changes nothing."""
    remote = request.META.get("REMOTE_ADDR") or ""
    hops = settings.TRUSTED_PROXY_COUNT
    if hops > 0:
        forwarded = [part.strip() for part in
                     request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= hops:
            try:
                return str(ipaddress.ip_address(forwarded[-hops]))
            except ValueError:
                pass
    return remote


class SignInAttempts(AxesDatabaseHandler):
    """axes' database handler with a separate, higher limit per address, and a reset on
    success that only touches the account that signed in."""

    def _recent(self, request):
        return AccessAttempt.objects.filter(attempt_time__gte=get_cool_off_threshold(request))

    def _account_and_address(self, request, credentials):
        recent = self._recent(request)
        username = username_of(request, credentials)
        account = 0
        if username:
            account = recent.filter(username=username).aggregate(
                n=Sum("failures_since_start"))["n"] or 0
        address = recent.filter(ip_address=request.axes_ip_address).aggregate(
            n=Sum("failures_since_start"))["n"] or 0
        return account, address

    def get_failures(self, request, credentials=None):
        account, address = self._account_and_address(request, credentials)
        if address >= settings.SIGNIN_ADDRESS_FAILURE_LIMIT:
            return max(account, get_failure_limit(request, credentials))
        return account

    def reset_user_attempts(self, request, credentials=None):
        username = username_of(request, credentials)
        if not username:
            return 0
        count, _ = AccessAttempt.objects.filter(username=username).delete()
        return count  # a success from anywhere proves the password: the account starts afresh

    def locked_until(self, request, credentials=None):
        """When the lock on this account or address lifts: the latest counted failure plus
        the cool-off (an upper bound when both are locked)."""
        recent = self._recent(request)
        username = username_of(request, credentials)
        latest = None
        account, address = self._account_and_address(request, credentials)
        if username and account >= get_failure_limit(request, credentials):
            latest = recent.filter(username=username).aggregate(t=Max("attempt_time"))["t"]
        if address >= settings.SIGNIN_ADDRESS_FAILURE_LIMIT:
            by_address = recent.filter(ip_address=request.axes_ip_address).aggregate(
                t=Max("attempt_time"))["t"]
            latest = max(filter(None, [latest, by_address]), default=None)
        if latest is None:
            latest = timezone.now()
        return latest + get_cool_off(request)


def clear_account_failures(email):
    """Forget the failed sign-ins counted against one account (from every address)."""
    AccessAttempt.objects.filter(username=normalize_email(email)).delete()


def locked_out_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: the sign-in page's answer while signing in is paused."""
    until = SignInAttempts().locked_until(request, credentials)
    minutes = max(1, math.ceil((until - timezone.now()).total_seconds() / 60))
    return render(request, "registration/locked_out.html", {
        "minutes": minutes, "until": until}, status=429)
