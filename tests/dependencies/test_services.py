"""Dependencies, sharing and recovery plans through their services: rules and permissions."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from django_scopes import scope

from dependencies import graph, services
from dependencies.models import Dependency
from okrs.models import KeyResult
from orgs.models import Role
from tests.factories import (
    DependencyFactory,
    KeyResultFactory,
    MembershipFactory,
    ObjectiveFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db


def ask(r, membership=None, **kwargs):
    args = {"membership": membership or r.mia_m, "downstream": r.win, "upstream": r.platform,
            "need": "SAML login for the pilot customer", "needed_by": r.cycle.end_date,
            "fallback": "Offer the pilot with password login"} | kwargs
    with scope(organization=r.org):
        return services.request_dependency(**args)


def test_a_lead_records_a_dependency_on_another_teams_work(revenue):
    dependency = ask(revenue)
    assert dependency.status == "requested"
    assert dependency.requesting_team == revenue.sales
    assert dependency.providing_team == revenue.eng
    with scope(organization=revenue.org):
        assert [e.status for e in dependency.events.all()] == ["requested"]


def test_a_loop_is_refused_and_named(revenue):
    # Sales' "deals" already depends on Engineering's "SSO", and rolls up into "Win". If SSO
    # now depended on "Win", risk would run in a circle.
    with pytest.raises(ValidationError) as exc:
        ask(revenue, membership=revenue.ethan_m, downstream=revenue.sso, upstream=revenue.win)
    message = exc.value.message_dict["upstream"][0]
    assert message.startswith("This link would create a loop: ")
    assert ("Win enterprise customers (Sales) -> Ship SSO (Engineering) -> "
            "Close 3 enterprise deals (Sales) -> Win enterprise customers (Sales)") in message
    with scope(organization=revenue.org):
        assert Dependency.objects.count() == 2  # the world's and the revenue one, no new row


def test_realigning_an_objective_into_a_loop_is_refused(revenue):
    from okrs.services import update_objective

    r = revenue
    # Engineering's objective depends on Sales' objective: fine, no loop.
    ask(r, membership=r.ethan_m, downstream=r.platform, upstream=r.win)
    with scope(organization=r.org):
        platform = type(r.platform).objects.get(pk=r.platform.pk)
        # Aligning it under "Win" would make "Win" both what it needs and where it rolls up.
        with pytest.raises(ValidationError) as exc:
            update_objective(membership=r.liam_m, objective=platform, version=platform.version,
                             title=platform.title, why="", team=r.eng, parent=r.win,
                             is_local=False, state=platform.state)
        assert "loop" in exc.value.message_dict["parent"][0]
        assert type(r.platform).objects.get(pk=r.platform.pk).parent_id == r.arr.pk


def test_a_key_result_cannot_feed_into_a_loop(revenue):
    r = revenue
    with scope(organization=r.org):
        # deals depends on SSO; SSO feeding deals is fine (same direction)...
        services.link_key_result(membership=r.ethan_m, key_result=r.sso, feeds=r.deals)
        # ...but deals feeding SSO closes the loop.
        with pytest.raises(ValidationError, match="loop"):
            services.link_key_result(membership=r.mia_m, key_result=r.deals, feeds=r.sso)


def test_cross_organization_links_are_refused(revenue, world_b):
    with pytest.raises(ValidationError):
        ask(revenue, upstream=world_b.objective)
    with scope(organization=revenue.org), pytest.raises(ValidationError):
        services.link_key_result(membership=revenue.mia_m, key_result=revenue.deals,
                                 feeds=world_b.key_result)
    with scope(organization=revenue.org), pytest.raises(ValidationError):
        services.share_objective(membership=revenue.mia_m, objective=revenue.win,
                                 team=world_b.team, kind="whole")


@pytest.mark.parametrize("field, value, message", [
    ("need", "  ", "what exactly"),
    ("fallback", "", "slips"),
])
def test_a_request_says_what_and_its_fallback(revenue, field, value, message):
    with pytest.raises(ValidationError, match=message):
        ask(revenue, **{field: value})


def test_the_date_must_fall_inside_the_cycle(revenue):
    with pytest.raises(ValidationError) as exc:
        ask(revenue, needed_by=revenue.cycle.end_date + timedelta(days=1))
    assert "inside the cycle" in exc.value.message_dict["needed_by"][0]


def test_a_team_cannot_depend_on_itself(revenue):
    other = ObjectiveFactory(organization=revenue.org, cycle=revenue.cycle, team=revenue.sales,
                             parent=revenue.arr)
    with pytest.raises(ValidationError, match="your own team"):
        ask(revenue, upstream=other)


def test_only_the_dependent_teams_leads_record_a_dependency(revenue):
    with pytest.raises(PermissionDenied):
        ask(revenue, membership=revenue.ethan_m)
    viewer = MembershipFactory(organization=revenue.org, role=Role.VIEWER)
    with pytest.raises(PermissionDenied):
        ask(revenue, membership=viewer)


def answer(r, membership, dependency, status, note=""):
    with scope(organization=r.org):
        return services.answer_dependency(membership=membership, dependency=dependency,
                                          status=status, note=note)


def test_the_providing_lead_commits_and_later_delivers(revenue):
    d = ask(revenue)
    d = answer(revenue, revenue.ethan_m, d, "committed")
    assert d.status == "committed" and d.responded_by == revenue.ethan
    d = answer(revenue, revenue.ethan_m, d, "delivered")
    with scope(organization=revenue.org):
        assert [e.status for e in d.events.all()] == ["requested", "committed", "delivered"]


def test_the_requesting_lead_cannot_commit_for_the_provider(revenue):
    d = ask(revenue)
    with pytest.raises(PermissionDenied):
        answer(revenue, revenue.mia_m, d, "committed")
    with scope(organization=revenue.org):
        assert services.allowed_answers(revenue.mia_m, d) == ["withdrawn"]
        assert services.allowed_answers(revenue.ethan_m, d) == ["committed", "declined"]


def test_declining_needs_a_reason_and_escalates(revenue):
    d = ask(revenue)
    with pytest.raises(ValidationError, match="reason"):
        answer(revenue, revenue.ethan_m, d, "declined")
    d = answer(revenue, revenue.ethan_m, d, "declined", "No capacity this quarter")
    assert d.response_note == "No capacity this quarter"
    with scope(organization=revenue.org):
        assert services.is_escalated(d)
        assert d in services.escalated(revenue.org)


def test_an_unanswered_request_escalates_after_the_configured_days(revenue):
    d = ask(revenue)
    org = revenue.org
    org.escalate_after_days = 3
    org.save()
    today = timezone.localdate()
    with scope(organization=org):
        d = Dependency.objects.select_related("organization").get(pk=d.pk)
        assert not services.is_escalated(d, today=today + timedelta(days=2))
        assert services.is_escalated(d, today=today + timedelta(days=3))
        Dependency.objects.filter(pk=d.pk).update(
            created_at=timezone.now() - timedelta(days=3))
        assert [x.pk for x in services.escalated(org)] == [d.pk]
        answer(revenue, revenue.ethan_m, d, "committed")
        assert services.escalated(org) == []


def test_an_answer_that_no_longer_applies_is_refused(revenue):
    d = ask(revenue)
    answer(revenue, revenue.ethan_m, d, "committed")
    with pytest.raises(ValidationError, match="no longer applies"):
        answer(revenue, revenue.ethan_m, d, "committed")


def test_either_side_can_record_a_break_with_a_reason(revenue):
    d = DependencyFactory(downstream=revenue.win, upstream=revenue.platform,
                          status="committed")
    with pytest.raises(ValidationError, match="reason"):
        answer(revenue, revenue.mia_m, d, "broken")
    d = answer(revenue, revenue.mia_m, d, "broken", "The vendor contract fell through")
    assert d.status == "broken"


def test_recovery_actions_are_for_alignment_leads_on_company_and_department_objectives(
        revenue):
    r = revenue
    team = TeamFactory(organization=r.org, parent=r.sales)
    team_objective = ObjectiveFactory(organization=r.org, cycle=r.cycle, team=team,
                                      parent=r.win)
    due = timezone.localdate() + timedelta(days=7)
    with scope(organization=r.org):
        action = services.add_recovery_action(membership=r.liam_m, objective=r.arr,
                                              title="Weekly deal review", owner=r.mia,
                                              due_date=due)
        assert action.owner == r.mia
        with pytest.raises(PermissionDenied):
            services.add_recovery_action(membership=r.liam_m, objective=team_objective,
                                         title="x", owner=r.mia, due_date=due)
        with pytest.raises(PermissionDenied):
            services.add_recovery_action(membership=r.mia_m, objective=r.arr, title="x",
                                         owner=r.mia, due_date=due)
        # The owner marks it done.
        services.set_recovery_action_done(membership=r.mia_m, action=action, done=True)
        with pytest.raises(PermissionDenied):
            services.set_recovery_action_done(membership=r.ethan_m, action=action, done=False)


def test_the_loop_check_walks_in_sql_with_one_query(revenue, django_assert_num_queries):
    with scope(organization=revenue.org), django_assert_num_queries(1):
        loop = graph.find_loop(revenue.org, graph.node_of(revenue.win),
                               graph.node_of(revenue.sso))
    assert loop == [graph.node_of(n) for n in (revenue.win, revenue.sso, revenue.deals,
                                               revenue.win)]


def test_closed_cycle_refuses_new_links(revenue):
    revenue.cycle.status = "closed"
    revenue.cycle.save()
    with pytest.raises(ValidationError, match="closed"):
        ask(revenue)


def test_sharing_an_objective(revenue):
    r = revenue
    with scope(organization=r.org):
        share = services.share_objective(membership=r.mia_m, objective=r.win, team=r.eng,
                                         kind="whole")
        assert share.get_kind_display() == "Whole OKR shared"
        with pytest.raises(ValidationError):
            services.share_objective(membership=r.mia_m, objective=r.win, team=r.sales,
                                     kind="whole")
        outsider = MembershipFactory(organization=r.org, role=Role.TEAM_LEAD)
        with pytest.raises(PermissionDenied):
            services.share_objective(membership=outsider, objective=r.win, team=r.eng,
                                     kind="whole")
        other = KeyResultFactory(objective=r.win)
        assert other.owner_team == r.sales


def test_a_whole_okr_share_makes_the_other_team_a_co_owner(revenue):
    from orgs.permissions import can_check_in, can_edit_objective

    r = revenue
    with scope(organization=r.org):
        win = type(r.win).objects.get(pk=r.win.pk)
        deals = KeyResult.objects.select_related("objective").get(pk=r.deals.pk)
        assert not can_edit_objective(r.ethan_m, win)
        assert not can_check_in(r.ethan_m, deals)
        services.share_objective(membership=r.mia_m, objective=win, team=r.eng, kind="objective")
        win = type(r.win).objects.get(pk=r.win.pk)
        assert not can_edit_objective(r.ethan_m, win)  # only the objective: own KRs only
        services.share_objective(membership=r.mia_m, objective=win, team=r.eng, kind="whole")
        win = type(r.win).objects.get(pk=r.win.pk)
        deals = KeyResult.objects.select_related("objective").get(pk=r.deals.pk)
        assert can_edit_objective(r.ethan_m, win)
        assert can_check_in(r.ethan_m, deals)
