"""Tokens: stored hashed, shown once, revoked and expired ones refused, last use noted at most
once a minute; the pages that make and revoke them."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_scopes import scopes_disabled

from api.models import ApiToken
from api.tokens import hash_token

from .conftest import Api, make_token

pytestmark = pytest.mark.django_db


def test_only_a_hash_of_the_token_is_stored(world_a, alice):
    text = make_token(alice, world_a.org)
    assert text.startswith("okrp_") and len(text) > 40
    with scopes_disabled():
        row = ApiToken.objects.get(secret_hash=hash_token(text))
        assert not ApiToken.objects.filter(prefix=text).exists()
    assert row.prefix == text[:12] and text not in (row.secret_hash, row.name)


def test_a_revoked_or_expired_or_unknown_token_is_refused_with_401(world_a, alice):
    text = make_token(alice, world_a.org)
    api = Api(text, world_a.org.slug)
    assert api.get("cycles/").status_code == 200
    with scopes_disabled():
        ApiToken.objects.filter(secret_hash=hash_token(text)).update(revoked_at=timezone.now())
    response = api.get("cycles/")
    assert response.status_code == 401
    assert response.json()["detail"] == "This token was revoked."
    assert response["WWW-Authenticate"] == "Bearer"

    text = make_token(alice, world_a.org, expires_in_days=30)
    with scopes_disabled():
        ApiToken.objects.filter(secret_hash=hash_token(text)).update(
            created_at=timezone.now() - timedelta(days=40),
            expires_at=timezone.now() - timedelta(days=10))
    assert Api(text, world_a.org.slug).get("cycles/").json()["detail"] == (
        "This token has expired.")
    assert Api("okrp_" + "x" * 43, world_a.org.slug).get("cycles/").status_code == 401


def test_a_token_of_a_person_who_left_is_refused(world_a, bob):
    api = Api(make_token(bob, world_a.org), world_a.org.slug)
    with scopes_disabled():
        world_a.bob.delete()
    assert api.get("cycles/").status_code == 401


def test_last_use_is_written_at_most_once_a_minute(world_a, alice, django_assert_num_queries):
    text = make_token(alice, world_a.org)
    api = Api(text, world_a.org.slug)
    api.get("cycles/")
    with scopes_disabled():
        first = ApiToken.objects.get(secret_hash=hash_token(text)).last_used_at
    assert first is not None
    api.get("cycles/")
    with scopes_disabled():
        assert ApiToken.objects.get(secret_hash=hash_token(text)).last_used_at == first
        ApiToken.objects.filter(secret_hash=hash_token(text)).update(
            last_used_at=first - timedelta(minutes=2))
    api.get("cycles/")
    with scopes_disabled():
        assert ApiToken.objects.get(secret_hash=hash_token(text)).last_used_at > first


def test_a_person_makes_a_token_and_sees_it_once(world_a, alice_client):
    url = f"/o/{world_a.org.slug}/api-tokens/"
    response = alice_client.post(url, {"name": "Jira sync", "scope": "write",
                                       "expires_in_days": "90"})
    assert response.status_code == 201
    html = response.content.decode()
    assert "shown only this once" in html
    with scopes_disabled():
        token = ApiToken.objects.get(name="Jira sync")
    assert token.user.email == "alice@a.test" and token.scope == "write"
    assert token.expires_at > timezone.now() + timedelta(days=89)
    text = html.split('data-testid="token-text">')[1].split("<")[0]
    assert hash_token(text) == token.secret_hash
    again = alice_client.get(url).content.decode()
    assert "Jira sync" in again and text not in again


def test_a_bad_token_form_keeps_what_was_typed(world_a, alice_client):
    response = alice_client.post(f"/o/{world_a.org.slug}/api-tokens/",
                                 {"name": "Jira", "scope": "admin", "expires_in_days": "90"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="Jira"' in html and "Select a valid choice" in html


def test_revoking_asks_first_then_revokes(world_a, alice_client):
    token = world_a.api_token
    url = f"/o/{world_a.org.slug}/api-tokens/{token.pk}/revoke/"
    page = alice_client.get(f"/o/{world_a.org.slug}/api-tokens/").content.decode()
    assert f'action="{url}" data-confirm=' in page
    asked = alice_client.post(url)
    assert asked.status_code == 302 and asked["Location"] == url
    with scopes_disabled():
        assert ApiToken.objects.get(pk=token.pk).revoked_at is None
    done = alice_client.post(url, {"confirm": "yes"})
    assert done.status_code == 302
    with scopes_disabled():
        assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert Api(world_a.api_token_text, world_a.org.slug).get("cycles/").status_code == 401


def test_nobody_revokes_another_persons_token(world_a, bob_client):
    url = f"/o/{world_a.org.slug}/api-tokens/{world_a.api_token.pk}/revoke/"
    assert bob_client.post(url, {"confirm": "yes"}).status_code == 404


def test_service_tokens_are_the_admins(world_a, alice_client, bob_client):
    url = f"/o/{world_a.org.slug}/console/api-tokens/"
    assert bob_client.get(url).status_code == 403
    response = alice_client.post(url, {"name": "BI export", "scope": "read",
                                       "expires_in_days": ""})
    assert response.status_code == 201
    with scopes_disabled():
        token = ApiToken.objects.get(name="BI export")
    assert token.is_service and token.prefix.startswith("okrs_") and token.expires_at is None
    personal = alice_client.get(f"/o/{world_a.org.slug}/api-tokens/").content.decode()
    assert "BI export" not in personal


def test_the_token_pages_keep_their_query_budget(world_a, alice, alice_client):
    from ..querycount import assert_same_queries, count_queries

    pages = [f"/o/{world_a.org.slug}/api-tokens/", f"/o/{world_a.org.slug}/console/api-tokens/"]

    def measure():
        return [count_queries(lambda u=url: alice_client.get(u)) for url in pages]

    make_token(alice, world_a.org, service=True)  # a row on each page: no empty state
    small = measure()
    for _ in range(25):
        make_token(alice, world_a.org)
        make_token(alice, world_a.org, service=True)
    large = measure()
    for s, big in zip(small, large, strict=True):
        assert big[0].status_code == 200
        assert_same_queries(s, big)
    assert "Page 1 of 2" in large[0][0].content.decode()


def test_a_personal_token_makes_its_person_the_requests_user(world_a, alice, rf):
    """What the history of changes reads to say who changed what."""
    from django.contrib.auth.models import AnonymousUser

    from api.context import _caller
    from api.tokens import token_for

    request = rf.get("/api/v1/orgs/org-a/cycles/")
    request.user = AnonymousUser()
    request.auth = token_for(make_token(alice, world_a.org))
    caller = _caller(request, world_a.org.slug)
    assert request.user == alice and caller.membership.user == alice
    request.user = AnonymousUser()
    request.auth = token_for(make_token(alice, world_a.org, service=True))
    caller = _caller(request, world_a.org.slug)
    assert caller.is_service and not request.user.is_authenticated
