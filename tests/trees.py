"""Tree consistency for tests: every MPTT table matches its parent links.

For each tree the nested set is recomputed from the parent links (siblings in their stored
order) and compared with the stored ``lft``, ``rght`` and ``level``; every node must share its
parent's ``tree_id`` and every tree must have one root. Rebuilding such a table from its parent
links would change no row. (``manage.py check_trees`` checks the same and more once it exists:
switch ``assert_trees_consistent`` to call it.)
"""

from collections import defaultdict

from django_scopes import scopes_disabled
from mptt.models import MPTTModel

from okrs.models import Objective
from orgs.models import Team

TREE_MODELS = (Team, Objective)


def tree_problems(model):
    assert issubclass(model, MPTTModel)
    with scopes_disabled():
        rows = list(model._base_manager.values_list("pk", "parent_id", "tree_id", "lft", "rght",
                                                    "level"))
    by_pk = {pk: (parent, tree, lft, rght, level) for pk, parent, tree, lft, rght, level in rows}
    children, roots = defaultdict(list), defaultdict(list)
    problems = []
    for pk, (parent, tree, lft, _, _) in by_pk.items():
        if parent is None:
            roots[tree].append(pk)
        elif parent not in by_pk:
            problems.append(f"{model.__name__} {pk}: parent {parent} does not exist")
        else:
            if by_pk[parent][1] != tree:
                problems.append(f"{model.__name__} {pk}: tree {tree}, its parent's is "
                                f"{by_pk[parent][1]}")
            children[parent].append((lft, pk))
    trees = {tree for _, (_, tree, _, _, _) in by_pk.items()}
    seen = set()
    for tree in sorted(trees):
        if len(roots[tree]) != 1:
            problems.append(f"{model.__name__} tree {tree}: {len(roots[tree])} roots")
            continue
        counter = 1
        stack = [(roots[tree][0], 0, False)]
        expected = {}
        while stack:
            pk, level, closing = stack.pop()
            if closing:
                expected[pk] = (expected[pk][0], counter, level)
                counter += 1
                continue
            if pk in seen:
                problems.append(f"{model.__name__} {pk}: reached twice (a loop)")
                continue
            seen.add(pk)
            expected[pk] = (counter, None, level)
            counter += 1
            stack.append((pk, level, True))
            for _, child in sorted(children[pk], reverse=True):
                stack.append((child, level + 1, False))
        for pk, (lft, rght, level) in expected.items():
            _, _, s_lft, s_rght, s_level = by_pk[pk]
            if (s_lft, s_rght, s_level) != (lft, rght, level):
                problems.append(f"{model.__name__} {pk}: stored lft/rght/level "
                                f"{s_lft}/{s_rght}/{s_level}, parent links say "
                                f"{lft}/{rght}/{level}")
    for pk in set(by_pk) - seen:
        if by_pk[pk][0] is not None and by_pk[pk][0] in by_pk:
            problems.append(f"{model.__name__} {pk}: not reachable from its tree's root")
    return problems


def assert_trees_consistent():
    problems = [p for model in TREE_MODELS for p in tree_problems(model)]
    assert not problems, "\n".join(problems[:30])
