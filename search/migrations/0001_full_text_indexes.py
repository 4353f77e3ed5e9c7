"""GIN expression indexes for the top bar's full-text search, on PostgreSQL only (SQLite
searches with icontains and gets nothing here).

Each index is built from the same expression the search queries (``to_tsvector('simple', ...)``
over the columns of ``search.selectors.VECTORS``, frozen below): PostgreSQL uses an expression
index only for the identical expression. tests/search/test_search.py checks that the queries
use them."""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations

INDEXES = [
    ("okrs", "Objective", "search_objective_fts", (("title", "A"), ("why", "B"))),
    ("okrs", "KeyResult", "search_keyresult_fts", (("title", "A"),)),
    ("orgs", "Team", "search_team_fts", (("name", "A"),)),
    ("orgs", "User", "search_user_fts", (("full_name", "A"),)),
    ("dependencies", "Dependency", "search_dependency_fts", (("need", "A"), ("fallback", "B"))),
    ("okrs", "ObjectiveClose", "search_objectiveclose_fts",
     (("learned", "A"), ("differently", "B"))),
    ("retros", "Retrospective", "search_retrospective_fts",
     (("what_worked", "A"), ("friction", "B"))),
]


def _index(name, columns):
    parts = [SearchVector(column, weight=weight, config="simple") for column, weight in columns]
    expression = parts[0]
    for part in parts[1:]:
        expression = expression + part
    return GinIndex(expression, name=name)


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for app, model, name, columns in INDEXES:
        schema_editor.add_index(apps.get_model(app, model), _index(name, columns))


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for app, model, name, columns in INDEXES:
        schema_editor.remove_index(apps.get_model(app, model), _index(name, columns))


class Migration(migrations.Migration):

    dependencies = [
        ("okrs", "0015_check_in_source"),
        ("orgs", "0011_ladder_days_and_team_checkin_cadence"),
        ("dependencies", "0010_escalation_step"),
        ("retros", "0002_choice_columns_hold_their_choices"),
    ]

    operations = [migrations.RunPython(create, drop)]
