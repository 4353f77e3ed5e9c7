"""A recompute that finds nothing it reads changed (``network.fingerprint``) skips the work: it
must store exactly what a full run stores, and every kind of change must make it run in full."""

from collections import Counter
from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from alignment import report as alignment_report
from alignment.models import Finding, FindingsReport
from dependencies import generate, network
from dependencies.models import Dependency, NetworkState
from okrs.models import KeyResult, Objective
from okrs.services import record_check_in
from orgs.models import Team
from tests.factories import DependencyFactory, KeyResultFactory

pytestmark = pytest.mark.django_db


def at(days=0, hours=9, minutes=0):
    """A moment inside the cycle (the factories' cycle started 45 days ago), local time."""
    day = timezone.localdate() + timedelta(days=days)
    return timezone.make_aware(datetime.combine(day, time(hours, minutes)))


@pytest.fixture
def full_runs(monkeypatch):
    """Counts the runs that computed the propagation and ran every rule."""
    calls = Counter()
    compute, findings = network._compute, alignment_report.findings

    def counted_compute(*args, **kwargs):
        calls["propagation"] += 1
        return compute(*args, **kwargs)

    def counted_findings(*args, **kwargs):
        calls["rules"] += 1
        return findings(*args, **kwargs)

    monkeypatch.setattr(network, "_compute", counted_compute)
    monkeypatch.setattr(alignment_report, "findings", counted_findings)
    return calls


def run(r, now):
    with scope(organization=r.org):
        return network.run(r.cycle, now=now)


def stored(r):
    """Everything a run writes that pages read."""
    with scope(organization=r.org):
        objectives = sorted(Objective.objects.for_org(r.org).filter(cycle=r.cycle).values_list(
            "id", "effective_health", "risk_causes", "rolled_progress", "risk_above", "impact"))
        key_results = sorted(KeyResult.objects.for_org(r.org).filter(
            objective__cycle=r.cycle).values_list("id", "effective_health", "risk_causes",
                                                  "current_value"))
        findings = Counter(Finding.objects.for_org(r.org).filter(cycle=r.cycle).values_list(
            "rule", "severity", "message", "who", "objective_id", "key_result_id",
            "dependency_id"))
        report = FindingsReport.objects.for_org(r.org).filter(cycle=r.cycle).values(
            "total", "high", "medium", "low").get()
        state = NetworkState.objects.for_org(r.org).filter(cycle=r.cycle).values(
            "dirty", "skipped", "last_nodes", "last_edges").get()
    return objectives, key_results, findings, report, state


def full_run_stores(r, now):
    """What a run from scratch (no fingerprint) stores at ``now``; it changes nothing more."""
    with scopes_disabled():
        NetworkState.objects.filter(cycle=r.cycle).update(fingerprint="")
    outcome = run(r, now)
    assert outcome.changed == 0 and outcome.alerts == 0
    return stored(r)


@pytest.fixture
def network_with_findings(revenue):
    """The revenue scenario with a slipped upstream, a generated network around it (findings of
    most rules, roll-ups, shared key results, dependencies), a key result that never had a
    check-in and a dependency nobody answered."""
    r = revenue
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 200)
        KeyResult.objects.filter(pk=r.sso.pk).update(confidence="off_track")
    return r


def test_a_run_with_nothing_changed_skips_and_stores_what_a_full_run_stores(
        network_with_findings, full_runs):
    r = network_with_findings
    first = run(r, at())
    assert first.changed > 0 and full_runs == {"propagation": 1, "rules": 1}
    after_first = stored(r)
    assert after_first[2], "the generated network has findings"
    second = run(r, at(minutes=5))  # a full run: the first one changed what it reads
    assert second.changed == 0 and full_runs == {"propagation": 2, "rules": 2}
    skipped = run(r, at(minutes=10))
    assert full_runs == {"propagation": 2, "rules": 2}, "nothing changed: nothing recomputed"
    assert (skipped.nodes, skipped.edges, skipped.changed) == (second.nodes, second.edges, 0)
    assert skipped.skipped and not second.skipped
    assert stored(r) == after_first
    assert full_run_stores(r, at(minutes=10)) == after_first
    with scope(organization=r.org):
        state = NetworkState.objects.get(cycle=r.cycle)
    assert not state.dirty and state.computed_at == at(minutes=10)


def test_a_skipped_run_clears_the_dirty_mark(network_with_findings, full_runs):
    r = network_with_findings
    run(r, at())
    run(r, at(minutes=1))
    with scope(organization=r.org):
        NetworkState.objects.filter(cycle=r.cycle).update(dirty=True)
    run(r, at(minutes=2))
    assert full_runs["propagation"] == 2
    with scope(organization=r.org):
        assert not NetworkState.objects.get(cycle=r.cycle).dirty


def check_in(r):
    with scope(organization=r.org):
        record_check_in(membership=r.mia_m, key_result=r.deals, confidence="at_risk",
                        value=Decimal(20))


def retitle(r):
    # Only the rules read titles: the copy of its parent's title is a finding.
    with scope(organization=r.org):
        Objective.objects.filter(pk=r.win.pk).update(title=r.arr.title)


def break_dependency(r):
    with scope(organization=r.org):
        KeyResult.objects.filter(pk=r.sso.pk).update(confidence="on_track")
        Dependency.objects.filter(pk=r.dependency.pk).update(status=Dependency.Status.BROKEN)


def rename_team(r):
    with scope(organization=r.org):
        Team.objects.filter(pk=r.eng.pk).update(name="Platform")


def go_strict(r):
    with scopes_disabled():
        type(r.org).objects.filter(pk=r.org.pk).update(alignment_model="strict")


def damage_a_result(r):
    with scope(organization=r.org):
        Objective.objects.filter(pk=r.win.pk).update(effective_health="on_track", risk_causes=[])


def lose_a_finding(r):
    with scope(organization=r.org):
        Finding.objects.filter(cycle=r.cycle).exclude(
            rule__in=alignment_report.TIMED_RULES).order_by("pk").first().delete()


def move_a_team(r):
    # Who is on a team counts in an at-risk objective's impact.
    with scopes_disabled():
        r.mia_m.teams.add(r.eng)


CHANGES = {
    "a check-in": check_in,
    "a title": retitle,
    "a dependency's state": break_dependency,
    "a team's name": rename_team,
    "the alignment model": go_strict,
    "a stored result": damage_a_result,
    "a stored finding": lose_a_finding,
    "a team's members": move_a_team,
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_each_change_to_what_a_run_reads_makes_it_run_in_full(
        network_with_findings, full_runs, change):
    r = network_with_findings
    run(r, at())
    run(r, at(minutes=1))
    run(r, at(minutes=2))
    assert full_runs["propagation"] == 2, "the third run found nothing changed"
    change(r)
    run(r, at(minutes=3))
    assert full_runs == {"propagation": 3, "rules": 3}
    after = stored(r)
    assert full_run_stores(r, at(minutes=3)) == after


def test_a_new_day_makes_it_run_in_full(network_with_findings, full_runs):
    r = network_with_findings
    run(r, at())
    run(r, at(minutes=1))
    run(r, at(hours=23, minutes=59))
    assert full_runs["propagation"] == 2, "the same day: nothing changed"
    run(r, at(days=1, hours=0, minutes=1))  # pace: another share of the cycle has gone
    assert full_runs["propagation"] == 3
    assert stored(r) == full_run_stores(r, at(days=1, hours=0, minutes=1))


def test_a_key_result_turning_stale_makes_it_run_in_full(revenue, full_runs):
    r = revenue
    with scope(organization=r.org):
        KeyResult.objects.filter(pk=r.deals.pk).update(
            last_check_in_at=at() - timedelta(days=14, minutes=-30))
    run(r, at())
    run(r, at(minutes=5))
    run(r, at(minutes=10))
    assert full_runs["propagation"] == 2, "the third run found nothing changed"
    deals = stored(r)[1]
    run(r, at(minutes=31))  # fourteen days and a minute since its last check-in
    assert full_runs["propagation"] == 3
    assert stored(r)[1] != deals
    with scope(organization=r.org):
        assert KeyResult.objects.get(pk=r.deals.pk).effective_health == ""
    assert stored(r) == full_run_stores(r, at(minutes=31))


def test_a_new_version_of_the_code_makes_it_run_in_full(network_with_findings, full_runs,
                                                        monkeypatch):
    r = network_with_findings
    run(r, at())
    run(r, at(minutes=1))
    run(r, at(minutes=2))
    assert full_runs["propagation"] == 2
    monkeypatch.setattr(network, "_CODE_VERSION", "another version of the rules")
    run(r, at(minutes=3))
    assert full_runs["propagation"] == 3


def test_the_rules_that_read_the_clock_still_run_when_nothing_changed(revenue, full_runs):
    """Without a check-in, a key result goes stale by its creation date, which the propagation
    does not read; a request goes unanswered by its date: both during a day, data unchanged."""
    r = revenue
    with scope(organization=r.org):
        quiet = KeyResultFactory(objective=r.win, title="Renew 5 contracts", owner=r.mia,
                                 owner_team=r.sales, confidence="")
        KeyResult.objects.filter(pk=quiet.pk).update(
            created_at=at() - timedelta(days=14, minutes=-30))
        ask = DependencyFactory(downstream=r.deals, upstream=r.sso,
                                status=Dependency.Status.REQUESTED, need="SSO docs")
        Dependency.objects.filter(pk=ask.pk).update(
            created_at=at() - timedelta(days=r.org.escalate_after_days, minutes=-45))
    run(r, at())
    run(r, at(minutes=1))
    run(r, at(minutes=2))
    assert full_runs["propagation"] == 2, "the third run found nothing changed"
    rules = {f[0] for f in stored(r)[2]}
    assert "stale" not in rules and "unowned_dependency" not in rules
    run(r, at(minutes=50))
    assert full_runs["propagation"] == 2
    found = stored(r)[2]
    messages = [f[2] for f in found]
    assert "“Renew 5 contracts” has had no check-in for 14 days." in messages
    assert any(f[0] == "unowned_dependency" for f in found)
    assert stored(r) == full_run_stores(r, at(minutes=50))
    # The day count in a message moves while the data stays the same: a run that skips the
    # rest writes it.
    run(r, at(days=1, hours=9))  # a new day: a full run
    run(r, at(days=1, hours=9, minutes=20))
    assert full_runs["propagation"] == 4
    assert "“Renew 5 contracts” has had no check-in for 14 days." in [f[2] for f in stored(r)[2]]
    run(r, at(days=1, hours=9, minutes=40))
    assert full_runs["propagation"] == 4
    after = stored(r)
    assert "“Renew 5 contracts” has had no check-in for 15 days." in [f[2] for f in after[2]]
    assert after == full_run_stores(r, at(days=1, hours=9, minutes=40))
