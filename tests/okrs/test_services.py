from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django_scopes import scope

from okrs import services
from okrs.models import CheckIn, KeyResult, Objective
from orgs.models import Cycle, Organization, Role, Team

from ..factories import (
    CycleFactory,
    KeyResultFactory,
    MembershipFactory,
    ObjectiveFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def make_lead(world, team=None):
    team = team or world.team
    lead = UserFactory()
    Team.objects.with_scopes_disabled().filter(pk=team.pk).update(lead=lead)
    return MembershipFactory(organization=world.org, user=lead, role=Role.TEAM_LEAD)


def create(world, membership=None, **kw):
    args = dict(membership=membership or world.admin, cycle=world.cycle, team=world.team,
                title="Ship faster", parent=world.company_objective)
    with scope(organization=world.org):
        return services.create_objective(**(args | kw))


def test_it_creates_an_aligned_objective(world_a):
    objective = create(world_a)
    assert objective.parent == world_a.company_objective
    assert objective.organization == world_a.org and objective.state == "draft"


def test_it_refuses_a_parent_from_another_organization(world_a, world_b):
    with pytest.raises(ValidationError) as e:
        create(world_a, parent=world_b.company_objective)
    assert "parent" in e.value.error_dict


def test_it_refuses_a_parent_from_another_cycle(world_a):
    other_cycle = CycleFactory(organization=world_a.org)
    other = ObjectiveFactory(organization=world_a.org, cycle=other_cycle)
    with pytest.raises(ValidationError, match="same cycle"):
        create(world_a, parent=other)


def test_it_refuses_to_align_an_objective_to_its_own_descendant(world_a):
    child = ObjectiveFactory(organization=world_a.org, cycle=world_a.cycle, team=world_a.team,
                             parent=world_a.objective)
    grandchild = ObjectiveFactory(organization=world_a.org, cycle=world_a.cycle,
                                  team=world_a.team, parent=child)
    with scope(organization=world_a.org), pytest.raises(ValidationError, match="itself"):
        services.update_objective(
            membership=world_a.admin, objective=world_a.objective,
            version=world_a.objective.version, title="x", why="", team=world_a.team,
            parent=grandchild, is_local=False, state="published")
    with scope(organization=world_a.org):
        assert Objective.objects.get(pk=world_a.objective.pk).parent == world_a.company_objective


def test_it_refuses_a_team_from_another_organization(world_a, world_b):
    with pytest.raises(ValidationError) as e:
        create(world_a, team=world_b.team)
    assert "team" in e.value.error_dict


def test_a_team_objective_needs_a_parent_or_to_be_local(world_a):
    with pytest.raises(ValidationError, match="contributes to"):
        create(world_a, parent=None)
    assert create(world_a, parent=None, is_local=True).is_local


def test_a_strict_organization_refuses_local_objectives(world_a):
    Organization.objects.filter(pk=world_a.org.pk).update(alignment_model="strict")
    world_a.admin.organization.refresh_from_db()
    with pytest.raises(ValidationError, match="strictly"):
        create(world_a, parent=None, is_local=True)


def test_company_objectives_are_roots(world_a):
    with pytest.raises(ValidationError, match="roots"):
        create(world_a, team=world_a.company, parent=world_a.company_objective)


def test_a_closed_cycle_takes_no_new_objectives(world_a):
    Cycle.objects.with_scopes_disabled().filter(pk=world_a.cycle.pk).update(status="closed")
    world_a.cycle.refresh_from_db()
    with pytest.raises(ValidationError, match="closed"):
        create(world_a)


def test_a_viewer_cannot_create_objectives(world_a):
    with pytest.raises(PermissionDenied):
        create(world_a, membership=world_a.bob)


def test_a_team_lead_edits_only_its_own_teams(world_a):
    sub_team = TeamFactory(organization=world_a.org, parent=world_a.team)
    lead = make_lead(world_a)
    assert create(world_a, membership=lead).team == world_a.team
    assert create(world_a, membership=lead, team=sub_team).team == sub_team  # below its dept
    other = TeamFactory(organization=world_a.org)
    with pytest.raises(PermissionDenied):
        create(world_a, membership=lead, team=other)
    with pytest.raises(PermissionDenied):  # company objectives belong to the leadership
        create(world_a, membership=lead, team=world_a.company, parent=None)


def test_only_alignment_leads_and_admins_publish(world_a):
    lead = make_lead(world_a)
    with pytest.raises(ValidationError, match="publish"):
        create(world_a, membership=lead, state="published")
    assert create(world_a, state="published").state == "published"


def test_a_stale_edit_is_refused_and_nothing_is_overwritten(world_a):
    o = world_a.objective
    edit = dict(membership=world_a.admin, objective=o, version=o.version, why="",
                team=world_a.team, parent=world_a.company_objective, is_local=False,
                state="published")
    with scope(organization=world_a.org):
        services.update_objective(**edit, title="First edit")
        with pytest.raises(services.StaleEdit, match="changed this objective"):
            services.update_objective(**edit, title="Second edit from a stale form")
        assert Objective.objects.get(pk=o.pk).title == "First edit"
        assert Objective.objects.get(pk=o.pk).version == o.version + 1


def test_retiring_takes_the_objective_out_of_the_tree_and_is_idempotent(world_a):
    with scope(organization=world_a.org):
        assert services.retire_objective(membership=world_a.admin, objective=world_a.objective)
        assert Objective.objects.get(pk=world_a.objective.pk).state == "retired"
        assert not services.retire_objective(membership=world_a.admin,
                                             objective=world_a.objective)


def add_kr(world, **kw):
    args = dict(membership=world.admin, objective=world.objective, title="Uptime",
                kind="numeric", start_value=Decimal("99.5"), target_value=Decimal("99.9"),
                unit="%")
    with scope(organization=world.org):
        return services.create_key_result(**(args | kw))


def test_a_key_result_starts_at_its_start_value_and_may_belong_to_another_team(world_a):
    other = TeamFactory(organization=world_a.org)
    kr = add_kr(world_a, owner_team=other)
    assert kr.current_value == Decimal("99.5") and kr.owner_team == other


def test_a_key_result_refuses_target_equal_to_start_and_missing_values(world_a):
    with pytest.raises(ValidationError, match="differ"):
        add_kr(world_a, target_value=Decimal("99.5"))
    with pytest.raises(ValidationError) as e:
        add_kr(world_a, start_value=None)
    assert "start_value" in e.value.error_dict


def test_a_key_result_owner_team_must_be_in_the_organization(world_a, world_b):
    with pytest.raises(ValidationError) as e:
        add_kr(world_a, owner_team=world_b.team)
    assert "owner_team" in e.value.error_dict


def test_a_milestone_keeps_no_numbers(world_a):
    kr = add_kr(world_a, kind="milestone")
    assert kr.start_value is None and kr.target_value is None and kr.is_milestone


def check_in(world, membership, kr, **kw):
    with scope(organization=world.org):
        kr = KeyResult.objects.select_related("objective__cycle", "objective__team").get(pk=kr.pk)
        return services.record_check_in(membership=membership, key_result=kr,
                                         **({"confidence": "at_risk", "value": 40} | kw))


def test_a_check_in_appends_history_and_updates_the_key_result(world_a):
    kr = world_a.key_result
    check_in(world_a, world_a.admin, kr, value=Decimal("40"), note="Halfway there")
    check_in(world_a, world_a.admin, kr, value=Decimal("55"), confidence="on_track")
    with scope(organization=world_a.org):
        kr.refresh_from_db()
        history = list(CheckIn.objects.filter(key_result=kr).values_list("value", flat=True))
    assert kr.current_value == Decimal("55") and kr.confidence == "on_track"
    assert history[:2] == [Decimal("55"), Decimal("40")]  # newest first, nothing rewritten
    assert len(history) == 3  # the world's first check-in is still there


def test_members_check_in_on_their_own_key_results_and_viewers_never(world_a):
    member = MembershipFactory(organization=world_a.org, role=Role.MEMBER)
    with pytest.raises(PermissionDenied):
        check_in(world_a, member, world_a.key_result)
    KeyResult.objects.with_scopes_disabled().filter(pk=world_a.key_result.pk).update(
        owner=member.user)
    assert check_in(world_a, member, world_a.key_result).author == member.user
    with pytest.raises(PermissionDenied):
        check_in(world_a, world_a.bob, world_a.key_result)


def test_a_milestone_check_in_needs_done_or_not(world_a):
    kr = KeyResultFactory(objective=world_a.objective, kind="milestone", start_value=None,
                          target_value=None, current_value=None)
    with pytest.raises(ValidationError):
        check_in(world_a, world_a.admin, kr, value=None)
    check_in(world_a, world_a.admin, kr, value=None, is_done=True)
    with scope(organization=world_a.org):
        kr.refresh_from_db()
    assert kr.is_done


def test_no_check_ins_on_a_retired_objective(world_a):
    Objective.objects.with_scopes_disabled().filter(pk=world_a.objective.pk).update(
        state="retired")
    with pytest.raises(ValidationError, match="retired"):
        check_in(world_a, world_a.admin, world_a.key_result)


CLOSED_CYCLE_WRITES = {
    "create objective": lambda w: services.create_objective(
        membership=w.admin, cycle=w.cycle, team=w.team, title="Late", parent=w.company_objective),
    "update objective": lambda w: services.update_objective(
        membership=w.admin, objective=w.objective, version=w.objective.version, title="Late",
        why="", team=w.team, parent=w.company_objective, is_local=False, state="published"),
    "retire objective": lambda w: services.retire_objective(
        membership=w.admin, objective=w.objective),
    "create key result": lambda w: services.create_key_result(
        membership=w.admin, objective=w.objective, title="Late", kind="numeric",
        start_value=Decimal("0"), target_value=Decimal("10")),
    "update key result": lambda w: services.update_key_result(
        membership=w.admin, key_result=w.key_result, version=w.key_result.version, title="Late",
        start_value=Decimal("0"), target_value=Decimal("10"), unit="", owner_team=w.team,
        owner=None, weight=1),
    "check in": lambda w: services.record_check_in(
        membership=w.admin, key_result=w.key_result, confidence="on_track", value=Decimal("50")),
}


@pytest.mark.parametrize("write", CLOSED_CYCLE_WRITES.values(), ids=CLOSED_CYCLE_WRITES.keys())
def test_a_closed_cycle_refuses_every_write(world_a, write):
    Cycle.objects.with_scopes_disabled().filter(pk=world_a.cycle.pk).update(status="closed")
    world_a.cycle.refresh_from_db()
    with scope(organization=world_a.org):
        world_a.objective = Objective.objects.select_related("cycle").get(
            pk=world_a.objective.pk)
        world_a.key_result = KeyResult.objects.select_related("objective__cycle").get(
            pk=world_a.key_result.pk)
        before = (Objective.objects.count(), KeyResult.objects.count(), CheckIn.objects.count())
        with pytest.raises(ValidationError, match="This cycle is closed"):
            write(world_a)
        assert (Objective.objects.count(), KeyResult.objects.count(),
                CheckIn.objects.count()) == before
        assert Objective.objects.get(pk=world_a.objective.pk).state == "published"
        assert Objective.objects.get(pk=world_a.objective.pk).title == "Org A team goal"
        assert KeyResult.objects.get(pk=world_a.key_result.pk).title == world_a.key_result.title
