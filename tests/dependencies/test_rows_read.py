"""The rows of objectives and key results a run from nothing reads (``dependencies.network``):
read with a plain cursor, made in one dict display each, the key results' statement sent while
the objectives' rows are decoded. They are the rows a plain read gives (Django's iterator, a
dict per row, each text column decoded on its own), on the bench generator's data and on
values no service writes."""

import json
import random

import pytest
from django.db import connection
from django.db.models import TextField
from django.db.models.functions import Cast
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from dependencies import generate, network
from okrs.models import KeyResult, Objective
from tests.factories import OrganizationFactory, TeamFactory

from .test_full_run_fast_paths import drop_key_result_checks

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif("connection.vendor != 'postgresql'",
                       reason="the rows' versions and the pipeline are PostgreSQL's"),
]

NUMBERS = ("0", "1", "-1", "0.0001", "12345678.9012", "NaN", None)
WEIGHTS = ("1", "0.01", "0", "-0.01", "999.99", "NaN")
KINDS = ("numeric", "keep_above", "keep_below", "baseline", "milestone", "percent", "")
HEALTHS = ("", "on_track", "at_risk", "off_track", "sure", "ON_TRACK")
ROLLUPS = ("", "sum", "mean", "max")
CAUSES = json.dumps([{"id": 3, "kind": "k", "team": "Sales", "title": "Ship \u00e9t\u00e9",
                      "health": "at_risk", "objective": 2}])
ABOVE = json.dumps({"id": 7, "team": "Company", "title": "Reach $12M ARR",
                    "health": "off_track"})
IMPACT = json.dumps({"teams": 2, "causes": [{"id": 1, "weight": 0.5, "nested": {"a": [1]}}]})


def _reference(cycle):
    """The rows as a plain read makes them: Django's iterator, the numbers as PostgreSQL's
    text, each JSON column decoded, an unknown stored health read as None, and why each key
    result cannot be assessed (``_unassessable``, on every row)."""
    objectives = {}
    queryset = network._versioned(network._objective_rows(cycle), "okrs_objective")
    for row in queryset.values(*network.OBJECTIVE_COLUMNS, "row_version", "row_hash",
                               c=Cast("risk_causes", TextField()),
                               a=Cast("risk_above", TextField()),
                               i=Cast("impact", TextField())):
        row["risk_causes"] = json.loads(row.pop("c"))
        row["risk_above"] = json.loads(row.pop("a"))
        row["impact"] = json.loads(row.pop("i"))
        if row["effective_health"] not in network.HEALTHS:
            row["effective_health"] = None
        objectives[row["id"]] = row
    key_results = {}
    queryset = network._versioned(network._key_result_rows(cycle), "okrs_keyresult")
    names = (*network.KEY_RESULT_COLUMNS, "row_version")
    texts = {f"text_{name}": Cast(name, TextField()) for name in network.NUMBER_COLUMNS}
    for found in queryset.values(*(n for n in names if n not in network.NUMBER_COLUMNS),
                                 c=Cast("risk_causes", TextField()), **texts):
        row = {name: found[f"text_{name}" if name in network.NUMBER_COLUMNS else name]
               for name in names}
        row["risk_causes"] = json.loads(found["c"])
        if row["effective_health"] not in network.HEALTHS:
            row["effective_health"] = None
        row["unassessable"] = network._unassessable(row)
        key_results[row["id"]] = row
    return objectives, key_results


def _typed(rows):
    """Each row's columns in their order, with each value's type and ``repr``: ``==`` takes 1
    for 1.0 and True, two dicts for equal in any order of keys, and NaN for unequal to NaN."""
    return [(pk, [(name, type(value), repr(value)) for name, value in row.items()])
            for pk, row in rows.items()]


def _odd_values(cycle, rng):
    """Values no service writes (the table's checks dropped in the test's transaction only),
    JSON in the risk columns, NULLs, and a retired objective with key results."""
    with scopes_disabled():
        key_results = list(KeyResult.objects.filter(objective__cycle=cycle).order_by("id"))
        objectives = list(Objective.objects.filter(cycle=cycle).order_by("id"))
    with connection.cursor() as cursor:
        drop_key_result_checks(cursor)
        for kr in rng.sample(key_results, len(key_results) // 3):
            cursor.execute(
                "UPDATE okrs_keyresult SET kind = %s, confidence = %s, rollup = %s, "
                "effective_health = %s, weight = %s::numeric, start_value = %s::numeric, "
                "target_value = %s::numeric, current_value = %s::numeric, "
                "last_check_in_at = %s, risk_causes = %s::jsonb WHERE id = %s",
                [rng.choice(KINDS), rng.choice(HEALTHS), rng.choice(ROLLUPS),
                 rng.choice(HEALTHS), rng.choice(WEIGHTS), rng.choice(NUMBERS),
                 rng.choice(NUMBERS), rng.choice(NUMBERS),
                 rng.choice((None, timezone.now())), rng.choice(("[]", CAUSES)), kr.pk])
        cursor.execute("SELECT conname FROM pg_constraint WHERE conrelid = "
                       "'okrs_objective'::regclass AND conname LIKE %s", ["%effective_health%"])
        for (name,) in cursor.fetchall():
            cursor.execute(f"ALTER TABLE okrs_objective DROP CONSTRAINT {name}")
        for o in rng.sample(objectives, len(objectives) // 3):
            cursor.execute(
                "UPDATE okrs_objective SET effective_health = %s, risk_causes = %s::jsonb, "
                "risk_above = %s::jsonb, impact = %s::jsonb, rolled_progress = %s, "
                "weight = %s::numeric WHERE id = %s",
                [rng.choice(HEALTHS), rng.choice(("[]", CAUSES)), rng.choice(("{}", ABOVE)),
                 rng.choice(("{}", IMPACT)), rng.choice((None, 0.5, float("nan"))),
                 rng.choice(("1", "0.25", "NaN")), o.pk])
        cursor.execute("UPDATE okrs_objective SET state = %s WHERE id = %s",
                       [Objective.State.RETIRED, objectives[-1].pk])


@pytest.mark.parametrize(("seed", "foreign_team"), ((1, False), (2, False), (3, True)))
def test_the_rows_read_from_nothing_are_those_a_plain_read_gives(revenue, seed, foreign_team,
                                                                 monkeypatch):
    """Also when a row's team is another organization's (no service writes one): its team's
    columns are then those of that team, as a join gives them."""
    r, rng = revenue, random.Random(seed)
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 240, seed=seed)
        network.run(r.cycle)  # stored healths, risk causes, flags of risk above and impacts
    _odd_values(r.cycle, rng)
    if foreign_team:
        with scopes_disabled():
            other = TeamFactory(organization=OrganizationFactory(), name="Elsewhere")
            KeyResult.objects.filter(pk=r.deals.pk).update(owner_team=other)
    monkeypatch.setattr(network.logger, "warning", lambda *a, **k: None)
    network.forget(saved=False)
    with scope(organization=r.org):
        objectives, key_results, bad = network._objective_and_key_result_rows(r.cycle)
        expected_objectives, expected_key_results = _reference(r.cycle)
    assert _typed(objectives) == _typed(expected_objectives)
    assert _typed(key_results) == _typed(expected_key_results)
    assert bad == {pk: k["unassessable"] for pk, k in expected_key_results.items()
                   if k["unassessable"]}
    assert len(bad) > 10 and len(expected_objectives) > 50
    assert any(o["effective_health"] is None for o in objectives.values())
    assert any(o["impact"] and o["risk_above"] for o in objectives.values())
    # The rows kept for the next run are the very rows read.
    kept = network.kept_rows(r.cycle.pk)
    assert _typed(kept.objectives) == _typed(objectives)
    assert all(kept.key_results[pk] is row for pk, row in key_results.items())


def test_the_key_results_statement_sent_ahead_is_the_one_read(revenue):
    """A run from nothing sends the key results' statement once, before it decodes the
    objectives, takes those rows, and leaves the connection out of pipeline mode."""
    r = revenue
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 60)
    network.forget(saved=False)
    sent = []
    with scope(organization=r.org), CaptureQueriesContext(connection) as queries:
        execute = network._Ahead.execute
        network._Ahead.execute = lambda ahead: (sent.append(ahead), execute(ahead))
        try:
            objectives, key_results, _ = network._objective_and_key_result_rows(r.cycle)
        finally:
            network._Ahead.execute = execute
    assert len(sent) == 1 and sent[0].cursor is None  # taken, and closed
    statements = [q["sql"] for q in queries.captured_queries]
    assert sum(1 for sql in statements if 'FROM "okrs_keyresult"' in sql) == 1
    assert connection.connection.pgconn.pipeline_status == 0
    with scope(organization=r.org):
        assert (objectives, key_results) == _reference(r.cycle)


def test_a_read_sent_ahead_and_not_asked_for_leaves_the_connection_as_it_was(revenue):
    """A statement sent ahead that no read takes (another statement came first, or none came)
    is closed: the connection leaves pipeline mode before the next statement, and every read
    gives its own rows."""
    r = revenue
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 30)
        objectives_qs = network._versioned(network._objective_rows(r.cycle), "okrs_objective")
        key_results_qs = network._versioned(network._key_result_rows(r.cycle), "okrs_keyresult")
        expected = (network._read_objectives(r.cycle, objectives_qs),
                    network._read_key_results(r.cycle, key_results_qs))
        ahead = network._key_result_values(key_results_qs)
        with network._reading_ahead(ahead, network.NUMBER_COLUMNS):
            objectives = network._read_objectives(r.cycle, objectives_qs)  # sends it
            assert connection.connection.pgconn.pipeline_status != 0
            again = network._read_objectives(r.cycle, objectives_qs)  # closes it first
            assert connection.connection.pgconn.pipeline_status == 0
            key_results = network._read_key_results(r.cycle, key_results_qs)
        assert (objectives, again, key_results) == (expected[0], expected[0], expected[1])
        with network._reading_ahead(ahead, network.NUMBER_COLUMNS):
            network._read_objectives(r.cycle, objectives_qs)
        assert connection.connection.pgconn.pipeline_status == 0
        assert network._read_key_results(r.cycle, key_results_qs) == expected[1]
