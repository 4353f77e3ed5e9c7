"""The propagation run and writers: a run whose input changed while it computed computes again
under the organization lock, so what it writes is current; the recompute task is retried when
the run keeps colliding."""

import pytest
from django_scopes import scope

from dependencies import network, tasks
from dependencies.models import NetworkState
from okrs.models import KeyResult
from orgs import db

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_run_whose_input_changed_meanwhile_computes_again_under_the_lock(revenue,
                                                                          monkeypatch):
    r = revenue
    real_compute, calls = network._compute, []

    def compute_while_someone_checks_in(cycle, now):
        result = real_compute(cycle, now)
        calls.append(1)
        if len(calls) == 1:
            # A writer commits after the run has read: the SSO milestone slips.
            KeyResult.objects.filter(pk=r.sso.pk).update(confidence="off_track")
            network.mark_changed(cycle)
        return result

    monkeypatch.setattr(network, "_compute", compute_while_someone_checks_in)
    with scope(organization=r.org):
        network.run(r.cycle)
        assert len(calls) == 2
        assert KeyResult.objects.get(pk=r.deals.pk).effective_health == "at_risk"
        assert not NetworkState.objects.get(cycle=r.cycle).dirty


def test_the_recompute_task_is_retried_when_the_run_keeps_colliding(revenue, monkeypatch):
    r = revenue
    real_run, calls = network.run, []

    def run_that_collides_once(cycle, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise db.WriteConflict("Still colliding after 5 attempts.")
        return real_run(cycle, **kwargs)

    monkeypatch.setattr(network, "run", run_that_collides_once)
    result = tasks.propagate_cycle.apply(args=[r.cycle.pk], throw=False)
    assert result.successful()
    assert len(calls) == 2
    with scope(organization=r.org):
        assert not NetworkState.objects.get(cycle=r.cycle).dirty
