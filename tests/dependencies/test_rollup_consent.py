"""Roll-ups nobody can hijack: contributing a key result into another team's key result is a
request its owner answers; until then nothing changes. Units must match; unlinking restores
the shared key result's own value at once. Reproduced on the demo (``seed_demo``)."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django_scopes import scope, scopes_disabled

from dependencies import services
from okrs.models import KeyResult, Objective
from orgs.models import Membership, Organization


class Demo:
    pass


@pytest.fixture
def demo(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", stdout=StringIO())
    d = Demo()
    with scopes_disabled():
        d.org = Organization.objects.get(slug="northwind")
        members = {m.user.email.split("@")[0]: m for m in
                   Membership.objects.filter(organization=d.org).select_related("user")}
        d.__dict__.update(members)
        krs = {k.title: k for k in KeyResult.objects.filter(
            organization=d.org, objective__cycle__status="active").select_related(
            "objective__cycle", "objective__team", "owner_team")}
        d.arr_kr = krs["Grow ARR from $8.4M to $12M"]
        d.payload = krs["Cut JS payload from 1.8 MB to 0.9 MB"]
        d.customers = krs["Win 12 new enterprise customers"]
        d.deals = krs["Close 12 enterprise deals"]
        d.reach = Objective.objects.get(organization=d.org, cycle__status="active",
                                        title="Reach $12M in annual recurring revenue")
    return d


def fresh(kr):
    return KeyResult.objects.get(pk=kr.pk)


def test_a_department_head_cannot_hijack_the_company_arr_key_result(
        demo, django_capture_on_commit_callbacks):
    """The issue's bug: Ethan linked "Cut JS payload" (MB) into "Grow ARR" ($M) with "sum":
    ARR showed 1.35 $M and turned off track, with no unit check, no consent, no alert."""
    with scope(organization=demo.org):
        before = fresh(demo.arr_kr)
        assert before.rollup == ""
        with django_capture_on_commit_callbacks(execute=True), \
                pytest.raises(ValidationError) as refused:
            services.link_key_result(membership=demo.ethan, key_result=demo.payload,
                                     feeds=demo.arr_kr, rollup="sum")
        message = " ".join(refused.value.messages)
        assert "MB" in message and "$M" in message
        after = fresh(demo.arr_kr)
        assert (after.current_value, after.rollup) == (before.current_value, "")
        assert fresh(demo.payload).feeds_id is None


def test_a_contribution_waits_for_the_owner_and_changes_nothing_until_accepted(
        demo, django_capture_on_commit_callbacks):
    with scope(organization=demo.org):
        # Matching units (both $M), still another team's KR: a request, not a link.
        KeyResult.objects.filter(pk=demo.payload.pk).update(unit="$M")
        demo.payload.unit = "$M"
        before = fresh(demo.arr_kr)
        mail.outbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            request = services.request_contribution(
                membership=demo.ethan, key_result=demo.payload, shared=demo.arr_kr,
                rollup="sum")
        assert request.status == "requested"
        after = fresh(demo.arr_kr)
        assert (after.current_value, after.rollup) == (before.current_value, "")
        assert fresh(demo.payload).feeds_id is None
        # Ava (the company team's lead) is told, in the app and by email.
        assert any(m.to == ["ava@northwind.example"] and "Cut JS payload" in m.subject
                   for m in mail.outbox)
        from dependencies.models import Notification
        assert Notification.objects.filter(user=demo.ava.user, kind="request",
                                           key_result=demo.arr_kr).exists()
        # Ethan cannot answer his own request.
        with pytest.raises(PermissionDenied):
            services.answer_contribution(membership=demo.ethan, contribution=request,
                                         accept=True)
        with django_capture_on_commit_callbacks(execute=True):
            services.answer_contribution(membership=demo.ava, contribution=request,
                                         accept=False, note="ARR is booked revenue only.")
        declined = fresh(demo.arr_kr)
        assert (declined.current_value, declined.rollup) == (before.current_value, "")
        assert fresh(demo.payload).feeds_id is None


def test_unlinking_restores_the_shared_key_results_own_value_at_once(
        demo, django_capture_on_commit_callbacks):
    """Sales' deals add up into the company's enterprise customers. When the only contributor
    leaves, the company KR goes back to its own latest check-in and stops summing."""
    with scope(organization=demo.org):
        customers = fresh(demo.customers)
        assert customers.rollup == "sum"
        assert customers.current_value == fresh(demo.deals).current_value
        own = customers.check_ins.exclude(value=None).order_by("-created_at").first()
        with django_capture_on_commit_callbacks(execute=True):
            services.link_key_result(membership=demo.mia, key_result=demo.deals, feeds=None)
        after = fresh(demo.customers)
        assert after.rollup == ""
        assert after.current_value == (own.value if own else after.start_value)


def test_with_contributors_left_the_shared_value_is_their_sum_at_once(
        demo, django_capture_on_commit_callbacks):
    with scope(organization=demo.org):
        other = KeyResult.objects.create(
            organization=demo.org, objective=demo.deals.objective, title="Partner deals",
            start_value=0, target_value=4, current_value=Decimal(2), unit="customers",
            owner_team=demo.deals.owner_team)
        with django_capture_on_commit_callbacks(execute=True):
            services.link_key_result(membership=demo.liam, key_result=other,
                                     feeds=demo.customers, rollup="sum")
        total = fresh(demo.deals).current_value + 2
        assert fresh(demo.customers).current_value == total
        with django_capture_on_commit_callbacks(execute=True):
            services.link_key_result(membership=demo.mia, key_result=demo.deals, feeds=None)
        after = fresh(demo.customers)
        assert (after.current_value, after.rollup) == (Decimal(2), "sum")
