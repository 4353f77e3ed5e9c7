"""``/healthz``: is the database reachable, is the broker reachable? For container health checks
and load balancers: no session, no sign-in, no organization, JSON, within a second.

200 ``{"status": "ok", ...}`` when every check passes, 503 with the checks that failed. Each
check runs in its own thread and the answer waits at most ``DEADLINE`` for all of them, so a hung
database or broker makes a quick 503 ("timeout"), never a hung health check. Reasons are logged,
not shown: the endpoint is public.
"""

import logging
import threading
import time

from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

log = logging.getLogger(__name__)

DEADLINE = 0.9  # seconds for all checks together
BROKER_TIMEOUT = 0.5  # seconds per socket operation of the broker ping
DB_STATEMENT_TIMEOUT_MS = 500

OK, DOWN, TIMEOUT, NOT_USED = "ok", "down", "timeout", "not used"


def check_database():
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"SET statement_timeout = {DB_STATEMENT_TIMEOUT_MS}")
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        # This thread's own connection: never left open behind.
        connection.close()
    return OK


def check_broker():
    from config.celery import app

    if app.conf.task_always_eager:
        return NOT_USED  # tasks run in-process: no broker to reach
    url = app.conf.broker_url or ""
    if url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(url, socket_timeout=BROKER_TIMEOUT,
                                      socket_connect_timeout=BROKER_TIMEOUT)
        try:
            client.ping()
        finally:
            client.close()
        return OK
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT)
    return OK


CHECKS = {"database": check_database, "broker": check_broker}


def run_checks(deadline=DEADLINE):
    results = {name: TIMEOUT for name in CHECKS}

    def run(name, check):
        try:
            results[name] = check()
        except Exception as exc:
            results[name] = DOWN
            log.warning("Health check %s failed: %s: %s", name, type(exc).__name__, exc)

    threads = [threading.Thread(target=run, args=item, daemon=True, name=f"healthz-{item[0]}")
               for item in CHECKS.items()]
    for t in threads:
        t.start()
    end = time.monotonic() + deadline
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    snapshot = dict(results)
    for name, value in snapshot.items():
        if value == TIMEOUT:
            log.warning("Health check %s did not answer within %.1f s", name, deadline)
    return snapshot


@csrf_exempt  # a POST is answered 405 (only GET and HEAD), not a CSRF 403
@never_cache
@require_safe
def healthz(request):
    checks = run_checks()
    healthy = all(v in (OK, NOT_USED) for v in checks.values())
    response = JsonResponse({"status": "ok" if healthy else "down", "checks": checks},
                            status=200 if healthy else 503)
    if not healthy:
        # Each failed check was logged above as a warning with its reason; a probe every few
        # seconds during an outage must not also log an ERROR per probe through django.request.
        response._has_been_logged = True
    return response
