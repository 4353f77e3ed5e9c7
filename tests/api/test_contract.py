"""Every endpoint answers what the OpenAPI schema declares: each GET of the schema is called
with real rows and its answer checked against the declared shape, and so are the writes and
the errors."""

import json

import pytest
from django.test import Client

from .schema_check import problems, response_schema

pytestmark = pytest.mark.django_db

PREFIX = "/api/v1/orgs/{org_slug}/"


@pytest.fixture
def openapi():
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def path_ids(world):
    return {"org_slug": world.org.slug, "cycle_id": world.cycle.pk, "team_id": world.team.pk,
            "objective_id": world.objective.pk, "key_result_id": world.key_result.pk,
            "dependency_id": world.dependency.pk, "workflow_id": world.workflow.pk}


def fits(openapi, path, method, response):
    schema = response_schema(openapi, path, method, response.status_code)
    found = problems(response.json(), schema, openapi["components"]["schemas"])
    assert found == [], (method, path, response.status_code, found)


def test_the_schema_is_openapi_3_and_covers_every_resource(openapi):
    assert openapi["openapi"].startswith("3.")
    paths = {p.removeprefix(PREFIX) for p in openapi["paths"]}
    for resource in ("cycles/", "teams/", "objectives/", "key-results/", "check-ins/",
                     "dependencies/", "shares/", "workflows/", "findings/", "notifications/"):
        assert resource in paths
    assert {"BearerToken", "SessionAuth"} <= set(openapi["components"]["securitySchemes"])


def add_notification_and_finding(world):
    from django_scopes import scopes_disabled

    from alignment.models import Finding
    from dependencies.models import Notification

    with scopes_disabled():
        Notification.objects.create(
            organization=world.org, user=world.admin.user, kind=Notification.Kind.WORSE,
            health="at_risk", objective=world.objective, key_result=world.key_result,
            title="Turned at risk")
        Finding.objects.create(
            organization=world.org, cycle=world.cycle, rule="orphan", severity="high", rank=0,
            message="No parent", who="The team's lead", objective=world.objective)


def test_every_read_answers_its_declared_shape(openapi, world_a, alice_api):
    add_notification_and_finding(world_a)
    ids = path_ids(world_a)
    reads = [p for p, ops in openapi["paths"].items() if "get" in ops and p.startswith(PREFIX)]
    assert len(reads) >= 15
    for path in reads:
        url = path.format(**ids)
        response = alice_api.get(url, {"cycle": world_a.cycle.pk})
        assert response.status_code == 200, (url, response.content[:300])
        body = response.json()
        if "items" in body:  # a list: it must hold rows for the check to mean something
            assert body["items"], url
        fits(openapi, path, "GET", response)


def test_writes_answer_their_declared_shapes(openapi, world_a, alice_api):
    w = world_a
    p = PREFIX + "{what}"
    cases = [
        ("objectives/", {"cycle_id": w.cycle.pk, "team_id": w.team.pk, "title": "Win Europe",
                         "parent_id": w.company_objective.pk}),
        ("key-results/", {"objective_id": w.objective.pk, "title": "Sign 10 resellers",
                          "start_value": 0, "target_value": 10, "unit": "resellers"}),
        ("key-results/{key_result_id}/check-ins/", {"value": 42, "confidence": "at_risk",
                                                    "note": "Slower than hoped"}),
        ("shares/", {"objective_id": w.other_objective.pk, "team_id": w.team.pk,
                     "kind": "objective"}),
    ]
    for what, body in cases:
        path = p.format(what=what, org_slug="{org_slug}")
        response = alice_api.post(path.format(**path_ids(w)), body)
        assert response.status_code == 201, (what, response.content)
        fits(openapi, path, "POST", response)
    path = PREFIX + "objectives/{objective_id}/"
    current = alice_api.get(path.format(**path_ids(w))).json()
    response = alice_api.patch(path.format(**path_ids(w)),
                               {"version": current["version"], "title": "Renamed"})
    assert response.status_code == 200, response.content
    fits(openapi, path, "PATCH", response)


def test_errors_answer_the_declared_problem_shape(openapi, world_a, alice_api, bob_api):
    path = PREFIX + "key-results/{key_result_id}/check-ins/"
    url = path.format(**path_ids(world_a))
    refused = alice_api.post(url, {"value": "many", "confidence": "on_track"})
    assert refused.status_code == 422
    assert refused["Content-Type"] == "application/problem+json"
    fits(openapi, path, "POST", refused)
    denied = bob_api.post(url, {"value": 3, "confidence": "on_track"})
    assert denied.status_code == 403
    fits(openapi, path, "POST", denied)
    path = PREFIX + "objectives/{objective_id}/"
    missing = alice_api.get(path.format(**{**path_ids(world_a), "objective_id": 999999}))
    assert missing.status_code == 404
    fits(openapi, path, "GET", missing)
    assert json.loads(missing.content)["detail"] == "No such objective."
