"""Tree consistency for tests: what ``manage.py check_trees`` checks (orgs.trees), as an
assertion that lists what is wrong."""

from orgs.trees import find_problems


def assert_trees_consistent():
    problems = find_problems()
    assert not problems, "\n".join(str(p) for p in problems[:30])
