"""The rows a recompute reads and the own healths it computes from them
(``dependencies.network``): a key result's numbers are kept as the database's text, and the own
healths and edges a run computes from them are those the pages' health math
(``okrs.progress.assess_key_result``, ``assess_objective``) gives, at the boundaries too."""

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from dependencies import network
from okrs import progress
from okrs.models import KeyResult
from tests.factories import KeyResultFactory

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="the key results' numbers come as text through psycopg's loader on PostgreSQL only")

KINDS = ("numeric", "keep_above", "keep_below", "baseline", "milestone")
CONFIDENCES = (None, "on_track", "at_risk", "off_track")


def _read(cycle, *pks):
    with scope(organization=cycle.organization):
        return network._read_key_results(
            cycle, network._key_result_rows(cycle).filter(pk__in=pks))


def test_a_key_result_s_numbers_are_read_as_the_text_of_their_decimals(revenue):
    r = revenue
    with scopes_disabled():
        kr = KeyResultFactory(objective=r.win, start_value=Decimal("-2.5"),
                              target_value=Decimal("12345678.9012"), current_value=None,
                              weight=Decimal("0.01"))
    row = _read(r.cycle, kr.pk)[kr.pk]
    assert (row["start_value"], row["target_value"], row["current_value"], row["weight"]) == (
        "-2.5000", "12345678.9012", None, "0.01")
    assert row["unassessable"] is None
    # What a page reads of the same row is the very value, a Decimal.
    with scopes_disabled():
        stored = KeyResult.objects.values_list("start_value", "target_value", "weight").get(
            pk=kr.pk)
    assert stored == tuple(Decimal(row[n]) for n in ("start_value", "target_value", "weight"))
    assert all(type(v) is Decimal for v in stored)


@postgresql_only
def test_other_reads_on_the_connection_still_get_decimals(revenue):
    r = revenue
    _read(r.cycle, r.deals.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1.50::numeric, weight FROM okrs_keyresult WHERE id = %s",
                       [r.deals.pk])
        assert cursor.fetchone() == (Decimal("1.50"), Decimal("1.00"))
    with scopes_disabled():
        assert type(KeyResult.objects.get(pk=r.deals.pk).current_value) is Decimal


@postgresql_only
def test_rows_refuse_a_decimal_column_not_named_as_text(revenue):
    """psycopg's loader turns every numeric column of the cursor into text: a decimal column
    the caller did not name would come as text unasked."""
    with scopes_disabled():
        queryset = KeyResult.objects.filter(pk=revenue.deals.pk).values("id", "weight",
                                                                        "current_value")
    with pytest.raises(ValueError, match="current_value"):
        network._rows(queryset, numbers_as_text=("weight",))
    assert network._rows(queryset, numbers_as_text=("weight", "current_value")) == [
        {"id": revenue.deals.pk, "weight": "1.00", "current_value": "60.0000"}]


NUMBERS = ("0.0000", "1.0000", "-1.0000", "0.0001", "NaN", "Infinity", "-Infinity", None)
WEIGHTS = ("1.00", "0.01", "0.00", "-0.01", "999.99", "NaN", "Infinity", "-Infinity", None)


def _row(kind="numeric", start="0.0000", target="100.0000", current="1.0000", weight="1.00",
         confidence="on_track", rollup=""):
    return {"kind": kind, "start_value": start, "target_value": target,
            "current_value": current, "weight": weight, "confidence": confidence,
            "rollup": rollup}


@pytest.mark.parametrize("row", [
    *(_row(weight=w) for w in WEIGHTS),
    *(_row(**{field: v}) for field in ("start", "target", "current") for v in NUMBERS),
    _row(kind="percent"), _row(kind=None), _row(confidence="sure"), _row(confidence=""),
    _row(confidence=None), _row(rollup="max"), _row(rollup=None), _row(rollup="sum"),
])
def test_the_quick_check_of_a_row_agrees_with_its_reasons(row):
    """``_assessable`` (on text) passes exactly the rows ``_unassessable`` finds nothing wrong
    with, and the reason given is the one the same row of Decimals gets."""
    assert network._assessable(row) == (network._unassessable(row) is None)
    decimals = {k: Decimal(v) if k.endswith(("_value", "weight")) and v is not None else v
                for k, v in row.items()}
    assert network._unassessable(row) == network._unassessable(decimals)


def _text(value):
    return None if value is None else str(value)


def _values(rng):
    """Numbers of four decimal places, many of them on a pace boundary."""
    start = Decimal(rng.choice((0, 0, 10, 100, -50, 24))) + Decimal(rng.randint(0, 9999)) / 10000
    span = Decimal(rng.choice((100, 1, 3, -20, 7, "0.0003", 123456789)))
    target = start + span
    share = Decimal(rng.choice((0, 1, "0.35", "0.2", "0.5", "0.65", "0.8", "0.8499", "0.85",
                                "0.15", "0.3", "1.0001", "-0.2")))
    if rng.random() < 0.3:
        share = Decimal(rng.randint(-2000, 12000)) / 10000
    current = None if rng.random() < 0.1 else (start + span * share).quantize(Decimal("0.0001"))
    return start, target, current


@pytest.mark.parametrize("seed", range(4))
def test_the_health_of_text_numbers_is_the_health_of_their_decimals(seed):
    """``key_result_health`` given the text of the numbers (as a run reads them) gives what it
    gives for their Decimals and what a page's ``assess_key_result`` gives: pace on its
    boundaries (15 and 30 points behind), thresholds held to the digit, every kind."""
    rng = random.Random(seed)
    elapsed_shares = (0.0, 0.5, 0.65, 0.8, 1.0, 0.35, 0.2, 1 / 3)
    now = timezone.now()
    for _ in range(1500):
        kind, confidence = rng.choice(KINDS), rng.choice(CONFIDENCES)
        start, target, current = _values(rng)
        if kind in ("keep_above", "keep_below") and current is not None and rng.random() < 0.4:
            current = target  # equal holds
        elapsed, is_done = rng.choice(elapsed_shares), rng.random() < 0.5
        try:
            expected = progress.assess_key_result(
                kind=kind, start=start, target=target, current=current, is_done=is_done,
                confidence=confidence, elapsed=elapsed, now=now)
        except ValueError:
            with pytest.raises(ValueError):
                progress.key_result_health(kind, _text(start), _text(target), _text(current),
                                           is_done, confidence, elapsed)
            continue
        from_decimals = progress.key_result_health(kind, start, target, current, is_done,
                                                   confidence, elapsed)
        from_text = progress.key_result_health(kind, _text(start), _text(target),
                                               _text(current), is_done, confidence, elapsed)
        assert from_text == from_decimals == (expected.progress, expected.health), (
            kind, start, target, current, elapsed)


@pytest.mark.parametrize("seed", range(4))
def test_an_objective_s_health_from_float_weights_is_the_pages(seed):
    """A run weighs an objective's key results by ``float(weight)``; ``objective_health``
    gives with them what it gives with the Decimals and what ``assess_objective`` gives,
    exactly on the 0.75 and 0.4 boundaries too."""
    rng = random.Random(seed)
    healths = (None, "on_track", "at_risk", "off_track")
    boundaries = [  # score exactly 0.75 and 0.4, and just under
        [(0.5, "on_track", Decimal("3")), (0.1, "off_track", Decimal("1"))],
        [(0.5, "on_track", Decimal("2")), (0.1, "off_track", Decimal("3"))],
        [(0.5, "on_track", Decimal("1")), (0.5, "at_risk", Decimal("1"))],
        [(0.5, "on_track", Decimal("0.74")), (0.5, "off_track", Decimal("0.26"))],
        [(0.5, "at_risk", Decimal("0.8")), (0.5, "off_track", Decimal("0.2"))],
        [(0.3, None, Decimal("2.5"))],
        [],
    ]
    cases = boundaries + [
        [(rng.choice((None, 0.0, 1.0, rng.random(), 1 / 3)), rng.choice(healths),
          Decimal(rng.randint(1, 99999)) / 100) for _ in range(rng.randint(1, 7))]
        for _ in range(2000)]
    for parts in cases:
        expected = progress.assess_objective(
            (progress.Assessment(done, health), w) for done, health, w in parts)
        floats = [(done, health, float(w)) for done, health, w in parts]
        assert progress.objective_health(floats) == progress.objective_health(parts) == (
            expected.progress, expected.health), parts


def test_a_run_s_own_healths_are_the_pages(revenue):
    """Every own health of a run (key results of every kind, values on pace boundaries,
    check-ins exactly 14 days old and just older) is what ``assess_key_result`` and
    ``assess_objective`` give for the stored row; the edges carry ``float(weight)``."""
    r, rng = revenue, random.Random(5)
    now = timezone.now()
    with scopes_disabled():
        for i in range(120):
            kind = KINDS[i % len(KINDS)]
            start, target, current = _values(rng)
            last = rng.choice((None, now - timedelta(days=1), now - progress.STALE_AFTER,
                               now - progress.STALE_AFTER - timedelta(microseconds=1)))
            KeyResultFactory(
                objective=rng.choice((r.win, r.platform)), kind=kind,
                start_value=None if kind == "milestone" else start,
                target_value=None if kind in ("milestone", "baseline") else target,
                current_value=None if kind == "milestone" else current,
                is_done=rng.random() < 0.5, confidence=rng.choice(CONFIDENCES) or "",
                last_check_in_at=last, weight=Decimal(rng.randint(1, 30000)) / 100)
    network.forget()
    with scope(organization=r.org):
        network.run(r.cycle, now=now)
        results = network._GRAPHS[r.cycle.pk].results
        inputs = network._GRAPHS[r.cycle.pk].inputs
        elapsed = progress.elapsed_share(r.cycle.start_date, r.cycle.end_date,
                                         timezone.localdate(now))
        key_results = list(KeyResult.objects.for_org(r.org).filter(objective__cycle=r.cycle))
    assessed = {}
    for k in key_results:
        a = progress.assess_key_result(
            kind=k.kind, start=k.start_value, target=k.target_value, current=k.current_value,
            is_done=k.is_done, confidence=k.confidence or None, last_check_in=k.last_check_in_at,
            elapsed=elapsed, now=now)
        assessed[k.pk] = a
        assert results[(network.KR, k.pk)].own == a.health, k
        edge = next(e for e in inputs[(network.OBJ, k.objective_id)] if e.src == (network.KR, k.pk))
        assert edge.weight == float(k.weight) and type(edge.weight) is float
    for objective in (r.win, r.platform):
        mine = [k for k in key_results if k.objective_id == objective.pk]
        expected = progress.assess_objective(
            ((assessed[k.pk], k.weight) for k in mine),
            own=[k.owner_team_id == objective.team_id for k in mine])
        assert results[(network.OBJ, objective.pk)].own == expected.health
    stale = [k for k in key_results if k.last_check_in_at
             and now - k.last_check_in_at > progress.STALE_AFTER]
    fresh = [k for k in key_results if k.last_check_in_at == now - progress.STALE_AFTER]
    assert stale and fresh and all(assessed[k.pk].is_stale for k in stale)
    assert not any(assessed[k.pk].is_stale for k in fresh)
