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
        # Ava (the company team's lead) is told as of any request: in the app, and in her
        # next email bundle, with what accepting would do.
        from dependencies.models import Notification
        from nudges.models import BundleItem
        assert Notification.objects.filter(user=demo.ava.user, kind="request",
                                           key_result=demo.arr_kr).exists()
        item = BundleItem.objects.get(bundle__user=demo.ava.user, kind="request_raised",
                                      title__contains="Cut JS payload")
        assert "count in the sum" in item.text
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
        # Ethan is told the answer, with Ava's reason; her request is marked read.
        told = Notification.objects.get(user=demo.ethan.user, kind="declined")
        assert told.title.startswith("Declined: “Cut JS payload")
        assert "booked revenue only" in told.details["text"]
        assert not Notification.objects.filter(user=demo.ava.user, kind="request",
                                               key_result=demo.arr_kr, read_at=None).exists()


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


def test_a_manual_value_on_a_rolled_up_key_result_is_refused_with_the_reason(
        demo, django_capture_on_commit_callbacks):
    """Ava's check-in of 3 on "Win 12 new enterprise customers" was silently replaced by the
    sum of its contributors. Now the value is refused, and confidence and a note still go in."""
    from okrs.services import record_check_in

    with scope(organization=demo.org):
        shown = fresh(demo.customers).current_value
        assert shown == fresh(demo.deals).current_value
        with pytest.raises(ValidationError) as refused:
            record_check_in(membership=demo.ava, key_result=fresh(demo.customers),
                            confidence="at_risk", value=Decimal(3), note="3 signed")
        assert ("Its value is the sum of 1 contributing key result."
                in refused.value.message_dict["value"][0])
        assert fresh(demo.customers).current_value == shown
        with django_capture_on_commit_callbacks(execute=True):
            check_in = record_check_in(membership=demo.ava, key_result=fresh(demo.customers),
                                       confidence="at_risk", note="Two pilots wait for SSO.")
        assert check_in.value is None
        after = fresh(demo.customers)
        assert (after.current_value, after.confidence) == (shown, "at_risk")


def client_of(membership):
    from tests.conftest import client_for

    return client_for(membership.user)


def kr_block(page, kr):
    """The HTML of one key result's item on an objective page."""
    start = page.index(f'id="kr-{kr.pk}"')
    end = page.find('<li class="kr"', start)
    return page[start:end if end != -1 else page.index("</ul>", start)]


def test_a_rolled_up_key_result_says_so_on_its_page_and_forms(demo):
    ava = client_of(demo.ava)
    base = f"/o/{demo.org.slug}"
    page = ava.get(f"{base}/objectives/{demo.reach.pk}/").content.decode()
    block = kr_block(page, demo.customers)
    assert "Its value is the sum of 1 contributing key result." in block
    assert "Close 12 enterprise deals" in block and "(Sales)" in block
    form = ava.get(f"{base}/key-results/{demo.customers.pk}/check-in/").content.decode()
    assert "Its value is the sum of 1 contributing key result." in form
    assert 'name="value"' not in form and 'name="confidence"' in form
    edit = ava.get(f"{base}/key-results/{demo.customers.pk}/edit/").content.decode()
    assert "Its value is the sum of 1 contributing key result." in edit
    # A value posted anyway is refused with the reason, on the form.
    with scope(organization=demo.org):
        before = fresh(demo.customers).check_ins.count()
    response = ava.post(f"{base}/key-results/{demo.customers.pk}/check-in/",
                        {"value": "3", "confidence": "on_track", "note": "3 signed"})
    assert response.status_code == 200
    assert "Its value is the sum of 1 contributing key result." in response.content.decode()
    with scope(organization=demo.org):
        assert fresh(demo.customers).check_ins.count() == before


def test_the_history_never_contradicts_the_number_on_screen(
        demo, django_capture_on_commit_callbacks):
    ava = client_of(demo.ava)
    base = f"/o/{demo.org.slug}"
    with django_capture_on_commit_callbacks(execute=True):
        ava.post(f"{base}/key-results/{demo.customers.pk}/check-in/",
                 {"confidence": "at_risk", "note": "Two pilots wait for SSO."})
    page = ava.get(f"{base}/objectives/{demo.reach.pk}/").content.decode()
    block = kr_block(page, demo.customers)
    with scope(organization=demo.org):
        shown = fresh(demo.customers).current_value
        own_values = list(fresh(demo.customers).check_ins.exclude(value=None)
                          .values_list("value", flat=True))
    assert own_values  # the demo's own check-ins from before the roll-up
    from okrs.charts import plain_number
    assert f'data-testid="kr-current">{plain_number(shown)}<' in block
    history = block[block.index("Check-in history"):]
    # The newest entry is Ava's: no value of its own, the value is its contributors'.
    assert history.index("value from its contributors") < history.index("Two pilots")
    # Its own earlier values are marked as such, never shown as its value.
    for value in own_values:
        assert f"<strong>{plain_number(value)} customers</strong>" not in history
    assert "its own value then" in history
    assert 'class="spark"' not in block


@pytest.mark.parametrize("a, b, same", [
    ("customers", "Customer", True), (" $M ", "$M", True), ("MB", "$M", False),
    ("", "", True), ("%", "", False), ("s", "", False), ("deals", "customers", False),
])
def test_units_match_case_space_and_plural_aside(a, b, same):
    assert services.same_unit(a, b) is same


def test_only_the_owners_answer_and_a_request_is_answered_once(revenue):
    from tests.factories import KeyResultFactory

    r = revenue
    with scope(organization=r.org):
        shared = KeyResultFactory(objective=r.arr, title="Enterprise logos", unit="%")
        request = services.request_contribution(membership=r.mia_m, key_result=r.deals,
                                                 shared=shared, rollup="sum")
        assert request.status == "requested"
        # A second request for the same key result waits for the first to end.
        with pytest.raises(ValidationError, match="already waits"):
            services.request_contribution(membership=r.mia_m, key_result=r.deals,
                                          shared=shared)
        with pytest.raises(PermissionDenied):
            services.answer_contribution(membership=r.ethan_m, contribution=request,
                                         accept=True)
        services.answer_contribution(membership=r.liam_m, contribution=request, accept=False,
                                     note="Logos count signed contracts only.")
        with pytest.raises(ValidationError, match="answered or withdrawn"):
            services.answer_contribution(membership=r.liam_m, contribution=request,
                                         accept=True)
        assert fresh(r.deals).feeds_id is None
        # Declined, Mia may ask again; the alignment lead asking is accepted at once.
        again = services.request_contribution(membership=r.liam_m, key_result=r.deals,
                                              shared=shared, rollup="sum")
        assert again.status == "accepted" and fresh(r.deals).feeds_id == shared.pk
        assert fresh(shared).current_value == fresh(r.deals).current_value


def test_a_milestone_cannot_add_up_and_a_loop_is_refused_at_the_request(revenue):
    r = revenue
    with scope(organization=r.org):
        with pytest.raises(ValidationError, match="no value to add up"):
            services.request_contribution(membership=r.ethan_m, key_result=r.sso,
                                          shared=r.deals, rollup="sum")
        # Deals depends on SSO: deals feeding SSO would close a loop.
        with pytest.raises(ValidationError, match="loop"):
            services.request_contribution(membership=r.mia_m, key_result=r.deals,
                                          shared=r.sso)


def test_the_weekly_digest_asks_the_owner_to_answer(revenue):
    from nudges import content

    r = revenue
    with scope(organization=r.org):
        shared = KeyResult.objects.create(
            organization=r.org, objective=r.win, title="Pipeline coverage", start_value=0,
            target_value=3, current_value=1, unit="%", owner_team=r.sales)
        services.request_contribution(membership=r.ethan_m, key_result=r.sso, shared=shared)
        mia = Membership.objects.select_related("organization", "user").get(
            organization=r.org, user=r.mia)
        decisions = [x["title"] for x in content.build(mia).decisions]
    assert "Engineering asks to count “Ship SSO” in “Pipeline coverage”" in decisions


def test_a_unit_change_cannot_break_a_sum(demo):
    from okrs.services import update_key_result

    with scope(organization=demo.org):
        for kr in (fresh(demo.deals), fresh(demo.customers)):
            with pytest.raises(ValidationError) as refused:
                update_key_result(
                    membership=demo.ava, key_result=kr, version=kr.version, title=kr.title,
                    start_value=kr.start_value, target_value=kr.target_value, unit="deals",
                    owner_team=kr.owner_team, owner=kr.owner, weight=kr.weight)
            assert "adds up with" in refused.value.message_dict["unit"][0]
            assert fresh(kr).unit == "customers"


def test_the_objective_page_asks_the_same_queries_for_few_or_many_contributors(world_a):
    """Requests and contributors, both ways, are loaded for the page in a fixed number of
    queries (no query per row)."""
    from tests.conftest import client_for
    from tests.factories import ContributionFactory, KeyResultFactory, ObjectiveFactory
    from tests.querycount import assert_same_queries, count_queries

    w = world_a
    shared = KeyResultFactory(objective=w.company_objective, title="Logos", rollup="sum")
    other = KeyResultFactory(objective=w.company_objective, title="Second shared")

    def contributors(n):
        for _ in range(n):
            o = ObjectiveFactory(organization=w.org, cycle=w.cycle, team=w.team,
                                 parent=w.company_objective)
            KeyResultFactory(objective=o, feeds=shared, current_value=Decimal(1))
            ContributionFactory(key_result=KeyResultFactory(objective=o), shared=other)

    contributors(2)
    page = f"/o/{w.org.slug}/objectives/{w.company_objective.pk}/"
    client = client_for(w.admin.user)
    small = count_queries(lambda: client.get(page))
    contributors(20)
    large = count_queries(lambda: client.get(page))
    assert large[0].status_code == 200
    assert "Its value is the sum of 22 contributing key results." in large[0].content.decode()
    assert_same_queries(small, large)
