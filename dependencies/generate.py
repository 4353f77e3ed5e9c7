"""A generated organization network for the benchmark and the query-budget tests.

Shape, per ``nodes`` (objectives plus key results): company objectives at the roots, department
objectives under them, team objectives under those, three or four key results each; about one
dependency per 20 nodes between key results of different teams, some key results feeding
another team's shared key result. Fan-in and fan-out follow from that: a company objective has
dozens of children, a popular key result several dependents.

Rows are inserted in bulk, with the MPTT fields computed here (the tree is known), so building
20,000 nodes takes seconds, not minutes.
"""

import random
from decimal import Decimal

from django.db import transaction

from okrs.models import KeyResult, Objective
from orgs.models import Team
from orgs.services import lock_organization
from orgs.trees import allocate_tree_ids, nested_sets

from .models import Dependency


def build(org, cycle, nodes, *, seed=7):
    """About ``nodes`` objectives and key results in ``cycle``, inside the caller's transaction
    (or one of its own): an interrupted build leaves nothing behind."""
    rng = random.Random(seed)
    company = Team.objects.for_org(org).filter(kind=Team.Kind.COMPANY).first()
    with transaction.atomic():
        lock_organization(org)
        n_objectives = max(4, nodes // 4)
        n_teams = max(3, n_objectives // 12)
        n_departments = max(2, n_teams // 6)
        units = [] if company else [(org.name, Team.Kind.COMPANY, None)]
        units += [(f"Department {i + 1}", Team.Kind.DEPARTMENT, 0) for i in range(n_departments)]
        units += [(f"Team {i + 1}", Team.Kind.TEAM, 1 + i % n_departments)
                  for i in range(n_teams)]
        if company is None:  # a fresh organization: the whole tree in bulk
            made = insert_teams(org, units)
        else:  # under an existing company (small test worlds): mptt's own inserts
            made = [company]
            for name, kind, parent in units:
                made.append(Team.objects.create(organization=org, name=name, kind=kind,
                                                parent=made[parent]))
        company, departments, teams = (made[0], made[1:1 + n_departments],
                                       made[1 + n_departments:])
        n_company = max(2, min(5, n_objectives // 400))
        n_department = max(len(departments), n_objectives // 8)
        objectives, children = [], {}

        def make(team, parent, title):
            o = Objective(organization=org, cycle=cycle, team=team, title=title,
                          state=Objective.State.PUBLISHED, is_local=False,
                          effective_health="", risk_causes=[])
            o._parent_index = parent
            objectives.append(o)
            children.setdefault(parent, []).append(len(objectives) - 1)
            return len(objectives) - 1

        roots = [make(company, None, f"Company goal {i + 1}") for i in range(n_company)]
        dept_objectives = [
            make(departments[i % len(departments)], roots[i % len(roots)],
                 f"Department goal {i + 1}")
            for i in range(n_department)
        ]
        while len(objectives) < n_objectives:
            i = len(objectives)
            make(teams[i % len(teams)], rng.choice(dept_objectives), f"Team goal {i + 1}")
        _assign_tree_fields(objectives, children, roots)
        for o in objectives:
            o.parent_id = None
        Objective.objects.bulk_create(objectives, batch_size=2000)
        id_of = [o.pk for o in objectives]
        parents = [(id_of[i], id_of[o._parent_index]) for i, o in enumerate(objectives)
                   if o._parent_index is not None]
        _set_parents(org, parents)

        key_results = []
        remaining = max(0, nodes - len(objectives))
        i = 0
        while len(key_results) < remaining:
            o = objectives[i % len(objectives)]
            i += 1
            healthy = rng.random()
            confidence = "on_track" if healthy < 0.8 else "at_risk" if healthy < 0.95 else (
                "off_track")
            key_results.append(KeyResult(
                organization=org, objective_id=o.pk, title=f"Key result {len(key_results) + 1}",
                kind=KeyResult.Kind.NUMERIC, start_value=Decimal(0), target_value=Decimal(100),
                current_value=Decimal(rng.randint(30, 90)), unit="%", owner_team_id=o.team_id,
                confidence=confidence, weight=Decimal(1), effective_health="", risk_causes=[]))
        KeyResult.objects.bulk_create(key_results, batch_size=2000)
        deps = []
        for _ in range(max(1, nodes // 20)):
            a, b = sorted(rng.sample(range(len(key_results)), 2))
            up, down = key_results[a], key_results[b]  # lower index upstream: never a loop
            if up.owner_team_id == down.owner_team_id:
                continue
            deps.append(Dependency(
                organization=org, cycle=cycle, upstream_key_result=up, downstream_key_result=down,
                requesting_team_id=down.owner_team_id, providing_team_id=up.owner_team_id,
                need="Generated", needed_by=cycle.end_date, fallback="Generated",
                status=Dependency.Status.COMMITTED))
        Dependency.objects.bulk_create(deps, batch_size=2000)
        feeds = []
        for _ in range(max(1, nodes // 50)):
            a, b = sorted(rng.sample(range(len(key_results)), 2))
            feeds.append((key_results[a].pk, key_results[b].pk))
        for src, dst in feeds:
            KeyResult.objects.for_org(org).filter(pk=src, feeds__isnull=True).update(
                feeds_id=dst)
    return {"objectives": len(objectives), "key_results": len(key_results),
            "dependencies": len(deps), "teams": len(teams) + len(departments) + 1}


def _assign_tree_fields(objectives, children, roots):
    """Nested-set numbers for the known tree, iteratively (no recursion limit)."""
    # Tree ids are global (orgs.trees): the organization's own maximum would collide.
    tree_ids = allocate_tree_ids(Objective._meta.db_table, len(roots))
    for n, root in enumerate(roots):
        counter = 1
        stack = [(root, 0, False)]
        while stack:
            index, level, done = stack.pop()
            o = objectives[index]
            if done:
                o.rght = counter
                counter += 1
                continue
            o.tree_id, o.level, o.lft = tree_ids[n], level, counter
            counter += 1
            stack.append((index, level, True))
            for child in reversed(children.get(index, [])):
                stack.append((child, level + 1, False))


def _set_parents(org, pairs):
    """Parent links after the bulk insert, in a few statements."""
    by_parent = {}
    for child, parent in pairs:
        by_parent.setdefault(parent, []).append(child)
    for parent, kids in by_parent.items():
        for start in range(0, len(kids), 500):
            Objective.objects.for_org(org).filter(pk__in=kids[start:start + 500]).update(
                parent_id=parent)


def insert_tree(model, org, rows, parents, sort_key):
    """Insert a whole new forest of ``model`` rows in bulk, with the MPTT fields computed here.

    ``rows``: unsaved instances; ``parents[i]``: the index in ``rows`` of row i's parent, or None
    for a root; ``sort_key(row)``: the order of siblings (mptt's ``order_insertion_by``). Each
    root gets a fresh tree id from ``allocate_tree_ids``. Returns ``rows``, saved. Run inside a
    transaction: the tree constraints are checked at commit."""
    positions, _ = nested_sets((i, parents[i], sort_key(row)) for i, row in enumerate(rows))
    roots = sorted({root for root, _, _, _ in positions.values()})
    tree_ids = dict(zip(roots, allocate_tree_ids(model._meta.db_table, len(roots)), strict=True))
    for i, row in enumerate(rows):
        root, row.lft, row.rght, row.level = positions[i]
        row.tree_id = tree_ids[root]
        row.parent_id = None
    model._base_manager.bulk_create(rows, batch_size=2000)
    by_parent = {}
    for i, parent in enumerate(parents):
        if parent is not None:
            by_parent.setdefault(rows[parent].pk, []).append(rows[i].pk)
    for parent_id, kids in by_parent.items():
        for start in range(0, len(kids), 1000):
            model.objects.for_org(org).filter(pk__in=kids[start:start + 1000]).update(
                parent_id=parent_id)
    for i, parent in enumerate(parents):
        rows[i].parent_id = None if parent is None else rows[parent].pk
    return rows


def insert_teams(org, units):
    """``units``: (name, kind, parent index or None) tuples; the teams, saved, in that order."""
    rows = [Team(organization=org, name=name, kind=kind, charter="", scorecard=[])
            for name, kind, _ in units]
    return insert_tree(Team, org, rows, [p for _, _, p in units], lambda t: t.name)
