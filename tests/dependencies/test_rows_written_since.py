"""A warm run on PostgreSQL reads the versions of only the rows written since the last run's
horizon (``network._written_since``), not of every row. A row missed would be a wrong result:
each case below (committed by other connections, as in production) is followed by a run from
scratch that must change nothing, and most by a check that the row was read again.

Needs PostgreSQL (row versions, transaction ids) and commits: the runs and the writes are real
transactions here, not the test's one."""

from decimal import Decimal

import psycopg
import pytest
from django.db import connection, transaction
from django_scopes import scope, scopes_disabled

from dependencies import generate, network
from okrs.models import KeyResult, Objective
from tests.dependencies.test_fingerprint import stored
from tests.dependencies.test_incremental import at, run, run_from_scratch_stores

pytestmark = [
    pytest.mark.concurrency,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="row versions and transaction ids are PostgreSQL's"),
]


@pytest.fixture
def built(revenue, monkeypatch):
    with scope(organization=revenue.org):
        generate.build(revenue.org, revenue.cycle, 120, seed=7)
    network.forget()
    run(revenue, at())  # rows and a horizon kept
    calls = revenue.calls = {"since": 0, "every version": 0, "rows read again": []}
    written_since, read_key_results = network._written_since, network._read_key_results

    def counted_written_since(*args, **kwargs):
        found = written_since(*args, **kwargs)
        calls["since" if found is not None else "every version"] += 1
        return found

    def counted_read_key_results(cycle, queryset):
        rows = read_key_results(cycle, queryset)
        calls["rows read again"].append(set(rows))
        return rows

    monkeypatch.setattr(network, "_written_since", counted_written_since)
    monkeypatch.setattr(network, "_read_key_results", counted_read_key_results)
    return revenue


def other_connection():
    """A connection of its own: its transactions are not the run's."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    return psycopg.connect(**params, autocommit=True)


def key_result(r, n=0):
    """The ``n``-th numeric key result of the cycle on track by its own health."""
    with scopes_disabled():
        on_track = [k for k in KeyResult.objects.filter(
            objective__cycle=r.cycle, kind="numeric").exclude(
            objective__state="retired").order_by("id") if own(r, k.pk) == "on_track"]
    return on_track[n]


def own(r, pk):
    return network._GRAPHS[r.cycle.pk].own[("k", pk)]


def test_a_transaction_that_began_before_a_run_and_committed_after_it_is_read(built):
    r = built
    k, checked_in = key_result(r), key_result(r, 1)
    with other_connection() as other, other.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("SELECT pg_current_xact_id()")  # it has its id before the run
        with scopes_disabled():  # a change, so that the run reads (and keeps a horizon)
            KeyResult.objects.filter(pk=checked_in.pk).update(confidence="at_risk")
        outcome = run(r, at(minutes=2))  # that transaction is still open
        assert not outcome.skipped
        cursor.execute("UPDATE okrs_keyresult SET confidence = 'off_track', current_value = 0, "
                       "last_check_in_at = %s WHERE id = %s", [at(minutes=2), k.pk])
        cursor.execute("COMMIT")
    run(r, at(minutes=3))
    assert own(r, k.pk) == "off_track"
    assert r.calls["since"] >= 2 and any(k.pk in rows for rows in r.calls["rows read again"])
    run_from_scratch_stores(r, at(minutes=3), stored(r), "began before, committed after")


def test_two_updates_in_one_transaction_and_a_row_moved_by_another_column_are_read(built):
    r = built
    k, other_k = key_result(r, 0), key_result(r, 1)
    with other_connection() as other, other.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("UPDATE okrs_keyresult SET confidence = 'on_track' WHERE id = %s", [k.pk])
        cursor.execute("UPDATE okrs_keyresult SET confidence = 'off_track', current_value = 0 "
                       "WHERE id = %s", [k.pk])
        cursor.execute("COMMIT")
        # A write of a column the run does not read: a new version, the same row.
        cursor.execute("UPDATE okrs_keyresult SET position = position + 1 WHERE id = %s",
                       [other_k.pk])
    run(r, at(minutes=2))
    assert own(r, k.pk) == "off_track"
    assert {k.pk, other_k.pk} <= r.calls["rows read again"][-1]
    run_from_scratch_stores(r, at(minutes=2), stored(r), "two updates")


def test_deleted_new_retired_and_returned_rows_are_seen(built):
    r = built
    with scopes_disabled():
        first, second = Objective.objects.filter(
            cycle=r.cycle, parent__isnull=False, state="published").order_by("id")[:2]
    k, model = key_result(r, 2), key_result(r, 3)

    def delete():
        KeyResult.objects.filter(pk=k.pk).delete()

    def retire():
        Objective.objects.filter(pk=first.pk).update(state="retired")

    def swap():  # one back, one retired: key results come and go, their own rows unchanged
        with transaction.atomic():
            Objective.objects.filter(pk=first.pk).update(state="published")
            Objective.objects.filter(pk=second.pk).update(state="retired")

    def new():
        KeyResult.objects.create(
            organization=r.org, objective_id=model.objective_id, title="Added by hand",
            owner_team_id=model.owner_team_id, start_value=Decimal(0), target_value=Decimal(4),
            current_value=Decimal(0), confidence="off_track", effective_health="",
            risk_causes=[])

    for minute, change in enumerate((delete, retire, swap, new), start=2):
        with scopes_disabled():
            change()  # committed: each write is its own transaction here
        run(r, at(minutes=minute))
        # From scratch: what it keeps (rows, horizon) is what the next change's run starts from.
        run_from_scratch_stores(r, at(minutes=minute), stored(r), change.__name__)
    assert r.calls["every version"] >= 3, r.calls  # a row gone: every version read


def test_a_table_rewritten_by_vacuum_full_gives_what_a_run_from_scratch_gives(built):
    r = built
    k = key_result(r)
    with other_connection() as other, other.cursor() as cursor:
        cursor.execute("VACUUM FULL okrs_keyresult")
        cursor.execute("VACUUM FREEZE okrs_objective")
        cursor.execute("UPDATE okrs_keyresult SET confidence = 'off_track', current_value = 0 "
                       "WHERE id = %s", [k.pk])
    run(r, at(minutes=2))
    assert own(r, k.pk) == "off_track"
    run_from_scratch_stores(r, at(minutes=2), stored(r), "vacuum full")


def test_a_horizon_too_old_reads_every_version(built):
    r = built
    kept = network._ROWS[r.cycle.pk]
    network._ROWS[r.cycle.pk] = kept._replace(horizon=kept.horizon - network.HORIZON_SPAN)
    with scopes_disabled():
        KeyResult.objects.filter(pk=key_result(r).pk).update(weight=Decimal(3))
    run(r, at(minutes=2))
    assert r.calls["since"] == 0 and r.calls["every version"] == 0  # not asked at all
    run_from_scratch_stores(r, at(minutes=2), stored(r), "old horizon")
