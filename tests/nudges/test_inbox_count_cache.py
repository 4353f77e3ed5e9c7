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
from django.db.models import Count, IntegerField, Value
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


# A request's own writes count again only the kinds that read a table they wrote.

def _count_queries(queries):
    """The SQL of the counting queries (every kind's subquery in one query)."""
    return [q["sql"] for q in queries if 'FROM "orgs_organization"' in q["sql"]
            and "COUNT(DISTINCT" in q["sql"]]


def _tables_of(sql):
    from django.apps import apps

    return {m._meta.label for m in apps.get_models() if f'"{m._meta.db_table}"' in sql}


def _every_kind_asked(r):
    """A context in which every kind has a query: a manager who leads every team and signs
    off."""
    with scope(organization=r.org):
        ctx = inbox.Context(member(r, r.world.admin.user))
        ctx.led = frozenset(type(r.sales).objects.for_org(r.org).values_list("pk", flat=True))
        ctx.is_manager = ctx.can_sign_off = True
        return ctx, {key: query(ctx) for key, query in inbox.QUERIES.items()}


def test_each_kind_reads_the_tables_it_is_counted_again_for_and_no_health(revenue):
    r = populate(revenue)
    ctx, queries = _every_kind_asked(r)
    for key, qs in queries.items():
        # As ``counts`` asks it: the rows' count, no column of them.
        sql = str(qs.order_by().annotate(one=Value(1, output_field=IntegerField()))
                  .values("one").annotate(n=Count("pk", distinct=True)).values("n").query)
        assert _tables_of(sql) == inbox.KIND_TABLES[key], key
        # A change of health moves no kind ("inbox" is not in ``versions.HEALTH``).
        for column in ("effective_health", "risk_causes", "rolled_progress", "risk_above",
                       '"impact"', "current_value"):
            assert column not in sql, (key, column)
        assert inbox.KIND_TABLES[key] <= versions.TOPICS["inbox"], key
    assert inbox.CONTEXT_TABLES <= versions.TOPICS["inbox"]
    assert "inbox" not in versions.HEALTH


def _edit_objective(r, user, objective, **changes):
    with scope(organization=r.org):
        o = Objective.objects.for_org(r.org).get(pk=objective.pk)
    data = {"title": o.title, "why": o.why, "team": o.team_id, "parent": o.parent_id or "",
            "state": o.state, "version": o.version, "theme": o.theme_id or "",
            "success": o.success, "tradeoffs": o.tradeoffs, **changes}
    with CaptureQueriesContext(connection) as posted:
        response = client_for(user).post(
            reverse("objective_edit", args=[r.org.slug, o.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return posted


def test_an_objective_edit_counts_again_only_the_kinds_that_read_objectives(
        revenue, monkeypatch):
    """Mia edits her team's objective's title: nothing of hers changes, the badge shows the
    same number, and the write counts again only the kinds that read objectives; the full
    count comes after the response."""
    r = populate(revenue)
    before = nav_count(r, r.mia)
    assert before == truth(r, r.mia) > 0
    asked = []
    monkeypatch.setattr(inbox, "_recount_now_or_later",
                        lambda m: asked.append((m.organization_id, m.user_id)))
    posted = _edit_objective(r, r.mia, r.win, title="Win the enterprise segment, twice")
    counted = _count_queries(posted.captured_queries)
    assert len(counted) == 1, counted
    assert _tables_of(counted[0]) >= {"okrs.Objective", "alignment.RecascadeFlag"}
    # Not the kinds that read none of what the edit wrote.
    assert not _tables_of(counted[0]) & {"alignment.SignOffRequest", "alignment.Stakeholder",
                                         "alignment.StatusUpdate"}
    assert asked == [(r.org.pk, r.mia.pk)]  # the full count, after the response
    assert nav_count(r, r.mia) == before == truth(r, r.mia)
    inbox.recount(*asked[0])
    assert nav_count(r, r.mia) == truth(r, r.mia)


def test_a_persons_own_write_that_changes_their_count_shows_on_the_next_page(
        revenue, monkeypatch):
    """Liam approves the proposal he was asked to review (one item less) and Ethan commits
    to the request he was asked (one less): each badge is right on the next page, before
    any count after the response (which is held back here)."""
    r = populate(revenue)
    monkeypatch.setattr(inbox, "_recount_now_or_later", lambda m: None)
    for user, post in (
            (r.liam, {"kind": "review", "do": "approve", "pk": r.proposed.pk}),
            (r.ethan, {"kind": "request", "do": "commit", "pk": r.dependency.pk})):
        before = nav_count(r, user)
        with CaptureQueriesContext(connection) as posted:
            client_for(user).post(reverse("inbox_act", args=[r.org.slug]), post)
        assert len(_count_queries(posted.captured_queries)) == 1
        assert truth(r, user) < before
        assert nav_count(r, user) == truth(r, user), user


def test_a_count_from_own_writes_is_counted_again_in_full(revenue, monkeypatch):
    """What others wrote before a person's write comes in: a kept count that was not current
    before the write is counted in full; one made of the own writes alone is shown, then
    counted again in full after the next page."""
    r = populate(revenue)
    before = nav_count(r, r.liam)
    _mia_raises_a_blocker(r)  # someone else's write: Liam's kept count is no longer current
    posted = _edit_objective(r, r.liam, r.arr, title="Grow ARR to 15M, profitably")
    counted = _count_queries(posted.captured_queries)
    assert len(counted) == 1 and "alignment_statusupdate" in counted[0], counted
    assert nav_count(r, r.liam) == truth(r, r.liam) == before + 1
    # Now a write of his counted alone, while the full count after it is held back, and
    # another blocker raised meanwhile: shown as counted, then counted in full.
    asked = []
    monkeypatch.setattr(inbox, "_recount_now_or_later",
                        lambda m: asked.append((m.organization_id, m.user_id)))
    _edit_objective(r, r.liam, r.arr, title="Grow ARR to 15M")
    with scope(organization=r.org):
        workflows.post_update(membership=member(r, r.mia), workflow=r.workflow, team=r.sales,
                              text="No legal review yet", is_blocker=True)
    assert nav_count(r, r.liam) == before + 1
    assert asked
    inbox.recount(*asked[0])
    assert nav_count(r, r.liam) == truth(r, r.liam) == before + 2


@pytest.mark.parametrize("timezone_name", ["UTC", "America/New_York", "Pacific/Auckland"])
def test_the_count_query_made_once_is_the_query_made_afresh_at_any_moment(
        revenue, timezone_name):
    """The counting query is made once per person and shape, then only its moments move: at
    other moments (minutes, days, a month later, across a change of day and of daylight
    saving time in the organization's time zone), the same SQL and parameters as made
    afresh, and the same counts."""
    r = populate(revenue)
    with scopes_disabled():
        type(r.org).objects.filter(pk=r.org.pk).update(timezone=timezone_name)
        r.org.refresh_from_db()
    start = timezone.now().replace(month=3, day=7, hour=23, minute=30)
    moments = [start, start + timedelta(minutes=45), start + timedelta(days=1, hours=5),
               start + timedelta(days=31, minutes=1), start - timedelta(days=200)]
    with scope(organization=r.org):
        for user in (r.ethan, r.mia, r.liam, r.world.admin.user):
            m = member(r, user)
            m.organization = r.org
            for kinds in (None, {"check_in", "review", "score"}):
                inbox._PREPARED.clear()
                inbox._prepared(inbox.Context(m, now=start), kinds)
                for now in moments:
                    ctx = inbox.Context(m, now=now)
                    with CaptureQueriesContext(connection) as built:
                        afresh = inbox._count_query(ctx, kinds)
                    assert not built.captured_queries  # made of the context alone
                    sql, params = inbox._prepared(ctx, kinds)
                    assert (sql, list(params)) == (afresh[0], list(afresh[1])), (user, now)
                    assert inbox.counts(ctx, kinds) == _counts_by_the_orm(ctx, kinds)


def _counts_by_the_orm(ctx, kinds):
    """The counts as the ORM gives them, from a query made afresh."""
    sql, params = inbox._count_query(ctx, kinds)
    keys = [k.key for k in inbox.KINDS if kinds is None or k.key in kinds]
    if sql is None:
        return dict.fromkeys(keys, 0)
    sizes = {}
    for key in keys:
        qs = inbox.QUERIES[key](ctx)
        sizes[key] = 0 if qs is None else qs.order_by().values("pk").distinct().count()
    return sizes
