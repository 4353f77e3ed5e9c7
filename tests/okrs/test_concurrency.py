"""Two people save the same objective at the same moment from the same form version: exactly
one save lands, the other is told the objective changed. Needs real row locks across
connections, so it runs on PostgreSQL (CI) and is skipped on SQLite."""

import threading

import pytest
from django.db import connection
from django_scopes import scope

from okrs import services
from okrs.models import Objective

pytestmark = [
    pytest.mark.concurrency,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="needs PostgreSQL row locks (SQLite serializes the whole file)"),
]


def test_concurrent_edits_from_the_same_version_let_exactly_one_through(world_a):
    o = world_a.objective
    barrier = threading.Barrier(2)
    outcomes = []

    def save(title):
        try:
            with scope(organization=world_a.org):
                barrier.wait()
                services.update_objective(
                    membership=world_a.admin, objective=o, version=o.version, title=title,
                    why="", team=world_a.team, parent=world_a.company_objective,
                    is_local=False, state="published")
            outcomes.append(("saved", title))
        except services.StaleEdit:
            outcomes.append(("refused", title))
        finally:
            connection.close()

    threads = [threading.Thread(target=save, args=(t,)) for t in ("From Ann", "From Ben")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(kind for kind, _ in outcomes) == ["refused", "saved"]
    [winner] = [title for kind, title in outcomes if kind == "saved"]
    with scope(organization=world_a.org):
        stored = Objective.objects.get(pk=o.pk)
    assert stored.title == winner and stored.version == o.version + 1
