"""The propagation on the database: effective health, root-cause paths, alerts and batching."""

from decimal import Decimal

import pytest
from django.core import mail
from django_scopes import scope

from dependencies import network
from dependencies.models import AlertEmail, Dependency, Notification, PropagationRun
from okrs.models import KeyResult, Objective
from okrs.services import record_check_in
from tests.factories import DependencyFactory, KeyResultFactory
from tests.querycount import count_queries

pytestmark = pytest.mark.django_db


def run(r, capture):
    with scope(organization=r.org), capture(execute=True):
        return network.run(r.cycle)


def fresh(obj):
    with scope(organization=obj.organization):
        return type(obj).objects.get(pk=obj.pk)


def slip_sso(r):
    with scope(organization=r.org):
        KeyResult.objects.filter(pk=r.sso.pk).update(confidence="off_track")


def test_an_off_track_upstream_puts_the_dependent_at_risk_with_its_root_cause(
        revenue, django_capture_on_commit_callbacks):
    r = revenue
    run(r, django_capture_on_commit_callbacks)
    assert fresh(r.deals).effective_health == "on_track"
    slip_sso(r)
    run(r, django_capture_on_commit_callbacks)
    deals, win, arr = fresh(r.deals), fresh(r.win), fresh(r.arr)
    assert fresh(r.sso).effective_health == "off_track"
    assert deals.effective_health == "at_risk"
    [path] = deals.risk_causes
    assert [n["title"] for n in path] == ["Ship SSO"]
    assert path[0]["team"] == "Engineering" and path[0]["health"] == "off_track"
    assert win.effective_health == "at_risk"
    assert [n["title"] for n in win.risk_causes[0]] == ["Ship SSO", "Close 3 enterprise deals"]
    # The company objective takes in both departments: Engineering's objective is off track
    # on its own, Sales' is at risk because of it. The slip is counted once: averaged with an
    # on-track Sales it is at risk; what the dependency adds on top is at most at risk.
    assert arr.effective_health == "at_risk"
    titles = [[n["title"] for n in p] for p in arr.risk_causes]
    assert ["Make the platform enterprise-ready"] in titles
    assert ["Ship SSO", "Close 3 enterprise deals", "Win enterprise customers"] in titles


def test_the_owner_is_notified_at_once_and_gets_one_email_with_the_root_cause(
        revenue, django_capture_on_commit_callbacks):
    r = revenue
    run(r, django_capture_on_commit_callbacks)
    mail.outbox.clear()
    slip_sso(r)
    run(r, django_capture_on_commit_callbacks)
    with scope(organization=r.org):
        notes = list(Notification.objects.filter(user=r.mia).order_by("title"))
    # Mia owns the deals KR and leads Sales (the objective): two items, one email.
    assert [(n.title, n.kind, n.health) for n in notes] == [
        ("Close 3 enterprise deals", "worse", "at_risk"),
        ("Win enterprise customers", "worse", "at_risk"),
    ]
    to_mia = [m for m in mail.outbox if m.to == ["mia@a.test"]]
    assert len(to_mia) == 1
    body = to_mia[0].body
    assert "Close 3 enterprise deals" in body and "Ship SSO" in body and "Engineering" in body
    # Each cause says which reason it is: here an upstream dependency, at risk not off track.
    assert "Upstream dependency: “Ship SSO” (Engineering) is off track." in body
    assert "2 items at risk from upstream" in to_mia[0].subject
    html = to_mia[0].alternatives[0].content
    assert "Upstream dependency: “Ship SSO” (Engineering) is off track." in html
    # Ethan's own KR is off track by his own check-in: no "because of something else" alert,
    # only the impact of his department objective turning off track.
    with scope(organization=r.org):
        assert set(Notification.objects.filter(user=r.ethan).values_list("kind", flat=True)) \
            == {"impact"}


def test_running_twice_changes_nothing_and_sends_nothing_more(
        revenue, django_capture_on_commit_callbacks):
    r = revenue
    slip_sso(r)
    first = run(r, django_capture_on_commit_callbacks)
    sent = len(mail.outbox)
    second = run(r, django_capture_on_commit_callbacks)
    assert first.changed > 0 and second.changed == 0
    assert len(mail.outbox) == sent
    with scope(organization=r.org):
        assert PropagationRun.objects.count() == 1


def test_recovery_is_announced_and_clears_the_path(revenue, django_capture_on_commit_callbacks):
    r = revenue
    slip_sso(r)
    run(r, django_capture_on_commit_callbacks)
    with scope(organization=r.org):
        KeyResult.objects.filter(pk=r.sso.pk).update(confidence="on_track")
    run(r, django_capture_on_commit_callbacks)
    deals = fresh(r.deals)
    assert deals.effective_health == "on_track" and deals.risk_causes == []
    with scope(organization=r.org):
        assert Notification.objects.filter(user=r.mia, kind="recovered").count() == 2


def test_retiring_the_upstream_objective_lifts_the_risk(
        revenue, django_capture_on_commit_callbacks):
    r = revenue
    slip_sso(r)
    run(r, django_capture_on_commit_callbacks)
    with scope(organization=r.org):
        Objective.objects.filter(pk=r.platform.pk).update(state="retired")
    run(r, django_capture_on_commit_callbacks)
    assert fresh(r.deals).effective_health == "on_track"


def test_delivered_dependency_no_longer_propagates_and_broken_one_does(
        revenue, django_capture_on_commit_callbacks):
    r = revenue
    slip_sso(r)
    with scope(organization=r.org):
        Dependency.objects.filter(pk=r.dependency.pk).update(status="delivered")
    run(r, django_capture_on_commit_callbacks)
    assert fresh(r.deals).effective_health == "on_track"
    with scope(organization=r.org):
        KeyResult.objects.filter(pk=r.sso.pk).update(confidence="on_track")
        Dependency.objects.filter(pk=r.dependency.pk).update(status="broken")
    run(r, django_capture_on_commit_callbacks)
    assert fresh(r.deals).effective_health == "at_risk"


def test_a_shared_key_result_adds_up_its_contributors(
        revenue, django_capture_on_commit_callbacks):
    r = revenue
    shared = KeyResultFactory(objective=r.arr, title="New ARR", start_value=0,
                              target_value=Decimal(12), current_value=0, rollup="sum")
    KeyResultFactory(objective=r.win, title="Sales ARR", current_value=Decimal(5), feeds=shared)
    KeyResultFactory(objective=r.platform, title="Self-serve ARR", current_value=Decimal(2),
                     feeds=shared)
    run(r, django_capture_on_commit_callbacks)
    assert fresh(shared).current_value == Decimal(7)
    with scope(organization=r.org):
        KeyResult.objects.filter(pk=shared.pk).update(rollup="mean")
    run(r, django_capture_on_commit_callbacks)
    assert fresh(shared).current_value == Decimal("3.5")


def test_five_items_for_one_person_make_one_email(revenue, django_capture_on_commit_callbacks):
    r = revenue
    for i in range(4):
        kr = KeyResultFactory(objective=r.win, title=f"Deal stream {i}", owner=r.mia,
                              current_value=Decimal(60), confidence="on_track")
        DependencyFactory(downstream=kr, upstream=r.sso)
    run(r, django_capture_on_commit_callbacks)
    mail.outbox.clear()
    slip_sso(r)
    run(r, django_capture_on_commit_callbacks)
    with scope(organization=r.org):
        kr_alerts = Notification.objects.filter(user=r.mia, key_result__isnull=False).count()
        assert AlertEmail.objects.filter(user=r.mia).count() == 1
    assert kr_alerts == 5
    # (Ethan and Liam hear of the impact of Engineering's objective turning off track.)
    [to_mia] = [m for m in mail.outbox if m.to == ["mia@a.test"]]
    assert all(f"Deal stream {i}" in to_mia.body for i in range(4))


def test_check_in_through_the_service_recomputes_after_commit(
        revenue, django_capture_on_commit_callbacks):
    r = revenue
    with scope(organization=r.org), django_capture_on_commit_callbacks(execute=True):
        record_check_in(membership=r.ethan_m, key_result=fresh(r.sso), confidence="off_track",
                        is_done=False, note="Vendor slipped")
    assert fresh(r.deals).effective_health == "at_risk"


def test_query_count_does_not_grow_with_the_network(world_a, world_b):
    from dependencies import generate

    counts = {}
    for world, size in ((world_a, 50), (world_b, 2000)):
        with scope(organization=world.org):
            generate.build(world.org, world.cycle, size)
            outcome, counts[size], sql = count_queries(lambda w=world: network.run(w.cycle))
        assert outcome.nodes >= size
    # Reads (state, objectives, key results, dependencies, shares), one JSON-fed UPDATE per
    # table, the bookkeeping and the alerts: the same handful whatever the size.
    assert counts[50] == counts[2000], sql


def test_a_broker_outage_loses_nothing(revenue, django_capture_on_commit_callbacks,
                                       monkeypatch):
    from kombu.exceptions import OperationalError

    from config.celery import app
    from dependencies import tasks
    from dependencies.models import NetworkState

    r = revenue
    # The broker is down when the check-in commits: the request still succeeds, and the
    # recompute runs in-process instead.
    app.conf.task_always_eager = False

    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(tasks.propagate_cycle, "delay", down)
    with scope(organization=r.org), django_capture_on_commit_callbacks(execute=True):
        record_check_in(membership=r.ethan_m, key_result=fresh(r.sso), confidence="off_track",
                        is_done=False)
    assert fresh(r.deals).effective_health == "at_risk"

    # A change whose task never ran (a worker lost it) stays marked; the sweep redoes it.
    app.conf.task_always_eager = True
    monkeypatch.undo()
    with scope(organization=r.org):
        KeyResult.objects.filter(pk=r.sso.pk).update(confidence="on_track")
        network.mark_changed(r.cycle)  # outside any on-commit capture: nothing is enqueued
        assert NetworkState.objects.get(cycle=r.cycle).dirty
    assert tasks.sweep_network.delay().get() == 1
    assert fresh(r.deals).effective_health == "on_track"
    with scope(organization=r.org):
        assert not NetworkState.objects.get(cycle=r.cycle).dirty


def test_the_recompute_assesses_a_generated_network_as_assess_does(world_a):
    """The recompute reads rows with a plain cursor and assesses them without sentences: the
    rows and the own healths are what the queryset and ``okrs.progress.assess_*`` give."""
    import random
    from collections import defaultdict
    from datetime import timedelta

    from django.utils import timezone

    from dependencies import generate
    from okrs import progress

    org, cycle, now = world_a.org, world_a.cycle, timezone.now()
    rng = random.Random(3)
    with scope(organization=org):
        generate.build(org, cycle, 900)
        krs = list(KeyResult.objects.for_org(org).filter(objective__cycle=cycle))
        for kr in krs:  # a bit of everything: milestones, decreasing metrics, no check-in...
            pick = rng.random()
            if pick < 0.15:
                kr.kind, kr.start_value, kr.target_value, kr.current_value = (
                    "milestone", None, None, None)
                kr.is_done = rng.random() < 0.5
            elif pick < 0.3:
                kr.start_value, kr.target_value = Decimal(24), Decimal(4)
                kr.current_value = Decimal(rng.randint(0, 30))
            elif pick < 0.4:
                kr.current_value = None
            kr.confidence = rng.choice(["", "on_track", "at_risk", "off_track"])
            kr.weight = rng.choice([Decimal(1), Decimal("0.3"), Decimal("2.5")])
            kr.last_check_in_at = now - timedelta(days=rng.randint(0, 30))
        KeyResult.objects.for_org(org).bulk_update(
            krs, ["kind", "start_value", "target_value", "current_value", "is_done",
                  "confidence", "weight", "last_check_in_at"])
        rows = (KeyResult.objects.for_org(org).filter(objective__cycle=cycle)
                .values("id", "title", "start_value", "weight", "last_check_in_at",
                        causes_text=network.CAUSES_TEXT))
        assert network._rows(rows) == list(rows)
        data = network._load(cycle)
        own, _, _ = network._own_health_and_edges(cycle, data, now)

    elapsed = progress.elapsed_share(cycle.start_date, cycle.end_date, timezone.localdate(now))
    expected, parts = {}, defaultdict(list)
    for pk, k in data["key_results"].items():
        a = progress.assess_key_result(
            is_milestone=k["kind"] == "milestone", start=k["start_value"],
            target=k["target_value"], current=k["current_value"], is_done=k["is_done"],
            confidence=k["confidence"] or None, last_check_in=k["last_check_in_at"],
            elapsed=elapsed, now=now)
        expected[("k", pk)] = a.health
        parts[k["objective_id"]].append((a, k["weight"]))
    for pk in data["objectives"]:
        expected[("o", pk)] = progress.assess_objective(parts[pk]).health
    assert own == expected
    assert len(set(own.values())) == 4  # on track, at risk, off track and unknown all occur
