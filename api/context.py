"""What every endpoint of an organization does before and after its own work.

``org_endpoint`` resolves the organization from the URL and the caller from the token or the
session: a stranger to the organization (a member of another one, another organization's token)
gets 404, as on the pages. It counts the request against the caller's rate limit, opens the
organization scope for the whole call, and runs a write in one transaction, retried on a
collision. The endpoint reads ``request.caller``.
"""

import base64
import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.utils.dateparse import parse_datetime
from django_scopes import scope
from ninja.errors import HttpError

from orgs.db import atomic_with_retry
from orgs.models import Membership, Organization

from .models import ApiToken
from .problems import problem
from .tokens import note_use

log = logging.getLogger(__name__)


@dataclass
class Caller:
    org: Organization
    membership: Membership | None  # None: an organization service token
    token: ApiToken | None  # None: a session

    @property
    def is_service(self):
        return self.membership is None

    def person(self, what="This"):
        """The caller's membership, or 403 for a service token (no person)."""
        if self.membership is None:
            raise PermissionDenied(f"{what} needs a person: use a personal token, not a service "
                                   "token.")
        return self.membership


def _caller(request, org_slug):
    org = Organization.objects.filter(slug=org_slug).first()
    if org is None:
        raise Http404("No such organization.")
    principal = request.auth
    token = principal if isinstance(principal, ApiToken) else None
    if token is not None and token.organization_id != org.pk:
        raise Http404("No such organization.")  # another organization's token
    user = token.user if token is not None else principal
    membership = None
    with scope(organization=org):
        if user is not None:
            membership = (Membership.objects.for_org(org).select_related("user", "organization")
                          .filter(user=user).first())
            if membership is None:
                if token is not None:
                    raise HttpError(401, "This token's person is no longer a member of the "
                                         "organization.")
                raise Http404("No such organization.")
    if token is not None:
        note_use(token)
        if user is not None:
            request.user = user  # who changed what (history reads request.user)
    return Caller(org=org, membership=membership, token=token)


def _rate_limited(request, caller):
    """A fixed window per token (or per person for a session), counted in the cache; fails open
    when the cache is down. Returns the 429 response, or None."""
    limit, window = settings.API_RATE_LIMIT, settings.API_RATE_WINDOW
    who = f"t{caller.token.pk}" if caller.token else f"u{request.user.pk}"
    now = time.time()
    start = int(now // window)
    key = f"api:rate:{who}:{start}"
    try:
        cache.add(key, 0, timeout=window + 1)
        count = cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=window + 1)
        count = 1
    except Exception:
        log.warning("API rate limit not applied: the cache is unreachable.", exc_info=True)
        return None
    if count <= limit:
        return None
    retry = max(1, math.ceil((start + 1) * window - now))
    return problem(429, f"Too many requests: at most {limit} every {window} seconds. Try again "
                        f"in {retry} seconds.", headers={"Retry-After": str(retry)})


def org_endpoint(*, write=False, service_may_write=False):
    """``write``: the call changes something: a read-only token gets 403, a service token too
    unless ``service_may_write`` (check-ins)."""

    def decorator(func):
        @wraps(func)
        def wrapper(request, org_slug, **kwargs):
            caller = _caller(request, org_slug)
            limited = _rate_limited(request, caller)
            if limited is not None:
                return limited
            if write and caller.token is not None and not caller.token.can_write:
                raise PermissionDenied("This token may only read; make one with write access.")
            if write and caller.is_service and not service_may_write:
                raise PermissionDenied("A service token may read and check in; changing OKRs "
                                       "needs a person's token.")
            request.caller = caller
            with scope(organization=caller.org):
                if write:
                    return atomic_with_retry(lambda: func(request, org_slug=org_slug, **kwargs))
                return func(request, org_slug=org_slug, **kwargs)

        return wrapper

    return decorator


# Reads: JSON with an ETag ---------------------------------------------------------------------


def _dump(schema, obj):
    return schema.model_validate(obj).model_dump(mode="json")


def respond(request, data, *, status=200):
    """JSON with a strong ETag of its bytes; a GET whose If-None-Match names it gets 304."""
    body = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    if request.method == "GET" and status == 200:
        sent = [t.strip().removeprefix("W/") for t in
                request.headers.get("If-None-Match", "").split(",")]
        if etag in sent or "*" in sent:
            response = HttpResponse(status=304)
            response["ETag"] = etag
            return response
    response = HttpResponse(body, status=status, content_type="application/json")
    if status == 200:
        response["ETag"] = etag
    return response


def one(request, schema, obj, *, status=200):
    return respond(request, _dump(schema, obj), status=status)


# Cursor pagination ----------------------------------------------------------------------------


def _encode(values):
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode(cursor):
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, pk = json.loads(raw)
        if not isinstance(pk, int):
            raise ValueError
        return value, pk
    except (ValueError, TypeError):
        raise HttpError(422, "This cursor is not one the API gave.") from None


def page(request, schema, queryset, *, cursor, limit, key="id"):
    """One page of ``queryset`` in ``(key, id)`` order from ``cursor`` (opaque: the last row's
    key and id, from the previous page's ``next_cursor``). Reads ``limit + 1`` rows in one query
    to know whether there is more."""
    limit = max(1, min(limit, settings.API_MAX_PAGE_SIZE))
    qs = queryset.order_by(key, "id") if key != "id" else queryset.order_by("id")
    if cursor:
        value, pk = _decode(cursor)
        if key == "id":
            qs = qs.filter(id__gt=pk)
        else:
            if isinstance(value, str):
                parsed = parse_datetime(value)
                value = parsed if parsed is not None else value
            qs = qs.filter(Q(**{f"{key}__gt": value}) | Q(**{key: value, "id__gt": pk}))
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        last = rows[-1]
        value = getattr(last, key) if key != "id" else None
        if isinstance(value, datetime):
            value = value.isoformat()
        next_cursor = _encode([value, last.pk])
    return respond(request, {"items": [_dump(schema, r) for r in rows],
                             "next_cursor": next_cursor})
