"""Celery beat's schedule, run in the web process when there is no broker.

The embedded default (``make run``: SQLite, Celery in eager mode) has no worker and no beat,
so nothing would flush notification bundles, send the weekly digests, retry the outbox, pull
data sources, climb the escalation ladder or recompute health as the calendar moves. Here,
after a response, the entries of ``CELERY_BEAT_SCHEDULE`` whose interval has passed since they
last ran in this process run one after another in a background thread (one at a time). With a
broker, beat does this and this module does nothing; ``BEAT_IN_PROCESS`` turns it off.

Every scheduled task is safe to run twice or in two processes at once (claims, locks and
ledgers), so several web processes each running their own schedule send nothing twice.
"""

import contextvars
import logging
import threading
import time
from importlib import import_module

from django.conf import settings
from django.db import connections

from config.logs import log_task_failure

log = logging.getLogger(__name__)

_lock = threading.Lock()
_last_run = {}  # schedule entry name -> time.monotonic() when it last started here
_running = None  # the thread running due entries, if any


def enabled():
    from config.celery import app

    return settings.BEAT_IN_PROCESS and app.conf.task_always_eager


def due(now):
    """The entries whose interval has passed since they last started (all, the first time),
    marked as started at ``now``. Call under ``_lock``."""
    entries = []
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        last = _last_run.get(name)
        if last is None or now - last >= float(entry["schedule"]):
            _last_run[name] = now
            entries.append((name, entry))
    return entries


def tick(now=None):
    """Start running the due entries in the background, unless a run is still going. Returns
    the thread started, or None."""
    global _running
    if not enabled():
        return None
    now = time.monotonic() if now is None else now
    with _lock:
        if _running is not None and _running.is_alive():
            return None
        entries = due(now)
        if not entries:
            return None
        _running = _start(entries)
    return _running


def _start(entries):
    context = contextvars.copy_context()
    # A daemon: a process that exits drops the run; the next process starts with all due.
    thread = threading.Thread(target=context.run, args=(_in_thread, entries),
                              name="in-process beat", daemon=True)
    thread.start()
    return thread


def _in_thread(entries):
    try:
        run(entries)
    finally:
        connections.close_all()  # this thread's own connections


def run(entries):
    """Run ``entries`` (name, schedule entry) in order; a failure is logged and the next runs.
    Returns the names that failed."""
    failed = []
    for name, entry in entries:
        module, attribute = entry["task"].rsplit(".", 1)  # tasks are named by their path
        task = getattr(import_module(module), attribute)
        args, kwargs = tuple(entry.get("args", ())), dict(entry.get("kwargs", {}))
        try:
            task.apply(args=args, kwargs=kwargs, throw=True)
        except Exception as exc:  # noqa: BLE001 - one failing entry does not stop the rest
            failed.append(name)
            log_task_failure(task, None, args, kwargs, exc,
                             where=f"in-process beat, {name}", with_traceback=True)
    return failed


def reset():
    """Forget when entries last ran (tests)."""
    with _lock:
        _last_run.clear()


class InProcessBeatMiddleware:
    """After each response, without a broker: start the schedule's due entries (see above)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.BEAT_IN_PROCESS:
            tick()
        return response
