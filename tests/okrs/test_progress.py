import itertools
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from okrs import progress
from okrs.charts import sparkline_points
from okrs.progress import AT_RISK, OFF_TRACK, ON_TRACK, Assessment, assess_objective

NOW = datetime(2027, 2, 15, 12, tzinfo=UTC)


@pytest.mark.parametrize("start, target, current, expected", [
    (0, 100, 50, 0.5),
    (0, 100, 0, 0.0),
    (0, 100, 100, 1.0),
    (0, 100, 150, 1.0),          # over-achievement is clamped
    (0, 100, -20, 0.0),          # going backwards is clamped
    (24, 4, 14, 0.5),            # decreasing metric: 24h -> 4h, now 14h
    (24, 4, 30, 0.0),            # a decreasing metric that got worse
    (24, 4, 2, 1.0),
    (99.5, 99.95, 99.725, 0.5),
    ("2.4", "1.0", "1.7", 0.5),  # decimals as strings (form input)
    (10, 20, None, 0.0),         # no current value yet
])
def test_numeric_progress(start, target, current, expected):
    assert progress.numeric_progress(start, target, current) == pytest.approx(expected)


def test_it_refuses_a_target_equal_to_the_start():
    with pytest.raises(ValueError, match="differ"):
        progress.numeric_progress(5, 5, 5)


@pytest.mark.parametrize("today, expected", [
    (date(2026, 12, 1), 0.0),    # cycle not yet started
    (date(2027, 1, 1), 0.0),     # first day
    (date(2027, 2, 15), 45 / 90),
    (date(2027, 4, 1), 1.0),     # last day
    (date(2027, 6, 1), 1.0),     # cycle already over
])
def test_elapsed_share(today, expected):
    assert progress.elapsed_share(date(2027, 1, 1), date(2027, 4, 1), today) == pytest.approx(
        expected)


@pytest.mark.parametrize("progress_, elapsed, expected", [
    (0.5, 0.5, ON_TRACK),
    (0.4, 0.5, ON_TRACK),        # 10 points behind
    (0.3, 0.5, AT_RISK),         # 20 points behind
    (0.1, 0.5, OFF_TRACK),       # 40 points behind
    (0.9, 0.5, ON_TRACK),        # ahead
    (0.0, 0.0, None),            # not started: pace not judged
])
def test_pace_health(progress_, elapsed, expected):
    assert progress.pace_health(progress_, elapsed) == expected


def kr(**kw):
    base = dict(is_milestone=False, start=0, target=100, current=50, confidence=None,
                last_check_in=NOW - timedelta(days=1), elapsed=0.5, now=NOW)
    return progress.assess_key_result(**(base | kw))


@pytest.mark.parametrize("kwargs, health", [
    ({"confidence": ON_TRACK}, ON_TRACK),
    ({"confidence": AT_RISK}, AT_RISK),                  # confidence worse than pace
    ({"confidence": ON_TRACK, "current": 10}, OFF_TRACK),  # pace worse than confidence
    ({"confidence": None, "current": 30}, AT_RISK),      # no check-in: pace alone
    ({"confidence": None, "elapsed": 0.0}, None),        # not started, no check-in
    ({"confidence": OFF_TRACK, "elapsed": 0.0}, OFF_TRACK),
])
def test_key_result_health_is_the_worse_of_confidence_and_pace(kwargs, health):
    assert kr(**kwargs).health == health


@pytest.mark.parametrize("kwargs, progress_, health", [
    ({"is_done": False, "confidence": ON_TRACK}, 0.0, ON_TRACK),   # not judged by pace mid-cycle
    ({"is_done": True, "confidence": ON_TRACK}, 1.0, ON_TRACK),
    ({"is_done": False, "confidence": None, "elapsed": 1.0}, 0.0, OFF_TRACK),  # cycle over
    ({"is_done": True, "confidence": None, "elapsed": 1.0}, 1.0, ON_TRACK),
])
def test_milestone_key_results(kwargs, progress_, health):
    a = kr(is_milestone=True, start=None, target=None, current=None, **kwargs)
    assert (a.progress, a.health) == (progress_, health)


def test_a_check_in_older_than_two_weeks_is_stale_and_its_health_is_unknown():
    a = kr(confidence=AT_RISK, last_check_in=NOW - timedelta(days=15))
    assert a.is_stale and a.health is None and a.last_health == AT_RISK
    assert any("15 days" in r for r in a.reasons)
    assert any("at risk, which no longer counts" in r for r in a.reasons)
    fresh = kr(confidence=AT_RISK, last_check_in=NOW - timedelta(days=13))
    assert not fresh.is_stale and fresh.health == AT_RISK
    # Once the cycle is over nothing is stale: there is nothing left to report.
    over = kr(confidence=AT_RISK, last_check_in=NOW - timedelta(days=40), elapsed=1)
    assert not over.is_stale and over.health == OFF_TRACK


def test_a_stale_key_result_counts_as_unknown_in_its_objective():
    stale = kr(confidence=OFF_TRACK, last_check_in=NOW - timedelta(days=20))
    fresh = kr(confidence=ON_TRACK)
    o = assess_objective([(stale, 1), (fresh, 1)])
    assert o.health == ON_TRACK and not o.is_stale  # the stale KR is left out, not off track
    assert any("1 stale key result is not counted" in r for r in o.reasons)
    only_stale = assess_objective([(stale, 1)])
    assert only_stale.health is None and only_stale.is_stale


def test_an_objective_takes_its_health_from_its_own_teams_key_results():
    mine, theirs = kr(confidence=ON_TRACK), kr(confidence=OFF_TRACK)
    o = assess_objective([(mine, 1), (theirs, 1)], own=[True, False])
    assert o.health == ON_TRACK and o.progress == 0.5


def test_the_reasons_say_how_health_was_derived():
    a = kr(confidence=ON_TRACK, current=10)
    text = " ".join(a.reasons)
    assert "10% done with 50% of the cycle gone" in text and "off track" in text
    assert "worse of the two" in text


def A(p, h):  # noqa: N802 - a short constructor for the table below
    return Assessment(p, h)


@pytest.mark.parametrize("parts, progress_, health", [
    ([(A(0.5, ON_TRACK), 1), (A(1.0, ON_TRACK), 1)], 0.75, ON_TRACK),
    ([(A(0.0, OFF_TRACK), 3), (A(1.0, ON_TRACK), 1)], 0.25, OFF_TRACK),   # weights count
    ([(A(0.0, OFF_TRACK), 1), (A(1.0, ON_TRACK), 3)], 0.75, ON_TRACK),
    ([(A(0.5, ON_TRACK), 1), (A(0.5, ON_TRACK), 1), (A(0.2, OFF_TRACK), 1)], 0.4, AT_RISK),
    ([(A(0.5, None), 1)], 0.5, None),                                     # nothing reported
    ([(A(0.4, AT_RISK), Decimal("2")), (A(0.1, None), Decimal("1"))], 0.3, AT_RISK),
])
def test_objective_progress_is_the_weighted_mean(parts, progress_, health):
    a = progress.assess_objective(parts)
    assert a.progress == pytest.approx(progress_) and a.health == health


def test_an_objective_without_key_results_has_no_progress():
    a = progress.assess_objective([])
    assert a.progress is None and a.health is None and a.percent is None


def test_sparkline_spans_the_box_and_handles_one_point():
    points = sparkline_points([0, 5, 10], width=100, height=20, pad=0).split()
    assert points == ["0.0,20.0", "50.0,10.0", "100.0,0.0"]
    assert len(sparkline_points([7]).split()) == 2
    assert sparkline_points([]) == ""


@pytest.mark.parametrize("value, text", [
    (Decimal("12.5000"), "12.5"), (Decimal("40.0000"), "40"), (Decimal("100"), "100"),
    (Decimal("0.0500"), "0.05"), (None, ""),
])
def test_plain_number(value, text):
    from okrs.charts import plain_number

    assert plain_number(value) == text


# The recompute's fast path gives what assess_key_result and assess_objective give ------------

VALUES = [None, 0, Decimal(0), Decimal(100), Decimal("24"), Decimal("4"), Decimal("14.5"),
          Decimal("-3"), Decimal("0.333"), Decimal("NaN"), Decimal("Infinity"), "2.4"]
CONFIDENCES = [None, ON_TRACK, AT_RISK, OFF_TRACK, "unknown"]
ELAPSED = [0.0, 0.1, 0.15, 0.3, 0.45, 0.5, 0.85, 1.0]  # 0.15, 0.3: on the pace limits


def outcome(function, *args, **kwargs):
    """What the recompute sees: a result, or an error it reads as "no pace" (it catches these
    three alike)."""
    try:
        result = function(*args, **kwargs)
    except (ValueError, TypeError, ArithmeticError):
        return "error"
    return (result.progress, result.health) if isinstance(result, Assessment) else result


@pytest.mark.parametrize("elapsed", ELAPSED)
@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_the_recompute_health_of_a_numeric_key_result_is_assess_key_results(confidence, elapsed):
    checked = 0
    for start, target, current in itertools.product(VALUES, repeat=3):
        full = outcome(progress.assess_key_result, is_milestone=False, start=start,
                       target=target, current=current, confidence=confidence, elapsed=elapsed,
                       now=NOW)
        fast = outcome(progress.key_result_health, False, start, target, current, False,
                       confidence, elapsed)
        assert fast == full, (start, target, current)
        checked += full != "error"
    assert checked > 100  # most combinations give a health, not an error


@pytest.mark.parametrize("elapsed", ELAPSED)
@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize("is_done", [False, True])
def test_the_recompute_health_of_a_milestone_is_assess_key_results(is_done, confidence,
                                                                     elapsed):
    a = progress.assess_key_result(is_milestone=True, is_done=is_done, confidence=confidence,
                                   elapsed=elapsed, now=NOW)
    assert progress.key_result_health(True, None, None, None, is_done, confidence,
                                      elapsed) == (a.progress, a.health)


def test_the_recompute_health_of_an_objective_is_assess_objectives():
    rng = random.Random(5)
    weights = [None, Decimal(1), Decimal("0.3"), Decimal("0.1"), Decimal("2.5"), Decimal(0),
               Decimal(-1), Decimal("NaN"), Decimal("Infinity"), 1, 0.7]
    healths = [None, ON_TRACK, AT_RISK, OFF_TRACK]
    seen = set()
    dones = [None, 0.0, 0.25, 0.5, 1.0]
    for _ in range(5000):
        parts = [(rng.choice(dones), rng.choice(healths), rng.choice(weights))
                 for _ in range(rng.randint(0, 7))]
        full = progress.assess_objective(
            [(Assessment(done, health), weight) for done, health, weight in parts])
        assert progress.objective_health(parts) == (full.progress, full.health), parts
        seen.add(full.health)
    assert seen == {None, ON_TRACK, AT_RISK, OFF_TRACK}


@pytest.mark.parametrize("days", [1, 13, 15, 40])
@pytest.mark.parametrize("elapsed", [0.5, 1.0])
def test_the_recompute_reads_a_stale_key_result_as_assess_does(days, elapsed):
    last = NOW - timedelta(days=days)
    full = progress.assess_key_result(is_milestone=False, start=0, target=10, current=2,
                                      confidence=ON_TRACK, last_check_in=last,
                                      elapsed=elapsed, now=NOW)
    fast = progress.key_result_health(False, 0, 10, 2, False, ON_TRACK, elapsed, last, NOW)
    assert fast == (full.progress, full.health)
    assert (fast[1] is None) == (days > 14 and elapsed < 1)  # stale: its health is unknown


@pytest.mark.parametrize("elapsed", ELAPSED)
@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize("kind", ["numeric", "keep_above", "keep_below", "baseline", "milestone"])
def test_the_recompute_health_of_every_kind_is_assess_key_results(kind, confidence, elapsed):
    checked = 0
    dones = (False, True) if kind == "milestone" else (False,)  # only a milestone reads it
    for (start, target, current), is_done in itertools.product(
            itertools.product(VALUES, repeat=3), dones):
        full = outcome(progress.assess_key_result, kind=kind, start=start, target=target,
                       current=current, is_done=is_done, confidence=confidence,
                       elapsed=elapsed, now=NOW)
        fast = outcome(progress.key_result_health, kind, start, target, current, is_done,
                       confidence, elapsed)
        assert fast == full, (kind, start, target, current, is_done)
        checked += full != "error"
    assert checked > 100
