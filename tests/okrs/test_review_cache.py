"""The cycle review is computed once per change: its cycle-wide figures and its downloads come
from the cache until something they read changes, and then they are right on the next
request."""

import datetime as dt
import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from alignment import services as workflows
from dependencies import network
from dependencies.models import Dependency, DependencyEvent
from okrs import review, review_export
from okrs.models import CheckIn, KeyResult, Objective
from okrs.views_review import full_review
from orgs import services as orgs
from orgs.models import Cycle, Membership

from ..factories import CheckInFactory, CycleFactory, KeyResultFactory
from .test_review import close, improvement, objective, set_cycle, url

pytestmark = pytest.mark.django_db


def fresh_markdown(w, cycle=None):
    """The Markdown computed from the rows, bypassing the cache."""
    with scope(organization=w.org):
        return review_export.markdown(full_review(w.org, cycle or w.cycle))


def main_of(response):
    html = response.content.decode()
    return re.sub(r'nonce="[^"]*"', "", html[html.index('<main id="main"'):html.index("</main>")])


def queries_of(client, address):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(address)
    assert response.status_code == 200
    return len(ctx)


def test_the_page_and_the_markdown_read_the_cycle_wide_figures_once(world_a, alice_client):
    w = world_a
    objective(w, score=1.0)
    close(objective(w), "missed", learned="Plan the migration first")
    first = queries_of(alice_client, url(w))
    again = queries_of(alice_client, url(w))
    # The summary, the diagnostic, the company's and departments' rows, the broken
    # dependencies' and improvements' counts, and the first page of each list: cached.
    assert again <= first - 7
    assert queries_of(alice_client, url(w, "cycle_review_md")) > queries_of(
        alice_client, url(w, "cycle_review_md")) + 5


def _score(w):
    with scopes_disabled():
        o = Objective.objects.get(pk=w.objective.pk)
        o.score = 0.3
        o.save(update_fields=["score"])


def _close_form(w):
    close(objective(w, title="Migrate billing"), "missed", learned="Start earlier")


def _decline_through_a_queryset(w):
    with scope(organization=w.org):
        Dependency.objects.for_org(w.org).filter(pk=w.dependency.pk).update(status="declined")


def _note_on_a_broken_dependency(w):
    with scopes_disabled():
        Dependency.objects.filter(pk=w.dependency.pk).update(status="broken")
    with scope(organization=w.org):
        DependencyEvent.objects.create(organization=w.org, dependency=w.dependency,
                                       status="broken", note="The vendor left")


def _improvement_done(w):
    item = improvement(w.workflow, "Shorter syncs", "open", w.admin.user)
    with scope(organization=w.org):
        workflows.set_improvement_status(membership=w.admin, improvement=item, status="done")


def _team_renamed(w):
    with scope(organization=w.org):
        team = type(w.team).objects.get(pk=w.team.pk)
        orgs.save_team(actor=w.admin, team=team, name="Core Engineering", kind=team.kind,
                       parent=team.parent, lead=team.lead)


def _cycle_closed(w):
    set_cycle(w.cycle, status="closed", closed_at=timezone.now())


@pytest.mark.parametrize("change", [
    _score, _close_form, _decline_through_a_queryset, _note_on_a_broken_dependency,
    _improvement_done, _team_renamed, _cycle_closed,
])
def test_each_change_shows_in_the_review_on_the_next_request(world_a, alice_client, change):
    w = world_a
    objective(w, score=1.0)
    close(objective(w), "accomplished", learned="Keep the weekly demo")
    before = alice_client.get(url(w, "cycle_review_md")).content.decode()
    assert before == fresh_markdown(w)
    change(w)
    w.cycle.refresh_from_db()
    after = alice_client.get(url(w, "cycle_review_md")).content.decode()
    assert after == fresh_markdown(w)
    assert after != before
    page = main_of(alice_client.get(url(w)))
    cache.clear()
    assert page == main_of(alice_client.get(url(w)))  # as computed from the rows


def test_a_recompute_of_health_shows_in_the_review(world_a, alice_client):
    """The propagation run writes effective health with raw SQL: a dependency whose upstream
    turned off track counts as at risk once the run has written it."""
    w = world_a
    with scopes_disabled():
        Dependency.objects.filter(pk=w.dependency.pk).update(needed_by=w.cycle.end_date)
        KeyResultFactory(objective=w.other_objective, confidence="off_track",
                         last_check_in_at=timezone.now())
        cycle = Cycle.objects.get(pk=w.cycle.pk)
    before = alice_client.get(url(w, "cycle_review_md")).content.decode()
    assert "at risk or off track" not in before
    with scope(organization=w.org):
        network.run(cycle)
    after = alice_client.get(url(w, "cycle_review_md")).content.decode()
    assert after == fresh_markdown(w)
    assert "Open while what it needs was at risk or off track" in after


def test_check_ins_show_in_an_open_cycles_rhythm(world_a, alice_client):
    w = world_a
    now = timezone.now()
    with scopes_disabled():
        krs = [KeyResultFactory(objective=objective(w, score=0.2)) for _ in range(3)]
    before = alice_client.get(url(w, "cycle_review_md")).content.decode()
    assert "The rhythm broke" in before
    with scopes_disabled():  # every missed KR checked in on every two weeks since the start
        for kr in krs:
            for days in range(0, (now.date() - w.cycle.start_date).days + 1, 7):
                CheckInFactory(key_result=kr, created_at=now - dt.timedelta(days=days))
    after = alice_client.get(url(w, "cycle_review_md")).content.decode()
    assert after == fresh_markdown(w)
    assert "The targets were wrong" in after


def test_a_check_in_in_the_running_cycle_leaves_a_closed_cycles_review_cached(
        world_a, alice_client, monkeypatch):
    w = world_a
    with scopes_disabled():
        closed = CycleFactory(organization=w.org, name="Last quarter",
                              start_date=w.cycle.start_date - dt.timedelta(days=91),
                              end_date=w.cycle.start_date - dt.timedelta(days=1))
        objective(w, cycle=closed, score=0.8)
        Cycle.objects.filter(pk=closed.pk).update(status="closed", closed_at=timezone.now())
        closed.refresh_from_db()
        kr = KeyResult.objects.filter(objective__cycle=w.cycle).first()
        m = Membership.objects.select_related("organization").get(pk=w.admin.pk)
    computed = []
    figures = review.figures
    monkeypatch.setattr(review, "figures", lambda *a: computed.append(1) or figures(*a))
    alice_client.get(url(w, cycle=closed))
    alice_client.get(url(w, cycle=closed))
    assert len(computed) == 1
    with scope(organization=w.org):
        from okrs import services as okrs

        okrs.record_check_in(membership=m, key_result=KeyResult.objects.select_related(
            "objective__cycle").get(pk=kr.pk), confidence="at_risk", value=kr.start_value,
            note="Slower than planned")
        assert CheckIn.objects.filter(key_result=kr).exists()
    alice_client.get(url(w, cycle=closed))
    assert len(computed) == 1
    text = alice_client.get(url(w, "cycle_review_md", cycle=closed)).content.decode()
    assert text == fresh_markdown(w, closed)
