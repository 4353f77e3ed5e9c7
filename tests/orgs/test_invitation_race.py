"""Several people open the same invitation link and submit the sign-up form at the same moment
(or one person double-clicks "Join"). Exactly one account and one membership come out of it;
every other request gets the "already used" page, and none answers 500. Needs real row locks
across connections: PostgreSQL (CI); skipped on SQLite."""

import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django_scopes import scopes_disabled

from orgs import services
from orgs.models import Membership, Role, User

from ..factories import InvitationFactory

pytestmark = [
    pytest.mark.concurrency,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="needs PostgreSQL row locks (SQLite serializes the whole file)"),
]


def _post_at_once(count, path, data, *, make_client):
    barrier = threading.Barrier(count)
    answers = []

    def post():
        try:
            client = make_client()
            barrier.wait(10)
            response = client.post(path, data)
            answers.append((response.status_code, response.content.decode()))
        except Exception as e:  # reported by the assertion below
            answers.append((f"raised {type(e).__name__}: {e}", ""))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return answers


def _invitation(world, email):
    with scopes_disabled():
        inv = InvitationFactory(organization=world.org, email=email, role=Role.MEMBER,
                                team=world.team)
    return inv, reverse("accept_invitation", args=[services.invitation_token(inv)])


def test_four_sign_ups_on_one_invitation_make_one_account(world_a):
    invitation, path = _invitation(world_a, "dana@example.test")
    form = {"full_name": "Dana Lead", "password1": "a-long-pass-phrase",
            "password2": "a-long-pass-phrase"}
    answers = _post_at_once(4, path, form,
                            make_client=lambda: Client(raise_request_exception=False))
    codes = sorted(str(code) for code, _ in answers)
    assert codes == ["302", "410", "410", "410"], answers
    assert all("already been used" in body for code, body in answers if code == 410)
    with scopes_disabled():
        assert User.objects.filter(email="dana@example.test").count() == 1
        assert Membership.objects.filter(user__email="dana@example.test").count() == 1
        invitation.refresh_from_db()
        assert invitation.accepted_at is not None


def test_an_existing_user_accepting_twice_at_once_joins_once(world_a, world_b, charlie):
    invitation, path = _invitation(world_a, charlie.email)

    def signed_in():
        client = Client(raise_request_exception=False)
        client.force_login(charlie)
        return client

    answers = _post_at_once(2, path, {}, make_client=signed_in)
    codes = sorted(str(code) for code, _ in answers)
    assert codes == ["302", "410"], answers
    with scopes_disabled():
        assert Membership.objects.filter(user=charlie, organization=world_a.org).count() == 1
