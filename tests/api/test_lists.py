"""Lists: cursor pagination over many rows with constant queries, filters, ETags, the rate
limit, and problem+json for every error."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_scopes import scopes_disabled

from okrs.models import Objective

from ..factories import (
    CheckInFactory,
    DependencyFactory,
    KeyResultFactory,
    ObjectiveFactory,
    ObjectiveShareFactory,
    TeamFactory,
    WorkflowFactory,
)
from ..querycount import assert_same_queries, count_queries
from .conftest import Api, make_token

pytestmark = pytest.mark.django_db


def add_rows(world, n):
    """``n`` more of every listed kind of row in ``world``'s organization."""
    org = world.org
    for _ in range(n):
        team = TeamFactory(organization=org, parent=world.team)
        objective = ObjectiveFactory(organization=org, cycle=world.cycle, team=team,
                                     parent=world.objective)
        key_result = KeyResultFactory(objective=objective)
        KeyResultFactory(objective=objective)
        CheckInFactory(key_result=key_result)
        DependencyFactory(downstream=key_result, upstream=world.other_objective)
        ObjectiveShareFactory(objective=objective, team=world.team)
        WorkflowFactory(objective=objective, lead=world.admin.user)


LISTS = ["cycles/", "teams/", "objectives/", "key-results/", "check-ins/", "dependencies/",
         "shares/", "workflows/", "findings/", "notifications/"]


def collect(api, path):
    """Every row of a list, page by page (3 a page); the cursor of each next page."""
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = api.get(path, params).json()
        seen += [row["id"] for row in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen


def test_cursor_pages_give_every_row_once(world_a, alice_api):
    add_rows(world_a, 7)
    with scopes_disabled():
        expected = set(Objective.objects.filter(organization=world_a.org).values_list(
            "pk", flat=True))
    seen = collect(alice_api, "objectives/")
    assert len(seen) == len(expected) and set(seen) == expected
    assert len(collect(alice_api, "check-ins/")) == 8
    assert len(collect(alice_api, "dependencies/")) == 8


def test_list_queries_do_not_grow_with_the_rows(world_a, alice_api):
    def measure():
        return {path: count_queries(lambda p=path: alice_api.get(
            p, {"limit": 200, "cycle": world_a.cycle.pk})) for path in LISTS}

    small = measure()
    add_rows(world_a, 25)
    large = measure()
    for path in LISTS:
        assert small[path][0].status_code == 200
        assert_same_queries(small[path], large[path])
        assert large[path][1] <= 8, (path, large[path][2])  # the budget of a list


def test_filters(world_a, alice_api):
    add_rows(world_a, 2)
    with scopes_disabled():
        Objective.objects.filter(pk=world_a.objective.pk).update(
            effective_health="at_risk", state="draft")
    only = alice_api.get("objectives/", {"team": world_a.team.pk}).json()["items"]
    assert [o["id"] for o in only] == [world_a.objective.pk]
    with scopes_disabled():
        world_a.admin.teams.set([world_a.team])
    mine = alice_api.get("objectives/", {"mine": "true"}).json()["items"]
    assert [o["id"] for o in mine] == [world_a.objective.pk]
    assert [o["id"] for o in alice_api.get("objectives/", {"health": "at_risk"}).json()[
        "items"]] == [world_a.objective.pk]
    assert [o["id"] for o in alice_api.get("objectives/", {"state": "draft"}).json()[
        "items"]] == [world_a.objective.pk]
    assert alice_api.get("objectives/", {"cycle": world_a.cycle.pk + 1000}).json()[
        "items"] == []
    later = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert alice_api.get("objectives/", {"updated_since": later}).json()["items"] == []
    assert len(alice_api.get("dependencies/", {"team": world_a.company.pk}).json()[
        "items"]) == 3
    bad = alice_api.get("objectives/", {"health": "purple"})
    assert bad.status_code == 422 and "health" in bad.json()["errors"]


def test_a_cursor_the_api_did_not_give_is_refused(world_a, alice_api):
    response = alice_api.get("objectives/", {"cursor": "not-a-cursor"})
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"


def test_pages_are_bounded(world_a, alice_api, settings):
    settings.API_MAX_PAGE_SIZE = 2
    body = alice_api.get("objectives/", {"limit": 1000}).json()
    assert len(body["items"]) == 2 and body["next_cursor"]


def test_reads_carry_an_etag_and_answer_304_while_unchanged(world_a, alice_api):
    url = f"objectives/{world_a.objective.pk}/"
    first = alice_api.get(url)
    etag = first["ETag"]
    again = alice_api.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b""
    assert alice_api.get("objectives/", HTTP_IF_NONE_MATCH=etag).status_code == 200
    version = first.json()["version"]
    alice_api.patch(url, {"version": version, "title": "Changed"})
    changed = alice_api.get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag


def test_the_rate_limit_is_per_token(world_a, alice, settings):
    settings.API_RATE_LIMIT = 3
    one = Api(make_token(alice, world_a.org), world_a.org.slug)
    other = Api(make_token(alice, world_a.org), world_a.org.slug)
    assert [one.get("cycles/").status_code for _ in range(3)] == [200, 200, 200]
    limited = one.get("cycles/")
    assert limited.status_code == 429
    assert limited["Content-Type"] == "application/problem+json"
    assert 1 <= int(limited["Retry-After"]) <= settings.API_RATE_WINDOW
    assert other.get("cycles/").status_code == 200


def test_every_error_under_api_is_problem_json(world_a, alice_api):
    for response, status in [
        (alice_api.get("/api/v1/no-such-thing/"), 404),
        (alice_api.get("/api/v1/orgs/org-a/objectives/abc/"), 404),
        (alice_api.client.delete(f"/api/v1/orgs/org-a/cycles/{world_a.cycle.pk}/",
                                 HTTP_AUTHORIZATION=f"Bearer {alice_api.token}"), 405),
        (alice_api.post("objectives/", {"title": 3}), 422),
        (Client().get("/api/v1/orgs/org-a/cycles/"), 401),
        (Client().get("/api/v1/orgs/org-a/cycles/", HTTP_AUTHORIZATION="Basic abc"), 401),
    ]:
        assert response.status_code == status, response.content
        assert response["Content-Type"] == "application/problem+json"
        body = response.json()
        assert body["status"] == status and body["title"] and body["detail"]


def test_the_docs_are_served_from_our_own_static_files(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html and "cdn" not in html.lower()
    assert "/api/v1/openapi.json" in html
    policy = response["Content-Security-Policy"]  # the strict policy: no inline script
    assert "script-src 'self'" in policy and "unsafe" not in policy
