"""Progress and health math. Plain data in, plain data out: no Django, no database.

The rules, which the UI repeats in words (see ``explain`` texts below):
- A numeric key result's progress is how far its current value has moved from start towards
  target, clamped to 0-100%. It works the same for decreasing metrics (start 24h, target 4h).
- A milestone key result is 0% until done, then 100%.
- Keep above / keep below a threshold (a health metric that must hold all cycle): progress is
  100% while the latest value holds the threshold (at or above it, at or below it) and 0% when
  it breaks it or nothing is measured yet. Its pace is the latest value: holding is on track,
  breaking is off track (whatever the share of the cycle gone); with no value yet, pace is not
  judged. How long it held over the cycle is what its end-of-cycle score counts
  (``okrs.kinds.proposed_score``), not its progress.
- Establish a baseline (the first cycle of a new metric): 0% until a value is measured, then
  100%. Like a milestone, it is judged by pace only once the cycle is over (off track if it
  was never measured); before that its owner's confidence speaks for it.
- Pace: progress is compared with the share of the cycle that has elapsed. Behind by at most
  15 points is on track, by at most 30 points at risk, more is off track. A milestone is only
  judged by pace once the cycle is over; before that its owner's confidence speaks for it.
- A key result's own health is the worse of its latest check-in confidence and its pace.
- A check-in older than 14 days while the cycle runs is stale: the key result's health is
  unknown (shown as "Stale", its last reported health only in the reasons), because an
  unrenewed report is not information. Stale key results count as unknown in roll-ups.
- An objective's progress is the weighted mean of its key results' progress; its health is the
  weighted mean of its own team's key results' health scores (on track 1, at risk 0.5, off
  track 0): 0.75 and above is on track, 0.4 and above at risk, below that off track. Another
  team's key result on it counts in its effective health (``dependencies.propagation``), as a
  reason of its own.
"""

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

ON_TRACK, AT_RISK, OFF_TRACK = "on_track", "at_risk", "off_track"
SEVERITY = {ON_TRACK: 0, AT_RISK: 1, OFF_TRACK: 2}
SCORE = {ON_TRACK: 1.0, AT_RISK: 0.5, OFF_TRACK: 0.0}
LABEL = {ON_TRACK: "on track", AT_RISK: "at risk", OFF_TRACK: "off track"}
PACE_ON_TRACK_GAP = 0.15
PACE_AT_RISK_GAP = 0.30
STALE_AFTER = timedelta(days=14)
# Key result kinds (``okrs.models.KeyResult.Kind``): "numeric" increases or decreases from start
# to target; keep above / below hold the target as a threshold.
NUMERIC, KEEP_ABOVE, KEEP_BELOW, MILESTONE, BASELINE = (
    "numeric", "keep_above", "keep_below", "milestone", "baseline")
THRESHOLD_KINDS = frozenset((KEEP_ABOVE, KEEP_BELOW))


@dataclass(frozen=True)
class Assessment:
    progress: float | None  # 0.0 - 1.0, None when there is nothing to measure
    health: str | None  # on_track / at_risk / off_track, None when nothing is known yet
    is_stale: bool = False
    reasons: tuple[str, ...] = field(default=())
    # A stale key result's health before it went stale: shown in its reasons, never counted.
    last_health: str | None = None

    @property
    def percent(self):
        return None if self.progress is None else round(self.progress * 100)


def numeric_progress(start, target, current):
    """Share of the way from start to target, clamped to [0, 1]. Refuses target == start."""
    start, target = Decimal(start), Decimal(target)
    current = None if current is None else Decimal(current)
    if not all(v.is_finite() for v in (start, target, current) if v is not None):
        raise ValueError("The start, target and current values must be numbers.")
    if target == start:
        raise ValueError("The target must differ from the start value.")
    if current is None:
        return 0.0
    share = (current - start) / (target - start)
    return float(min(Decimal(1), max(Decimal(0), share)))


def _kind(kind):
    """A kind, from a kind or (as older callers pass it) ``is_milestone``."""
    if kind is True:
        return MILESTONE
    if kind is False or kind is None:
        return NUMERIC
    return kind


def _plain(value):
    value = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def threshold_holds(kind, threshold, value):
    """True when ``value`` holds a keep above / keep below threshold (equal holds), None when
    there is no value. Refuses a missing or non-finite threshold or value."""
    if threshold is None:
        raise ValueError("A threshold key result needs its threshold.")
    threshold = Decimal(threshold)
    value = None if value is None else Decimal(value)
    if not all(v.is_finite() for v in (threshold, value) if v is not None):
        raise ValueError("The threshold and the current value must be numbers.")
    if value is None:
        return None
    return value >= threshold if kind == KEEP_ABOVE else value <= threshold


def elapsed_share(start_date: date, end_date: date, today: date) -> float:
    """How much of the cycle has passed: 0 before it starts, 1 once it is over."""
    total = (end_date - start_date).days
    if total <= 0:
        raise ValueError("A cycle must end after it starts.")
    return min(1.0, max(0.0, (today - start_date).days / total))


def worst(*healths):
    known = [h for h in healths if h]
    return max(known, key=SEVERITY.__getitem__) if known else None


def pace_health(progress: float, elapsed: float) -> str | None:
    if elapsed <= 0:
        return None
    gap = elapsed - progress
    if gap <= PACE_ON_TRACK_GAP:
        return ON_TRACK
    if gap <= PACE_AT_RISK_GAP:
        return AT_RISK
    return OFF_TRACK


def assess_key_result(
    *,
    is_milestone: bool = False,
    kind: str | None = None,
    start=None,
    target=None,
    current=None,
    is_done=False,
    confidence: str | None = None,
    last_check_in: datetime | None = None,
    elapsed: float,
    now: datetime,
) -> Assessment:
    reasons = []
    if confidence is not None and confidence not in SEVERITY:
        # A stored value this code does not know says nothing: read it as no check-in.
        confidence = None
    kind = _kind(kind or is_milestone)
    if kind == MILESTONE:
        progress = 1.0 if is_done else 0.0
        pace = (ON_TRACK if is_done else OFF_TRACK) if elapsed >= 1 else None
        if pace:
            reasons.append(
                "The cycle is over and the milestone is done."
                if is_done
                else "The cycle is over and the milestone is not done."
            )
    elif kind == BASELINE:
        if current is not None and not Decimal(current).is_finite():
            raise ValueError("The measured value must be a number.")
        measured = current is not None
        progress = 1.0 if measured else 0.0
        pace = ON_TRACK if measured else OFF_TRACK if elapsed >= 1 else None
        reasons.append(
            f"The baseline is measured: {_plain(current)}." if measured
            else "The cycle is over and the baseline was never measured." if pace
            else "The baseline is not measured yet; until the cycle ends, confidence speaks "
                 "for it.")
    elif kind in THRESHOLD_KINDS:
        holds = threshold_holds(kind, target, current)
        progress = 1.0 if holds else 0.0
        pace = None if holds is None else ON_TRACK if holds else OFF_TRACK
        side = "at or above" if kind == KEEP_ABOVE else "at or below"
        threshold = _plain(target)
        if holds is None:
            reasons.append(f"Nothing is measured yet, so whether it stays {side} {threshold} "
                           "is not known.")
        elif holds:
            reasons.append(f"The latest value, {_plain(current)}, is {side} "
                           f"{threshold}: it holds, which is on track.")
        else:
            reasons.append(f"The latest value, {_plain(current)}, breaks the "
                           f"threshold (it must stay {side} {threshold}), which is off track.")
    else:
        progress = numeric_progress(start, target, current)
        pace = pace_health(progress, elapsed)
        if pace:
            reasons.append(
                f"Pace: {round(progress * 100)}% done with {round(elapsed * 100)}% of the cycle "
                f"gone, which is {LABEL[pace]}."
            )
        else:
            reasons.append("The cycle has not started, so pace is not judged yet.")
    if confidence:
        reasons.append(f"Latest check-in confidence: {LABEL[confidence]}.")
    else:
        reasons.append("No check-in yet.")
    health = worst(confidence, pace)
    is_stale = bool(last_check_in and elapsed < 1 and now - last_check_in > STALE_AFTER)
    if is_stale:
        days = (now - last_check_in).days
        last = f" It last reported {LABEL[health]}, which no longer counts." if health else ""
        reasons.append(f"Stale: the last check-in was {days} days ago, so its health is "
                       f"unknown.{last}")
        return Assessment(progress, None, True, tuple(reasons), health)
    if health and confidence and pace and confidence != pace:
        reasons.append(f"Health takes the worse of the two: {LABEL[health]}.")
    return Assessment(progress, health, is_stale, tuple(reasons))


def assess_objective(parts, *, own=None) -> Assessment:
    """parts: iterable of (Assessment, weight) for the objective's key results. A key result
    whose weight is not a positive number cannot be weighed and is left out.

    own: one boolean per part, True for the objective's own team's key results; its health
    comes from those alone (progress from all). None: every part is its own."""
    parts = list(parts)
    own = [True] * len(parts) if own is None else list(own)
    weighed = [(a, float(w), mine) for (a, w), mine in zip(parts, own, strict=True)
               if w is not None]
    weighed = [(a, w, mine) for a, w, mine in weighed if math.isfinite(w) and w > 0]
    if not weighed:
        return Assessment(None, None, False, ("No key results yet.",))
    total = sum(w for _, w, _ in weighed)
    progress = sum((a.progress or 0.0) * w for a, w, _ in weighed) / total
    mine = [(a, w) for a, w, is_own in weighed if is_own]
    others = len(weighed) - len(mine)
    stale = sum(1 for a, _ in mine if a.is_stale)
    reasons = [f"Weighted mean of {len(weighed)} key results: {round(progress * 100)}% done."]
    if stale:
        reasons.append(f"{stale} stale key result{'s are' if stale > 1 else ' is'} not counted: "
                       "an old check-in says nothing about today.")
    if others:
        reasons.append(f"{others} key result{'s' if others > 1 else ''} of other teams "
                       f"count{'' if others > 1 else 's'} in its effective health, not here.")
    scored = [(SCORE[a.health], w) for a, w in mine if a.health in SCORE]
    if not scored:
        reasons.append("Its health is unknown: no key result of its own has a current one."
                       if mine else "Its own team has no key result here.")
        return Assessment(progress, None, bool(mine) and stale == len(mine), tuple(reasons))
    score = sum(s * w for s, w in scored) / sum(w for _, w in scored)
    health = ON_TRACK if score >= 0.75 else AT_RISK if score >= 0.4 else OFF_TRACK
    counts = {h: sum(1 for a, _ in mine if a.health == h) for h in SEVERITY}
    summary = ", ".join(f"{n} {LABEL[h]}" for h, n in counts.items() if n)
    reasons.append(f"Health weighs its own key results by weight ({summary}): {LABEL[health]}.")
    return Assessment(progress, health, False, tuple(reasons))


# The recompute's fast path ---------------------------------------------------------------------
# A full recompute assesses every key result and objective of a cycle (100,000 at the largest)
# and keeps only their health; building the sentences of ``assess_*`` for each costs most of its
# time. These give the same progress and health as ``assess_key_result`` and
# ``assess_objective`` (tests/okrs/test_progress.py holds them to it), without the sentences.

_PACE_ON_TRACK, _PACE_AT_RISK = PACE_ON_TRACK_GAP, PACE_AT_RISK_GAP
_ZERO, _ONE = Decimal(0), Decimal(1)


def key_result_health(kind, start, target, current, is_done, confidence, elapsed,
                      last_check_in=None, now=None):
    """``(progress, health)`` as ``assess_key_result`` gives them (a stale key result's health
    is unknown). Raises what it raises. ``kind``: a key result kind, or (as older callers pass
    it) True for a milestone and False for a numeric key result."""
    if confidence is not None and confidence not in SEVERITY:
        confidence = None
    if kind is True or kind == MILESTONE:
        progress = 1.0 if is_done else 0.0
        pace = (ON_TRACK if is_done else OFF_TRACK) if elapsed >= 1 else None
    elif kind == BASELINE:
        if current is not None and not Decimal(current).is_finite():
            raise ValueError("The measured value must be a number.")
        progress = 0.0 if current is None else 1.0
        pace = ON_TRACK if current is not None else OFF_TRACK if elapsed >= 1 else None
    elif kind in THRESHOLD_KINDS:
        holds = threshold_holds(kind, target, current)
        progress = 1.0 if holds else 0.0
        pace = None if holds is None else ON_TRACK if holds else OFF_TRACK
    else:
        start, target = Decimal(start), Decimal(target)
        if current is not None:
            current = Decimal(current)
            if not current.is_finite():
                raise ValueError("The start, target and current values must be numbers.")
        if not (start.is_finite() and target.is_finite()):
            raise ValueError("The start, target and current values must be numbers.")
        if target == start:
            raise ValueError("The target must differ from the start value.")
        if current is None:
            progress = 0.0
        else:
            share = (current - start) / (target - start)
            progress = float(_ONE if share > _ONE else _ZERO if share < _ZERO else share)
        if elapsed <= 0:
            pace = None
        else:
            gap = elapsed - progress
            pace = (ON_TRACK if gap <= _PACE_ON_TRACK else AT_RISK if gap <= _PACE_AT_RISK
                    else OFF_TRACK)
    if last_check_in and elapsed < 1 and now - last_check_in > STALE_AFTER:
        return progress, None
    if not confidence:
        return progress, pace
    if not pace:
        return progress, confidence
    return progress, confidence if SEVERITY[confidence] >= SEVERITY[pace] else pace


def objective_health(parts):
    """``(progress, health)`` as ``assess_objective`` gives them for its own key results;
    parts: (progress, health, weight). The same sums as there (``sum`` of floats is
    compensated, not a plain loop of additions)."""
    # The terms of each sum in lists, in the order of the parts: ``sum`` of a list is the same
    # sum as of a generator, without a generator per sum (a recompute calls this per objective).
    done_terms, weights, score_terms, scored_weights = [], [], [], []
    for done, health, w in parts:
        if w is None:
            continue
        w = float(w)
        if math.isfinite(w) and w > 0:
            done_terms.append((done or 0.0) * w)
            weights.append(w)
            if health in SCORE:
                score_terms.append(SCORE[health] * w)
                scored_weights.append(w)
    if not weights:
        return None, None
    done = sum(done_terms) / sum(weights)
    if not score_terms:
        return done, None
    score = sum(score_terms) / sum(scored_weights)
    return done, ON_TRACK if score >= 0.75 else AT_RISK if score >= 0.4 else OFF_TRACK
