"""A run from nothing (``dependencies.network``, nothing kept in the process): the quick ways
its reads take give the rows the plain checks give, on values no service would write too."""

import json
import random
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from dependencies import network
from okrs import progress
from okrs.models import Objective
from tests.factories import KeyResultFactory, ObjectiveFactory

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="PostgreSQL checks the key result rows as they are read on PostgreSQL only")

# (A column of this precision holds NaN, not the infinities.)
NUMBERS = ("0", "1", "-1", "0.0001", "12345678.9012", "NaN", None)
WEIGHTS = ("1", "0.01", "0", "-0.01", "999.99", "NaN")
KINDS = ("numeric", "keep_above", "keep_below", "baseline", "milestone", "percent", "")
HEALTHS = ("", "on_track", "at_risk", "off_track", "sure", "ON_TRACK")
ROLLUPS = ("", "sum", "mean", "max")


def drop_key_result_checks(cursor):
    """Let key result rows hold values the table refuses, as a row written by hand or by an
    older version could (in the test's transaction only)."""
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for name in ("key_result_weight_positive", "okrs_keyresult_confidence_valid",
                 "okrs_keyresult_rollup_valid", "okrs_keyresult_effective_health_valid",
                 "okrs_keyresult_kind_valid"):
        cursor.execute(f"ALTER TABLE okrs_keyresult DROP CONSTRAINT {name}")


def _read(cycle):
    with scope(organization=cycle.organization):
        return network._read_key_results(cycle, network._key_result_rows(cycle))


@postgresql_only
def test_key_results_checked_by_postgresql_are_those_python_checks(revenue, monkeypatch):
    """Rows with every odd value (weights and values not numbers, at 0, negative, tiny; kinds,
    confidences, roll-ups and stored healths no service writes) come out of the read, with
    the reason they cannot be assessed and the warnings, as they do when Python checks every
    row; and most plain rows take the quick way."""
    r, rng = revenue, random.Random(7)
    with scopes_disabled():
        made = [KeyResultFactory(objective=rng.choice((r.win, r.platform))) for _ in range(80)]
    with connection.cursor() as cursor:
        # Values no service writes and the table refuses, as a row written by hand or by an
        # older version could hold them (dropped in the test's transaction only).
        drop_key_result_checks(cursor)
        for i, kr in enumerate(made):
            # Half of them plain rows, the others with odd values.
            columns = ((KINDS, "numeric"), (HEALTHS, "at_risk"), (ROLLUPS, ""),
                       (HEALTHS, "on_track"), (WEIGHTS, "2.5"), (NUMBERS, "0"),
                       (NUMBERS, "100"), (NUMBERS, "40"))
            values = [rng.choice(odd) if i % 2 == 0 else plain for odd, plain in columns]
            cursor.execute(
                "UPDATE okrs_keyresult SET kind = %s, confidence = %s, rollup = %s, "
                "effective_health = %s, weight = %s::numeric, start_value = %s::numeric, "
                "target_value = %s::numeric, current_value = %s::numeric WHERE id = %s",
                [*values, kr.pk])
    fine_sql, fine_params = network._fine_key_result()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, {fine_sql} FROM okrs_keyresult WHERE organization_id = %s",
                       [*fine_params, r.org.pk])
        fine = dict(cursor.fetchall())
    warned = []
    monkeypatch.setattr(network.logger, "warning", lambda *a, **k: warned.append(a[1:]))
    quick = _read(r.cycle)
    quick_warned = list(warned)
    warned.clear()
    monkeypatch.setattr(network, "_fine_key_result", lambda: ("FALSE", ()))
    plain = _read(r.cycle)
    assert quick == plain
    assert [list(row) for row in quick.values()] == [list(row) for row in plain.values()]
    assert quick_warned == warned and warned
    # Only rows the checks pass take the quick way; the plain ones do.
    for pk, row in plain.items():
        if fine[pk]:
            assert row["unassessable"] is None and row["effective_health"] in network.HEALTHS
    assert all(fine[kr.pk] for i, kr in enumerate(made) if i % 2)
    assert sum(1 for row in plain.values() if row["unassessable"]) > 10


def test_flags_of_risk_above_are_decoded_as_json_each_its_own_object():
    flags = {}
    text = json.dumps({"id": 3, "title": "Reach $12M ARR", "team": "Company",
                       "health": "at_risk"})
    nested = json.dumps({"id": 3, "below": [1, 2]})
    got = [network._flat_json(flags, t) for t in (text, text, nested, nested, text)]
    assert got == [json.loads(t) for t in (text, text, nested, nested, text)]
    assert len({id(value) for value in got}) == len(got)  # no two rows share one
    got[0]["title"] = "changed"
    assert network._flat_json(flags, text)["title"] == "Reach $12M ARR"
    assert list(flags) == [text]  # a nested object is decoded each time


def test_the_edges_given_are_those_whose_two_ends_are_nodes(revenue, monkeypatch):
    """A run leaves out the key results' edges into an objective that is not there (retired)
    or that was left out (its own health failed), as it leaves out any edge naming a node it
    does not have (``_edges_given``), in the same order."""
    r = revenue
    with scopes_disabled():
        retired = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.sales,
                                   state=Objective.State.RETIRED)
        failing = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.eng, parent=r.arr)
        KeyResultFactory(objective=r.win, aligned_to=retired)
        KeyResultFactory(objective=r.win, aligned_to=failing)
        fed = KeyResultFactory(objective=failing, weight=Decimal("7.5"))
        KeyResultFactory(objective=r.platform, feeds=fed)
    objective_health = progress.objective_health

    def failing_health(parts):
        if any(w == 7.5 for _, _, w in parts):
            raise ArithmeticError("a row no service writes")
        return objective_health(parts)

    monkeypatch.setattr(progress, "objective_health", failing_health)
    network.forget(saved=False)
    with scope(organization=r.org):
        data = network._load(r.cycle)
        own, edges, _ = network._own_health_and_edges(r.cycle, data, timezone.now())
    assert (network.OBJ, failing.pk) not in own and (network.OBJ, retired.pk) not in own
    kr_edges = [e for mine in network._GAVE[r.cycle.pk].values() for e in mine[4]]
    given = network._edges_given(own, kr_edges)
    assert len(given) == len(kr_edges) - 3  # both aligned edges, and the failing one's own
    assert edges == given + network._edges_given(
        own, network._objective_edges(data, data["objectives"]))
