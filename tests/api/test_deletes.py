"""DELETE in the API: a key result added by mistake is deleted (with the app's refusals and
their reasons), an objective is retired; both only for those the app lets do it."""

import pytest
from django_scopes import scopes_disabled

from okrs.models import KeyResult, Objective

from ..factories import KeyResultFactory
from .conftest import Api, make_token

pytestmark = pytest.mark.django_db


def test_a_key_result_added_by_mistake_is_deleted(world_a, alice_api):
    mistake = KeyResultFactory(objective=world_a.objective, title="Typo'd twice")
    response = alice_api.delete(f"key-results/{mistake.pk}/")
    assert response.status_code == 204, response.content
    with scopes_disabled():
        assert not KeyResult.objects.filter(pk=mistake.pk).exists()
    assert alice_api.get(f"key-results/{mistake.pk}/").status_code == 404
    assert alice_api.delete(f"key-results/{mistake.pk}/").status_code == 404


def test_a_key_result_with_history_is_refused_with_the_reason(world_a, alice_api):
    response = alice_api.delete(f"key-results/{world_a.key_result.pk}/")
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert "check-in" in response.json()["detail"]
    with scopes_disabled():
        assert KeyResult.objects.filter(pk=world_a.key_result.pk).exists()


def test_deleting_an_objective_retires_it_once(world_a, alice_api):
    path = f"objectives/{world_a.objective.pk}/"
    assert alice_api.delete(path).status_code == 204
    with scopes_disabled():
        retired = Objective.objects.get(pk=world_a.objective.pk)
    assert retired.state == Objective.State.RETIRED
    assert KeyResult.objects.with_scopes_disabled().filter(objective=retired).exists()
    assert alice_api.delete(path).status_code == 204  # retired already: nothing changes
    with scopes_disabled():
        assert Objective.objects.get(pk=retired.pk).version == retired.version


def test_only_those_the_app_allows_delete(world_a, alice, bob_api):
    mistake = KeyResultFactory(objective=world_a.objective)
    for path in (f"key-results/{mistake.pk}/", f"objectives/{world_a.objective.pk}/"):
        assert bob_api.delete(path).status_code == 403  # a viewer
    reader = Api(make_token(alice, world_a.org, scope="read"), world_a.org.slug)
    assert reader.delete(f"key-results/{mistake.pk}/").status_code == 403
    service = Api(make_token(alice, world_a.org, service=True), world_a.org.slug)
    assert service.delete(f"key-results/{mistake.pk}/").status_code == 403
    with scopes_disabled():
        assert KeyResult.objects.filter(pk=mistake.pk).exists()
        assert Objective.objects.get(pk=world_a.objective.pk).state != "retired"
