"""Tree writes use the tree as stored when they run, not as it was when the form was read.

mptt moves and inserts with the lft/rght/tree_id of the objects in memory. Two people's forms are
read before either save takes the organization lock; after the first move, the second form's
objects are stale, and moving with them corrupted the nesting. The services read the node and its
new parent again under the lock."""

import pytest
from django_scopes import scope

from okrs import services
from orgs import services as org_services
from orgs.models import Team
from tests.factories import ObjectiveFactory, TeamFactory
from tests.trees import assert_trees_consistent

pytestmark = pytest.mark.django_db


def test_moves_with_parents_read_before_other_moves_keep_the_tree_consistent(world_a):
    w = world_a
    a, b = w.company_objective, w.other_objective  # two roots, read once: they go stale
    moving = [ObjectiveFactory(organization=w.org, cycle=w.cycle, team=w.team, parent=a,
                               title=f"Goal {n}") for n in range(4)]
    with scope(organization=w.org):
        for n, (objective, parent) in enumerate(
                [(moving[0], b), (moving[1], b), (moving[2], b), (moving[0], a),
                 (moving[3], b), (moving[1], a)]):
            current = type(objective).objects.get(pk=objective.pk)
            services.update_objective(
                membership=w.admin, objective=current, version=current.version,
                title=f"Moved {n} {current.title}", why="", team=w.team, parent=parent,
                is_local=False, state="published")
            assert_trees_consistent()
            assert type(objective).objects.get(pk=objective.pk).parent_id == parent.pk


def test_objectives_added_under_a_parent_read_before_other_additions_keep_the_tree(world_a):
    w = world_a
    parent = w.company_objective
    with scope(organization=w.org):
        for n in range(3):
            services.create_objective(
                membership=w.admin, cycle=w.cycle, team=w.team, title=f"Added {n}",
                parent=parent, state="published")
            assert_trees_consistent()


def test_team_moves_with_teams_read_before_other_moves_keep_the_tree_consistent(world_a):
    w = world_a
    sales = TeamFactory(organization=w.org, name="Sales", kind=Team.Kind.DEPARTMENT)
    eng = w.team
    web = TeamFactory(organization=w.org, name="Web", parent=eng)
    api = TeamFactory(organization=w.org, name="Api", parent=eng)
    with scope(organization=w.org):
        for team, parent in [(web, sales), (api, sales), (web, eng), (api, eng), (web, sales)]:
            org_services.save_team(
                actor=w.admin, team=team, name=team.name, kind=team.kind,
                team_type=team.team_type, parent=parent, lead=None, charter="", scorecard=[])
            assert_trees_consistent()
            assert Team.objects.get(pk=team.pk).parent_id == parent.pk
