"""On PostgreSQL: a score or a close form sent while the cycle is being closed does not land in
the closed cycle. Both take the organization lock; the one that waits reads the cycle again."""

import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django_scopes import scope

from okrs import scoring
from okrs.models import KeyResult, ObjectiveClose
from orgs.models import Cycle
from orgs.services import lock_organization

from .test_scoring import in_window, lead_of

pytestmark = [
    pytest.mark.concurrency,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="needs PostgreSQL advisory locks across connections"),
]


@pytest.mark.parametrize("write", ["score", "close form"])
def test_a_write_waiting_on_the_close_is_refused_once_the_cycle_is_closed(world_a, write):
    w = world_a
    in_window(w.cycle)
    dana = lead_of(w, w.team)
    with scope(organization=w.org):
        key_result = KeyResult.objects.select_related("objective__cycle", "objective__team").get(
            pk=w.key_result.pk)
    locked, outcome = threading.Event(), []

    def close():
        try:
            with scope(organization=w.org), transaction.atomic():
                lock_organization(w.org)
                Cycle.objects.for_org(w.org).filter(pk=w.cycle.pk).update(
                    status="closed", closed_at=timezone.now())
                locked.set()
                time.sleep(0.5)  # the other writer is waiting on the lock now
        finally:
            connection.close()

    def send():
        try:
            locked.wait(5)
            with scope(organization=w.org):
                if write == "score":
                    scoring.score_key_result(membership=dana, key_result=key_result,
                                             score="0.1", reason="late")
                else:
                    scoring.close_objective(membership=dana, objective=key_result.objective,
                                            outcome="missed", learned="x", next_step="drop")
            outcome.append("saved")
        except ValidationError as e:
            outcome.append(" ".join(e.messages))
        finally:
            connection.close()

    threads = [threading.Thread(target=close), threading.Thread(target=send)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(outcome) == 1 and "closed" in outcome[0], outcome
    with scope(organization=w.org):
        assert KeyResult.objects.get(pk=w.key_result.pk).score is None
        assert not ObjectiveClose.objects.exists()
