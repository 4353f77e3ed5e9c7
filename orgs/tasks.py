import logging

from django.db import transaction
from kombu.exceptions import OperationalError

log = logging.getLogger(__name__)


def enqueue_on_commit(task, *args):
    """Enqueue after the transaction commits. Without a broker (eager mode), or when it is down,
    do the work in-process. Either way the user's request succeeds: what it saved is committed,
    and a failure of the work itself (a mail server that refuses) is logged, not raised."""

    transaction.on_commit(lambda: enqueue_now(task, *args))


def enqueue_now(task, *args):
    if task.app.conf.task_always_eager:
        _run_in_process(task, args)
        return
    try:
        task.delay(*args)
    except OperationalError:
        log.warning("Broker unavailable; running %s in-process", task.name)
        _run_in_process(task, args)


def _run_in_process(task, args):
    try:
        task.apply(args=args, throw=True)
    except Exception:
        log.exception("%s failed in-process (not retried)", task.name)
