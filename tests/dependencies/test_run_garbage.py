"""What a run leaves to Python's cyclic garbage collector (``network._gc_paused``): the objects
it made go to the oldest generation, so the task that ran it (and a worker's next task) does
not wait for a young collection over all of them; a reference cycle among them is still found
by a full collection; and objects a caller froze out of the collector stay frozen."""

import gc
import weakref

import pytest
from django_scopes import scope

from dependencies import generate, network
from tests.dependencies.test_incremental import at, run

pytestmark = pytest.mark.django_db


@pytest.fixture
def cycle_made(revenue, monkeypatch):
    """A run that leaves one reference cycle behind (made in its write phase); a weak
    reference to it."""
    made = []
    alert = network._alert

    def alert_and_a_cycle(*args, **kwargs):
        class Loop:
            pass

        loop = Loop()
        loop.me = loop
        made.append(weakref.ref(loop))
        return alert(*args, **kwargs)

    monkeypatch.setattr(network, "_alert", alert_and_a_cycle)
    with scope(organization=revenue.org):
        generate.build(revenue.org, revenue.cycle, 160)
    return made


def _in_generation(obj, generation):
    return any(o is obj for o in gc.get_objects(generation=generation))


def test_a_run_leaves_its_objects_in_the_oldest_generation(revenue, cycle_made):
    network.forget()
    gc.collect()
    assert gc.isenabled()
    run(revenue, at())
    assert gc.isenabled()
    results = network._GRAPHS[revenue.cycle.pk].results  # kept for the next run
    assert _in_generation(results, 2)
    # A run from nothing of 160 nodes makes tens of thousands of objects, most of them kept.
    assert len(gc.get_objects(generation=0)) < 2000
    assert cycle_made and cycle_made[0]() is not None, "no young collection went over it"
    gc.collect()
    assert cycle_made[0]() is None, "a full collection finds the run's cycles"


def test_objects_a_caller_froze_stay_frozen(revenue, cycle_made):
    network.forget()
    gc.collect()
    frozen = [object()]
    gc.freeze()
    try:
        run(revenue, at())
        assert gc.isenabled()
        assert not any(o is frozen for o in gc.get_objects()), "still frozen"
    finally:
        gc.unfreeze()
    assert _in_generation(frozen, 2)
    gc.collect()
    assert cycle_made[0]() is None
