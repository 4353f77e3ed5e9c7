"""A unit kept by its leads: /o/<slug>/teams/<id>/edit/ for a department head or team lead, on
the units they lead (the unit and everything below it) and nowhere else."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django_scopes import scope, scopes_disabled

from orgs import units
from orgs.models import Membership, Role, Team

from ..conftest import client_for
from ..factories import MembershipFactory, TeamFactory, UserFactory
from ..querycount import assert_same_queries, count_queries

pytestmark = pytest.mark.django_db


@pytest.fixture
def dept(world_a):
    """Dana heads the department ``world_a.team`` (Web below it); Sales is someone else's."""
    w = world_a
    w.dana = UserFactory(email="dana@a.test", full_name="Dana Head")
    w.head = MembershipFactory(organization=w.org, user=w.dana, role=Role.TEAM_LEAD)
    with scopes_disabled():
        Team.objects.filter(pk=w.team.pk).update(lead=w.dana)
        w.team.refresh_from_db()
    w.web = TeamFactory(organization=w.org, name="Web", parent=w.team)
    w.sales = TeamFactory(organization=w.org, name="Sales", kind=Team.Kind.DEPARTMENT)
    w.dana_client = client_for(w.dana)
    return w


def edit(w, team, suffix=""):
    return f"/o/{w.org.slug}/teams/{team.pk}/edit/{suffix}"


def test_a_department_head_edits_the_charter_of_their_unit_and_of_the_teams_below(dept):
    w = dept
    for team in (w.team, w.web):
        response = w.dana_client.post(edit(w, team), {"action": "charter",
                                                     "charter": f"{team.name} keeps it going."})
        assert response.status_code == 302
        with scopes_disabled():
            assert Team.objects.get(pk=team.pk).charter == f"{team.name} keeps it going."
    page = w.dana_client.get(edit(w, w.team)).content.decode()
    assert "Edit Org A Engineering" in page and "Add a KPI" in page and "Add a person" in page


def test_everyone_else_gets_403_on_the_unit(dept, bob_client):
    w = dept
    assert w.dana_client.get(edit(w, w.sales)).status_code == 403  # not hers
    assert w.dana_client.get(edit(w, w.company)).status_code == 403  # the unit above hers
    assert w.dana_client.post(edit(w, w.sales), {"action": "charter", "charter": "x"}
                              ).status_code == 403
    assert bob_client.get(edit(w, w.team)).status_code == 403  # a viewer
    member = UserFactory(email="mo@a.test")
    MembershipFactory(organization=w.org, user=member, role=Role.MEMBER).teams.add(w.team)
    assert client_for(member).get(edit(w, w.team)).status_code == 403  # a member of the team
    with scopes_disabled():
        assert Team.objects.get(pk=w.sales.pk).charter == ""


def test_the_team_page_offers_the_edit_link_only_to_those_who_keep_the_unit(dept, bob_client):
    w = dept
    assert 'data-testid="edit-unit"' in w.dana_client.get(
        f"/o/{w.org.slug}/teams/{w.web.pk}/").content.decode()
    assert 'data-testid="edit-unit"' not in w.dana_client.get(
        f"/o/{w.org.slug}/teams/{w.sales.pk}/").content.decode()
    assert 'data-testid="edit-unit"' not in bob_client.get(
        f"/o/{w.org.slug}/teams/{w.team.pk}/").content.decode()


def test_a_lead_adds_a_team_below_and_moves_and_renames_it_within_their_subtree(dept):
    w = dept
    response = w.dana_client.post(edit(w, w.team, "new/"), {
        "name": "Mobile", "team_type": "product", "parent": w.team.pk, "lead": w.dana.pk})
    assert response.status_code == 302
    with scopes_disabled():
        mobile = Team.objects.get(name="Mobile")
    assert mobile.parent_id == w.team.pk and mobile.kind == "team" and mobile.lead == w.dana
    response = w.dana_client.post(edit(w, mobile, "unit/"), {
        "name": "Mobile Apps", "team_type": "enabling", "parent": w.web.pk, "lead": ""})
    assert response.status_code == 302
    with scopes_disabled():
        mobile.refresh_from_db()
    assert (mobile.name, mobile.parent_id, mobile.team_type, mobile.lead) == (
        "Mobile Apps", w.web.pk, "enabling", None)


def test_a_lead_cannot_move_a_unit_out_of_their_subtree_nor_restructure_their_own_top(dept):
    w = dept
    response = w.dana_client.post(edit(w, w.web, "unit/"), {
        "name": "Web", "team_type": "product", "parent": w.sales.pk, "lead": ""})
    assert response.status_code == 200  # the form again, with the error; nothing moved
    with scopes_disabled():
        assert Team.objects.get(pk=w.web.pk).parent_id == w.team.pk
    with scope(organization=w.org), pytest.raises(ValidationError):
        units.save_sub_unit(membership=w.head, team=w.web, parent=w.sales, name="Web")
    # Her own department's name and place are the console's.
    assert w.dana_client.get(edit(w, w.team, "unit/")).status_code == 403
    assert w.dana_client.post(edit(w, w.sales, "new/"), {
        "name": "Inside sales", "team_type": "product", "parent": w.sales.pk}).status_code == 403


def test_a_lead_gives_unit_roles_to_people_of_their_units_but_no_org_wide_role(dept):
    w = dept
    sam = UserFactory(email="sam@a.test", full_name="Sam Member")
    member = MembershipFactory(organization=w.org, user=sam, role=Role.MEMBER)
    response = w.dana_client.post(edit(w, w.web), {"action": "member", "person": sam.pk,
                                                  "role": "team_lead"})
    assert response.status_code == 302
    with scopes_disabled():
        member.refresh_from_db()
        assert member.role == Role.TEAM_LEAD and list(member.teams.all()) == [w.web]
    # Not an org-wide role: the choice is not offered, and the service refuses it too.
    response = w.dana_client.post(edit(w, w.web), {"action": "role", "member": member.pk,
                                                  f"m{member.pk}-role": "admin"})
    with scopes_disabled():
        assert Membership.objects.get(pk=member.pk).role == Role.TEAM_LEAD
    with scope(organization=w.org), pytest.raises(ValidationError):
        units.set_unit_member_role(membership=w.head, member=member, role=Role.ADMIN)
    # Someone who is also on a team outside her units: not hers to change.
    with scopes_disabled():
        member.teams.add(w.sales)
    with scope(organization=w.org), pytest.raises(PermissionDenied):
        units.set_unit_member_role(membership=Membership.objects.get(pk=w.head.pk),
                                   member=Membership.objects.get(pk=member.pk),
                                   role=Role.VIEWER)
    # Nor an alignment lead's role, wherever they sit.
    lead = MembershipFactory(organization=w.org, user=UserFactory(email="al@a.test"),
                             role=Role.ALIGNMENT_LEAD)
    lead.teams.add(w.web)
    with scope(organization=w.org), pytest.raises(PermissionDenied):
        units.set_unit_member_role(membership=w.head, member=lead, role=Role.MEMBER)


def test_taking_someone_off_a_team_asks_first_and_keeps_them_in_the_organization(dept):
    w = dept
    sam = MembershipFactory(organization=w.org, user=UserFactory(email="sam@a.test"),
                            role=Role.MEMBER)
    sam.teams.add(w.web)
    page = w.dana_client.get(edit(w, w.web)).content.decode()
    assert 'data-confirm="Take' in page
    url = edit(w, w.web, f"members/{sam.pk}/remove/")
    assert w.dana_client.post(url).status_code == 302  # no confirmation: asked first
    with scopes_disabled():
        assert list(sam.teams.all()) == [w.web]
    assert w.dana_client.post(url, {"confirm": "yes"}).status_code == 302
    with scopes_disabled():
        assert not sam.teams.exists() and Membership.objects.filter(pk=sam.pk).exists()


def test_the_unit_page_keeps_its_queries_as_members_and_kpis_grow(dept):
    from ..factories import KPIFactory

    w = dept

    def grow(n, start):
        for i in range(n):
            m = MembershipFactory(organization=w.org, role=Role.MEMBER,
                                  user=UserFactory(email=f"p{start + i}@a.test"))
            m.teams.add(w.team, w.web)
            if i < 3:
                KPIFactory(team=w.team, name=f"K{start + i}")
        for i in range(n):
            TeamFactory(organization=w.org, name=f"Below {start + i}", parent=w.team)

    grow(2, 0)
    small = count_queries(lambda: w.dana_client.get(edit(w, w.team)))
    grow(20, 100)
    large = count_queries(lambda: w.dana_client.get(edit(w, w.team)))
    assert small[0].status_code == large[0].status_code == 200
    assert_same_queries(small, large)


def test_an_admin_keeps_every_unit_from_its_page_too(dept, alice_client):
    w = dept
    assert alice_client.get(edit(w, w.sales)).status_code == 200
    response = alice_client.post(edit(w, w.sales, "new/"), {
        "name": "Inside sales", "team_type": "product", "parent": w.sales.pk, "lead": ""})
    assert response.status_code == 302
    response = alice_client.post(edit(w, w.web, "unit/"), {
        "name": "Web", "team_type": "product", "parent": w.sales.pk, "lead": ""})
    assert response.status_code == 302
    with scopes_disabled():
        assert Team.objects.get(name="Inside sales").parent_id == w.sales.pk
        assert Team.objects.get(pk=w.web.pk).parent_id == w.sales.pk
