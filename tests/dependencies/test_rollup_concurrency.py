"""Two people answer the same request to contribute at the same moment (one accepts, one
declines), or ask twice at once: exactly one wins, and the shared key result's value agrees
with the answer that landed. Needs real row locks across connections: PostgreSQL (CI)."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django_scopes import scope

from dependencies import services
from dependencies.models import Contribution
from okrs.models import KeyResult
from tests.factories import KeyResultFactory

pytestmark = [
    pytest.mark.concurrency,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="needs PostgreSQL row locks (SQLite serializes the whole file)"),
]


def run_together(*calls):
    barrier = threading.Barrier(len(calls))
    outcomes = []

    def one(org, call):
        try:
            with scope(organization=org):
                barrier.wait()
                call()
            outcomes.append("done")
        except ValidationError as e:
            outcomes.append(f"refused: {' '.join(e.messages)}")
        finally:
            connection.close()

    threads = [threading.Thread(target=one, args=call) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return sorted(outcomes)


def test_an_accept_and_a_decline_at_the_same_moment_leave_one_answer(revenue):
    r = revenue
    shared = KeyResultFactory(objective=r.arr, title="Enterprise logos", unit="%",
                              current_value=0)
    with scope(organization=r.org):
        request = services.request_contribution(membership=r.mia_m, key_result=r.deals,
                                                shared=shared, rollup="sum")
    outcomes = run_together(
        (r.org, lambda: services.answer_contribution(membership=r.liam_m, contribution=request,
                                                     accept=True)),
        (r.org, lambda: services.answer_contribution(membership=r.world.admin,
                                                     contribution=request, accept=False)))
    assert outcomes[0] == "done" and outcomes[1].startswith("refused: This request was answered")
    with scope(organization=r.org):
        status = Contribution.objects.get(pk=request.pk).status
        value = KeyResult.objects.get(pk=shared.pk).current_value
        feeds = KeyResult.objects.get(pk=r.deals.pk).feeds_id
    if status == "accepted":
        assert (value, feeds) == (60, shared.pk)
    else:
        assert (status, value, feeds) == ("declined", 0, None)


def test_two_requests_for_one_key_result_at_the_same_moment_leave_one(revenue):
    r = revenue
    first = KeyResultFactory(objective=r.arr, title="Enterprise logos", unit="%")
    second = KeyResultFactory(objective=r.arr, title="Enterprise wins", unit="%")
    outcomes = run_together(
        (r.org, lambda: services.request_contribution(membership=r.mia_m, key_result=r.deals,
                                                      shared=first)),
        (r.org, lambda: services.request_contribution(membership=r.mia_m, key_result=r.deals,
                                                      shared=second)))
    assert outcomes[0] == "done" and "already waits" in outcomes[1]
    with scope(organization=r.org):
        assert Contribution.objects.filter(key_result=r.deals).count() == 1
