"""Key result kinds: what progress, health and the proposed end-of-cycle score mean for each
(increase or decrease to a target, keep above / below a threshold, milestone, baseline), and
how the forms and the objective page say it."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from okrs import kinds, progress, services
from okrs.models import KeyResult
from okrs.progress import AT_RISK, OFF_TRACK, ON_TRACK

NOW = datetime(2027, 2, 15, 12, tzinfo=UTC)
D = Decimal


# Progress and health per kind --------------------------------------------------------------------
# kind, start, target (the threshold for keep above / below), values checked in (the latest is
# the current value), elapsed share of the cycle -> progress, health (no confidence given).

@pytest.mark.parametrize("kind, start, target, values, elapsed, done, health", [
    # Increase and decrease: progress from start to target, health by pace.
    ("numeric", 0, 100, [20, 50], 0.5, 0.5, ON_TRACK),
    ("numeric", 0, 100, [30], 0.5, 0.3, AT_RISK),
    ("numeric", 0, 100, [10], 0.5, 0.1, OFF_TRACK),
    ("numeric", 24, 4, [14], 0.5, 0.5, ON_TRACK),          # decrease: 24 h -> 4 h, now 14
    ("numeric", 24, 4, [30], 0.5, 0.0, OFF_TRACK),         # a decrease that went up
    ("numeric", 0, 100, [], 0.0, 0.0, None),               # not started, nothing known
    # Keep above: holds at or above the threshold, whatever the share of the cycle gone.
    ("keep_above", None, D("99.9"), [D("99.95")], 0.5, 1.0, ON_TRACK),
    ("keep_above", None, D("99.9"), [D("99.9")], 0.5, 1.0, ON_TRACK),   # equal holds
    ("keep_above", None, D("99.9"), [D("99.95"), D("99.5")], 0.5, 0.0, OFF_TRACK),
    ("keep_above", None, D("99.9"), [D("99.5"), D("99.95")], 0.9, 1.0, ON_TRACK),  # recovered
    ("keep_above", None, D("99.9"), [D("99.5")], 0.0, 0.0, OFF_TRACK),  # even before it starts
    ("keep_above", None, D("99.9"), [], 0.5, 0.0, None),   # nothing measured: not judged
    # Keep below.
    ("keep_below", None, 2, [D("1.4")], 0.3, 1.0, ON_TRACK),
    ("keep_below", None, 2, [2], 0.3, 1.0, ON_TRACK),
    ("keep_below", None, 2, [1, D("2.1")], 0.3, 0.0, OFF_TRACK),
    ("keep_below", None, 2, [], 1.0, 0.0, None),
    # Baseline: done once a value is measured; judged by pace only once the cycle is over.
    ("baseline", None, None, [42], 0.2, 1.0, ON_TRACK),
    ("baseline", None, None, [0], 1.0, 1.0, ON_TRACK),     # zero is a measurement
    ("baseline", None, None, [], 0.6, 0.0, None),
    ("baseline", None, None, [], 1.0, 0.0, OFF_TRACK),
])
def test_progress_and_health_per_kind(kind, start, target, values, elapsed, done, health):
    current = values[-1] if values else (start if kind == "numeric" else None)
    a = progress.assess_key_result(kind=kind, start=start, target=target, current=current,
                                   elapsed=elapsed, now=NOW)
    assert (a.progress, a.health) == (pytest.approx(done), health)
    fast = progress.key_result_health(kind, start, target, current, False, None, elapsed)
    assert fast == (a.progress, a.health)


@pytest.mark.parametrize("is_done, elapsed, done, health", [
    (False, 0.5, 0.0, None),        # mid-cycle: the owner's confidence speaks for it
    (True, 0.5, 1.0, None),
    (False, 1.0, 0.0, OFF_TRACK),
    (True, 1.0, 1.0, ON_TRACK),
])
def test_progress_and_health_of_a_milestone(is_done, elapsed, done, health):
    a = progress.assess_key_result(kind="milestone", is_done=is_done, elapsed=elapsed, now=NOW)
    assert (a.progress, a.health) == (done, health)


@pytest.mark.parametrize("kind, current, confidence, health", [
    ("keep_above", D("99.95"), AT_RISK, AT_RISK),   # holds, but its owner worries
    ("keep_above", D("99.5"), ON_TRACK, OFF_TRACK),  # broken: confidence cannot hide it
    ("baseline", None, AT_RISK, AT_RISK),
    ("baseline", D("3"), OFF_TRACK, OFF_TRACK),
])
def test_health_is_still_the_worse_of_confidence_and_the_kinds_own_judgement(
        kind, current, confidence, health):
    a = progress.assess_key_result(kind=kind, target=D("99.9"), current=current,
                                   confidence=confidence, last_check_in=NOW, elapsed=0.5,
                                   now=NOW)
    assert a.health == health


def test_a_threshold_or_baseline_key_result_goes_stale_like_any_other():
    last = NOW - timedelta(days=20)
    for kind, current in (("keep_above", D("99.95")), ("baseline", D("7"))):
        a = progress.assess_key_result(kind=kind, target=D("99.9"), current=current,
                                       confidence=ON_TRACK, last_check_in=last, elapsed=0.5,
                                       now=NOW)
        assert a.is_stale and a.health is None and a.last_health == ON_TRACK
        assert progress.key_result_health(kind, None, D("99.9"), current, False, ON_TRACK,
                                          0.5, last, NOW) == (a.progress, None)


@pytest.mark.parametrize("kind, current, words", [
    ("keep_above", D("99.5"), "breaks the threshold (it must stay at or above 99.9)"),
    ("keep_above", D("99.95"), "is at or above 99.9: it holds"),
    ("keep_below", D("120"), "it must stay at or below 99.9"),
    ("keep_below", None, "Nothing is measured yet"),
    ("baseline", D("42.5"), "The baseline is measured: 42.5."),
    ("baseline", None, "not measured yet"),
])
def test_the_reasons_say_what_the_kind_judged(kind, current, words):
    a = progress.assess_key_result(kind=kind, target=D("99.9"), current=current, elapsed=0.5,
                                   now=NOW)
    assert any(words in r for r in a.reasons), a.reasons


def test_a_threshold_key_result_without_a_threshold_cannot_be_assessed():
    with pytest.raises(ValueError, match="threshold"):
        progress.assess_key_result(kind="keep_above", target=None, current=1, elapsed=0.5,
                                   now=NOW)
    with pytest.raises(ValueError):
        progress.key_result_health("keep_below", None, D("NaN"), 1, False, None, 0.5)


# The proposed end-of-cycle score ---------------------------------------------------------------

CYCLE = SimpleNamespace(start_date=date(2027, 1, 1), end_date=date(2027, 3, 31))  # 90 days


def key_result(kind, start=None, target=None, *, current=None, is_done=False, rollup=""):
    return SimpleNamespace(kind=kind, start_value=start, target_value=target, unit="",
                           current_value=current, is_done=is_done, rollup=rollup,
                           objective=SimpleNamespace(cycle=CYCLE))


def check_ins(*rows):
    """(day of the cycle, value or is_done) -> check-ins, oldest first."""
    start = datetime(2027, 1, 1, tzinfo=UTC)
    return [SimpleNamespace(created_at=start + timedelta(days=day),
                            value=None if isinstance(v, bool) else v,
                            is_done=v if isinstance(v, bool) else None)
            for day, v in rows]


@pytest.mark.parametrize("kr, rows, score", [
    # Increase / decrease: the final value's progress.
    (key_result("numeric", 0, 100), [(10, 40), (80, 70)], 0.7),
    (key_result("numeric", 0, 100), [(80, 130)], 1.0),
    (key_result("numeric", 24, 4), [(30, 10), (85, 9)], 0.75),
    (key_result("numeric", 0, 100), [], 0.0),
    (key_result("numeric", 0, 10, current=D(3)), [], 0.3),          # no check-in: its value
    (key_result("numeric", 0, 3, current=D(2), rollup="sum"), [(5, 1)], 0.67),  # contributors
    (key_result("numeric", 0, 3), [(1, D("0.999"))], 0.33),
    # Keep above / below: the share of the cycle it held (90 days).
    (key_result("keep_above", target=D("99.9")), [(0, D("99.95"))], 1.0),
    (key_result("keep_above", target=D("99.9")), [(0, D("99.95")), (45, D("99.5"))], 0.5),
    (key_result("keep_above", target=D("99.9")),
     [(0, D("99.95")), (30, D("99.5")), (39, D("99.92"))], 0.9),
    (key_result("keep_above", target=D("99.9")), [(-10, D("99.5")), (9, D("99.95"))], 0.9),
    (key_result("keep_above", target=D("99.9")), [(45, D("99.95"))], 1.0),  # from day 45 on
    (key_result("keep_below", target=2), [(0, 1), (60, 3)], 0.67),
    (key_result("keep_below", target=2), [(95, 3), (95, 1)], 0.5),  # after the end: by count
    (key_result("keep_below", target=2), [], 0.0),
    (key_result("keep_below", target=2, current=D(1)), [], 1.0),
    # Milestone: done or not.
    (key_result("milestone"), [(20, False), (70, True)], 1.0),
    (key_result("milestone"), [(20, True), (70, False)], 0.0),        # reopened
    (key_result("milestone", is_done=True), [], 1.0),
    (key_result("milestone"), [], 0.0),
    # Baseline: measured or not.
    (key_result("baseline"), [(40, D("12.5"))], 1.0),
    (key_result("baseline"), [], 0.0),
])
def test_the_proposed_score_per_kind(kr, rows, score):
    assert kinds.proposed_score(kr, check_ins(*rows)) == score


def test_every_kind_has_a_hint_an_explanation_and_a_score():
    for kind in KeyResult.Kind.values:
        kr = key_result(kind, 0, 10)
        assert kinds.HINTS[kind] and kinds.explain(kr)
        assert 0.0 <= kinds.proposed_score(kr, []) <= 1.0


@pytest.mark.parametrize("kr, words", [
    (key_result("numeric", 20, 50), "Increase from 20 to 50"),
    (key_result("numeric", 24, 4), "Decrease from 24 to 4"),
    (key_result("keep_above", target=D("99.9000")), "Keep at or above 99.9 all cycle"),
    (key_result("keep_below", target=D("2")), "as soon as it rises above 2"),
    (key_result("milestone"), "1.0 if it is done"),
    (key_result("baseline"), "success is having measured it"),
])
def test_the_explanation_names_the_kind_and_its_numbers(kr, words):
    assert words in kinds.explain(kr)


# Services --------------------------------------------------------------------------------------

pytestmark = pytest.mark.django_db


def add(world, **kw):
    args = dict(membership=world.admin, objective=world.objective, title="Uptime",
                kind="keep_above", start_value="98", target_value="99.9", unit="%")
    with scope(organization=world.org):
        return services.create_key_result(**(args | kw))


def test_a_threshold_key_result_keeps_its_threshold_and_no_start(world_a):
    kr = add(world_a)
    assert (kr.start_value, kr.target_value, kr.current_value) == (None, D("99.9"), None)
    assert kr.is_threshold and not kr.is_milestone


def test_a_threshold_key_result_needs_its_threshold(world_a):
    with pytest.raises(ValidationError) as e:
        add(world_a, kind="keep_below", target_value="")
    assert "threshold" in e.value.message_dict["target_value"][0]


def test_a_baseline_has_no_start_or_target_and_its_check_in_is_the_measured_value(world_a):
    kr = add(world_a, kind="baseline", title="Time to first reply", unit="h")
    assert (kr.start_value, kr.target_value) == (None, None)
    with scope(organization=world_a.org), pytest.raises(ValidationError) as e:
        services.record_check_in(membership=world_a.admin, key_result=kr, confidence=ON_TRACK)
    assert "value" in e.value.message_dict
    with scope(organization=world_a.org):
        services.record_check_in(membership=world_a.admin, key_result=kr, confidence=ON_TRACK,
                                 value="7.5")
        kr.refresh_from_db()
    assert kr.current_value == D("7.5")


def test_editing_a_threshold_moves_the_threshold(world_a):
    kr = add(world_a)
    with scope(organization=world_a.org):
        services.update_key_result(
            membership=world_a.admin, key_result=kr, version=kr.version, title="Uptime",
            start_value=None, target_value=D("99.95"), unit="%", owner_team=world_a.team,
            owner=None, weight=1)
        kr.refresh_from_db()
    assert kr.target_value == D("99.95") and kr.start_value is None


def test_only_increase_or_decrease_key_results_add_up_values(world_a):
    from dependencies.services import _check_contribution

    uptime = add(world_a)
    with scope(organization=world_a.org), pytest.raises(ValidationError) as e:
        _check_contribution(world_a.org, world_a.key_result, uptime, "mean")
    assert "increase or decrease" in e.value.message_dict["rollup"][0]


def test_the_recompute_judges_a_broken_threshold_off_track(world_a):
    from dependencies import network

    kr = add(world_a)
    with scope(organization=world_a.org):
        services.record_check_in(membership=world_a.admin, key_result=kr, confidence=ON_TRACK,
                                 value="99.2")
        network.run(world_a.cycle)
    with scopes_disabled():
        kr.refresh_from_db()
    assert kr.effective_health == OFF_TRACK


# Pages -----------------------------------------------------------------------------------------

def page(client, world, name, *args):
    return client.get(reverse(name, args=[world.org.slug, *args])).content.decode()


def test_the_key_result_form_offers_every_kind_with_a_hint(world_a, alice_client):
    html = page(alice_client, world_a, "key_result_new", world_a.objective.pk)
    for value, label in KeyResult.Kind.choices:
        assert f'value="{value}"' in html and label in html
    assert "The target is the threshold." in html and "success is having measured it" in html


def test_the_objective_page_explains_each_key_results_kind(world_a, alice_client):
    add(world_a)
    add(world_a, kind="baseline", title="Time to first reply", unit="h")
    html = page(alice_client, world_a, "objective", world_a.objective.pk)
    assert "Keep at or above 99.9 % all cycle" in html
    assert "keep at or above 99.9 %" in html and "Not measured yet" in html
    assert "It proposes a score of 1.0 if a value was measured" in html


def test_the_check_in_form_fits_the_kind(world_a, alice_client):
    baseline = add(world_a, kind="baseline", title="Time to first reply", unit="h")
    uptime = add(world_a)
    milestone = add(world_a, kind="milestone", title="Launch")
    html = page(alice_client, world_a, "check_in", baseline.pk)
    assert "Measured value" in html and "becomes this metric&#x27;s baseline" in html
    html = page(alice_client, world_a, "check_in", uptime.pk)
    assert "Latest value" in html and "It must stay at or above 99.9 %." in html
    html = page(alice_client, world_a, "check_in", milestone.pk)
    assert "Done?" in html and 'name="value"' not in html


def test_a_baseline_check_in_through_the_page_records_the_measured_value(world_a, alice_client):
    kr = add(world_a, kind="baseline", title="Time to first reply", unit="h")
    response = alice_client.post(reverse("check_in", args=[world_a.org.slug, kr.pk]),
                                 {"value": "12", "confidence": "on_track", "note": ""})
    assert response.status_code == 302
    with scopes_disabled():
        assert KeyResult.objects.get(pk=kr.pk).current_value == D(12)
        assert kinds.proposed_score(
            KeyResult.objects.select_related("objective__cycle").get(pk=kr.pk),
            list(kr.check_ins.order_by("created_at"))) == 1.0


def test_a_key_result_of_a_new_kind_is_created_through_the_form(world_a, alice_client):
    response = alice_client.post(
        reverse("key_result_new", args=[world_a.org.slug, world_a.objective.pk]),
        {"title": "p95 latency", "kind": "keep_below", "start_value": "", "target_value": "300",
         "unit": "ms", "weight": "1"})
    assert response.status_code == 302
    with scopes_disabled():
        kr = KeyResult.objects.get(title="p95 latency")
    assert (kr.kind, kr.target_value, kr.start_value) == ("keep_below", D(300), None)

