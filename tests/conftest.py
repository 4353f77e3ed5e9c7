"""Personas, the same in every test module: alice is admin of organization A, bob a read-only
member (viewer) of A, charlie admin of organization B. ``world`` gives both organizations a
team, a cycle, objectives, a key result and a check-in, so any URL can be filled with either
organization's ids."""

import uuid

import pytest
from django.test import Client
from django_scopes import scopes_disabled

from api.tokens import create_token
from integrations.models import WebhookDelivery, WebhookSubscription
from okrs.models import Objective, Perspective, StrategicGoal
from orgs.models import Role, Team

from .factories import (
    ChatChannelFactory,
    CheckInFactory,
    ContributionFactory,
    CycleFactory,
    DependencyFactory,
    InvitationFactory,
    KeyResultFactory,
    KPIFactory,
    MembershipFactory,
    ObjectiveFactory,
    ObjectiveShareFactory,
    OrganizationFactory,
    RecascadeFlagFactory,
    RecoveryActionFactory,
    TeamFactory,
    UserFactory,
    WorkflowFactory,
    company_of,
)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    """Each test gets an empty cache of its own: with REDIS_URL set (CI) the cache is Redis, and
    rate-limit counts would otherwise carry over from one test, or one run, to the next."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": uuid.uuid4().hex}}


@pytest.fixture(autouse=True)
def _tasks_in_process(settings):
    """Celery tasks run in-process in tests even when REDIS_URL points at a real broker (as in
    CI), so a test sees the email a request sends. A real-worker test opts out of this. Work
    that would be deferred to after the response runs at once (tests/test_deferred.py tests
    the deferral)."""
    from config.celery import app
    from orgs.tasks import reset_broker_skip

    settings.TASKS_DEFER_IN_PROCESS = False
    settings.BEAT_IN_PROCESS = False  # tests/test_beat.py turns it on
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    reset_broker_skip()  # a test that failed a publish must not make the next skip the broker
    yield
    app.conf.task_always_eager = before
    reset_broker_skip()


@pytest.fixture(autouse=True)
def _rules_in_process(monkeypatch):
    """The misalignment rules run in the test's process, as in a web process: a test that sends
    a worker's start signal lets the process fork for them (``NETWORK_FORK_RULES``), and that
    must not carry over to the next test. tests/dependencies/test_forked_rules.py forks."""
    from alignment import report

    monkeypatch.setitem(report.FORK, "on", False)


class World:
    """One organization's objects, by name."""


def build_world(org, admin_user):
    w = World()
    w.org = org
    w.company = company_of(org)
    w.admin = MembershipFactory(organization=org, user=admin_user, role=Role.ADMIN)
    w.team = TeamFactory(organization=org, name=f"{org.name} Engineering",
                         kind=Team.Kind.DEPARTMENT)
    w.cycle = CycleFactory(organization=org)
    w.company_objective = ObjectiveFactory(organization=org, cycle=w.cycle, team=w.company,
                                           title=f"{org.name} company goal")
    w.objective = ObjectiveFactory(organization=org, cycle=w.cycle, team=w.team,
                                   parent=w.company_objective, title=f"{org.name} team goal")
    w.key_result = KeyResultFactory(objective=w.objective)
    w.check_in = CheckInFactory(key_result=w.key_result)
    w.invitation = InvitationFactory(organization=org)
    w.other_objective = ObjectiveFactory(organization=org, cycle=w.cycle, team=w.company,
                                         title=f"{org.name} second company goal")
    w.dependency = DependencyFactory(downstream=w.key_result, upstream=w.other_objective)
    w.share = ObjectiveShareFactory(objective=w.objective, team=w.company)
    w.recovery_action = RecoveryActionFactory(objective=w.company_objective, owner=admin_user)
    # A request that the team's KR feed a company milestone KR (no health yet: it moves
    # nothing in the network tests that count on the world's shape).
    w.contribution = ContributionFactory(key_result=w.key_result, shared=KeyResultFactory(
        objective=w.company_objective, kind="milestone", start_value=None, target_value=None,
        current_value=None, unit=""))
    w.workflow = WorkflowFactory(objective=w.company_objective, lead=admin_user)
    w.recascade_flag = RecascadeFlagFactory(objective=w.objective)
    w.chat_channel = ChatChannelFactory(organization=org, team=w.team, is_active=False)
    w.kpi = KPIFactory(team=w.team, name=f"{org.name} uptime")
    with scopes_disabled():  # strategy: a perspective and a goal the company objective serves
        w.perspective = Perspective.objects.create(organization=org, name="Customer")
        w.goal = StrategicGoal.objects.create(organization=org, perspective=w.perspective,
                                              title=f"{org.name} long-term goal")
        Objective.objects.filter(pk=w.company_objective.pk).update(strategic_goal=w.goal)
        # An API token of the admin's, for the token pages' URLs.
        w.api_token, w.api_token_text = create_token(
            membership=w.admin, name=f"{org.name} sync", scope="write", expires_in_days=None)
        # An outbound webhook (paused) and one delivery of it (integrations).
        w.webhook = WebhookSubscription.objects.create(
            organization=org, url="http://127.0.0.1:9/hook", secret="s" * 64,
            events=["check_in.created"], is_active=False)
        w.webhook_delivery = WebhookDelivery.objects.create(
            organization=org, subscription=w.webhook, event_type="check_in.created",
            body="{}", status=WebhookDelivery.Status.SENT)
    return w


@pytest.fixture
def alice(db):
    return UserFactory(email="alice@a.test", full_name="Alice Admin")


@pytest.fixture
def bob(db):
    return UserFactory(email="bob@a.test", full_name="Bob Viewer")


@pytest.fixture
def charlie(db):
    return UserFactory(email="charlie@b.test", full_name="Charlie Other")


@pytest.fixture
def world_a(alice, bob):
    w = build_world(OrganizationFactory(name="Org A", slug="org-a"), alice)
    w.bob = MembershipFactory(organization=w.org, user=bob, role=Role.VIEWER)
    return w


@pytest.fixture
def world_b(charlie):
    return build_world(OrganizationFactory(name="Org B", slug="org-b"), charlie)


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alice_client(alice):
    return client_for(alice)


@pytest.fixture
def bob_client(bob):
    return client_for(bob)
