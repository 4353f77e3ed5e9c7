import logging

from celery import shared_task
from django.core.mail import send_mail
from django.db import transaction
from kombu.exceptions import OperationalError

log = logging.getLogger(__name__)


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_email_task(to, subject, body):
    send_mail(subject, body, None, [to])


def enqueue_on_commit(task, *args):
    """Enqueue after the transaction commits. If the broker is down, do the work in-process:
    the user's request still succeeds and nothing is lost."""

    def _send():
        try:
            task.delay(*args)
        except OperationalError:
            log.warning("Broker unavailable; running %s in-process", task.name)
            task.apply(args=args)

    transaction.on_commit(_send)
