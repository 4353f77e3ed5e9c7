"""The API allows what the app allows, per role, with the services' own messages; a service
token reads and checks in, and nothing more."""

import pytest
from django.test import Client
from django_scopes import scopes_disabled

from okrs.models import CheckIn, Objective
from orgs.models import Cycle, Role

from ..factories import MembershipFactory, TeamFactory, UserFactory
from .conftest import Api, make_token

pytestmark = pytest.mark.django_db


def new_objective(world, team=None, **extra):
    return {"cycle_id": world.cycle.pk, "team_id": (team or world.team).pk,
            "title": "Grow the partner channel", "parent_id": world.company_objective.pk,
            **extra}


def check_in_url(world):
    return f"key-results/{world.key_result.pk}/check-ins/"


def test_an_admin_creates_an_objective_through_the_service(world_a, alice_api):
    response = alice_api.post("objectives/", new_objective(world_a))
    assert response.status_code == 201, response.content
    with scopes_disabled():
        objective = Objective.objects.get(pk=response.json()["id"])
    assert objective.created_by.email == "alice@a.test"
    assert objective.parent_id == world_a.company_objective.pk


def test_a_viewer_reads_but_may_not_write(world_a, bob_api):
    assert bob_api.get("objectives/").status_code == 200
    response = bob_api.post("objectives/", new_objective(world_a))
    assert response.status_code == 403
    assert response.json()["detail"] == "You can add objectives only for teams you lead."
    assert bob_api.post(check_in_url(world_a), {"value": 5, "confidence": "on_track"}
                        ).status_code == 403


def test_a_team_lead_writes_for_the_teams_they_lead_only(world_a):
    lead = UserFactory()
    MembershipFactory(organization=world_a.org, user=lead, role=Role.TEAM_LEAD)
    with scopes_disabled():
        led = TeamFactory(organization=world_a.org, name="Sales", lead=lead)
    api = Api(make_token(lead, world_a.org), world_a.org.slug)
    assert api.post("objectives/", new_objective(world_a, team=led)).status_code == 201
    refused = api.post("objectives/", new_objective(world_a))  # Engineering: not theirs
    assert refused.status_code == 403


def test_a_member_checks_in_on_their_teams_key_result(world_a):
    member = UserFactory()
    with scopes_disabled():
        MembershipFactory(organization=world_a.org, user=member, role=Role.MEMBER,
                          teams=[world_a.team])
    api = Api(make_token(member, world_a.org), world_a.org.slug)
    response = api.post(check_in_url(world_a), {"value": 55, "confidence": "at_risk",
                                                "note": "Two deals slipped"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["source"], body["author_id"], body["value"]) == ("api", member.pk, 55.0)
    assert api.post("objectives/", new_objective(world_a)).status_code == 403


def test_a_service_token_checks_in_with_no_author_and_may_not_edit(world_a, service_api):
    response = service_api.post(check_in_url(world_a), {"value": 70})
    assert response.status_code == 201, response.content
    with scopes_disabled():
        check_in = CheckIn.objects.get(pk=response.json()["id"])
    assert check_in.author is None and check_in.source == CheckIn.Source.API
    assert check_in.confidence == "on_track"  # kept: no confidence was sent
    refused = service_api.post("objectives/", new_objective(world_a))
    assert refused.status_code == 403
    assert "service token" in refused.json()["detail"]
    assert service_api.get("notifications/").status_code == 403
    assert service_api.get("objectives/").status_code == 200


def test_a_read_token_may_not_write(world_a, alice):
    api = Api(make_token(alice, world_a.org, scope="read"), world_a.org.slug)
    assert api.get("objectives/").status_code == 200
    refused = api.post(check_in_url(world_a), {"value": 5, "confidence": "on_track"})
    assert refused.status_code == 403 and "only read" in refused.json()["detail"]


def test_validation_messages_are_the_services_by_field(world_a, alice_api):
    response = alice_api.post("objectives/", new_objective(world_a, title="  "))
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"]["title"] == ["This field is required."]
    response = alice_api.post(check_in_url(world_a), {"confidence": "on_track"})
    assert response.json()["errors"] == {"value": ["Enter the current value."]}
    response = alice_api.post(check_in_url(world_a), {"value": 1, "confidence": "great"})
    assert response.status_code == 422
    assert response.json()["errors"] == {
        "confidence": ["Input should be 'on_track', 'at_risk' or 'off_track'"]}


def test_a_stale_version_is_refused_with_the_current_one(world_a, alice_api):
    url = f"objectives/{world_a.objective.pk}/"
    version = alice_api.get(url).json()["version"]
    assert alice_api.patch(url, {"version": version, "title": "First"}).status_code == 200
    stale = alice_api.patch(url, {"version": version, "title": "Second"})
    assert stale.status_code == 409
    assert stale.json()["errors"]["version"] == [f"The current version is {version + 1}."]
    assert alice_api.get(url).json()["title"] == "First"


def test_a_closed_cycle_refuses_check_ins(world_a, alice_api, service_api):
    with scopes_disabled():
        Cycle.objects.filter(pk=world_a.cycle.pk).update(status=Cycle.Status.CLOSED)
    for api in (alice_api, service_api):
        response = api.post(check_in_url(world_a), {"value": 5, "confidence": "on_track"})
        assert response.status_code == 422
        assert "This cycle is closed" in response.json()["detail"]


def test_a_session_reads_and_writes_with_its_csrf_token(world_a, alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    base = f"/api/v1/orgs/{world_a.org.slug}/"
    assert client.get(base + "objectives/").status_code == 200
    body = {"value": 12, "confidence": "on_track"}
    refused = client.post(base + check_in_url(world_a), body, content_type="application/json")
    assert refused.status_code == 403
    assert refused["Content-Type"] == "application/problem+json"
    client.get(f"/o/{world_a.org.slug}/api-tokens/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    done = client.post(base + check_in_url(world_a), body, content_type="application/json",
                       HTTP_X_CSRFTOKEN=token)
    assert done.status_code == 201, done.content
    assert done.json()["author_id"] == alice.pk
