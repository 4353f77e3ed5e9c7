from io import StringIO

import pytest
from django.core.management import call_command
from django_scopes import scopes_disabled

from okrs.models import CheckIn, KeyResult, Objective
from orgs.models import Cycle, Membership, Organization, Role, Team, User

pytestmark = pytest.mark.django_db


def test_an_admin_builds_the_org_tree(world_a, alice_client):
    response = alice_client.post("/o/org-a/console/teams/new/", {
        "name": "Platform", "kind": "team", "team_type": "enabling",
        "parent": world_a.team.pk, "lead": world_a.admin.user.pk,
        "charter": "Keeps deploys boring."})
    assert response.status_code == 302
    with scopes_disabled():
        team = Team.objects.get(name="Platform")
    assert team.parent == world_a.team and team.lead == world_a.admin.user
    assert team.charter == "Keeps deploys boring."
    top = alice_client.get("/o/org-a/console/teams/").content.decode()
    assert f'href="/o/org-a/console/teams/?unit={world_a.team.pk}"' in top
    assert "1 unit below" in top and ">Platform</a>" not in top  # one level at a time
    below = alice_client.get(f"/o/org-a/console/teams/?unit={world_a.team.pk}").content.decode()
    assert ">Platform</a>" in below


@pytest.mark.parametrize("data, error", [
    ({"name": "Org A Engineering"}, "already has this name"),
    ({"kind": "company"}, "company is the top of the tree"),
    ({"parent": ""}, "Choose the unit this one belongs to"),
])
def test_bad_team_input_is_a_form_error(world_a, alice_client, data, error):
    form = {"name": "New", "kind": "team", "team_type": "product", "parent": world_a.team.pk}
    response = alice_client.post("/o/org-a/console/teams/new/", form | data)
    assert response.status_code == 200 and error in response.content.decode()


def test_a_unit_cannot_move_below_its_own_descendant(world_a, alice_client):
    from ..factories import TeamFactory

    child = TeamFactory(organization=world_a.org, parent=world_a.team)
    response = alice_client.post(f"/o/org-a/console/teams/{world_a.team.pk}/", {
        "name": world_a.team.name, "kind": "department", "team_type": "product",
        "parent": child.pk})
    assert "cannot sit below itself" in response.content.decode()


def test_cycles_are_created_and_bad_dates_refused(world_a, alice_client):
    ok = alice_client.post("/o/org-a/console/cycles/new/", {
        "name": "2027 Q3", "start_date": "2027-07-01", "end_date": "2027-09-30",
        "status": "planning"})
    assert ok.status_code == 302
    bad = alice_client.post("/o/org-a/console/cycles/new/", {
        "name": "Backwards", "start_date": "2027-07-01", "end_date": "2027-06-01",
        "status": "planning"})
    assert "must end after it starts" in bad.content.decode()
    with scopes_disabled():
        assert set(Cycle.objects.filter(organization=world_a.org).values_list(
            "name", flat=True)) >= {"2027 Q3"}
        assert not Cycle.objects.filter(name="Backwards").exists()


def test_members_and_team_leads_cannot_open_the_console(world_a):
    from ..conftest import client_for
    from ..factories import MembershipFactory

    for role in (Role.MEMBER, Role.TEAM_LEAD, Role.VIEWER):
        m = MembershipFactory(organization=world_a.org, role=role)
        assert client_for(m.user).get("/o/org-a/console/teams/").status_code == 403


def test_create_org_makes_the_organization_its_company_unit_and_admin(db):
    out = StringIO()
    call_command("create_org", "Acme Inc.", "Boss@Acme.test", "--admin-name", "Bo Ss",
                 "--password", "s3cret-pass", stdout=out)
    org = Organization.objects.get(slug="acme-inc")
    user = User.objects.get(email="boss@acme.test")
    with scopes_disabled():
        assert Membership.objects.get(organization=org, user=user).role == Role.ADMIN
        assert Team.objects.get(organization=org).kind == "company"
    assert "Created Acme Inc. at /o/acme-inc/" in out.getvalue()


def test_create_org_refuses_a_taken_slug(db):
    call_command("create_org", "Acme", "a@acme.test", "--password", "x" * 12, stdout=StringIO())
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="taken"):
        call_command("create_org", "Acme", "b@acme.test", "--password", "x" * 12)


def test_seed_demo_is_idempotent_and_believable(db):
    out = StringIO()
    call_command("seed_demo", stdout=out)
    call_command("seed_demo", stdout=out)
    assert "ethan@northwind.example" in out.getvalue() and "northwind-demo" in out.getvalue()
    with scopes_disabled():
        org = Organization.objects.get(slug="northwind")
        objectives = Objective.objects.filter(organization=org, cycle__status="active")
        assert objectives.count() == 11
        assert objectives.filter(is_local=True).count() == 2
        assert objectives.filter(parent=None, team__kind="company").count() == 2
        names = set(Team.objects.filter(organization=org).values_list("name", flat=True))
        assert {"Product", "Engineering", "Customer Success", "Marketing", "Sales"} <= names
        healths = set(CheckIn.objects.filter(organization=org).values_list("confidence",
                                                                           flat=True))
        assert healths == {"on_track", "at_risk", "off_track"}
        # Three KRs each; Customer Success has a fourth, a baseline it measures this cycle.
        assert sorted(o.key_results.count() for o in objectives) == [3] * 10 + [4]
        kinds = set(KeyResult.objects.filter(organization=org, objective__in=objectives)
                    .values_list("kind", flat=True))
        assert kinds == {"numeric", "keep_above", "milestone", "baseline"}
        assert objectives.filter(commitment="aspirational").count() == 2
        # One workflow in progress (steps 1-5 done, a milestone late), one closed last cycle
        # with a retrospective shared company-wide.
        from alignment.models import Workflow
        from alignment.services import snapshot
        from alignment.steps import status

        current = Workflow.objects.get(organization=org, cycle__status="active")
        done = [s.done for s in status(snapshot(current), current.cycle.start_date,
                                       current.cycle.end_date)]
        assert done == [True] * 5 + [False, False]
        assert "1 milestone is late." in status(snapshot(current), current.cycle.start_date,
                                                current.cycle.end_date)[5].missing
        closed = Workflow.objects.get(organization=org, cycle__status="closed")
        assert closed.is_closed and closed.retrospective.share_company_wide
        assert closed.retrospective.improvements.count() == 2


def test_the_member_list_is_paginated_with_a_constant_query_count(world_a, alice_client,
                                                                 django_assert_max_num_queries):
    from ..factories import MembershipFactory

    for _ in range(55):
        MembershipFactory(organization=world_a.org)
    # 12, plus the unread-alerts badge, plus the inbox count in the nav (two queries).
    with django_assert_max_num_queries(15):
        first = alice_client.get("/o/org-a/console/members/").content.decode()
    assert "Page 1 of 2" in first and "57 members" in first
    second = alice_client.get("/o/org-a/console/members/?page=2").content.decode()
    assert "Page 2 of 2" in second and "← Previous" in second


@pytest.mark.parametrize("team_id", ["99999999999999999999", "-99999999999999999999", "0"])
def test_a_team_id_out_of_range_is_a_form_error(world_a, alice_client, team_id):
    response = alice_client.post(f"/o/org-a/console/members/{world_a.bob.pk}/", {
        "role": Role.MEMBER, "teams": [world_a.team.pk, team_id]})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    with scopes_disabled():
        bob = Membership.objects.get(pk=world_a.bob.pk)
        assert bob.role == Role.VIEWER and not bob.teams.exists()


def test_seed_demo_check_ins_fall_inside_their_cycle(db):
    from django.utils import timezone

    call_command("seed_demo", stdout=StringIO())
    with scopes_disabled():
        check_ins = CheckIn.objects.filter(organization__slug="northwind").select_related(
            "key_result__objective__cycle")
        early = [(c.key_result.title, timezone.localdate(c.created_at))
                 for c in check_ins
                 if timezone.localdate(c.created_at) < c.key_result.objective.cycle.start_date]
    assert check_ins and early == []
