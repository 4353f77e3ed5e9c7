from django.db import connection
from django.test.utils import CaptureQueriesContext


def count_queries(fn):
    """Run fn and return (result, number of queries, the SQL) for a readable failure."""
    with CaptureQueriesContext(connection) as ctx:
        result = fn()
    return result, len(ctx), "\n".join(q["sql"] for q in ctx.captured_queries)


def assert_same_queries(small, large, slack=0):
    (_, n_small, sql_small), (_, n_large, sql_large) = small, large
    assert n_large <= n_small + slack, (
        f"queries grew with the data: {n_small} -> {n_large}\n--- small\n{sql_small}\n"
        f"--- large\n{sql_large}")


def within(small, large, margin=0.05):
    """The large organization's page is at most ``margin`` bigger than the small one's."""
    assert len(large) <= len(small) * (1 + margin), (len(small), len(large))
