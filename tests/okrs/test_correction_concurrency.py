"""Two people correct the same mistaken check-in at the same moment, on PostgreSQL: exactly one
correction lands, the other is told it was corrected already; the history has one replacement."""

import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django_scopes import scope, scopes_disabled

from okrs import services
from okrs.models import CheckIn, KeyResult

pytestmark = [
    pytest.mark.concurrency,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="needs PostgreSQL row locks (SQLite serializes the whole file)"),
]


def test_two_corrections_of_one_check_in_let_exactly_one_through(world_a):
    kr = world_a.key_result
    with scope(organization=world_a.org):
        wrong = services.record_check_in(membership=world_a.admin, key_result=kr,
                                         value=Decimal("59"), confidence="at_risk")
    barrier = threading.Barrier(2)
    outcomes = []

    def correct(value):
        try:
            with scope(organization=world_a.org):
                check_in = CheckIn.objects.select_related(
                    "key_result__objective__cycle", "key_result__objective__team",
                    "key_result__owner_team").get(pk=wrong.pk)
                barrier.wait()
                if value is None:
                    services.delete_check_in(membership=world_a.admin, check_in=check_in)
                else:
                    services.correct_check_in(membership=world_a.admin, check_in=check_in,
                                              value=value, confidence="on_track")
            outcomes.append(("saved", value))
        except ValidationError as error:
            assert "already" in " ".join(error.messages)
            outcomes.append(("refused", value))
        finally:
            connection.close()

    threads = [threading.Thread(target=correct, args=(v,)) for v in ("6", None)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert sorted(kind for kind, _ in outcomes) == ["refused", "saved"]
    [(_, winner)] = [o for o in outcomes if o[0] == "saved"]
    with scopes_disabled():
        wrong = CheckIn.objects.get(pk=wrong.pk)
        assert wrong.correction == ("edited" if winner else "deleted")
        assert CheckIn.objects.filter(corrects=wrong).count() == (1 if winner else 0)
        current = KeyResult.objects.get(pk=kr.pk).current_value
    assert current == (Decimal("6") if winner else Decimal("10"))  # else the factory check-in
