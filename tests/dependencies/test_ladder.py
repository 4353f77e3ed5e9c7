"""The escalation ladder, over simulated days (a fixed ``now``, no sleeps): an unanswered request
climbs to the providing team's lead, the department head, an alignment lead, then an org admin;
a step whose person is the one before is skipped; an answer stops the climb; workflow blockers
follow the same ladder."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from alignment.models import StatusUpdate
from dependencies import ladder, services
from dependencies.models import Dependency, EscalationStep, Notification
from dependencies.tasks import climb_ladders
from nudges import content
from orgs.models import Membership, Team
from tests.conftest import client_for
from tests.factories import (
    DependencyFactory,
    KeyResultFactory,
    ObjectiveFactory,
    TeamFactory,
    UserFactory,
    WorkflowFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def platform(revenue):
    """Noah leads Platform, a team inside Engineering (Ethan heads the department). Sales asks
    Platform for SSO on day 0."""
    r = revenue
    with scopes_disabled():
        r.noah = UserFactory(email="noah@a.test", full_name="Noah Platform")
        Membership.objects.create(organization=r.org, user=r.noah, role="team_lead")
        r.platform_team = TeamFactory(organization=r.org, name="Platform", parent=r.eng,
                                      lead=r.noah)
        objective = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=r.platform_team,
                                     parent=r.platform, title="Single sign-on")
        r.sso_kr = KeyResultFactory(objective=objective, title="SSO live", owner=r.noah)
        Dependency.objects.all().delete()
        r.request = DependencyFactory(downstream=r.deals, upstream=r.sso_kr, status="requested",
                                      need="SSO for the pilot customers", created_by=r.mia)
        r.day0 = Dependency.objects.get(pk=r.request.pk).created_at
    return r


def climb(r, day):
    with scope(organization=r.org):
        return ladder.climb(r.org, now=r.day0 + timedelta(days=day, minutes=1))


def steps(r, **item):
    item = item or {"dependency_id": r.request.pk}
    with scopes_disabled():
        return [(s.step, s.person.display_name if s.person else None, s.is_skipped)
                for s in EscalationStep.objects.filter(**item).select_related("person")]


def test_an_unanswered_request_climbs_one_step_at_a_time(platform):
    r = platform
    alice = r.world.admin.user
    assert climb(r, 2) == [] and steps(r) == []
    assert [s.person for s in climb(r, 3)] == [r.noah]
    assert climb(r, 6) == []
    assert [s.person for s in climb(r, 7)] == [r.ethan]
    assert [s.person for s in climb(r, 14)] == [r.liam]
    assert [s.person for s in climb(r, 21)] == [alice]
    assert steps(r) == [(1, "Noah Platform", False), (2, "Ethan Engineering", False),
                        (3, "Liam Alignment", False), (4, "Alice Admin", False)]
    assert climb(r, 40) == []  # the top: nothing more, and nothing twice
    with scopes_disabled():
        told = list(Notification.objects.filter(kind="escalated", title__contains=r.request.need)
                    .values_list("user__full_name", flat=True).order_by("pk"))
    assert told == ["Noah Platform", "Ethan Engineering", "Liam Alignment", "Alice Admin"]


def test_a_late_sweep_records_every_step_due_at_its_day(platform):
    r = platform
    reached = climb(r, 15)
    assert [s.step for s in reached] == [1, 2, 3]
    assert [s.reached_at - r.day0 for s in reached] == [
        timedelta(days=3), timedelta(days=7), timedelta(days=14)]


def test_a_step_is_skipped_when_the_person_is_the_same(revenue):
    """Engineering is a department: its lead is its head, so step 2 reaches nobody new."""
    r = revenue
    with scopes_disabled():
        Dependency.objects.filter(pk=r.dependency.pk).update(status="requested")
        day0 = Dependency.objects.get(pk=r.dependency.pk).created_at
    with scope(organization=r.org):
        reached = ladder.climb(r.org, now=day0 + timedelta(days=14, minutes=1))
    assert [s.person for s in reached] == [r.ethan, r.liam]
    assert steps(r, dependency_id=r.dependency.pk) == [
        (1, "Ethan Engineering", False), (2, "Ethan Engineering", True),
        (3, "Liam Alignment", False)]


def test_days_per_step_are_the_organizations(platform):
    r = platform
    with scopes_disabled():
        r.org.ladder_lead_days, r.org.ladder_head_days = 1, 2
        r.org.ladder_alignment_days, r.org.ladder_admin_days = 5, 5
        r.org.save()
    assert [s.step for s in climb(r, 2)] == [1, 2]
    assert [s.step for s in climb(r, 5)] == [3, 4]


def test_an_answer_stops_the_climb(platform):
    r = platform
    climb(r, 3)
    with scopes_disabled():
        noah_m = Membership.objects.select_related("organization", "user").get(user=r.noah)
        dependency = Dependency.objects.with_ends().get(pk=r.request.pk)
    with scope(organization=r.org):
        services.answer_dependency(membership=noah_m, dependency=dependency, status="committed")
    assert climb(r, 30) == []
    assert [s[0] for s in steps(r)] == [1]


def test_the_person_reached_sees_it_in_their_inbox_and_both_sides_on_the_page(platform):
    r = platform
    climb(r, 7)
    with scope(organization=r.org):
        ethan = Membership.objects.select_related("organization", "user").get(user=r.ethan)
        digest = content.build(ethan)
    # Ethan heads Engineering: he leads Platform's teams too, so it is a request to answer.
    assert [x["kind"] for x in digest.decisions if "SSO for" in x["title"]] == [
        "Answer a request"]
    climb(r, 14)
    with scope(organization=r.org):
        liam = Membership.objects.select_related("organization", "user").get(user=r.liam)
        digest = content.build(liam)
    assert [x["kind"] for x in digest.decisions if "SSO for" in x["title"]] == ["Escalation"]
    url = reverse("dependency", args=[r.org.slug, r.request.pk])
    for user in (r.mia, r.noah):  # the side that asked, the side that is asked
        html = client_for(user).get(url).content.decode()
        assert 'data-testid="ladder"' in html
        assert "Day 3, team lead: reached <strong>Noah Platform</strong>" in html
        assert "Day 7, department head: reached <strong>Ethan Engineering</strong>" in html
        assert "Day 14, alignment lead: reached <strong>Liam Alignment</strong>" in html
        assert "Next, if still unanswered: the org admin" in html


def test_workflow_blockers_follow_the_same_ladder(revenue):
    """Mia raises a blocker for Sales in Liam's workflow: she leads Sales and heads it, so
    steps 1 and 2 reach nobody new; day 14 the workflow's alignment lead, day 21 an admin.
    It shows on the Network page's escalations and in Liam's digest; resolved, it stops."""
    r = revenue
    with scopes_disabled():
        workflow = WorkflowFactory(objective=r.arr, lead=r.liam)
        blocker = StatusUpdate.objects.create(
            organization=r.org, workflow=workflow, team=r.sales, author=r.mia,
            text="Legal has not cleared the contract template", is_blocker=True)
        day0 = blocker.created_at
    with scope(organization=r.org):
        reached = ladder.climb(r.org, now=day0 + timedelta(days=14, minutes=1))
    assert [s.person for s in reached] == [r.liam]
    assert steps(r, blocker_id=blocker.pk) == [
        (1, "Mia Sales", True), (2, "Mia Sales", True), (3, "Liam Alignment", False)]
    html = client_for(r.liam).get(reverse("network", args=[r.org.slug])).content.decode()
    assert 'data-testid="escalated-blockers"' in html and "Legal has not cleared" in html
    assert "now with Liam Alignment" in html
    with scope(organization=r.org):
        liam = Membership.objects.select_related("organization", "user").get(user=r.liam)
        digest = content.build(liam)
    assert any("Legal has not cleared" in x["title"] for x in digest.decisions)
    response = client_for(r.mia).post(reverse("workflow_act", args=[r.org.slug, workflow.pk]),
                                      {"action": "resolve_blocker", "update": blocker.pk})
    assert response.status_code == 302
    with scope(organization=r.org):
        assert ladder.climb(r.org, now=day0 + timedelta(days=30)) == []
        assert not any("Legal" in x["title"] for x in content.build(liam).decisions)
    html = client_for(r.liam).get(reverse("network", args=[r.org.slug])).content.decode()
    assert "Legal has not cleared" not in html


def test_a_closed_cycle_climbs_no_more(platform):
    r = platform
    with scopes_disabled():
        r.cycle.status = "closed"
        r.cycle.save()
    assert climb(r, 30) == []


def test_the_sweep_runs_the_ladder_of_every_organization(platform, world_b):
    r = platform
    with scopes_disabled():
        Dependency.objects.filter(pk=r.request.pk).update(
            created_at=timezone.now() - timedelta(days=4))
        Team.objects.filter(pk=world_b.team.pk).update(lead=None)
        Dependency.objects.filter(pk=world_b.dependency.pk).update(
            status="requested", created_at=timezone.now() - timedelta(days=4))
    assert climb_ladders() == 1  # Noah; B's providing team has no lead: skipped
    with scopes_disabled():
        b_steps = list(EscalationStep.objects.filter(organization=world_b.org).values_list(
            "step", "person", "is_skipped"))
    assert b_steps == [(1, None, True)]
    out = StringIO()
    call_command("sweep_network", stdout=out)
    assert "0 escalation steps reached." in out.getvalue()


def test_the_ladder_days_are_set_in_the_settings_in_order(revenue):
    r = revenue
    client = client_for(r.world.admin.user)
    url = reverse("alignment_settings", args=[r.org.slug])
    base = {"action": "settings", "alignment_model": "flexible", "local_share_limit": 35,
            "escalate_after_days": 5, "timezone": "UTC", "digest_weekday": 0,
            "digest_hour": 9}
    response = client.post(url, {**base, "ladder_lead_days": 2, "ladder_head_days": 5,
                                 "ladder_alignment_days": 10, "ladder_admin_days": 12})
    assert response.status_code == 302
    r.org.refresh_from_db()
    assert (r.org.ladder_lead_days, r.org.ladder_admin_days) == (2, 12)
    response = client.post(url, {**base, "ladder_lead_days": 9, "ladder_head_days": 5,
                                 "ladder_alignment_days": 10, "ladder_admin_days": 12})
    assert "comes on or after the one before" in response.content.decode()
    r.org.refresh_from_db()
    assert r.org.ladder_lead_days == 2
    assert client.post(url, base).status_code == 302  # left out: kept
    r.org.refresh_from_db()
    assert r.org.ladder_head_days == 5


def test_a_team_sets_its_check_in_cadence_in_the_console(revenue):
    r = revenue
    client = client_for(r.world.admin.user)
    url = reverse("console_team_edit", args=[r.org.slug, r.sales.pk])
    page = client.get(url).content.decode()
    assert "Check-in cadence" in page and "As the team above" in page
    response = client.post(url, {"name": "Sales", "kind": "department", "team_type": "product",
                                 "parent": r.world.company.pk, "lead": r.mia.pk,
                                 "checkin_cadence": "biweekly"})
    assert response.status_code == 302
    with scopes_disabled():
        assert Team.objects.get(pk=r.sales.pk).checkin_cadence == "biweekly"
    response = client.post(url, {"name": "Sales", "kind": "department", "team_type": "product",
                                 "parent": r.world.company.pk, "lead": r.mia.pk,
                                 "checkin_cadence": "daily"})
    assert response.status_code == 200 and "checkin_cadence" in response.content.decode()
    with scopes_disabled():
        assert Team.objects.get(pk=r.sales.pk).checkin_cadence == "biweekly"


def test_a_blocker_of_a_closed_cycle_cannot_be_resolved(revenue):
    from django.core.exceptions import ValidationError

    from alignment import services as workflows

    r = revenue
    with scopes_disabled():
        workflow = WorkflowFactory(objective=r.arr, lead=r.liam)
        blocker = StatusUpdate.objects.create(
            organization=r.org, workflow=workflow, team=r.sales, author=r.mia,
            text="Legal has not cleared the contract template", is_blocker=True)
        r.cycle.status = "closed"
        r.cycle.save()
    with scope(organization=r.org), pytest.raises(ValidationError, match="closed"):
        workflows.resolve_blocker(membership=r.liam_m, update=StatusUpdate.objects.select_related(
            "workflow__cycle").get(pk=blocker.pk))
    with scopes_disabled():
        assert StatusUpdate.objects.get(pk=blocker.pk).resolved_at is None
