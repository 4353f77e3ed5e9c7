"""What success means for each kind of key result: the hint on the KR form, the sentences that
explain it on the objective page, and the end-of-cycle score the product proposes (0.0-1.0).
Plain data in, plain data out: no query here (``proposed_score`` reads the cycle of a threshold
key result through ``kr.objective.cycle``; load them with it).

The proposed score per kind:
- increase or decrease to a target ("numeric"): how far the final value moved from start to
  target (its progress), 0.0-1.0;
- keep above / keep below a threshold: the share of the cycle the metric held. Each check-in's
  value stands from its moment until the next check-in (the last one until the cycle ends); the
  time before the first check-in is unknown and not counted, a check-in before the cycle starts
  stands from its start. When no time can be counted (every check-in at one moment, or after
  the end), the share of check-ins that held;
- milestone: 1.0 when done, else 0.0;
- establish a baseline: 1.0 once a value was measured, else 0.0.
Scores are rounded to two decimals.
"""

from datetime import datetime, time, timedelta

from . import progress
from .progress import BASELINE, KEEP_ABOVE, KEEP_BELOW, MILESTONE, NUMERIC, THRESHOLD_KINDS

HINTS = {
    NUMERIC: "Move a number from its start to a target, up or down (20 → 50 customers, "
             "24 → 4 hours).",
    KEEP_ABOVE: "A health metric that must stay at or above a threshold all cycle (uptime "
                "99.9%). The target is the threshold.",
    KEEP_BELOW: "A health metric that must stay at or below a threshold all cycle (error rate "
                "1%). The target is the threshold.",
    MILESTONE: "Done or not done (the new pricing page is live). No start or target.",
    BASELINE: "The first cycle of a new metric: success is having measured it. No start or "
              "target.",
}


def _amount(value, unit):
    text = "–" if value is None else progress._plain(value)
    unit = (unit or "").strip()
    return f"{text} {unit}" if unit else text


def explain(kr):
    """One or two sentences: what progress and health mean for this key result's kind, and what
    score it would propose at the end of the cycle."""
    kind = kr.kind
    if kind == MILESTONE:
        return ("Done or not: progress is 0% until it is done, then 100%, and until the cycle "
                "ends its owner's confidence says how it goes. At the end of the cycle it "
                "proposes a score of 1.0 if it is done, else 0.0.")
    if kind == BASELINE:
        return ("Establish a baseline: this cycle, success is having measured it. Progress is "
                "100% once a value is checked in; it is off track only if the cycle ends with "
                "no value. It proposes a score of 1.0 if a value was measured, else 0.0.")
    if kind in THRESHOLD_KINDS:
        side, breaks = (("at or above", "drops below") if kind == KEEP_ABOVE
                        else ("at or below", "rises above"))
        threshold = _amount(kr.target_value, kr.unit)
        return (f"Keep {side} {threshold} all cycle: progress is 100% while the latest value "
                f"holds, and health is off track as soon as it {breaks} {threshold}. At the end "
                "of the cycle it proposes the share of the cycle the value held as its score.")
    start, target = kr.start_value, kr.target_value
    verb = "Decrease" if start is not None and target is not None and target < start \
        else "Increase"
    return (f"{verb} from {_amount(start, kr.unit)} to {_amount(target, kr.unit)}: progress is "
            "how far the value has moved towards the target, and health compares it with the "
            "share of the cycle gone. At the end of the cycle it proposes that progress as its "
            "score.")


def proposed_score(kr, check_ins):
    """The score (0.0-1.0) the data proposes for ``kr`` at the end of its cycle, by its kind.
    ``check_ins``: its live check-ins (not corrected or deleted), oldest first."""
    kind = kr.kind
    if kind == MILESTONE:
        done = check_ins[-1].is_done if check_ins else kr.is_done
        return 1.0 if done else 0.0
    readings = [(c.created_at, c.value) for c in check_ins if c.value is not None]
    if kind == BASELINE:
        return 1.0 if readings or kr.current_value is not None else 0.0
    if kind in THRESHOLD_KINDS:
        if not readings and kr.current_value is not None:
            readings = [(None, kr.current_value)]
        cycle = kr.objective.cycle
        return _round(held_share(kind, kr.target_value, readings, cycle.start_date,
                                 cycle.end_date))
    # Increase or decrease: a rolled-up key result's value comes from its contributors.
    current = kr.current_value if kr.rollup or not readings else readings[-1][1]
    try:
        return _round(progress.numeric_progress(kr.start_value, kr.target_value, current))
    except (ValueError, TypeError, ArithmeticError):
        return 0.0


def held_share(kind, threshold, readings, start_date, end_date):
    """The share (0-1) of the cycle from ``start_date`` to the end of ``end_date`` during which
    a keep above / keep below metric held ``threshold``. ``readings``: (moment, value), oldest
    first; a moment of None counts as one reading with no time (see the module's notes)."""
    if not readings:
        return 0.0
    holds = [bool(progress.threshold_holds(kind, threshold, value)) for _, value in readings]
    timed = [at for at, _ in readings if at is not None]
    if len(timed) == len(readings):
        tz = timed[0].tzinfo
        begin = datetime.combine(start_date, time.min, tzinfo=tz)
        end = datetime.combine(end_date, time.min, tzinfo=tz) + timedelta(days=1)
        total = held = 0.0
        for i, at in enumerate(timed):
            until = timed[i + 1] if i + 1 < len(timed) else end
            span = (min(max(until, begin), end) - min(max(at, begin), end)).total_seconds()
            if span > 0:
                total += span
                held += span if holds[i] else 0.0
        if total > 0:
            return held / total
    return sum(holds) / len(holds)


def _round(score):
    return min(1.0, max(0.0, round(float(score), 2)))
