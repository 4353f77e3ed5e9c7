"""Data sources of a key result: setting one up, the scheduled pull against a local server, the
due-sources sweep, failures counted and shown in the owner's inbox."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from integrations import sources, tasks
from integrations.models import DataSource
from nudges import inbox
from okrs.models import CheckIn, KeyResult
from orgs.models import Cycle, Membership

from .conftest import allow_private

pytestmark = pytest.mark.django_db


def member(w, user):
    with scope(organization=w.org):
        return Membership.objects.select_related("organization", "user").get(user=user)


def kr_of(w):
    with scope(organization=w.org):
        return KeyResult.objects.select_related(
            "objective__cycle", "objective__team", "organization", "owner_team").get(
            pk=w.key_result.pk)


def set_up_pull(w, url, path="data.total", **kwargs):
    allow_private(w.org)
    with scope(organization=w.org):
        source, secret = sources.save_source(
            membership=member(w, w.admin.user), key_result=kr_of(w), kind="pull", url=url,
            json_path=path, interval_minutes=kwargs.pop("interval", 60), **kwargs)
    return source


@pytest.mark.parametrize("document,path,value", [
    ({"data": {"total": 7}}, "data.total", 7),
    ({"issues": [{"count": 3}, {"count": 4}]}, "issues.1.count", 4),
    (12, "", 12),
    ({"a": {"0": "x"}}, "a.0", "x"),  # a key that looks like a number
])
def test_the_path_finds_the_value(document, path, value):
    assert sources.resolve_path(document, path) == value


@pytest.mark.parametrize("document,path,message", [
    ({"data": {}}, "data.total", "No “total” in data"),
    ({"issues": []}, "issues.0.count", "has no item 0"),
    ({"a": 1}, "a..b", "empty step"),
])
def test_a_path_that_finds_nothing_says_where(document, path, message):
    with pytest.raises(ValueError, match=message):
        sources.resolve_path(document, path)


def test_a_pull_checks_the_value_in_as_a_data_source(world_a, server):
    server.routes["/bi"] = (200, {}, {"data": {"total": 37.5}})
    source = set_up_pull(world_a, server.url("/bi"))
    check_in = sources.pull(source.pk)
    assert check_in is not None and check_in.source == CheckIn.Source.DATA_SOURCE
    assert check_in.author is None
    with scopes_disabled():
        assert KeyResult.objects.get(pk=world_a.key_result.pk).current_value == Decimal("37.5")
        source.refresh_from_db()
    assert source.failures == 0 and source.last_success_at is not None


def test_a_pull_is_refused_for_a_private_address_unless_the_organization_allows_it(
        world_a, server):
    server.routes["/bi"] = (200, {}, {"data": {"total": 1}})
    source = set_up_pull(world_a, server.url("/bi"))
    allow_private(world_a.org, False)
    assert sources.pull(source.pk) is None
    with scopes_disabled():
        source.refresh_from_db()
    assert "private network" in source.last_error and source.failures == 1
    assert server.received == []
    with scope(organization=world_a.org), pytest.raises(ValidationError, match="private"):
        sources.save_source(membership=member(world_a, world_a.admin.user),
                            key_result=kr_of(world_a), kind="pull", url=server.url("/bi"),
                            interval_minutes=60)


@pytest.mark.parametrize("route,error", [
    ((200, {}, b"not json"), "not valid JSON"),
    ((200, {}, {"data": {"count": 1}}), "No “total” in data"),
    ((200, {}, {"data": {"total": "many"}}), "is not a number"),
    ((503, {}, b""), "HTTP 503"),
    ((301, {"Location": "/elsewhere"}, b""), "redirect"),
])
def test_a_failing_pull_records_its_error(world_a, server, route, error):
    server.routes["/bi"] = route
    source = set_up_pull(world_a, server.url("/bi"))
    assert sources.pull(source.pk) is None
    with scopes_disabled():
        source.refresh_from_db()
        assert not CheckIn.objects.filter(key_result=world_a.key_result,
                                          source="data_source").exists()
    assert error in source.last_error and source.last_error_at is not None


def test_three_failures_in_a_row_reach_the_owners_inbox_until_it_works(world_a, server):
    with scopes_disabled():
        KeyResult.objects.filter(pk=world_a.key_result.pk).update(owner=world_a.admin.user)
    server.routes["/bi"] = (500, {}, b"")
    source = set_up_pull(world_a, server.url("/bi"))

    def items():
        with scope(organization=world_a.org):
            data = inbox.items_for(member(world_a, world_a.admin.user), kinds=["source"])
        return [i for g in data["groups"] for i in g["items"]]

    for expected in (1, 2):
        sources.pull(source.pk)
        assert items() == [], expected
    sources.pull(source.pk)
    [item] = items()
    assert item.title == world_a.key_result.title and "3 failures in a row" in item.detail
    assert item.url.endswith(f"/key-results/{world_a.key_result.pk}/data-source/")
    server.routes["/bi"] = (200, {}, {"data": {"total": 5}})
    assert sources.pull(source.pk) is not None
    assert items() == []


def test_the_sweep_pulls_due_sources_once(world_a, server):
    server.routes["/bi"] = (200, {}, {"data": {"total": 9}})
    source = set_up_pull(world_a, server.url("/bi"))  # due at once
    tasks.sweep_integrations()
    assert len(server.received) == 1
    tasks.sweep_integrations()  # the next pull is an interval away
    assert len(server.received) == 1
    with scopes_disabled():
        source.refresh_from_db()
    assert source.next_pull_at > timezone.now() + timedelta(minutes=59)
    later = timezone.now() + timedelta(minutes=61)
    assert sources.claim_due(now=later) == [source.pk]
    assert sources.claim_due(now=later) == []  # claimed: a second sweep finds nothing


def test_a_paused_or_webhook_source_is_not_pulled(world_a, server):
    server.routes["/bi"] = (200, {}, {"data": {"total": 9}})
    source = set_up_pull(world_a, server.url("/bi"), is_active=False)
    assert sources.claim_due() == []
    with scope(organization=world_a.org):
        sources.save_source(membership=member(world_a, world_a.admin.user),
                            key_result=kr_of(world_a), kind="webhook")
    assert sources.claim_due() == []
    assert source.pk


def test_a_source_of_a_closed_cycle_is_not_pulled(world_a, server):
    server.routes["/bi"] = (200, {}, {"data": {"total": 9}})
    set_up_pull(world_a, server.url("/bi"))
    with scopes_disabled():
        Cycle.objects.filter(pk=world_a.cycle.pk).update(status=Cycle.Status.CLOSED)
    assert sources.claim_due() == []


def test_only_the_owner_teams_lead_or_an_admin_sets_one_up(world_a):
    with scope(organization=world_a.org), pytest.raises(PermissionDenied):
        sources.save_source(membership=member(world_a, world_a.bob.user),
                            key_result=kr_of(world_a), kind="webhook")


def test_a_closed_cycle_takes_no_source(world_a):
    with scopes_disabled():
        Cycle.objects.filter(pk=world_a.cycle.pk).update(status=Cycle.Status.CLOSED)
    with scope(organization=world_a.org), pytest.raises(ValidationError, match="closed"):
        sources.save_source(membership=member(world_a, world_a.admin.user),
                            key_result=kr_of(world_a), kind="webhook")


def test_a_new_source_gives_its_secret_once(world_a):
    with scope(organization=world_a.org):
        m = member(world_a, world_a.admin.user)
        source, secret = sources.save_source(membership=m, key_result=kr_of(world_a),
                                             kind="webhook")
        assert secret and source.secret == secret
        _, again = sources.save_source(membership=m, key_result=kr_of(world_a), kind="webhook")
        assert again is None
        new = sources.regenerate_secret(membership=m, source=source)
        assert new != secret
        assert DataSource.objects.for_org(world_a.org).get().secret == new
