"""Tree ids are never shared between organizations, so one organization's tree writes never
touch another's rows; the database refuses overlapping numbers (PostgreSQL); check_trees finds
every kind of corruption; the repair the migrations run fixes collided trees."""

import threading
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django_scopes import scope, scopes_disabled

from okrs import services as okr_services
from okrs.models import Objective
from orgs import permissions
from orgs import services as org_services
from orgs.models import Membership, Organization, Role, Team
from orgs.trees import find_problems, nested_sets, repair_trees, sequence_name

from ..factories import (
    CycleFactory,
    MembershipFactory,
    ObjectiveFactory,
    OrganizationFactory,
    UserFactory,
)

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL (deferrable unique constraints, sequences, row locks)")


def snapshot(org):
    """Every column of every tree row of an organization."""
    with scopes_disabled():
        return (list(Team.objects.filter(organization=org).order_by("pk").values()),
                list(Objective.objects.filter(organization=org).order_by("pk").values()))


def assert_database_accepts():
    """On PostgreSQL, check the deferred constraints now instead of at commit."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def kinds(problems):
    return {p.kind for p in problems}


class Org:
    """One organization with an admin, a lead, a cycle and a small org tree, by name."""

    def __init__(self, name):
        # Through the services, as people do: the company and first root objective of every
        # organization used to get tree id 1.
        self.made = {}
        self.org, admin = org_services.create_organization(
            name=name, slug=name.lower(), admin_email=f"admin@{name.lower()}.test")
        with scope(organization=self.org):
            self.admin = Membership.objects.get(organization=self.org, user=admin)
            self.company = Team.objects.get(organization=self.org)
        lead = UserFactory(email=f"lead@{self.org.slug}.test")
        self.lead = MembershipFactory(organization=self.org, role=Role.TEAM_LEAD, user=lead)
        self.dept = self.team(f"{name} Engineering", self.company, Team.Kind.DEPARTMENT, lead)
        self.platform = self.team(f"{name} Platform", self.dept)
        self.web = self.team(f"{name} Web", self.dept)
        self.sales = self.team(f"{name} Sales", self.company, Team.Kind.DEPARTMENT)
        self.cycle = CycleFactory(organization=self.org)
        self.goal = self.objective("goal", "Middle company goal", self.company)
        self.child = self.objective("child", "Ship the platform", self.dept, self.goal)

    # Writes, all through the services (and one through the factories), in one scope.

    def team(self, name, parent, kind=Team.Kind.TEAM, lead=None):
        with scope(organization=self.org):
            self.made[name] = org_services.save_team(
                actor=self.admin, name=name, kind=kind, team_type="product",
                parent=Team.objects.get(pk=parent.pk), lead=lead, charter="", scorecard=[])
        return self.made[name]

    def move_team(self, name, parent):
        with scope(organization=self.org):
            t = Team.objects.get(pk=self.made[name].pk)
            org_services.save_team(actor=self.admin, team=t, name=t.name, kind=t.kind,
                                   team_type=t.team_type, parent=Team.objects.get(pk=parent.pk),
                                   lead=t.lead, charter=t.charter, scorecard=t.scorecard)

    def objective(self, key, title, team, parent=None, local=False):
        with scope(organization=self.org):
            self.made[key] = okr_services.create_objective(
                membership=self.admin, cycle=self.cycle, team=team, title=title,
                parent=parent and Objective.objects.get(pk=parent.pk), is_local=local,
                state=Objective.State.PUBLISHED)
        return self.made[key]

    def update(self, key, **changes):
        with scope(organization=self.org):
            o = Objective.objects.get(pk=self.made[key].pk if key in self.made else key.pk)
            fields = dict(title=o.title, why=o.why, team=o.team, parent=o.parent,
                          is_local=o.is_local, state=o.state)
            fields.update(changes)
            okr_services.update_objective(membership=self.admin, objective=o,
                                          version=o.version, **fields)

    def retire(self, key):
        with scope(organization=self.org):
            o = Objective.objects.get(pk=self.made[key].pk)
            okr_services.retire_objective(membership=self.admin, objective=o)

    def factory_root(self, title):
        self.made[title] = ObjectiveFactory(organization=self.org, cycle=self.cycle,
                                            team=self.company, title=title)


def writes(x):
    """A sequence of one organization's tree writes: add, move, re-parent, new roots (sorting
    before and after the others), child to root, root renamed, retire."""
    def fetch(key):
        with scopes_disabled():
            return Objective.objects.get(pk=x.made[key].pk)

    return [
        ("add a team", lambda: x.team("Data", x.dept)),
        ("add a department", lambda: x.team("Apps", x.company, Team.Kind.DEPARTMENT)),
        ("add a team under it", lambda: x.team("Mobile", x.made["Apps"])),
        ("move a team to another department", lambda: x.move_team("Data", x.made["Apps"])),
        ("move a department under another", lambda: x.move_team("Apps", x.sales)),
        ("a root objective sorting first", lambda: x.objective("a", "Aardvark goal", x.company)),
        ("a root objective sorting last", lambda: x.objective("z", "Zebra goal", x.company)),
        ("a child objective", lambda: x.objective("c", "Child goal", x.dept, x.made["a"])),
        ("a grandchild objective", lambda: x.objective("g", "Grandchild", x.platform,
                                                        x.made["c"])),
        ("re-parent a subtree to another tree", lambda: x.update("c", parent=fetch("z"))),
        ("re-parent within the tree", lambda: x.update("g", parent=fetch("z"))),
        ("a child becomes a local root", lambda: x.update("c", parent=None, is_local=True)),
        ("rename a root (mptt reorders roots)", lambda: x.update("z", title="Beta goal")),
        ("a root becomes a child", lambda: x.update("a", parent=fetch("z"), team=x.dept)),
        ("a root through the factory", lambda: x.factory_root("Aaa factory goal")),
        ("retire an objective", lambda: x.retire("g")),
        ("a local objective", lambda: x.objective("l", "Local priority", x.web, local=True)),
    ]


@pytest.fixture
def two(db):
    return Org("Alpha"), Org("Bravo")


def test_interleaved_writes_leave_the_other_organizations_rows_unchanged(two):
    a, b = two
    assert find_problems() == []
    steps = [s for pair in zip(writes(a), writes(b), strict=True) for s in pair]
    for i, (what, step) in enumerate(steps):
        me, other = (a, b) if i % 2 == 0 else (b, a)
        before = snapshot(other.org)
        step()
        assert snapshot(other.org) == before, f"{me.org.name}: {what} changed {other.org.name}"
        assert find_problems() == [], f"after {me.org.name}: {what}"
        assert_database_accepts()
    out = StringIO()
    call_command("check_trees", stdout=out)
    assert out.getvalue().startswith("Trees OK:")


def test_tree_ids_are_never_shared_between_organizations(two):
    a, b = two
    with scopes_disabled():
        for model in (Team, Objective):
            by_tree = {}
            for tree_id, org_id in model.objects.values_list("tree_id", "organization_id"):
                by_tree.setdefault(tree_id, set()).add(org_id)
            assert all(len(orgs) == 1 for orgs in by_tree.values()), model
        assert a.company.tree_id != b.company.tree_id
        # allocated for the whole table, in the order the trees were made
        assert a.goal.tree_id < Objective.objects.get(pk=b.goal.pk).tree_id


def test_generated_organizations_get_their_own_tree_ids(two):
    from dependencies import generate

    a, b = two
    for x in (a, b):
        with scope(organization=x.org):
            generate.build(x.org, x.cycle, 60)
    assert find_problems() == []


def test_roots_and_moves_through_mptt_itself_stay_in_one_organization(two):
    a, b = two
    before = snapshot(b.org)
    with scope(organization=a.org):
        root = Objective.objects.create(organization=a.org, cycle=a.cycle, team=a.company,
                                        title="Aaa first")  # sorts before a.goal
        child = Objective.objects.get(pk=a.child.pk)
        child.move_to(None)  # child to root
        child.refresh_from_db()
        assert child.is_root_node() and child.tree_id not in (a.goal.tree_id, root.tree_id)
        child.move_to(Objective.objects.get(pk=root.pk), "left")  # beside a root: a no-op
        child.move_to(Objective.objects.get(pk=root.pk), "last-child")  # root to child
        goal = Objective.objects.get(pk=a.goal.pk)
        goal.move_to(Objective.objects.get(pk=root.pk), "right")
        Objective.objects.rebuild()
        Team.objects.rebuild()
    assert snapshot(b.org) == before
    assert find_problems() == []
    with scope(organization=a.org):
        root = Objective.objects.get(pk=root.pk)
        assert [o.pk for o in root.get_descendants()] == [a.child.pk]


def test_led_teams_and_permissions_hold_through_the_other_organizations_writes(two):
    a, b = two

    def assert_leads_edit_their_own_units(x):
        with scope(organization=x.org):
            parents = dict(Team.objects.for_org(x.org).values_list("pk", "parent_id"))
            below = {x.dept.pk}  # the department and every unit below it, by the parent links
            while grown := {pk for pk, p in parents.items() if p in below} - below:
                below |= grown
            lead = Membership.objects.get(pk=x.lead.pk)  # fresh: led_team_ids caches
            assert permissions.led_team_ids(lead) == below
            assert permissions.can_edit_team_okrs(lead, x.platform.pk)
            assert not permissions.can_edit_team_okrs(lead, x.sales.pk)
            assert not permissions.can_edit_team_okrs(lead, x.company.pk)

    moves = [
        lambda x: x.team("Extra", x.sales),
        lambda x: x.team("Other", x.made["Extra"]),
        lambda x: x.move_team("Extra", x.dept),  # the lead now also leads Extra and Other
        lambda x: x.move_team("Extra", x.sales),
        lambda x: x.move_team("Other", x.sales),
        lambda x: x.team("Zulu", x.company, Team.Kind.DEPARTMENT),
        lambda x: x.move_team("Extra", x.made["Zulu"]),
    ]
    for step in moves:
        for me, other in ((a, b), (b, a)):
            step(me)
            assert_leads_edit_their_own_units(other)
    for _, step in writes(a):
        step()
        assert_leads_edit_their_own_units(b)


def test_pages_order_trees_by_title_not_by_tree_id(two):
    from alignment.views_cascade import matrix_data

    a, _ = two
    a.objective("z", "Zebra goal", a.company)
    a.objective("zc", "Under zebra", a.dept, a.made["z"])
    a.objective("a", "Aardvark goal", a.company)  # made last: the largest tree id
    with scope(organization=a.org):
        titles = [o.title for o in Objective.objects.for_org(a.org).in_tree_order()]
        columns = [c["title"] for c in matrix_data(a.org, a.cycle)["columns"]]
    assert titles == ["Aardvark goal", "Middle company goal", "Ship the platform",
                      "Zebra goal", "Under zebra"]
    assert columns == ["Aardvark goal", "Middle company goal", "Zebra goal"]


# check_trees finds each kind of corruption ----------------------------------------------------


def _share_tree_id(a, b):
    Team._base_manager.filter(organization=b.org).update(tree_id=a.company.tree_id)


def _bad_nesting(a, b):
    Team._base_manager.filter(pk=b.platform.pk).update(rght=F("rght") + 20)


def _wrong_level(a, b):
    Objective._base_manager.filter(pk=b.child.pk).update(level=3)


def _stale_parent(a, b):
    # The parent link changes without mptt: the stored nesting no longer matches it.
    Team._base_manager.filter(pk=b.web.pk).update(parent=b.sales)


def _other_tree(a, b):
    Objective._base_manager.filter(pk=b.child.pk).update(tree_id=F("tree_id") + 1000)


def _gap(a, b):
    Team._base_manager.filter(pk=b.company.pk).update(rght=F("rght") + 2)


@pytest.mark.parametrize("corrupt, kind, row", [
    (_share_tree_id, "shared_tree_id", "company"),
    (_bad_nesting, "nesting", "platform"),
    (_wrong_level, "level", "child"),
    (_stale_parent, "nesting", "web"),
    (_other_tree, "parent", "child"),
    (_gap, "contiguity", "company"),
])
def test_check_trees_finds_the_corruption_and_exits_non_zero(two, corrupt, kind, row):
    a, b = two
    with transaction.atomic():  # rolled back: PostgreSQL would refuse to commit most of these
        corrupt(a, b)
        problems = find_problems()
        err = StringIO()
        with pytest.raises(CommandError, match="tree problems"):
            call_command("check_trees", stderr=err)
        transaction.set_rollback(True)
    assert kind in kinds(problems)
    assert any(p.row_id == getattr(b, row).pk and p.kind == kind for p in problems)
    assert all(p.organization_id in (a.org.pk, b.org.pk) for p in problems
               if p.kind != "sequence")  # a tree id beyond the sequence is one more problem
    line = f"bravo: {getattr(b, row)._meta.label} #{getattr(b, row).pk}:"
    assert line in err.getvalue()
    assert find_problems() == []


def test_a_parent_loop_is_reported(two):
    a, b = two
    with transaction.atomic():
        Team._base_manager.filter(pk=b.dept.pk).update(parent=b.platform)
        problems = find_problems()
        transaction.set_rollback(True)
    looped = {p.row_id for p in problems if "loop" in p.message}
    assert looped == {b.dept.pk, b.platform.pk, b.web.pk}


def _same_lft_as_sibling(a, b):
    Team._base_manager.filter(pk=b.web.pk).update(lft=b.platform.lft)


def _same_rght_as_sibling(a, b):
    Team._base_manager.filter(pk=b.platform.pk).update(rght=b.web.rght)


@postgresql_only
@pytest.mark.parametrize("corrupt", [_share_tree_id, _same_lft_as_sibling, _same_rght_as_sibling])
def test_postgresql_refuses_to_commit_a_number_used_twice_in_a_tree(two, corrupt):
    a, b = two
    with pytest.raises(IntegrityError, match="tree_(lft|rght)_unique"):
        with transaction.atomic():
            corrupt(a, b)
            assert_database_accepts()  # what COMMIT does


def test_left_must_be_below_right(two):
    a, b = two
    with pytest.raises(IntegrityError), transaction.atomic():
        Objective._base_manager.filter(pk=b.child.pk).update(rght=F("lft"))


@postgresql_only
def test_a_sequence_behind_the_tree_ids_is_reported(two):
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT setval(%s, 1)", [sequence_name("orgs_team")])
        problems = find_problems()
        transaction.set_rollback(True)
    assert "sequence" in kinds(problems)


# The repair the migrations run --------------------------------------------------------------


def collide(a, b):
    """What the old code left behind: organization B's trees reuse A's tree ids, and A's
    numbers were shifted by B's inserts."""
    Team._base_manager.filter(organization=b.org).update(tree_id=a.company.tree_id)
    Objective._base_manager.filter(organization=b.org).update(tree_id=a.goal.tree_id)
    Team._base_manager.filter(organization=a.org, lft__gt=1).update(
        lft=F("lft") + 6, rght=F("rght") + 6)
    Team._base_manager.filter(pk=a.company.pk).update(rght=F("rght") + 6)
    Objective._base_manager.filter(pk=a.child.pk).update(level=4)


def test_repair_gives_collided_trees_their_own_ids_and_rebuilds_them(two):
    a, b = two
    links = {m: dict(m._base_manager.values_list("pk", "parent_id")) for m in (Team, Objective)}
    collide(a, b)
    assert {"shared_tree_id"} <= kinds(find_problems())
    changed = repair_trees(Team) + repair_trees(Objective)
    assert changed > 0
    assert find_problems() == []
    assert_database_accepts()
    for m in (Team, Objective):  # the parent links are the truth and stay as they were
        assert dict(m._base_manager.values_list("pk", "parent_id")) == links[m]
    with scope(organization=b.org):
        dept = Team.objects.get(pk=b.dept.pk)
        assert {t.pk for t in dept.get_descendants()} == {b.platform.pk, b.web.pk}
        assert Objective.objects.get(pk=b.child.pk).level == 1
    assert repair_trees(Team) == 0  # nothing left to do
    assert repair_trees(Objective) == 0


def test_repair_works_on_the_migrations_historical_models(two):
    from django.db.migrations.loader import MigrationLoader

    a, b = two
    state = MigrationLoader(connection).project_state(
        ("orgs", "0007_team_tree_ids_never_shared"))
    with transaction.atomic():
        collide(a, b)
        repair_trees(state.apps.get_model("orgs", "Team"))
        problems = find_problems()
        transaction.set_rollback(True)  # the objectives stay collided: not committed
    assert [p for p in problems if p.model == "orgs.Team"] == []
    assert "shared_tree_id" in kinds(p for p in problems if p.model == "okrs.Objective")


def test_repair_keeps_a_valid_tree_as_it_is(two):
    before = snapshot(two[0].org), snapshot(two[1].org)
    assert repair_trees(Team) == 0 and repair_trees(Objective) == 0
    assert (snapshot(two[0].org), snapshot(two[1].org)) == before


@pytest.mark.parametrize("nodes, positions, unreachable", [
    ([], {}, []),
    ([(1, None, 0)], {1: (1, 1, 2, 0)}, []),
    ([(1, None, 0), (2, 1, "b"), (3, 1, "a"), (4, 2, 0)],
     {1: (1, 1, 8, 0), 3: (1, 2, 3, 1), 2: (1, 4, 7, 1), 4: (1, 5, 6, 2)}, []),
    ([(1, None, 0), (2, None, 1), (3, 2, 0)],
     {1: (1, 1, 2, 0), 2: (2, 1, 4, 0), 3: (2, 2, 3, 1)}, []),
    ([(1, 2, 0), (2, 1, 0), (3, 9, 0)], {}, [1, 2, 3]),  # a loop, a missing parent
])
def test_nested_sets_numbers_trees_from_parent_links(nodes, positions, unreachable):
    assert nested_sets(nodes) == (positions, unreachable)


# Concurrent roots in two organizations ----------------------------------------------------


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
@postgresql_only
def test_concurrent_new_roots_in_two_organizations_get_distinct_tree_ids():
    orgs = [OrganizationFactory(name=f"Org {n}", slug=f"org-{n}") for n in range(2)]
    barrier = threading.Barrier(2)
    errors = []

    def add_roots(org):
        try:
            barrier.wait()
            for n in range(6):
                with transaction.atomic(), scope(organization=org):
                    org_services.lock_organization(org)
                    Team.objects.create(organization=org, name=f"Root {n}",
                                        kind=Team.Kind.COMPANY)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=add_roots, args=(o,)) for o in orgs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert find_problems() == []
    call_command("check_trees", stdout=StringIO())
    assert Organization.objects.count() == 2
