import logging
import time

from celery.exceptions import Retry
from django.conf import settings
from django.db import transaction
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


def enqueue_now(task, *args):
    global _skip_broker_until
    if task.app.conf.task_always_eager:
        _run_in_process(task, args)
        return
    if time.monotonic() < _skip_broker_until:
        log.warning("Broker failed moments ago; running %s in-process", task.name)
        _run_in_process(task, args)
        return
    try:
        task.delay(*args)
    except BROKER_ERRORS as exc:
        # A hung broker costs one bounded wait (see the broker settings), not one per task.
        _skip_broker_until = time.monotonic() + settings.BROKER_SKIP_AFTER_FAILURE
        log.warning("Broker unavailable (%s: %s); running %s in-process",
                    type(exc).__name__, exc, task.name)
        _run_in_process(task, args)


def reset_broker_skip():
    global _skip_broker_until
    _skip_broker_until = 0.0


def _run_in_process(task, args):
    try:
        task.apply(args=args, throw=True)
    except Exception as exc:
        # In-process, an autoretry surfaces as Retry at once: log what caused it.
        cause = exc.exc if isinstance(exc, Retry) and exc.exc is not None else exc
        log_task_failure(task, None, args, {}, cause, where="in-process, not retried",
                         with_traceback=True)
