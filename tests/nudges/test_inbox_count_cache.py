"""The nav's "Needs me" count is cached per person: read from the cache while nothing it counts
has changed. After a change, a page shows the count it has and counts again after its response
(nobody's page waits for the count): right on the page after. After a person's own change
(a request that writes), right on their next page."""

import re
import time
from datetime import timedelta

import pytest
from django.core.cache import cache, caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from alignment import cascade
from alignment import services as workflows
from dependencies import ladder
from dependencies import services as network
from dependencies.models import Dependency
from nudges import inbox
from okrs import services as okrs
from okrs.models import KeyResult, Objective
from orgs import services as orgs
from orgs import versions
from orgs.models import Role
from tests.conftest import client_for
from tests.factories import ObjectiveFactory
from tests.nudges.test_inbox import member, populate

pytestmark = pytest.mark.django_db


def nav_count(r, user):
    """The count the nav shows on a page that does not count the inbox itself."""
    html = client_for(user).get(reverse("strategy", args=[r.org.slug])).content.decode()
    found = re.search(r'data-testid="inbox-count">(\d+)<', html)
    return int(found.group(1)) if found else 0


def truth(r, user):
    """The count from the rows, bypassing the cache."""
    with scope(organization=r.org):
        return sum(inbox.counts(inbox.Context(member(r, user))).values())


def test_the_count_is_read_from_the_cache_until_something_changes(revenue):
    r = populate(revenue)
    client = client_for(r.liam)
    url = reverse("strategy", args=[r.org.slug])
    client.get(url)
    with CaptureQueriesContext(connection) as cached:
        html = client.get(url).content.decode()
    assert f'data-testid="inbox-count">{truth(r, r.liam)}<' in html
    cache.clear()
    with CaptureQueriesContext(connection) as counted:
        client.get(url)
    # Counting is two queries: the teams, then every kind at once.
    assert len(counted) == len(cached) + 2


def _engineering_objective(r, title):
    with scopes_disabled():
        return ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.eng, parent=r.arr,
                                title=title)


def _request_to_ethan(r):
    upstream = _engineering_objective(r, "Pass the security review")
    with scope(organization=r.org):
        network.request_dependency(
            membership=member(r, r.mia), downstream=r.win, upstream=upstream,
            need="A security review", needed_by=r.cycle.end_date, fallback="We wait")


def _ethan_commits(r):
    with scope(organization=r.org):
        inbox.act(member(r, r.ethan), "request", r.dependency.pk, "commit")


def _mia_proposes(r):
    with scopes_disabled():
        draft = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.sales, parent=r.arr,
                                 title="Sell in two new regions", state=Objective.State.DRAFT)
    with scope(organization=r.org):
        cascade.submit_for_review(membership=member(r, r.mia), objective=draft)


def _liam_approves(r):
    with scope(organization=r.org):
        inbox.act(member(r, r.liam), "review", r.proposed.pk, "approve")


def _ethan_checks_in(r):
    with scope(organization=r.org):
        sso = KeyResult.objects.select_related("objective__cycle").get(pk=r.sso.pk)
        okrs.record_check_in(membership=member(r, r.ethan), key_result=sso,
                             confidence="on_track", is_done=False, note="On plan")


def _mia_raises_a_blocker(r):
    with scope(organization=r.org):
        workflows.post_update(membership=member(r, r.mia), workflow=r.workflow, team=r.sales,
                              text="No sandbox yet", is_blocker=True)


def _liam_becomes_a_member(r):
    with scope(organization=r.org):
        orgs.change_member(actor=member(r, r.world.admin.user), membership=member(r, r.liam),
                           role=Role.MEMBER, teams=[])


def _sales_gets_another_lead(r):
    with scope(organization=r.org):
        team = type(r.sales).objects.get(pk=r.sales.pk)
        orgs.save_team(actor=member(r, r.world.admin.user), team=team, name=team.name,
                       kind=team.kind, parent=team.parent, lead=r.liam, charter="")


def _a_queryset_update_settles_a_declined_request(r):
    # A queryset update sends no signal: the tenant queryset moves the version itself.
    with scope(organization=r.org):
        Dependency.objects.for_org(r.org).filter(pk=r.declined.pk).update(status="committed")


def _the_ladder_climbs(r):
    upstream = _engineering_objective(r, "Keep an audit log")
    with scope(organization=r.org):
        d = network.request_dependency(
            membership=member(r, r.mia), downstream=r.win, upstream=upstream,
            need="An audit log", needed_by=r.cycle.end_date, fallback="We wait")
    before = truth(r, r.liam)
    with scope(organization=r.org):
        ladder.climb(r.org, now=d.created_at + timedelta(days=15))
    assert truth(r, r.liam) > before


@pytest.mark.parametrize("action, who", [
    (_request_to_ethan, "ethan"),
    (_ethan_commits, "ethan"),
    (_ethan_commits, "liam"),  # the escalation of the same request leaves Liam's count
    (_mia_proposes, "liam"),
    (_liam_approves, "liam"),
    (_ethan_checks_in, "ethan"),
    (_mia_raises_a_blocker, "liam"),
    (_liam_becomes_a_member, "liam"),
    (_sales_gets_another_lead, "mia"),
    (_a_queryset_update_settles_a_declined_request, "liam"),
    (_the_ladder_climbs, "liam"),
])
def test_each_change_shows_in_the_count_once_counted_again_after_a_response(
        revenue, action, who):
    r = populate(revenue)
    user = {"ethan": r.ethan, "mia": r.mia, "liam": r.liam}[who]
    before = nav_count(r, user)
    assert before == truth(r, user)
    assert nav_count(r, user) == before  # now from the cache
    action(r)
    assert truth(r, user) != before
    # Shown as it was and counted again after the page; a new role is a new count, counted
    # at once.
    assert nav_count(r, user) in (before, truth(r, user))
    assert nav_count(r, user) == truth(r, user)


def test_a_page_after_a_change_does_not_count(revenue, monkeypatch):
    r = populate(revenue)
    client = client_for(r.liam)
    url = reverse("strategy", args=[r.org.slug])
    client.get(url)
    with CaptureQueriesContext(connection) as current:
        client.get(url)
    asked = []
    monkeypatch.setattr(inbox, "_recount_now_or_later",
                        lambda m: asked.append((m.organization_id, m.user_id)))
    _mia_raises_a_blocker(r)
    with CaptureQueriesContext(connection) as after:
        html = client.get(url).content.decode()
    assert len(after) == len(current)
    assert f'data-testid="inbox-count">{truth(r, r.liam) - 1}<' in html
    assert asked == [(r.org.pk, r.liam.pk)]  # when the response was closed
    client.get(url)
    assert len(asked) == 1  # asked for once, until counted
    inbox.recount(*asked[0])  # what the worker (or the thread after the response) does
    assert nav_count(r, r.liam) == truth(r, r.liam)


def test_a_persons_own_change_shows_on_their_next_page(revenue):
    """Ethan commits to the request from his inbox: the request that writes counts him again
    before it answers, so the very next page shows one item less."""
    r = populate(revenue)
    before = nav_count(r, r.ethan)
    client_for(r.ethan).post(reverse("inbox_act", args=[r.org.slug]),
                             {"kind": "request", "do": "commit", "pk": r.dependency.pk})
    assert truth(r, r.ethan) == before - 1
    assert nav_count(r, r.ethan) == before - 1


def test_a_write_that_moves_nothing_counts_nothing(revenue):
    r = populate(revenue)
    nav_count(r, r.liam)
    with CaptureQueriesContext(connection) as posted:
        client_for(r.liam).post(reverse("preferences", args=[r.org.slug]), {"timezone": "x"})
    assert not any("orgs_team" in q["sql"] and "lft" in q["sql"]
                   for q in posted.captured_queries)


def test_an_item_that_appears_with_time_shows_within_a_minute(revenue, monkeypatch):
    """A key result falls due without any write: the kept count is current for a minute."""
    r = populate(revenue)
    with scopes_disabled():
        Dependency.objects.filter(pk=r.dependency.pk).update(status="committed")
    with scope(organization=r.org):
        sso = KeyResult.objects.select_related("objective__cycle").get(pk=r.sso.pk)
        okrs.record_check_in(membership=member(r, r.ethan), key_result=sso,
                             confidence="on_track", is_done=False, note="On plan")
    before = nav_count(r, r.ethan)
    with connection.cursor() as cursor:  # a week passes: as if checked in eight days ago
        cursor.execute("UPDATE okrs_keyresult SET last_check_in_at = %s WHERE id = %s",
                       [timezone.now() - timedelta(days=8), r.sso.pk])
    assert truth(r, r.ethan) == before + 1
    assert nav_count(r, r.ethan) == before
    later = time.time() + inbox.COUNT_TTL + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert nav_count(r, r.ethan) == before  # shown, then counted again after the response
    assert nav_count(r, r.ethan) == before + 1


def test_one_organizations_changes_leave_anothers_cached_count(revenue, world_b, charlie):
    r = populate(revenue)
    before = versions.version(world_b.org.pk, "inbox")
    mine = versions.version(r.org.pk, "inbox")
    _request_to_ethan(r)
    assert versions.version(world_b.org.pk, "inbox") == before
    assert versions.version(r.org.pk, "inbox") != mine


def test_without_a_cache_the_count_is_counted(revenue, monkeypatch):
    """A cache that fails (Redis down) costs the two queries, never the page."""
    from redis.exceptions import ConnectionError as RedisDown

    r = populate(revenue)

    def down(*args, **kwargs):
        raise RedisDown("Connection refused")

    backend = type(caches["default"])
    monkeypatch.setattr(backend, "get_many", down)
    monkeypatch.setattr(backend, "set_many", down)
    monkeypatch.setattr(versions, "_skip_until", 0.0)
    assert nav_count(r, r.liam) == truth(r, r.liam) > 0
    _mia_raises_a_blocker(r)  # its bump fails too: the write still succeeds
    assert nav_count(r, r.liam) == truth(r, r.liam)
