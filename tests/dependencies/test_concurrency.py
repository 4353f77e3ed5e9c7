"""Two leads add opposite dependencies at the same moment (A needs B, B needs A). Each alone is
fine; together they would close a loop. The organization lock makes one wait for the other, so
exactly one lands. Needs real row locks across connections: PostgreSQL (CI)."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django_scopes import scope

from dependencies import services
from dependencies.models import Dependency

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="needs PostgreSQL row locks (SQLite serializes the whole file)"),
]


def test_opposite_dependencies_at_the_same_moment_let_exactly_one_through(revenue):
    r = revenue
    barrier = threading.Barrier(2)
    outcomes = []

    def request(membership, downstream, upstream):
        try:
            with scope(organization=r.org):
                barrier.wait()
                services.request_dependency(
                    membership=membership, downstream=downstream, upstream=upstream,
                    need="Their part", needed_by=r.cycle.end_date, fallback="Do without")
            outcomes.append("saved")
        except ValidationError as e:
            outcomes.append("loop" if "loop" in str(e) else f"other: {e}")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=request, args=(r.ethan_m, r.platform, r.win)),
        threading.Thread(target=request, args=(r.mia_m, r.win, r.platform)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(outcomes) == ["loop", "saved"]
    with scope(organization=r.org):
        pair = [r.platform, r.win]
        between = Dependency.objects.filter(downstream_objective__in=pair,
                                            upstream_objective__in=pair)
        assert between.count() == 1
