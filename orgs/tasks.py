import contextvars
import logging
import threading
import time

from celery.exceptions import Retry
from django.conf import settings
from django.db import connections, transaction
from kombu.exceptions import LimitExceeded, OperationalError
from redis.exceptions import RedisError

from config.logs import log_task_failure

log = logging.getLogger(__name__)


def enqueue_on_commit(task, *args):
    """Enqueue after the transaction commits. Without a broker (eager mode), or when it is down,
    do the work in-process. Either way the user's request succeeds: what it saved is committed,
    and a failure of the work itself (a mail server that refuses) is logged, not raised."""

    transaction.on_commit(lambda: enqueue_now(task, *args))


# What a publish raises when the broker is down, refuses, or hangs past its timeouts: kombu
# wraps most of them in OperationalError; the rest can surface raw (socket.timeout and
# ConnectionRefusedError are OSErrors). Never kombu's BatchPublishError: its delivery is unknown.
BROKER_ERRORS = (OperationalError, LimitExceeded, RedisError, OSError)

# Monotonic time until which this process does not try the broker (see enqueue_now).
_skip_broker_until = 0.0


def enqueue_now(task, *args, defer=False):
    """Publish ``task`` to the broker, or run it in-process without one. ``defer=True`` is for
    slow work the request need not wait for (a cycle's recompute): in-process, it then runs in
    a background thread right after the response (see ``_defer``), unless the setting
    ``TASKS_DEFER_IN_PROCESS`` is off (tests), where it runs at once as before."""
    global _skip_broker_until
    if task.app.conf.task_always_eager:
        _in_process(task, args, defer)
        return
    if time.monotonic() < _skip_broker_until:
        log.warning("Broker failed moments ago; running %s in-process", task.name)
        _in_process(task, args, defer)
        return
    try:
        task.delay(*args)
    except BROKER_ERRORS as exc:
        # A hung broker costs one bounded wait (see the broker settings), not one per task.
        _skip_broker_until = time.monotonic() + settings.BROKER_SKIP_AFTER_FAILURE
        log.warning("Broker unavailable (%s: %s); running %s in-process",
                    type(exc).__name__, exc, task.name)
        _in_process(task, args, defer)


def reset_broker_skip():
    global _skip_broker_until
    _skip_broker_until = 0.0


def _in_process(task, args, defer):
    if defer and settings.TASKS_DEFER_IN_PROCESS:
        _defer(task, args)
    else:
        _run_in_process(task, args)


# Deferred in-process work, one background thread per (task, arguments) at a time: a key that
# is already running is only marked to run once more when it ends, so a burst of check-ins on
# one cycle costs two recomputes, not one per check-in, and two recomputes of one cycle never
# run at once in this process (across processes, the propagation lock serializes them).
_deferred_lock = threading.Lock()
_deferred_running = {}  # key -> Thread
_deferred_again = set()  # keys to run once more when their thread ends


def _defer(task, args):
    key = (task.name, tuple(args))
    with _deferred_lock:
        if key in _deferred_running:
            _deferred_again.add(key)
            return
        # Not a daemon: a process that exits (a command, a worker restart) finishes it first.
        # The request's context goes along, so its log lines name the same organization.
        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(_drain, task, args, key),
                                  name=f"deferred {task.name}{tuple(args)}")
        _deferred_running[key] = thread
    try:
        thread.start()
    except RuntimeError:  # no thread to be had: do the work now rather than lose it
        with _deferred_lock:
            _deferred_running.pop(key, None)
        _run_in_process(task, args)


def _drain(task, args, key):
    done = False
    try:
        while not done:
            _run_in_process(task, args)
            with _deferred_lock:
                # Checked and given up under one lock: a request that comes a moment later
                # starts a thread of its own instead of asking this one, which is ending.
                done = key not in _deferred_again
                _deferred_again.discard(key)
                if done:
                    _deferred_running.pop(key, None)
    finally:
        if not done:  # _run_in_process raised something that is not an Exception
            with _deferred_lock:
                _deferred_running.pop(key, None)
        connections.close_all()  # this thread's own connections, opened by the task


def wait_for_deferred(timeout=None):
    """Wait until no deferred work is left in this process; True if none is. For tests and
    benchmarks."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        with _deferred_lock:
            threads = list(_deferred_running.values())
        if not threads:
            return True
        for thread in threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
            if deadline is not None and time.monotonic() >= deadline:
                with _deferred_lock:
                    return not _deferred_running


def _run_in_process(task, args):
    try:
        task.apply(args=args, throw=True)
    except Exception as exc:
        # In-process, an autoretry surfaces as Retry at once: log what caused it.
        cause = exc.exc if isinstance(exc, Retry) and exc.exc is not None else exc
        log_task_failure(task, None, args, {}, cause, where="in-process, not retried",
                         with_traceback=True)
