"""Locks and retries: how writes stay correct, and never answer 500, when people collide.

The lock order every write follows is written down in docs/architecture.md ("Locks"):

1. the organization lock (``lock_organization``), first, by every write that touches a tree
   (teams, objectives) or the network (key results, check-ins, dependencies, sharing);
2. then the rows being changed (``select_for_update(no_key=True)``), then inserts;
3. the cycle's ``NetworkState`` row last (``network.mark_changed``).

The propagation run takes its own lock per cycle (``lock_propagation``) before anything else;
writers never take it, so a run waiting for the organization lock blocks nobody.

Both are transaction-level advisory locks on PostgreSQL: they do not touch the organization row,
so they never collide with the ``FOR KEY SHARE`` lock that every insert of a row pointing at the
organization takes at commit. SQLite serializes writers itself; there they are no-ops.

Whatever still collides (a deadlock between rows that no lock orders, a serialization failure)
is retried: ``atomic_with_retry`` runs the whole transaction again, a few times, after a short
jittered pause.
"""

import logging
import random
import time
from functools import wraps

from django.db import DatabaseError, OperationalError, connection, transaction

log = logging.getLogger(__name__)


# Advisory lock namespaces (the first key of pg_advisory_xact_lock(int, int)).
ORGANIZATION_LOCK = 0x4F524701  # "ORG" 1: one organization's trees and network
PROPAGATION_LOCK = 0x4F524702  # "ORG" 2: one cycle's propagation run

# SQLSTATEs worth running the transaction again for: deadlock, serialization failure.
CONFLICT_SQLSTATES = frozenset({"40P01", "40001"})
ATTEMPTS = 5
BACKOFF_SECONDS = 0.05  # the first pause is up to this; each next one up to twice as long
BACKOFF_MAX_SECONDS = 1.0


class WriteConflict(OperationalError):
    """The transaction collided on every attempt. An OperationalError, so a Celery task that
    retries on OperationalError retries on this too; the cause is the last collision."""


def _advisory_xact_lock(namespace, key):
    if connection.vendor != "postgresql":
        return
    if not connection.in_atomic_block:
        raise transaction.TransactionManagementError(
            "A transaction-level lock outside a transaction would be released at once.")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [namespace, key & 0x7FFFFFFF])


def lock_organization_id(org_id):
    """Take the organization lock until the transaction ends. Call it first in the
    transaction, before locking or changing any row (see the module's lock order)."""
    _advisory_xact_lock(ORGANIZATION_LOCK, org_id)


def lock_propagation(cycle_id):
    """Serialize propagation runs of one cycle, until the transaction ends."""
    _advisory_xact_lock(PROPAGATION_LOCK, cycle_id)


def is_conflict(exc):
    """A deadlock or serialization failure: psycopg's error carries the SQLSTATE, Django's
    wraps it as its ``__cause__``."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if getattr(exc, "sqlstate", None) in CONFLICT_SQLSTATES:
            return True
        exc = exc.__cause__
    return False


def backoff(attempt):
    """A short random pause before attempt ``attempt + 1``, so the colliding writers spread."""
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_SECONDS * 2 ** (attempt - 1))
    time.sleep(random.uniform(ceiling / 2, ceiling))


def atomic_with_retry(func, *args, attempts=ATTEMPTS, on_retry=None, **kwargs):
    """Run ``func`` in a transaction; on a deadlock or serialization failure roll back and run
    the whole transaction again, up to ``attempts`` times, then raise ``WriteConflict``.

    Only the outermost transaction can be run again: called inside one, ``func`` just runs
    there and the caller that opened the transaction retries. Callbacks registered with
    ``transaction.on_commit`` by a failed attempt are dropped with it. A failure after the
    commit (in an on_commit callback) is never retried: what was saved stays saved once.
    ``on_retry(attempt)`` is called before each new attempt (to reset per-attempt state).
    """
    if connection.in_atomic_block:
        return func(*args, **kwargs)
    for attempt in range(1, attempts + 1):
        committed = []
        try:
            with transaction.atomic():
                transaction.on_commit(lambda done=committed: done.append(True))
                return func(*args, **kwargs)
        except DatabaseError as exc:
            if committed or not is_conflict(exc):
                raise
            if attempt == attempts:
                raise WriteConflict(f"Still colliding after {attempts} attempts.") from exc
            log.warning("Write collided (%s); running it again, attempt %s of %s",
                        getattr(exc.__cause__, "sqlstate", "?"), attempt + 1, attempts)
        backoff(attempt)
        if on_retry is not None:
            on_retry(attempt)
    raise AssertionError("unreachable")


def retry_on_conflict(func=None, *, attempts=ATTEMPTS):
    """Decorator form of ``atomic_with_retry``, for services, tasks and commands."""

    def decorator(f):
        @wraps(f)
        def wrapper(*args, **kwargs):
            return atomic_with_retry(f, *args, attempts=attempts, **kwargs)

        return wrapper

    return decorator(func) if func is not None else decorator
