"""Step 1's sign-off: the alignment lead, who cannot sign off, sees who can and asks them (one
email each, through the outbox). A double click asks once; a new wording may be asked again."""

import threading

import pytest
from django.core import mail
from django.db import connection
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from alignment import services
from alignment.models import SignOffRequest
from nudges.models import OutboundEmail, Preference
from orgs.models import Role, Team
from tests.conftest import client_for
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
PURPOSE = "Reach $12M ARR through enterprise wins."


@pytest.fixture
def asked(flow):
    """The workflow has a purpose; leadership is Alice (org admin) and Carla, the company
    unit's lead (a team lead by role)."""
    r = flow
    with scopes_disabled():
        r.carla = UserFactory(email="carla@a.test", full_name="Carla Company")
        MembershipFactory(organization=r.org, user=r.carla, role=Role.TEAM_LEAD)
        Team.objects.filter(pk=r.world.company.pk).update(lead=r.carla)
    with scope(organization=r.org):
        services.save_purpose(membership=r.liam_m, workflow=r.workflow, purpose=PURPOSE,
                              impact="Default-alive.")
    return r


def ask(client, r):
    return client.post(reverse("workflow_act", args=[r.org.slug, r.workflow.pk]),
                       {"action": "request_sign_off"}, follow=True)


def page(client, r):
    return client.get(reverse("workflow", args=[r.org.slug, r.workflow.pk])).content.decode()


def test_the_alignment_lead_sees_who_signs_off_and_can_ask(asked):
    html = page(client_for(asked.liam), asked)
    step = html[html.index('id="step-1"'):html.index('id="step-2"')]
    assert "Alice Admin" in step and "Carla Company" in step
    assert "Ask them to sign off" in step
    assert "Sign off as leadership" not in step


def test_asking_emails_leadership_once_and_says_so(asked, django_capture_on_commit_callbacks):
    r = asked
    liam = client_for(r.liam)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        html = ask(liam, r).content.decode()
    assert sorted(m.to[0] for m in mail.outbox) == ["alice@a.test", "carla@a.test"]
    message = mail.outbox[0]
    assert "Liam Alignment asks you to sign off" in message.body
    assert PURPOSE in message.body
    assert reverse("workflow", args=[r.org.slug, r.workflow.pk]) in message.body
    assert "Asked Alice Admin and Carla Company to sign off." in html
    step = html[html.index('id="step-1"'):html.index('id="step-2"')]
    assert "Sign-off asked by Liam Alignment" in step
    assert "You can ask again tomorrow" in step and "Ask them" not in step

    # A double click (or a second click soon after) records nothing and sends nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        html = ask(liam, r).content.decode()
    assert len(mail.outbox) == 2
    assert "already asked" in html
    with scopes_disabled():
        assert SignOffRequest.objects.filter(workflow=r.workflow).count() == 1
        assert OutboundEmail.objects.filter(subject__startswith="Sign-off asked").count() == 2


def test_whoever_turned_reviews_by_email_off_is_asked_in_the_app_only(
        asked, django_capture_on_commit_callbacks):
    r = asked
    with scopes_disabled():
        Preference.objects.create(organization=r.org, user=r.carla, reviews_email=False)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        html = ask(client_for(r.liam), r).content.decode()
    assert [m.to[0] for m in mail.outbox] == ["alice@a.test"]
    assert "Asked Alice Admin and Carla Company to sign off." in html
    with scopes_disabled():
        assert r.carla.notifications.filter(kind="signoff").count() == 1


def test_a_new_wording_can_be_asked_again(asked, django_capture_on_commit_callbacks):
    r = asked
    with scope(organization=r.org):
        services.request_sign_off(membership=r.liam_m, workflow=r.workflow)
        services.save_purpose(membership=r.liam_m, workflow=r.workflow,
                              purpose="Reach $12M ARR with three enterprise wins.", impact="")
        _, created = services.request_sign_off(membership=r.liam_m, workflow=r.workflow)
    assert created
    with scopes_disabled():
        assert SignOffRequest.objects.filter(workflow=r.workflow).count() == 2


def test_once_signed_off_nobody_is_asked(asked):
    r = asked
    with scope(organization=r.org):
        services.sign_off(membership=r.world.admin, workflow=r.workflow)
    html = page(client_for(r.liam), r)
    assert "Ask them to sign off" not in html
    response = ask(client_for(r.liam), r)
    assert "signed off already" in response.content.decode()
    with scopes_disabled():
        assert not SignOffRequest.objects.exists()


def test_only_the_people_who_run_it_ask_and_only_with_a_purpose(flow):
    r = flow
    response = client_for(r.liam).post(
        reverse("workflow_act", args=[r.org.slug, r.workflow.pk]),
        {"action": "request_sign_off"}, follow=True)
    assert "Write the shared purpose first" in response.content.decode()
    with scope(organization=r.org):
        services.save_purpose(membership=r.liam_m, workflow=r.workflow, purpose=PURPOSE,
                              impact="")
    response = client_for(r.mia).post(
        reverse("workflow_act", args=[r.org.slug, r.workflow.pk]), {"action": "request_sign_off"})
    assert response.status_code == 403
    with scopes_disabled():
        assert not SignOffRequest.objects.exists()


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="needs PostgreSQL row locks (SQLite serializes the whole file)")
def test_two_clicks_at_the_same_moment_ask_once(asked):
    r = asked
    barrier = threading.Barrier(2)
    outcomes = []

    def click():
        try:
            with scope(organization=r.org):
                barrier.wait()
                _, created = services.request_sign_off(membership=r.liam_m, workflow=r.workflow)
            outcomes.append(created)
        except Exception as e:  # noqa: BLE001 - the assertion below names it
            outcomes.append(repr(e))
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(outcomes, key=str) == [False, True]
    with scopes_disabled():
        assert SignOffRequest.objects.filter(workflow=r.workflow).count() == 1
        assert OutboundEmail.objects.filter(subject__startswith="Sign-off asked").count() == 2
