import pytest
from django.test import Client
from django_scopes import scopes_disabled

from api.tokens import create_token
from orgs.models import Membership


def make_token(user, org, *, scope="write", service=False, expires_in_days=None):
    """A token's text for ``user``'s membership of ``org`` (an admin's for a service token)."""
    with scopes_disabled():
        membership = Membership.objects.get(organization=org, user=user)
        _, text = create_token(membership=membership, name="test", scope=scope,
                               expires_in_days=expires_in_days, service=service)
    return text


class Api:
    """A client that sends a bearer token and JSON, and builds the organization's URLs."""

    def __init__(self, token, slug):
        self.client = Client()
        self.token = token
        self.slug = slug

    def url(self, path):
        return path if path.startswith("/") else f"/api/v1/orgs/{self.slug}/{path}"

    def headers(self, extra):
        h = {"HTTP_AUTHORIZATION": f"Bearer {self.token}"} if self.token else {}
        h.update(extra)
        return h

    def get(self, path, params=None, **extra):
        return self.client.get(self.url(path), params or {}, **self.headers(extra))

    def post(self, path, data=None, **extra):
        return self.client.post(self.url(path), data or {}, content_type="application/json",
                                **self.headers(extra))

    def patch(self, path, data=None, **extra):
        return self.client.patch(self.url(path), data or {}, content_type="application/json",
                                 **self.headers(extra))

    def delete(self, path, **extra):
        return self.client.delete(self.url(path), **self.headers(extra))


@pytest.fixture
def alice_api(world_a, alice):
    return Api(make_token(alice, world_a.org), world_a.org.slug)


@pytest.fixture
def bob_api(world_a, bob):
    return Api(make_token(bob, world_a.org), world_a.org.slug)


@pytest.fixture
def service_api(world_a, alice):
    return Api(make_token(alice, world_a.org, service=True), world_a.org.slug)
