"""A CSV of dated values: the dry run lists rows and errors by line and column; the import
takes every line or none."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from integrations import sources
from okrs.models import CheckIn, KeyResult
from orgs.models import Membership

pytestmark = pytest.mark.django_db


def kr_of(w):
    return KeyResult.objects.select_related("objective__cycle", "organization").get(
        pk=w.key_result.pk)


def days_ago(n):
    return (timezone.localdate() - timedelta(days=n)).isoformat()


def test_the_dry_run_lists_rows_and_errors_by_line_and_column(world_a):
    data = (f"date,value,note\n{days_ago(10)},12,First\n{days_ago(3)},abc,\nyesterday,5,\n"
            f"{days_ago(-2)},4,\n{days_ago(10)},13,Again\n").encode()
    with scope(organization=world_a.org):
        rows, errors = sources.read_csv(kr_of(world_a), data)
    assert [(r.line, r.value, r.note) for r in rows] == [(2, Decimal("12"), "First")]
    assert [(line, column) for line, column, _ in errors] == [
        (3, "value"), (4, "date"), (5, "date"), (6, "date")]
    assert "Line 2 has the same date" in errors[-1][2]
    with scopes_disabled():
        assert not CheckIn.objects.filter(source="data_source").exists()


def test_the_import_is_all_or_nothing(world_a):
    membership_kwargs = {}
    with scope(organization=world_a.org):
        membership_kwargs["membership"] = Membership.objects.select_related(
            "organization", "user").get(user=world_a.admin.user)
        bad = f"{days_ago(9)},10,\n{days_ago(8)},x,\n".encode()
        with pytest.raises(ValidationError, match="Line 2, value"):
            sources.import_csv(key_result=kr_of(world_a), data=bad, **membership_kwargs)
        assert not CheckIn.objects.for_org(world_a.org).filter(source="data_source").exists()
        good = f"{days_ago(2)},30,Later\n{days_ago(9)},10,Earlier\n".encode()
        done = sources.import_csv(key_result=kr_of(world_a), data=good, **membership_kwargs)
        assert [c.value for c in done] == [Decimal("10"), Decimal("30")]  # oldest first
        assert {c.source for c in done} == {"data_source"}
        assert kr_of(world_a).current_value == Decimal("30")


@pytest.mark.parametrize("data,message", [
    (b"", "no rows"),
    (b"\xff\xfe\x00", "not UTF-8"),
])
def test_an_empty_or_binary_file_is_one_clear_error(world_a, data, message):
    with scope(organization=world_a.org):
        rows, errors = sources.read_csv(kr_of(world_a), data)
    assert rows == [] and message in errors[0][2]
