"""Counting events per key in a fixed time window, in Django's cache: Redis when REDIS_URL is set
(shared by every gunicorn worker and atomic: INCR), local memory otherwise (one process, as in
`runserver` and the tests).

If the cache cannot be reached, the limit is not applied (fail open) and a warning is logged:
throttling protects against abuse, and a Redis outage must not stop people from resetting
their password. The cache's socket timeouts (config/settings.py) keep a hung Redis to about a
second.
"""

import hashlib
import logging

from django.conf import settings
from django.core.cache import cache

from .signin import client_ip, normalize_email

logger = logging.getLogger(__name__)


def _hit(key, limit, window):
    """Count one event for key; True while the count in this window is within limit."""
    cache.add(key, 0, timeout=window)  # starts the window; a no-op while it runs
    try:
        count = cache.incr(key)
    except ValueError:  # the window ended between add and incr
        cache.set(key, 1, timeout=window)
        count = 1
    return count <= limit


def _digest(value):
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def password_reset_allowed(request, email):
    """Whether a password-reset email may go to this address now: at most
    PASSWORD_RESET_EMAIL_LIMIT per address and PASSWORD_RESET_CLIENT_LIMIT per client address
    within PASSWORD_RESET_WINDOW seconds. Every request counts, whether an account uses the
    address or not, so the answer reveals nothing."""
    window = settings.PASSWORD_RESET_WINDOW
    try:
        per_email = _hit(f"pwreset:email:{_digest(normalize_email(email))}",
                         settings.PASSWORD_RESET_EMAIL_LIMIT, window)
        per_client = _hit(f"pwreset:client:{_digest(client_ip(request))}",
                          settings.PASSWORD_RESET_CLIENT_LIMIT, window)
    except Exception:
        logger.warning("Password reset rate limit not applied: the cache is unreachable.",
                       exc_info=True)
        return True
    if not (per_email and per_client):
        logger.warning("Password reset email not sent: over the limit for this %s.",
                       "address" if not per_email else "client address")
        return False
    return True
