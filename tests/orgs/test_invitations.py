import logging
import re
import smtplib
import time
from unittest import mock

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.test import Client
from django_scopes import scopes_disabled

from nudges.models import OutboundEmail
from orgs.models import Invitation, Membership, Role, User

from ..conftest import client_for
from ..factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def invite(django_capture_on_commit_callbacks):
    """Send an invitation through the console and return the link from the email. Emails go out
    after the transaction commits, so the commit callbacks run inside the test."""

    def send(client, world, email="dana@example.test", role=Role.TEAM_LEAD):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(f"/o/{world.org.slug}/console/members/", {
                "email": email, "role": role, "team": world.team.pk})
        assert response.status_code == 302, response.content.decode()[:2000]
        [message] = [m for m in mail.outbox if m.to == [email]]
        return re.search(r"http://\S+/invitations/(\S+)/", message.body).group(0)

    return send


def path_of(link):
    return "/" + link.split("/", 3)[3]


def test_an_invitation_creates_the_account_and_the_membership(invite, world_a, alice_client):
    link = invite(alice_client, world_a)
    assert "Alice Admin invited you to Org A" in mail.outbox[-1].body
    assert "Your role there: Department head / team lead." in mail.outbox[-1].body
    visitor = Client()
    page = visitor.get(path_of(link))
    assert "Join Org A" in page.content.decode()
    response = visitor.post(path_of(link), {"full_name": "Dana Lead",
                                            "password1": "a-long-pass-phrase",
                                            "password2": "a-long-pass-phrase"})
    assert response.status_code == 302 and response["Location"] == "/o/org-a/"
    with scopes_disabled():
        m = Membership.objects.get(user__email="dana@example.test")
        assert m.role == Role.TEAM_LEAD and list(m.teams.all()) == [world_a.team]
        assert Invitation.objects.get(email="dana@example.test").accepted_at is not None
    assert visitor.get("/o/org-a/").status_code == 200  # signed in
    assert Client().get(path_of(link)).status_code == 410  # used once only


def test_an_existing_user_signs_in_then_joins_keeping_other_organizations(invite, world_a, world_b,
                                                                         charlie):
    link = invite(client_for(world_a.admin.user), world_a, email=charlie.email)
    assert Client().get(path_of(link))["Location"].startswith("/accounts/login/")
    c = client_for(charlie)
    assert c.post(path_of(link)).status_code == 302
    with scopes_disabled():
        assert Membership.objects.filter(user=charlie).count() == 2


def test_an_invitation_for_someone_else_is_refused(invite, world_a, alice_client, bob):
    link = invite(alice_client, world_a)
    response = client_for(bob).post(path_of(link))
    assert response.status_code == 403 and "This invitation is for" in response.content.decode()


def test_an_invitation_expires(invite, world_a, alice_client, settings):
    link = invite(alice_client, world_a)
    with mock.patch("time.time", return_value=time.time() + 8 * 86400):
        response = Client().get(path_of(link))
    assert response.status_code == 410 and "expired" in response.content.decode()


def test_a_tampered_or_withdrawn_invitation_is_refused(invite, world_a, alice_client):
    link = invite(alice_client, world_a)
    assert Client().get(path_of(link)[:-3] + "xyz/").status_code == 410
    with scopes_disabled():
        inv = Invitation.objects.get(email="dana@example.test")
    alice_client.post(f"/o/org-a/console/invitations/{inv.pk}/revoke/", {"confirm": "yes"})
    response = Client().get(path_of(link))
    assert response.status_code == 410 and "withdrawn" in response.content.decode()


def test_withdrawing_an_invitation_already_accepted_leaves_it_accepted(world_a):
    # The admin's page was opened before the person accepted: the withdrawal must not mark the
    # invitation both accepted and withdrawn.
    from orgs import services

    with scopes_disabled():
        inv = Invitation.objects.get(pk=world_a.invitation.pk)
        stale = Invitation.objects.get(pk=inv.pk)
        inv.accepted_at = inv.created_at
        inv.save(update_fields=["accepted_at"])
        services.revoke_invitation(actor=world_a.admin, invitation=stale)
        inv.refresh_from_db()
    assert inv.accepted_at is not None and inv.revoked_at is None


class BrokenMailServer(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise smtplib.SMTPException("421 Service not available")


def test_a_mail_server_failure_does_not_fail_the_invitation(world_a, alice_client, settings,
                                                             django_capture_on_commit_callbacks,
                                                             caplog):
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}.BrokenMailServer"}}
    with caplog.at_level(logging.WARNING, logger="nudges.outbox"):
        with django_capture_on_commit_callbacks(execute=True):
            response = alice_client.post("/o/org-a/console/members/", {
                "email": "dana@example.test", "role": Role.MEMBER})
    assert response.status_code == 302
    with scopes_disabled():
        assert Invitation.objects.get(email="dana@example.test").is_pending
        # The email waits in the outbox, with the reason, and is retried later.
        queued = OutboundEmail.objects.get(to="dana@example.test")
    assert queued.status == "pending" and "421 Service not available" in queued.last_error
    assert "421 Service not available" in caplog.text and not mail.outbox


def test_inviting_an_existing_member_is_a_form_error(world_a, alice_client, bob):
    response = alice_client.post("/o/org-a/console/members/", {
        "email": bob.email, "role": Role.MEMBER})
    assert "already a member" in response.content.decode()


def test_only_admins_invite(world_a):
    lead = MembershipFactory(organization=world_a.org, role=Role.ALIGNMENT_LEAD)
    c = client_for(lead.user)
    assert c.get("/o/org-a/console/members/").status_code == 200
    assert c.post("/o/org-a/console/members/", {"email": "x@y.test",
                                                "role": "member"}).status_code == 403
    assert not mail.outbox


def test_the_last_admin_cannot_be_demoted_or_removed(world_a, alice_client):
    admin_pk = world_a.admin.pk
    response = alice_client.post(f"/o/org-a/console/members/{admin_pk}/",
                                 {"role": Role.VIEWER})
    assert "at least one admin" in response.content.decode()
    response = alice_client.post(f"/o/org-a/console/members/{admin_pk}/remove/",
                                 {"confirm": "yes"})
    assert "at least one admin" in response.content.decode()
    with scopes_disabled():
        assert Membership.objects.get(pk=admin_pk).role == Role.ADMIN


def test_sign_in_by_email_and_password_reset_through_email(world_a, alice,
                                                           django_capture_on_commit_callbacks):
    c = Client()
    assert c.post("/accounts/login/", {"username": "alice@a.test",
                                       "password": "password"})["Location"] == "/"
    c.post("/accounts/logout/")
    assert c.get("/o/org-a/")["Location"].startswith("/accounts/login/")
    with django_capture_on_commit_callbacks(execute=True):
        c.post("/accounts/password-reset/", {"email": "alice@a.test"})
    [message] = mail.outbox
    reset = re.search(r"https?://[^/]+(/accounts/reset/\S+)", message.body).group(1)
    form_url = c.get(reset)["Location"]
    c.post(form_url, {"new_password1": "fresh-pass-phrase-9", "new_password2":
                      "fresh-pass-phrase-9"})
    assert User.objects.get(pk=alice.pk).check_password("fresh-pass-phrase-9")


@pytest.mark.parametrize("stored, typed", [("Ava@Example.com", "ava@example.com"),
                                            ("ava@example.com", "Ava@Example.COM")])
def test_sign_in_ignores_the_case_of_the_email(db, stored, typed):
    UserFactory(email=stored)
    response = Client().post("/accounts/login/", {"username": typed, "password": "password"})
    assert response.status_code == 302 and response["Location"] == "/"


def test_emails_are_stored_in_lower_case_and_unique_ignoring_case(db):
    from django.db import IntegrityError, transaction

    ava = UserFactory(email="Ava@Example.com")
    assert User.objects.get(pk=ava.pk).email == "ava@example.com"
    other = UserFactory(email="someone@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():  # save() bypassed: the database
        User.objects.filter(pk=other.pk).update(email="AVA@example.com")


def test_wrong_password_is_a_form_error(world_a):
    response = Client().post("/accounts/login/", {"username": "alice@a.test",
                                                  "password": "nope"})
    assert response.status_code == 200 and "enter a correct" in response.content.decode()


