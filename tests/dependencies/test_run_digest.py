"""What the recompute hashes to decide what to do: the network's fingerprint
(``network.fingerprint``) covers every write of a row it reads, of any column, whoever makes it;
on PostgreSQL it hashes the rows' versions, which move with every write (a write that leaves
the text as it was too: a run then computes where it could have skipped, never the reverse);
the rules' check (``alignment.report._check``) knows the stored findings by their versions.
Whatever a digest lets a run skip or reuse, the run stores what a run from scratch stores."""

from datetime import date

import pytest
from django.db import connection  # noqa: F401 (read by the skipif conditions)
from django_scopes import scope, scopes_disabled

from alignment import report as alignment_report
from alignment.models import Finding
from dependencies import generate, network
from dependencies.models import Dependency
from okrs.models import KeyResult, Objective
from orgs.models import Cycle, Organization, Team
from tests.dependencies.test_fingerprint import full_runs, stored  # noqa: F401 (a fixture)
from tests.dependencies.test_incremental import (
    at,
    counted,  # noqa: F401 (a fixture, used by name)
    run,
    run_from_scratch_stores,
)
from tests.factories import CycleFactory, KeyResultFactory, ObjectiveFactory

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="row versions (xmin, ctid) exist on PostgreSQL only")


@pytest.fixture
def settled(revenue):
    """The revenue scenario with a generated network (findings of most rules), run until a
    run finds nothing changed."""
    r = revenue
    with scope(organization=r.org):
        generate.build(r.org, r.cycle, 40)
    run(r, at())
    run(r, at(minutes=1))
    assert run(r, at(minutes=2)).skipped
    return r


def fingerprint(r, minutes):
    with scope(organization=r.org):
        return network.fingerprint(r.cycle, at(minutes=minutes))


# Writes, by plain SQL-level updates (as a shell or the platform admin would), of columns the
# run does not read: the fingerprint covers whole rows, so each one still moves it.
def _objective_why(r):
    Objective.objects.filter(pk=r.win.pk).update(why="Because the board asked")


def _key_result_unit(r):
    KeyResult.objects.filter(pk=r.deals.pk).update(unit="deals")


def _dependency_fallback(r):
    Dependency.objects.filter(pk=r.dependency.pk).update(fallback="We ship without SSO")


def _team_type(r):
    Team.objects.filter(pk=r.eng.pk).update(team_type="shared")


def _cycle_name(r):
    Cycle.objects.filter(pk=r.cycle.pk).update(name="Q3, renamed")


def _organization_name(r):
    Organization.objects.filter(pk=r.org.pk).update(name="Acme, renamed")


def _finding_message(r):
    f = Finding.objects.filter(cycle=r.cycle).exclude(
        rule__in=alignment_report.TIMED_RULES).order_by("pk").first()
    Finding.objects.filter(pk=f.pk).update(message=f"{f.message} (edited)")


WRITES = {
    "an objective's why": _objective_why,
    "a key result's unit": _key_result_unit,
    "a dependency's fallback": _dependency_fallback,
    "a team's type": _team_type,
    "the cycle's name": _cycle_name,
    "the organization's name": _organization_name,
    "a stored finding's message": _finding_message,
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_a_write_of_any_column_of_a_row_the_run_reads_moves_the_fingerprint(settled, write):
    r = settled
    before = fingerprint(r, 3)
    assert fingerprint(r, 3) == before, "the same rows: the same digest"
    with scopes_disabled():
        write(r)
    assert fingerprint(r, 3) != before


def test_a_key_result_that_turns_stale_moves_the_fingerprint(settled):
    r = settled
    with scopes_disabled():
        KeyResult.objects.filter(pk=r.deals.pk).update(last_check_in_at=at(days=-14, minutes=30))
    assert fingerprint(r, 0) == fingerprint(r, 29)
    assert fingerprint(r, 29) != fingerprint(r, 31)  # fourteen days since its check-in


@postgresql_only
def test_the_fingerprint_is_one_statement(settled, django_assert_num_queries):
    r = settled
    with django_assert_num_queries(1):
        fingerprint(r, 3)


@postgresql_only
def test_a_part_digest_does_not_depend_on_the_order_rows_come_in(settled):
    """The parts are summed or sorted in SQL: where PostgreSQL keeps a row, and the plan it
    reads them with, change nothing."""
    r = settled
    sql = ("SELECT t.id, t.xmin, t.ctid FROM okrs_keyresult t WHERE t.organization_id = %(org)s "
           "ORDER BY t.id {direction}")
    text = ("SELECT t.id, t.title FROM okrs_keyresult t WHERE t.organization_id = %(org)s "
            "ORDER BY t.id {direction}")
    params = {"org": r.org.pk}
    for query, by_version in ((sql, True), (text, False)):
        ascending = network.digest_of([(query.format(direction="ASC"), by_version)], params, "")
        descending = network.digest_of([(query.format(direction="DESC"), by_version)], params,
                                       "")
        assert ascending == descending


@postgresql_only
def test_a_rewrite_with_the_same_values_makes_the_next_run_compute(settled, full_runs):  # noqa: F811
    """A version moves with every write, also one that leaves the row's text as it was: the
    run computes (it cannot tell the write changed nothing) and stores what it stored."""
    r = settled
    before = stored(r)
    full_runs.clear()
    with scopes_disabled():
        KeyResult.objects.filter(pk=r.deals.pk).update(title=r.deals.title)
    outcome = run(r, at(minutes=3))
    assert not outcome.skipped and full_runs["propagation"] == 1
    assert (outcome.changed, outcome.alerts) == (0, 0)
    assert stored(r) == before
    assert run(r, at(minutes=4)).skipped


@postgresql_only
def test_a_finding_rewritten_as_it_was_makes_the_rules_run_and_store_what_they_found(
        settled, counted):  # noqa: F811
    """The rules know the stored findings by their versions: a stored finding written again,
    even with the same text, is not the one they stored; they run and the report stays what a
    run from scratch stores."""
    r = settled
    before = stored(r)
    with scopes_disabled():
        f = Finding.objects.filter(cycle=r.cycle).exclude(
            rule__in=alignment_report.TIMED_RULES).order_by("pk").first()
        Finding.objects.filter(pk=f.pk).update(message=f.message)
    counted.clear()
    run(r, at(minutes=3))
    assert counted["rules run"] == 1, counted
    assert stored(r) == before
    counted.clear()
    assert run(r, at(minutes=4)).skipped
    run_from_scratch_stores(r, at(minutes=5), before, "rewritten")


def test_a_changed_finding_is_repaired_whatever_the_database(settled, counted):  # noqa: F811
    r = settled
    before = stored(r)
    with scopes_disabled():
        _finding_message(r)
    counted.clear()
    run(r, at(minutes=3))
    assert counted["rules run"] == 1, counted
    assert stored(r) == before


def test_the_fingerprint_of_a_cycle_ignores_another_cycles_rows(settled):
    """Key results, extra parents, shares and closes belong to a cycle through their
    objective: another cycle's leave this cycle's digest as it is."""
    r = settled
    before = fingerprint(r, 3)
    other = CycleFactory(organization=r.org, start_date=date(2099, 1, 1),
                         end_date=date(2099, 3, 31))
    later = ObjectiveFactory(organization=r.org, cycle=other, team=r.eng, title="Later")
    KeyResultFactory(objective=later, title="Sign 4 logos", owner_team=r.eng)
    assert fingerprint(r, 3) == before
    with scopes_disabled():
        KeyResult.objects.filter(objective=later).update(title="Sign 5 logos")
    assert fingerprint(r, 3) == before
