"""Signing up through an invitation is one step: the account, the membership and the used
invitation exist together or not at all. The races themselves run on PostgreSQL in
test_invitation_race.py; these tests pin each outcome one request at a time."""

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from orgs import services
from orgs.models import Invitation, Membership, Role, User

from ..conftest import client_for
from ..factories import InvitationFactory, UserFactory

pytestmark = pytest.mark.django_db

FORM = {"full_name": "Dana Lead", "password1": "a-long-pass-phrase",
        "password2": "a-long-pass-phrase"}


@pytest.fixture
def invitation(world_a):
    with scopes_disabled():
        return InvitationFactory(organization=world_a.org, email="dana@example.test",
                                 role=Role.TEAM_LEAD, team=world_a.team)


def path_for(invitation):
    return reverse("accept_invitation", args=[services.invitation_token(invitation)])


def test_signing_up_creates_the_account_and_the_membership_together(invitation, world_a):
    user, membership = services.sign_up_with_invitation(
        invitation=invitation, full_name="Dana Lead", password="a-long-pass-phrase")
    assert user.email == "dana@example.test" and user.check_password("a-long-pass-phrase")
    with scopes_disabled():
        assert membership.role == Role.TEAM_LEAD
        assert list(membership.teams.all()) == [world_a.team]
        assert Invitation.objects.get(pk=invitation.pk).accepted_at is not None


def test_a_sign_up_on_an_invitation_used_meanwhile_creates_nothing(invitation):
    with scopes_disabled():
        Invitation.objects.filter(pk=invitation.pk).update(accepted_at=timezone.now())
    with pytest.raises(services.InvitationError, match="already been used"):
        services.sign_up_with_invitation(invitation=invitation, full_name="Dana",
                                         password="a-long-pass-phrase")
    assert not User.objects.filter(email="dana@example.test").exists()


def test_a_sign_up_on_an_invitation_withdrawn_meanwhile_creates_nothing(invitation):
    with scopes_disabled():
        Invitation.objects.filter(pk=invitation.pk).update(revoked_at=timezone.now())
    with pytest.raises(services.InvitationError, match="withdrawn"):
        services.sign_up_with_invitation(invitation=invitation, full_name="Dana",
                                         password="a-long-pass-phrase")
    assert not User.objects.filter(email="dana@example.test").exists()


def test_a_sign_up_for_an_address_that_got_an_account_meanwhile_asks_to_sign_in(invitation):
    response = Client().get(path_for(invitation))
    assert response.status_code == 200  # the sign-up form
    UserFactory(email="Dana@Example.test")  # another organization's invitation, just accepted
    response = Client().post(path_for(invitation), FORM)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    with scopes_disabled():
        assert Invitation.objects.get(pk=invitation.pk).is_pending
        assert not Membership.objects.filter(user__email="dana@example.test").exists()


def test_a_second_sign_up_on_a_used_link_gets_the_already_used_page(invitation):
    path = path_for(invitation)
    assert Client().post(path, FORM).status_code == 302
    response = Client().post(path, FORM)
    assert response.status_code == 410
    assert "already been used" in response.content.decode()
    assert User.objects.filter(email="dana@example.test").count() == 1


def test_a_member_accepting_an_invitation_used_meanwhile_gets_the_already_used_page(
        world_a, world_b, charlie):
    with scopes_disabled():
        inv = InvitationFactory(organization=world_a.org, email=charlie.email)
    c = client_for(charlie)
    path = path_for(inv)
    assert c.get(path).status_code == 200
    assert c.post(path).status_code == 302
    response = c.post(path)
    assert response.status_code == 410 and "already been used" in response.content.decode()
    with scopes_disabled():
        assert Membership.objects.filter(user=charlie, organization=world_a.org).count() == 1


def test_the_service_refuses_an_invitation_for_someone_else(invitation, bob):
    with pytest.raises(PermissionDenied):
        services.accept_invitation(invitation=invitation, user=bob)
    with scopes_disabled():
        assert Invitation.objects.get(pk=invitation.pk).is_pending
