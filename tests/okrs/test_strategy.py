"""Strategy that spans cycles: perspectives, strategic goals, company objectives linked to them,
the strategy page, and the alignment tree started from the goals."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from okrs import strategy
from okrs.models import Objective, Perspective, StrategicGoal
from orgs import services as org_services
from orgs.models import Cycle, Role

from ..factories import (
    CycleFactory,
    KeyResultFactory,
    MembershipFactory,
    ObjectiveFactory,
    OrganizationFactory,
)
from ..querycount import assert_same_queries, count_queries

pytestmark = pytest.mark.django_db


def url(world, name, *args):
    return reverse(name, args=[world.org.slug, *args])


def names(org):
    with scopes_disabled():
        return list(Perspective.objects.filter(organization=org).order_by("position", "pk")
                    .values_list("name", flat=True))


def goal(world, title, perspective=None, **fields):
    with scopes_disabled():
        return StrategicGoal.objects.create(organization=world.org, title=title,
                                            perspective=perspective, **fields)


def refreshed(obj):
    with scopes_disabled():
        return type(obj).objects.get(pk=obj.pk)


# Perspectives ----------------------------------------------------------------------------------


def test_a_new_organization_starts_with_the_four_perspectives():
    org, _ = org_services.create_organization(name="Acme", slug="acme",
                                              admin_email="a@acme.test")
    assert names(org) == ["Financial", "Customer", "Internal process", "Learning and growth"]


def test_the_data_migration_gives_existing_organizations_the_four_and_keeps_their_own():
    bare, own = OrganizationFactory(), OrganizationFactory()
    with scopes_disabled():
        Perspective.objects.create(organization=own, name="Ours")
        migration = importlib.import_module("okrs.migrations.0014_default_perspectives")
        migration.add_defaults(django_apps, None)
    assert names(bare) == list(strategy.DEFAULT_PERSPECTIVES)
    assert names(own) == ["Ours"]


def test_a_manager_renames_adds_reorders_and_removes_perspectives(world_a):
    org, alice = world_a.org, world_a.admin
    with scope(organization=org):
        Perspective.objects.for_org(org).delete()  # the world's own, to start from the four
        strategy.create_default_perspectives(org)
        persp = {p.name: p for p in Perspective.objects.for_org(org)}
        strategy.rename_perspective(membership=alice, perspective=persp["Financial"],
                                    name="Money")
        strategy.add_perspective(membership=alice, name="Planet")
        strategy.move_perspective(membership=alice, perspective=persp["Internal process"],
                                  up=True)
        kept = StrategicGoal.objects.create(organization=org, perspective=persp["Customer"],
                                            title="Loved by customers")
        strategy.remove_perspective(membership=alice, perspective=persp["Customer"])
    assert names(org) == ["Money", "Internal process", "Learning and growth", "Planet"]
    assert refreshed(kept).perspective is None  # the goal stays, ungrouped


@pytest.mark.parametrize("name, error", [
    ("", "This field is required."),
    ("customer", "There is a perspective named “customer” already."),
    ("Two\nlines", "Keep it on one line."),
])
def test_a_bad_perspective_name_is_refused(world_a, name, error):
    with scope(organization=world_a.org), pytest.raises(ValidationError) as refused:
        strategy.add_perspective(membership=world_a.admin, name=name)
    assert error in refused.value.message_dict["name"]


def test_only_managers_change_the_strategy(world_a):
    lead = MembershipFactory(organization=world_a.org, role=Role.TEAM_LEAD)
    with scope(organization=world_a.org):
        with pytest.raises(PermissionDenied):
            strategy.add_perspective(membership=lead, name="Planet")
        with pytest.raises(PermissionDenied):
            strategy.save_goal(membership=lead, title="Rule the world")
        with pytest.raises(PermissionDenied):
            strategy.set_goal_archived(membership=lead, goal=world_a.goal, archived=True)


def test_the_console_page_lists_perspectives_and_goals(world_a, alice_client, bob_client):
    page = alice_client.get(url(world_a, "console_strategy")).content.decode()
    assert "Customer" in page and "Org A long-term goal" in page
    assert 'data-confirm="Remove the perspective “Customer”?' in page
    assert bob_client.get(url(world_a, "console_strategy")).status_code == 403


def test_the_console_adds_renames_and_moves_perspectives(world_a, alice_client):
    add = alice_client.post(url(world_a, "console_strategy"), {"name": "Planet"})
    assert add.status_code == 302
    bad = alice_client.post(url(world_a, "console_strategy"), {"name": "planet"})
    assert "There is a perspective named “planet” already." in bad.content.decode()
    with scopes_disabled():
        planet = Perspective.objects.get(organization=world_a.org, name="Planet")
    alice_client.post(url(world_a, "console_perspective", planet.pk), {"action": "up"})
    assert names(world_a.org) == ["Planet", "Customer"]
    alice_client.post(url(world_a, "console_perspective", planet.pk), {"name": "Earth"})
    assert names(world_a.org) == ["Earth", "Customer"]


def test_removing_a_perspective_asks_first_then_ungroups_its_goals(world_a, alice_client):
    remove = url(world_a, "console_perspective_remove", world_a.perspective.pk)
    unconfirmed = alice_client.post(remove)
    assert unconfirmed.status_code == 302 and unconfirmed["Location"] == remove
    question = alice_client.get(remove).content.decode()
    assert "Remove the perspective “Customer”?" in question
    assert "Its 1 goal stay, without a perspective." in question
    assert names(world_a.org) == ["Customer"]
    alice_client.post(remove, {"confirm": "yes"})
    assert names(world_a.org) == []
    assert refreshed(world_a.goal).perspective is None


# Strategic goals -------------------------------------------------------------------------------


def test_a_manager_adds_edits_and_archives_a_goal(world_a, alice_client):
    response = alice_client.post(url(world_a, "console_goal_new"), {
        "title": "Be the first choice in Europe", "perspective": world_a.perspective.pk,
        "horizon": "by 2028", "description": "Half our new customers from Europe."})
    assert response.status_code == 302
    with scopes_disabled():
        added = StrategicGoal.objects.get(title="Be the first choice in Europe")
    assert (added.horizon, added.perspective_id) == ("by 2028", world_a.perspective.pk)
    alice_client.post(url(world_a, "console_goal_edit", added.pk), {
        "title": "Be the first choice in Europe and the UK", "horizon": "by 2029"})
    added = refreshed(added)
    assert (added.title, added.horizon, added.perspective) == (
        "Be the first choice in Europe and the UK", "by 2029", None)
    alice_client.post(url(world_a, "console_goal_archive", added.pk), {"archived": "yes"})
    assert refreshed(added).is_archived
    strategy_page = alice_client.get(url(world_a, "strategy")).content.decode()
    assert f'id="goal-{added.pk}"' not in strategy_page
    alice_client.post(url(world_a, "console_goal_archive", added.pk), {"archived": "no"})
    assert not refreshed(added).is_archived


def test_a_goal_form_with_bad_input_keeps_what_was_typed(world_a, alice_client):
    page = alice_client.post(url(world_a, "console_goal_new"), {
        "title": "", "horizon": "by 2030", "description": "Keep me"}).content.decode()
    assert "This field is required." in page and "Keep me" in page and "by 2030" in page


def test_a_goal_cannot_take_another_organizations_perspective(world_a, world_b):
    with scope(organization=world_a.org), pytest.raises(ValidationError) as refused:
        strategy.save_goal(membership=world_a.admin, title="Mixed",
                           perspective=world_b.perspective)
    assert "perspective" in refused.value.message_dict


def test_an_organization_keeps_a_few_live_goals(world_a, monkeypatch):
    monkeypatch.setattr(strategy, "MAX_GOALS", 2)
    with scope(organization=world_a.org):
        second = strategy.save_goal(membership=world_a.admin, title="Second")
        with pytest.raises(ValidationError, match="at most 2 strategic goals"):
            strategy.save_goal(membership=world_a.admin, title="Third")
        strategy.set_goal_archived(membership=world_a.admin, goal=second, archived=True)
        strategy.save_goal(membership=world_a.admin, title="Third")
        with pytest.raises(ValidationError, match="at most 2 strategic goals"):
            strategy.set_goal_archived(membership=world_a.admin, goal=second, archived=False)


# Company objectives link to a goal -------------------------------------------------------------


def edit_data(objective, **changes):
    return {"title": objective.title, "team": objective.team_id, "state": objective.state,
            "version": objective.version, "progress_mode": "key_results",
            "key_results_weight": 1, "weight": 1, **changes}


def test_a_company_objective_links_to_a_goal_on_its_form_and_shows_it(world_a, alice_client):
    other = goal(world_a, "Grow in Europe", horizon="by 2028")
    edit = url(world_a, "objective_edit", world_a.company_objective.pk)
    form = alice_client.get(edit).content.decode()
    assert "Strategic goal" in form and "Customer: Org A long-term goal" in form
    alice_client.post(edit, edit_data(refreshed(world_a.company_objective),
                                      strategic_goal=other.pk))
    assert refreshed(world_a.company_objective).strategic_goal_id == other.pk
    page = alice_client.get(url(world_a, "objective", world_a.company_objective.pk))
    assert "Serves the strategic goal" in page.content.decode()
    assert "Grow in Europe" in page.content.decode() and "(by 2028)" in page.content.decode()


def test_a_team_objective_offers_no_goal_and_the_service_refuses_one(world_a, alice_client):
    form = alice_client.get(url(world_a, "objective_edit", world_a.objective.pk))
    assert "Strategic goal" not in form.content.decode()
    from okrs import services

    objective = refreshed(world_a.objective)
    with scope(organization=world_a.org), pytest.raises(ValidationError) as refused:
        services.update_objective(
            membership=world_a.admin, objective=objective, version=objective.version,
            title=objective.title, why="", team=world_a.team,
            parent=world_a.company_objective, is_local=False, state=objective.state,
            strategic_goal=world_a.goal)
    assert refused.value.message_dict["strategic_goal"] == [
        "Only company objectives link to a strategic goal."]


@pytest.mark.parametrize("which, error", [
    ("foreign", "Choose a strategic goal of this organization."),
    ("archived", "That strategic goal is archived; choose a live one."),
])
def test_a_company_objective_refuses_a_foreign_or_archived_goal(world_a, world_b, which, error):
    from okrs import services

    chosen = world_b.goal if which == "foreign" else goal(world_a, "Old", is_archived=True)
    with scope(organization=world_a.org), pytest.raises(ValidationError) as refused:
        services.create_objective(membership=world_a.admin, cycle=world_a.cycle,
                                  team=world_a.company, title="New", strategic_goal=chosen)
    assert refused.value.message_dict["strategic_goal"] == [error]


# The strategy page -----------------------------------------------------------------------------


def cycles_back(world, n):
    """``n`` earlier cycles before the world's (closed), newest first."""
    made, end = [], world.cycle.start_date
    for i in range(n):
        made.append(CycleFactory(organization=world.org, name=f"Earlier {i + 1}",
                                 start_date=end - timedelta(days=91), end_date=end,
                                 status=Cycle.Status.CLOSED))
        end = end - timedelta(days=91)
    return made


def test_the_strategy_page_shows_goals_by_perspective_with_their_objectives_by_cycle(
        world_a, bob_client):
    [previous] = cycles_back(world_a, 1)
    ObjectiveFactory(organization=world_a.org, cycle=previous, team=world_a.company,
                     title="Last quarter's push", strategic_goal=world_a.goal, score=0.7)
    idle = goal(world_a, "Nobody works on this", horizon="by 2030")
    page = bob_client.get(url(world_a, "strategy"))  # a viewer reads it too
    html = page.content.decode()
    assert page.status_code == 200
    assert html.index("<h2>Customer</h2>") < html.index("Org A long-term goal")
    assert html.index("Org A long-term goal") < html.index("<h2>Not in a perspective</h2>")
    # The open cycle shows progress (its milestone KR is not done yet), a closed one the score.
    assert "Org A company goal" in html and 'aria-label="Progress">0%' in html
    assert "Last quarter&#x27;s push" in html and "Score 0.70" in html  # closed: the score
    assert html.index(world_a.cycle.name) < html.index("Earlier 1")  # newest first
    flagged = html[html.index(f'id="goal-{idle.pk}"'):]
    assert "No company objective served this goal in the last 2 cycles." in flagged
    served = html[html.index(f'id="goal-{world_a.goal.pk}"'):html.index(f'id="goal-{idle.pk}"')]
    assert 'data-testid="unserved"' not in served


@pytest.mark.parametrize("served_in, flagged", [(0, False), (1, True)])
def test_a_goal_no_cycle_served_for_the_last_two_cycles_is_flagged(world_a, alice_client,
                                                                   served_in, flagged):
    with scopes_disabled():  # this cycle's company objective serves nothing
        Objective.objects.filter(pk=world_a.company_objective.pk).update(strategic_goal=None)
    earlier = cycles_back(world_a, 2)  # the previous cycle, and the one before
    ObjectiveFactory(organization=world_a.org, cycle=earlier[served_in], team=world_a.company,
                     title="Served it once", strategic_goal=world_a.goal)
    html = alice_client.get(url(world_a, "strategy")).content.decode()
    assert "Served it once" in html
    assert ("No company objective served this goal in the last 2 cycles." in html) is flagged


def cycles_back_names(world):
    with scopes_disabled():
        return list(Cycle.objects.filter(organization=world.org).exclude(pk=world.cycle.pk)
                    .order_by("-start_date"))


def test_the_strategy_page_says_what_to_do_when_there_are_no_goals(world_a, alice_client,
                                                                    bob_client):
    with scopes_disabled():
        StrategicGoal.objects.filter(organization=world_a.org).update(is_archived=True)
    admin = alice_client.get(url(world_a, "strategy")).content.decode()
    assert "No strategic goals yet" in admin
    assert url(world_a, "console_strategy") in admin
    viewer = bob_client.get(url(world_a, "strategy")).content.decode()
    assert "An org admin or alignment lead adds them" in viewer


def grow_strategy(world, goals, per_goal):
    cycles = cycles_back(world, 4) if not cycles_back_names(world) else cycles_back_names(world)
    with scopes_disabled():
        persp = Perspective.objects.create(organization=world.org,
                                           name=f"P{Perspective.objects.count()}")
    for g in range(goals):
        made = goal(world, f"Goal {g} {timezone.now().timestamp()}", perspective=persp)
        for c in [world.cycle, *cycles]:
            for _ in range(per_goal):
                o = ObjectiveFactory(organization=world.org, cycle=c, team=world.company,
                                     strategic_goal=made, score=0.5 if c.is_closed else None)
                KeyResultFactory(objective=o)


def test_the_strategy_page_queries_do_not_grow_with_goals_cycles_and_objectives(
        world_a, alice_client, django_assert_max_num_queries):
    grow_strategy(world_a, 1, 1)
    small = count_queries(lambda: alice_client.get(url(world_a, "strategy")))
    grow_strategy(world_a, 8, 3)
    with django_assert_max_num_queries(12):
        large = count_queries(lambda: alice_client.get(url(world_a, "strategy")))
    assert large[0].status_code == 200
    assert_same_queries(small, large)


# The tree, from strategic goals ----------------------------------------------------------------


def test_the_tree_can_start_from_strategic_goals(world_a, alice_client):
    loose = ObjectiveFactory(organization=world_a.org, cycle=world_a.cycle, team=world_a.company,
                             title="Serves no goal")
    goal(world_a, "Empty goal")
    page = alice_client.get(url(world_a, "tree") + f"?cycle={world_a.cycle.pk}&start=goals")
    html = page.content.decode()
    assert 'aria-current="page">strategic goals' in html
    top = html.index("Org A long-term goal")
    assert top < html.index("Org A company goal") < html.index("Empty goal")
    assert "No company objective serves this goal in this cycle." in html
    assert html.index("Not linked to a strategic goal") < html.index(loose.title)
    # The objective is the tree's own row: it opens onto its aligned objectives.
    assert url(world_a, "tree_children", world_a.company_objective.pk) in html
    # The cycle picker keeps the switch.
    assert '<input type="hidden" name="start" value="goals">' in html
    plain = alice_client.get(url(world_a, "tree")).content.decode()
    assert "Not linked to a strategic goal" not in plain
    assert 'aria-current="page">company objectives' in plain


def test_the_tree_from_goals_keeps_its_query_count(world_a, alice_client):
    start = url(world_a, "tree") + "?start=goals"
    grow_strategy(world_a, 1, 1)
    small = count_queries(lambda: alice_client.get(start))
    grow_strategy(world_a, 8, 3)
    assert_same_queries(small, count_queries(lambda: alice_client.get(start)))


def test_the_strategy_page_is_under_the_organization(world_a, world_b, alice_client):
    # B's goals never show on A's page, and B's page is a 404 for alice.
    assert "Org B long-term goal" not in alice_client.get(url(world_a, "strategy")).content.decode()
    assert alice_client.get(url(world_b, "strategy")).status_code == 404
