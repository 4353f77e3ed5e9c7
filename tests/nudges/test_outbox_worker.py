"""A real Celery worker on Redis: the sweep, published twice, finds the outbox rows that no one
sent (their request's enqueue was lost) and the worker sends each one once, with its
Message-ID. Needs PostgreSQL and Redis (CI); skipped elsewhere with the reason."""

import os
from pathlib import Path

import pytest
from django_scopes import scopes_disabled

from nudges import outbox, tasks
from nudges.models import OutboundEmail
from tests.dependencies.test_worker import _wait_for, worker  # noqa: F401 - the fixture

pytestmark = [
    pytest.mark.concurrency,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"),
                       reason="needs REDIS_URL: a real worker needs a real broker (CI sets it)"),
    pytest.mark.django_db(transaction=True),
]


def test_a_worker_sends_what_the_sweep_finds_once(db, worker):  # noqa: F811
    with scopes_disabled():
        rows = [outbox.queue(kind="review", to=f"p{i}@example.test", subject=f"Review {i}",
                             text="Body", enqueue=False) for i in range(3)]
    tasks.sweep_outbox.delay()
    tasks.sweep_outbox.delay()

    def all_sent():
        with scopes_disabled():
            return set(OutboundEmail.objects.values_list("status", flat=True)) == {"sent"}

    log = worker / "worker.log"
    assert _wait_for(all_sent), log.read_text()[-3000:]
    files = [f.read_text() for f in Path(worker).glob("*.log") if f.name != "worker.log"]
    for row in rows:
        [copy] = [text for text in files if f"To: {row.to}" in text]
        assert f"Message-ID: {row.message_id}" in copy
