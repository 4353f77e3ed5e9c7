"""The inbound webhook of a key result: a signed POST becomes a check-in by "data source"."""

import json
import time
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from integrations import signing, sources
from integrations.models import DataSource
from okrs.models import CheckIn, KeyResult
from orgs.models import Cycle, Membership

pytestmark = pytest.mark.django_db


def webhook_source(w):
    with scope(organization=w.org):
        membership = Membership.objects.select_related("organization", "user").get(
            user=w.admin.user)
        kr = KeyResult.objects.select_related("objective__cycle", "organization").get(
            pk=w.key_result.pk)
        return sources.save_source(membership=membership, key_result=kr, kind="webhook")


def post(source, payload, *, secret=None, now=None, raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = signing.headers(secret or source.secret, body, now=now)
    return Client().post(reverse("data_source_webhook", args=[source.token]), body,
                         content_type="application/json",
                         headers=headers)


def test_a_signed_value_becomes_a_check_in(world_a):
    source, _ = webhook_source(world_a)
    response = post(source, {"value": 61, "note": "From the warehouse"})
    assert response.status_code == 201, response.content
    with scopes_disabled():
        check_in = CheckIn.objects.get(pk=response.json()["check_in"])
        assert KeyResult.objects.get(pk=world_a.key_result.pk).current_value == Decimal("61")
        source.refresh_from_db()
    assert check_in.source == "data_source" and check_in.note == "From the warehouse"
    assert source.last_success_at is not None


def test_a_bad_or_stale_signature_is_refused_and_counts_nothing(world_a):
    source, _ = webhook_source(world_a)
    assert post(source, {"value": 1}, secret="0" * 64).status_code == 401
    stale = post(source, {"value": 1}, now=time.time() - 600)
    assert stale.status_code == 401 and "stale" in stale.json()["error"]
    unsigned = Client().post(reverse("data_source_webhook", args=[source.token]),
                             {"value": 1}, content_type="application/json")
    assert unsigned.status_code == 401
    with scopes_disabled():
        source.refresh_from_db()
        assert not CheckIn.objects.filter(source="data_source").exists()
    assert source.failures == 0 and source.last_error == ""


def test_an_unknown_or_paused_source_is_404(world_a):
    source, _ = webhook_source(world_a)
    response = Client().post(reverse("data_source_webhook", args=["nope"]), b"{}",
                             content_type="application/json")
    assert response.status_code == 404
    with scopes_disabled():
        DataSource.objects.filter(pk=source.pk).update(is_active=False)
    assert post(source, {"value": 1}).status_code == 404


@pytest.mark.parametrize("payload,raw,message", [
    ({"note": "no value"}, None, "Send the new value"),
    ({"value": "lots"}, None, "not a number"),
    (None, b"{not json", "not valid JSON"),
    (None, b"[1, 2]", "Send a JSON object"),
])
def test_a_signed_bad_value_is_422_and_shows_on_the_source(world_a, payload, raw, message):
    source, _ = webhook_source(world_a)
    response = post(source, payload, raw=raw)
    assert response.status_code == 422 and message in response.json()["error"]
    with scopes_disabled():
        source.refresh_from_db()
    assert message in source.last_error and source.failures == 1


def test_a_milestone_takes_done(world_a):
    with scopes_disabled():
        KeyResult.objects.filter(pk=world_a.key_result.pk).update(
            kind="milestone", start_value=None, target_value=None, current_value=None)
    source, _ = webhook_source(world_a)
    assert post(source, {"value": 3}).status_code == 422
    assert post(source, {"done": True}).status_code == 201
    with scopes_disabled():
        assert KeyResult.objects.get(pk=world_a.key_result.pk).is_done is True


def test_a_closed_cycle_refuses_values(world_a):
    source, _ = webhook_source(world_a)
    with scopes_disabled():
        Cycle.objects.filter(pk=world_a.cycle.pk).update(status=Cycle.Status.CLOSED)
    response = post(source, {"value": 5})
    assert response.status_code == 422 and "closed" in response.json()["error"]


def test_a_flood_is_slowed_down(world_a, monkeypatch):
    from integrations import views

    monkeypatch.setattr(views, "WEBHOOK_RATE", 2)
    source, _ = webhook_source(world_a)
    codes = [post(source, {"value": v}).status_code for v in range(5)]
    # At most 2 a minute: 5 requests get at least one 429, even across a minute's boundary.
    assert codes[0] == 201 and 429 in codes and set(codes) == {201, 429}


def test_a_get_is_not_allowed(world_a):
    source, _ = webhook_source(world_a)
    assert Client().get(reverse("data_source_webhook", args=[source.token])).status_code == 405
