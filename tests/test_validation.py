"""Services validate everything they write (they are what views, tasks, commands and the API
call), and the database refuses a bad choice or health value whatever path it comes by.

Table-driven: each row is (field, bad value, the field the error must name)."""

import logging
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from alignment import services as workflows
from alignment.models import Milestone, Stakeholder, Workflow
from dependencies import network
from dependencies import services as network_services
from dependencies.models import Dependency, NetworkState
from nudges import outbox
from nudges.models import OutboundEmail
from okrs import services
from okrs.models import KPI, CheckIn, Health, KeyResult, KPIValue, Objective, ObjectiveClose
from orgs import services as org_services
from orgs.models import Cycle, Team
from orgs.validation import Fields, control_characters

from .factories import KeyResultFactory, ObjectiveFactory, TeamFactory

pytestmark = pytest.mark.django_db

LONG = "x" * 5001


def refused(call, field):
    """Run ``call``; it must raise a ValidationError naming ``field`` and store nothing."""
    with pytest.raises(ValidationError) as e:
        call()
    assert hasattr(e.value, "error_dict"), f"no field named: {e.value}"
    assert field in e.value.error_dict, e.value.error_dict
    return e.value.message_dict[field]


# The module on its own ----------------------------------------------------------------------


@pytest.mark.parametrize("value, found", [
    ("plain", []), ("line\nbreak", ["\n"]), ("tab\there", ["\t"]), ("bell\x07", ["\x07"]),
    ("zero\u200bwidth", ["\u200b"]), ("right\u202eleft", ["\u202e"]), ("café ☕", []),
])
def test_it_finds_control_and_format_characters(value, found):
    assert control_characters(value) == found


def test_long_texts_keep_their_line_breaks_and_nothing_else():
    assert control_characters("one\r\ntwo\n", allow_line_breaks=True) == []
    assert control_characters("one\ttwo", allow_line_breaks=True) == ["\t"]


@pytest.mark.parametrize("value, message", [
    (Decimal("NaN"), "Enter a number."),
    (Decimal("Infinity"), "Enter a number."),
    (float("-inf"), "Enter a number."),
    ("twelve", "Enter a number."),
    (Decimal("1e12"), "Ensure that there are no more than 12 digits before the decimal point."),
    (Decimal("1e16"), "Ensure that there are no more than 16 digits in total."),
    (Decimal("0.00001"), "Ensure that there are no more than 4 decimal places."),
])
def test_decimals_must_be_finite_and_fit_their_column(value, message):
    v = Fields(KeyResult)
    v.decimal("target_value", value)
    assert v.errors == {"target_value": [message]}


def test_the_limits_come_from_the_model_field():
    v = Fields(KeyResult)
    assert v.decimal("weight", "999.99") == Decimal("999.99")
    v.decimal("weight", "1000")
    assert v.errors["weight"] == ["Ensure that there are no more than 3 digits before the "
                                  "decimal point."]


# Objectives ---------------------------------------------------------------------------------


def create_objective(w, **kw):
    args = dict(membership=w.admin, cycle=w.cycle, team=w.company, title="Grow",
                why="", success="", tradeoffs="")
    with scope(organization=w.org):
        return services.create_objective(**(args | kw))


OBJECTIVE_ROWS = [
    ("title", "", "title"),
    ("title", "   ", "title"),
    ("title", "Grow\nand shrink", "title"),
    ("title", "Grow\rfast", "title"),
    ("title", "Grow\tfast", "title"),
    ("title", "Grow\x00", "title"),
    ("title", "Grow\u2028fast", "title"),
    ("title", "Grow\u200e", "title"),
    ("title", "x" * 201, "title"),
    ("why", "Because\x1b[31m", "why"),
    ("why", "x" * 2001, "why"),
    ("success", "x" * 2001, "success"),
    ("tradeoffs", "a\x08b", "tradeoffs"),
    ("state", "bogus", "state"),
    ("state", None, "state"),
    ("is_local", "no", "is_local"),
]


@pytest.mark.parametrize("field, value, error_field", OBJECTIVE_ROWS)
def test_create_objective_refuses(world_a, field, value, error_field):
    refused(lambda: create_objective(world_a, **{field: value}), error_field)
    with scopes_disabled():
        assert not Objective.objects.filter(title="Grow").exists()


@pytest.mark.parametrize("field, value, error_field", OBJECTIVE_ROWS)
def test_update_objective_refuses(world_a, field, value, error_field):
    o = world_a.company_objective
    args = dict(membership=world_a.admin, objective=o, version=o.version, title=o.title,
                why=o.why, team=o.team, parent=None, is_local=False, state=o.state,
                success="", tradeoffs="")
    with scope(organization=world_a.org):
        refused(lambda: services.update_objective(**(args | {field: value})), error_field)
    with scopes_disabled():
        o.refresh_from_db()
    assert o.version == 1


def test_titles_are_stored_stripped_and_long_texts_keep_their_lines(world_a):
    objective = create_objective(world_a, title="  Grow  ", why="One.\r\nTwo.")
    assert objective.title == "Grow"
    assert objective.why == "One.\r\nTwo."


# Key results --------------------------------------------------------------------------------


KEY_RESULT_ROWS = [
    ("title", "", "title"),
    ("title", "Ship\nit", "title"),
    ("title", "x" * 201, "title"),
    ("kind", "bogus", "kind"),
    ("start_value", Decimal("NaN"), "start_value"),
    ("start_value", Decimal("1e12"), "start_value"),
    ("target_value", Decimal("Infinity"), "target_value"),
    ("target_value", float("inf"), "target_value"),
    ("target_value", Decimal("-1e15"), "target_value"),
    ("target_value", Decimal("1.00001"), "target_value"),
    ("target_value", "lots", "target_value"),
    ("unit", "x" * 21, "unit"),
    ("unit", "k\nm", "unit"),
    ("weight", 0, "weight"),
    ("weight", Decimal("-1"), "weight"),
    ("weight", Decimal("1000"), "weight"),
    ("weight", Decimal("0.001"), "weight"),
    ("weight", Decimal("NaN"), "weight"),
    ("weight", None, "weight"),
]


@pytest.mark.parametrize("field, value, error_field", KEY_RESULT_ROWS)
def test_create_key_result_refuses(world_a, field, value, error_field):
    args = dict(membership=world_a.admin, objective=world_a.objective, title="Faster builds",
                kind="numeric", start_value=Decimal("10"), target_value=Decimal("2"), unit="min",
                weight=Decimal("1"))
    with scope(organization=world_a.org):
        refused(lambda: services.create_key_result(**(args | {field: value})), error_field)
    with scopes_disabled():
        assert not KeyResult.objects.filter(title="Faster builds").exists()


@pytest.mark.parametrize("field, value, error_field",
                         [r for r in KEY_RESULT_ROWS if r[0] != "kind"])
def test_update_key_result_refuses(world_a, field, value, error_field):
    kr = world_a.key_result
    args = dict(membership=world_a.admin, key_result=kr, version=kr.version, title=kr.title,
                start_value=kr.start_value, target_value=kr.target_value, unit=kr.unit,
                owner_team=kr.owner_team, owner=None, weight=kr.weight)
    with scope(organization=world_a.org):
        refused(lambda: services.update_key_result(**(args | {field: value})), error_field)
    with scopes_disabled():
        kr.refresh_from_db()
    assert kr.version == 1


# Check-ins ----------------------------------------------------------------------------------


def check_in(w, **kw):
    args = dict(membership=w.admin, key_result=w.key_result, confidence="on_track",
                value=Decimal("40"), note="")
    with scope(organization=w.org):
        return services.record_check_in(**(args | kw))


def _days(n):
    return timezone.now() + timedelta(days=n)


CHECK_IN_ROWS = [
    ("confidence", "bogus", "confidence"),
    ("confidence", "", "confidence"),
    ("confidence", None, "confidence"),
    ("value", Decimal("NaN"), "value"),
    ("value", Decimal("-Infinity"), "value"),
    ("value", Decimal("1e12"), "value"),
    ("value", "forty", "value"),
    ("note", "Done\x07", "note"),
    ("note", "x" * 2001, "note"),
    ("at", "yesterday", "at"),
]


@pytest.mark.parametrize("field, value, error_field", CHECK_IN_ROWS)
def test_record_check_in_refuses(world_a, field, value, error_field):
    refused(lambda: check_in(world_a, **{field: value}), error_field)
    with scopes_disabled():
        assert CheckIn.objects.filter(key_result=world_a.key_result).count() == 1
        world_a.key_result.refresh_from_db()
    assert world_a.key_result.current_value == Decimal("0")


@pytest.mark.parametrize("when, message", [
    (lambda c: _days(-365 * 3), "inside the cycle"),
    (lambda c: _days(-46), "inside the cycle"),
    (lambda c: _days(1), "future"),
    (lambda c: _days(365 * 3), "future"),
])
def test_a_check_in_is_dated_inside_its_cycle_and_not_in_the_future(world_a, when, message):
    messages = refused(lambda: check_in(world_a, at=when(world_a.cycle)), "at")
    assert message in messages[0]


def test_a_milestone_check_in_says_done_or_not_done_in_a_boolean(world_a):
    with scopes_disabled():
        KeyResult.objects.filter(pk=world_a.key_result.pk).update(kind="milestone")
        world_a.key_result.refresh_from_db()
    refused(lambda: check_in(world_a, is_done="no"), "is_done")
    refused(lambda: check_in(world_a, is_done=None), "is_done")
    check_in(world_a, is_done=False)


def test_set_recovery_action_done_takes_a_boolean(world_a):
    with scope(organization=world_a.org):
        refused(lambda: network_services.set_recovery_action_done(
            membership=world_a.admin, action=world_a.recovery_action, done="false"), "done")


def test_a_check_in_can_be_dated_earlier_in_its_cycle(world_a):
    c = check_in(world_a, at=_days(-10), note="Last week's numbers.\nLate.")
    assert c.note == "Last week's numbers.\nLate."


def test_a_check_in_on_a_cycle_that_ended_is_dated_inside_it(world_a):
    cycle = world_a.cycle
    with scopes_disabled():
        Cycle.objects.filter(pk=cycle.pk).update(start_date=date.today() - timedelta(days=120),
                                                 end_date=date.today() - timedelta(days=30))
        world_a.key_result = KeyResult.objects.select_related("objective__cycle").get(
            pk=world_a.key_result.pk)
    refused(lambda: check_in(world_a), "at")
    check_in(world_a, at=_days(-31))


def test_a_check_in_dated_before_the_latest_one_does_not_replace_the_current_value(world_a):
    check_in(world_a, value=Decimal("40"), at=_days(-2))
    check_in(world_a, value=Decimal("25"), at=_days(-5), note="Forgot to report this one.")
    with scopes_disabled():
        kr = KeyResult.objects.get(pk=world_a.key_result.pk)
        assert CheckIn.objects.filter(key_result=kr).count() == 3
    assert kr.current_value == Decimal("40")


# Dependencies -------------------------------------------------------------------------------


@pytest.fixture
def two_teams(world_a):
    with scopes_disabled():
        other = TeamFactory(organization=world_a.org, name="Platform", parent=world_a.company)
        upstream = ObjectiveFactory(organization=world_a.org, cycle=world_a.cycle, team=other,
                                    parent=world_a.company_objective)
        KeyResultFactory(objective=upstream)
    return world_a, upstream


@pytest.mark.parametrize("field, value, error_field", [
    ("need", "", "need"),
    ("need", "An API\nand docs", "need"),
    ("need", "x" * 301, "need"),
    ("fallback", "x" * 1001, "fallback"),
    ("fallback", "Wa\x0bit", "fallback"),
    ("needed_by", None, "needed_by"),
    ("needed_by", "soon", "needed_by"),
])
def test_request_dependency_refuses(two_teams, field, value, error_field):
    w, upstream = two_teams
    args = dict(membership=w.admin, downstream=w.objective, upstream=upstream,
                need="An API", needed_by=w.cycle.end_date, fallback="We wait.")
    with scope(organization=w.org):
        refused(lambda: network_services.request_dependency(**(args | {field: value})),
                error_field)
    with scopes_disabled():
        assert not Dependency.objects.filter(need="An API").exists()


@pytest.mark.parametrize("field, value, error_field", [
    ("status", "bogus", "status"),
    ("note", "No\x00", "note"),
    ("note", "x" * 1001, "note"),
])
def test_answer_dependency_refuses(world_a, field, value, error_field):
    args = dict(membership=world_a.admin, dependency=world_a.dependency, status="committed",
                note="")
    with scope(organization=world_a.org):
        refused(lambda: network_services.answer_dependency(**(args | {field: value})),
                error_field)


@pytest.mark.parametrize("field, value, error_field", [
    ("title", "Call\nthem", "title"),
    ("title", "x" * 201, "title"),
    ("due_date", None, "due_date"),
])
def test_add_recovery_action_refuses(world_a, field, value, error_field):
    args = dict(membership=world_a.admin, objective=world_a.company_objective,
                title="Call them", owner=world_a.admin.user, due_date=world_a.cycle.end_date)
    with scope(organization=world_a.org):
        refused(lambda: network_services.add_recovery_action(**(args | {field: value})),
                error_field)


def test_share_and_link_refuse_unknown_choices(world_a):
    with scope(organization=world_a.org):
        refused(lambda: network_services.share_objective(
            membership=world_a.admin, objective=world_a.company_objective,
            team=world_a.team, kind="half"), "kind")
        feeds = KeyResultFactory(objective=world_a.company_objective)
        refused(lambda: network_services.link_key_result(
            membership=world_a.admin, key_result=world_a.key_result, feeds=feeds,
            rollup="median"), "rollup")


# Teams and cycles ---------------------------------------------------------------------------


@pytest.mark.parametrize("field, value, error_field", [
    ("name", "", "name"),
    ("name", "Data\nScience", "name"),
    ("name", "x" * 121, "name"),
    ("name", "\u202eecneics", "name"),
    ("kind", "squad", "kind"),
    ("team_type", "bogus", "team_type"),
    ("charter", "x" * 1501, "charter"),
    ("charter", "We\x1fexist", "charter"),
])
def test_save_team_refuses(world_a, field, value, error_field):
    fields = dict(name="Data", kind="team", team_type="product", parent=world_a.team,
                  lead=None, charter="", scorecard=[])
    with scope(organization=world_a.org):
        refused(lambda: org_services.save_team(actor=world_a.admin, **(fields | {field: value})),
                error_field)
    with scopes_disabled():
        assert not Team.objects.filter(name="Data").exists()


@pytest.mark.parametrize("field, value, error_field", [
    ("name", "", "name"),
    ("name", "Q1\n2028", "name"),
    ("name", "x" * 61, "name"),
    ("status", "bogus", "status"),
    ("start_date", None, "start_date"),
    ("end_date", "2028-03-31", "end_date"),
])
def test_save_cycle_refuses(world_a, field, value, error_field):
    args = dict(actor=world_a.admin, name="2028 Q1", start_date=date(2028, 1, 1),
                end_date=date(2028, 3, 31), status="planning")
    with scope(organization=world_a.org):
        refused(lambda: org_services.save_cycle(**(args | {field: value})), error_field)
    with scopes_disabled():
        assert not Cycle.objects.filter(name="2028 Q1").exists()


@pytest.mark.parametrize("field, value, error_field", [
    ("email", "not an address", "email"),
    ("email", "a@b.test\nBcc: c@d.test", "email"),
    ("role", "owner", "role"),
])
def test_invite_member_refuses(world_a, field, value, error_field):
    args = dict(actor=world_a.admin, email="dana@a.test", role="member")
    with scope(organization=world_a.org):
        refused(lambda: org_services.invite_member(**(args | {field: value})), error_field)


def test_change_member_refuses_an_unknown_role(world_a):
    with scope(organization=world_a.org):
        refused(lambda: org_services.change_member(actor=world_a.admin, membership=world_a.bob,
                                                   role="owner", teams=[]), "role")


@pytest.mark.parametrize("field, value, error_field", [
    ("name", "Acme\nInc", "name"),
    ("name", "x" * 121, "name"),
    ("slug", "not a slug", "slug"),
    ("admin_email", "nobody", "admin_email"),
])
def test_create_organization_refuses(db, field, value, error_field):
    args = dict(name="Acme", slug="acme", admin_email="ada@acme.test", admin_password="pw")
    refused(lambda: org_services.create_organization(**(args | {field: value})), error_field)


# Workflows ----------------------------------------------------------------------------------


@pytest.fixture
def wf(world_a):
    return world_a, world_a.workflow


def test_save_purpose_refuses(wf):
    w, workflow = wf
    with scope(organization=w.org):
        refused(lambda: workflows.save_purpose(membership=w.admin, workflow=workflow,
                                               purpose="x" * 301, impact=""), "purpose")
        refused(lambda: workflows.save_purpose(membership=w.admin, workflow=workflow,
                                               purpose="One goal", impact="x\x00"), "impact")


@pytest.mark.parametrize("field, value, error_field", [
    ("role", "boss", "role"),
])
def test_add_stakeholder_refuses(wf, field, value, error_field):
    w, workflow = wf
    args = dict(membership=w.admin, workflow=workflow, team=w.team, owner=w.admin.user,
                role="lead")
    with scope(organization=w.org):
        refused(lambda: workflows.add_stakeholder(**(args | {field: value})), error_field)


@pytest.mark.parametrize("field, value, error_field", [
    ("title", "", "title"),
    ("title", "Beta\nlaunch", "title"),
    ("title", "x" * 201, "title"),
    ("due_date", "friday", "due_date"),
    ("cross_team", "no", "cross_team"),
])
def test_save_milestone_refuses(wf, field, value, error_field):
    w, workflow = wf
    args = dict(membership=w.admin, workflow=workflow, title="Beta", owner_team=w.team,
                start_date=None, due_date=w.cycle.end_date, cross_team=False)
    with scope(organization=w.org):
        refused(lambda: workflows.save_milestone(**(args | {field: value})), error_field)
        assert not Milestone.objects.filter(workflow=workflow).exists()


@pytest.mark.parametrize("field, value, error_field", [
    ("frequency", "daily", "frequency"),
    ("weekday", 6, "weekday"),
    ("sync_format", "Call\nonly", "sync_format"),
    ("sync_format", "x" * 201, "sync_format"),
    ("dashboard_url", "javascript:alert(1)", "dashboard_url"),
    ("async_updates", "no", "async_updates"),
])
def test_save_cadence_refuses(wf, field, value, error_field):
    w, workflow = wf
    args = dict(membership=w.admin, workflow=workflow, frequency="weekly", weekday=1,
                time=None, sync_format="", dashboard_url="", async_updates=False)
    with scope(organization=w.org):
        refused(lambda: workflows.save_cadence(**(args | {field: value})), error_field)
        assert Workflow.objects.get(pk=workflow.pk).sync_frequency == ""


def test_workflow_texts_and_choices_are_checked(wf):
    w, workflow = wf
    with scope(organization=w.org):
        stakeholder = workflows.add_stakeholder(membership=w.admin, workflow=workflow,
                                                team=w.team, owner=w.admin.user, role="lead")
        refused(lambda: workflows.set_commitment(membership=w.admin, stakeholder=stakeholder,
                                                 commitment="maybe"), "commitment")
        refused(lambda: workflows.set_commitment(membership=w.admin, stakeholder=stakeholder,
                                                 commitment="cannot", note="x" * 1001), "note")
        refused(lambda: workflows.post_update(membership=w.admin, workflow=workflow,
                                              team=None, text="x" * 2001), "text")
        refused(lambda: workflows.override_step(membership=w.admin, workflow=workflow,
                                                step=1, reason="ok\x00"), "reason")
        refused(lambda: workflows.override_step(membership=w.admin, workflow=workflow,
                                                step=9, reason="ok"), "step")
        refused(lambda: workflows.post_update(membership=w.admin, workflow=workflow,
                                              team=None, text="Stuck", is_blocker="no"),
                "is_blocker")
        refused(lambda: workflows.save_retro(membership=w.admin, workflow=workflow,
                                             what_worked=LONG, friction="",
                                             share_company_wide=False), "what_worked")
        refused(lambda: workflows.add_improvement(membership=w.admin, workflow=workflow,
                                                  title="Meet\nless", owner=w.admin.user),
                "title")
        improvement = workflows.add_improvement(membership=w.admin, workflow=workflow,
                                                title="Meet less", owner=w.admin.user)
        refused(lambda: workflows.set_improvement_status(
            membership=w.admin, improvement=improvement, status="bogus"), "status")
        assert Stakeholder.objects.get(pk=stakeholder.pk).commitment == "pending"


def test_review_texts_are_checked(world_a):
    from alignment import cascade

    o = world_a.objective
    with scopes_disabled():
        Objective.objects.filter(pk=o.pk).update(state="proposed")
        o.refresh_from_db()
    with scope(organization=world_a.org):
        refused(lambda: cascade.request_changes(membership=world_a.admin, objective=o,
                                                text="x" * 2001), "text")
        refused(lambda: cascade.comment(membership=world_a.admin, objective=o,
                                        text="Hi\x1b"), "text")
        refused(lambda: cascade.approve(membership=world_a.admin, objective=o,
                                        note="x" * 2001), "note")


# The database refuses a bad value whatever path it comes by ---------------------------------


def _tables():
    from alignment.models import Finding, RecascadeFlag, ReviewComment
    from dependencies.models import (
        AlertEmail,
        Contribution,
        DependencyEvent,
        EscalationStep,
        Notification,
        ObjectiveShare,
    )
    from integrations.models import DataSource, WebhookDelivery
    from nudges.models import ChatChannel, ChatDelivery, Digest, EmailBundle
    from orgs.models import Invitation, Membership, Organization
    from retros.models import Improvement

    return [
        # Issue 15: data sources and outbound webhooks (integrations).
        (DataSource, "kind", "ftp"),
        (WebhookDelivery, "status", "bogus"),
        (WebhookDelivery, "event_type", "bogus"),
        (Organization, "alignment_model", "bogus"),
        (Organization, "digest_weekday", 7),
        (Team, "kind", "squad"),
        (Team, "team_type", "bogus"),
        (Team, "checkin_cadence", "daily"),
        (Membership, "role", "owner"),
        (Cycle, "status", "bogus"),
        (Invitation, "role", "owner"),
        (Objective, "state", "bogus"),
        (Objective, "effective_health", "bogus"),
        (Objective, "progress_mode", "bogus"),
        (Objective, "commitment", "maybe"),
        (ObjectiveClose, "outcome", "bogus"),
        (ObjectiveClose, "next_step", "bogus"),
        (KeyResult, "kind", "bogus"),
        (KeyResult, "confidence", "bogus"),
        (KeyResult, "effective_health", "great"),
        (KeyResult, "rollup", "max"),
        (CheckIn, "confidence", "bogus"),
        (CheckIn, "confidence", ""),
        (CheckIn, "correction", "bogus"),
        (CheckIn, "source", "bogus"),
        (ObjectiveShare, "kind", "half"),
        (Dependency, "status", "bogus"),
        (Contribution, "status", "bogus"),
        (Contribution, "rollup", "max"),
        (DependencyEvent, "status", "bogus"),
        (EscalationStep, "step", 5),
        (Notification, "kind", "bogus"),
        (Notification, "health", "bogus"),
        (AlertEmail, "status", "bogus"),
        (Workflow, "sync_frequency", "daily"),
        (Workflow, "sync_weekday", 6),
        (Stakeholder, "role", "boss"),
        (Stakeholder, "commitment", "maybe"),
        (ReviewComment, "kind", "bogus"),
        (RecascadeFlag, "resolution", "bogus"),
        (Improvement, "status", "bogus"),
        (Digest, "status", "bogus"),
        (OutboundEmail, "status", "bogus"),
        (OutboundEmail, "kind", "bogus"),
        (Finding, "rule", "bogus"),
        (Finding, "severity", "urgent"),
        # Issue 13's schema: an objective's commitment and its close form.
        (Objective, "commitment", "bogus"),
        (ObjectiveClose, "outcome", "bogus"),
        (ObjectiveClose, "next_step", "bogus"),
        # Issue 14: notification bundles and chat channels.
        (EmailBundle, "status", "shut"),
        (ChatChannel, "tool", "bogus"),
        (ChatDelivery, "kind", "bogus"),
        (ChatDelivery, "status", "bogus"),
        # Issue 16: a dependency's kind.
        (Dependency, "kind", "favour"),
        # Issue 16: scorecards.
        (KPI, "direction", "down"),
        (KPI, "health", "great"),
        (KPIValue, "source", "bogus"),
    ]


def _a_row(world, model):
    from alignment.models import ReviewComment
    from dependencies.models import AlertEmail, Notification, PropagationRun
    from nudges.models import Digest
    from retros.models import Improvement, Retrospective

    w = world
    if model is Stakeholder:
        return Stakeholder.objects.create(organization=w.org, workflow=w.workflow, team=w.team,
                                          owner=w.admin.user)
    if model is ReviewComment:
        return ReviewComment.objects.create(organization=w.org, objective=w.objective)
    if model is ObjectiveClose:
        return ObjectiveClose.objects.create(organization=w.org, objective=w.objective,
                                             outcome="partly", next_step="drop",
                                             closed_at=timezone.now())
    if model.__name__ == "Finding":
        return model.objects.create(organization=w.org, cycle=w.cycle, rule="orphan",
                                    severity="high", rank=0, message="x", who="x")
    if model in (Notification, AlertEmail):
        run = PropagationRun.objects.create(organization=w.org, cycle=w.cycle)
        if model is AlertEmail:
            return AlertEmail.objects.create(organization=w.org, run=run, user=w.admin.user)
        return Notification.objects.create(organization=w.org, user=w.admin.user, run=run,
                                           kind="worse", objective=w.objective, title="x")
    if model is Improvement:
        retro = Retrospective.objects.create(organization=w.org, workflow=w.workflow)
        return Improvement.objects.create(organization=w.org, retrospective=retro, title="x",
                                          owner=w.admin.user)
    if model is Digest:
        return Digest.objects.create(organization=w.org, user=w.admin.user, week="2027-W01")
    if model is OutboundEmail:
        return outbox.queue(kind=OutboundEmail.Kind.INVITATION, to="someone@a.test",
                            subject="Join", text="Join us", organization=w.org, enqueue=False)
    if model.__name__ == "Organization":
        return w.org
    if model.__name__ == "DependencyEvent":
        return model.objects.create(organization=w.org, dependency=w.dependency,
                                    status="requested")
    if model.__name__ == "EmailBundle":
        return model.objects.create(organization=w.org, user=w.admin.user,
                                    due_at=timezone.now())
    if model.__name__ == "ChatChannel":
        return w.chat_channel
    if model.__name__ == "DataSource":
        return model.objects.create(organization=w.org, key_result=w.key_result,
                                    kind="webhook", token=f"t-{w.org.pk}", secret="s")
    if model.__name__ == "WebhookDelivery":
        return w.webhook_delivery
    if model.__name__ == "ChatDelivery":
        return model.objects.create(organization=w.org, channel=w.chat_channel, kind="test",
                                    title="x", body="{}", dedupe_key=f"x-{w.org.pk}")
    if model.__name__ == "EscalationStep":
        return model.objects.create(organization=w.org, dependency=w.dependency, step=1,
                                    person=w.admin.user, reached_at=timezone.now())
    if model.__name__ == "KPIValue":
        return model.objects.create(organization=w.org, kpi=w.kpi, value=1, at=timezone.now())
    named = {"KPI": w.kpi, "Team": w.team, "Membership": w.admin, "Cycle": w.cycle,
             "Invitation": w.invitation, "Objective": w.objective, "KeyResult": w.key_result,
             "CheckIn": w.check_in, "ObjectiveShare": w.share, "Dependency": w.dependency,
             "Workflow": w.workflow, "RecascadeFlag": w.recascade_flag,
             "Contribution": w.contribution}
    return named[model.__name__]


@pytest.mark.parametrize("model, field, value", _tables(),
                         ids=lambda p: getattr(p, "__name__", str(p)))
def test_the_database_refuses_a_bad_choice_by_a_raw_update(world_a, model, field, value):
    with scopes_disabled():
        row = _a_row(world_a, model)
        with pytest.raises(IntegrityError), transaction.atomic():
            model.objects.filter(pk=row.pk).update(**{field: value})
        assert getattr(model.objects.get(pk=row.pk), field) != value


def _allowed(constraint, field):
    """The values a choice constraint lets through for ``field`` (None for NULL)."""
    allowed = set()
    for child in (getattr(constraint, "condition", None) or models.Q()).children:
        key, value = child if isinstance(child, tuple) else (None, None)
        if key == f"{field}__in":
            allowed |= set(value)
        elif key == f"{field}__isnull" and value:
            allowed.add(None)
        elif isinstance(child, models.Q):
            allowed |= _allowed(models.CheckConstraint(condition=child, name="x"), field)
    return allowed


def test_every_choice_column_has_a_check_constraint_that_matches_its_choices():
    """A new choice column, or a new choice, cannot forget its constraint."""
    from django.apps import apps

    covered = {(m, f) for m, f, _ in _tables()}
    for model in apps.get_models():
        if model._meta.app_label not in {"orgs", "okrs", "dependencies", "alignment", "retros",
                                         "nudges", "integrations"}:
            continue
        for f in model._meta.concrete_fields:
            if not f.choices:
                continue
            assert (model, f.name) in covered, f"{model.__name__}.{f.name} is not tested"
            expected = {v for v, _ in f.flatchoices}
            if f.blank and not f.null:
                expected.add("")
            if f.null:
                expected.add(None)
            allowed = set().union(*(_allowed(c, f.name) for c in model._meta.constraints))
            assert allowed == expected, f"{model.__name__}.{f.name}"


# One bad row never stops a recompute, and pages show what they can -------------------------


@contextmanager
def bad_rows_allowed(table, constraint):
    """Let a bad value in as a row written before the constraints existed would be: the
    constraint is dropped inside the test's transaction (PostgreSQL rolls that back) or, on
    SQLite, CHECK constraints are ignored for the moment."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks before DDL
            cursor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{constraint}"')
        else:
            cursor.execute("PRAGMA ignore_check_constraints = 1")
        try:
            yield cursor
        finally:
            if connection.vendor != "postgresql":
                cursor.execute("PRAGMA ignore_check_constraints = 0")


def store_bogus_confidence(key_result):
    with bad_rows_allowed("okrs_keyresult", "okrs_keyresult_confidence_valid") as cursor:
        cursor.execute("UPDATE okrs_keyresult SET confidence = 'bogus' WHERE id = %s",
                       [key_result.pk])


def test_a_recompute_skips_a_row_it_cannot_assess_and_reports_it(world_a, caplog):
    w = world_a
    with scopes_disabled():
        healthy = KeyResultFactory(objective=w.objective, title="Healthy KR",
                                   current_value=Decimal("0"), confidence="off_track")
        store_bogus_confidence(w.key_result)
        with caplog.at_level(logging.ERROR, logger="dependencies.network"):
            outcome = network.run(w.cycle)
        state = NetworkState.objects.get(cycle=w.cycle)
        healthy.refresh_from_db()
        w.objective.refresh_from_db()
    assert state.skipped == [{"kind": "k", "id": w.key_result.pk, "title": w.key_result.title,
                              "objective": w.objective.pk,
                              "reason": "unknown confidence 'bogus'"}]
    assert healthy.effective_health == "off_track"
    assert w.objective.effective_health == "off_track"  # computed from the readable KR alone
    assert outcome.nodes >= 3
    [record] = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert f"organization {w.org.pk}" in record.getMessage()
    assert f"key result {w.key_result.pk}" in record.getMessage()
    assert record.organization == w.org.pk


def test_a_clean_run_clears_the_report(world_a):
    with scopes_disabled():
        NetworkState.objects.update_or_create(
            cycle=world_a.cycle, defaults={"organization": world_a.org,
                                           "skipped": [{"kind": "k", "id": 1}]})
        network.run(world_a.cycle)
        assert NetworkState.objects.get(cycle=world_a.cycle).skipped == []


@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="PostgreSQL's numeric stores NaN (and NaN > 0 passes the weight check)")
def test_a_recompute_skips_a_key_result_whose_numbers_are_not_numbers(world_a):
    with scopes_disabled(), connection.cursor() as cursor:
        cursor.execute("UPDATE okrs_keyresult SET weight = 'NaN', current_value = 'NaN' "
                       "WHERE id = %s", [world_a.key_result.pk])
        network.run(world_a.cycle)
        [row] = NetworkState.objects.get(cycle=world_a.cycle).skipped
    assert row["id"] == world_a.key_result.pk and "weight" in row["reason"]


def test_pages_answer_with_a_bad_stored_confidence(world_a, alice_client, bob_client):
    w = world_a
    with scopes_disabled():
        store_bogus_confidence(w.key_result)
        network.run(w.cycle)
    slug = w.org.slug
    for url in [reverse("home", args=[slug]), reverse("tree", args=[slug]),
                reverse("team", args=[slug, w.team.pk]),
                reverse("objective", args=[slug, w.objective.pk]),
                reverse("network", args=[slug]), reverse("matrix", args=[slug]),
                reverse("network_map", args=[slug])]:
        assert alice_client.get(url).status_code == 200, url
    page = alice_client.get(reverse("network", args=[slug])).content.decode()
    assert "Left out of the health computation" in page
    assert "unknown confidence" in page
    # Only the people who run the console see it.
    assert "Left out" not in bob_client.get(reverse("network", args=[slug])).content.decode()


@pytest.mark.parametrize("confidence, weight", [("bogus", Decimal("1")),
                                                ("on_track", Decimal("NaN")),
                                                ("on_track", Decimal("-1"))])
def test_progress_reads_unknown_values_as_unknown(confidence, weight):
    from okrs import progress

    now = timezone.now()
    a = progress.assess_key_result(is_milestone=True, confidence=confidence, elapsed=0.5,
                                   now=now)
    assert a.health in (None, "on_track")
    objective = progress.assess_objective([(a, weight)])
    assert objective.health in (None, "on_track")


def test_pages_and_the_recompute_take_an_unknown_stored_effective_health(world_a, alice_client):
    w = world_a
    with scopes_disabled():
        for table, pk in (("okrs_objective", w.objective.pk), ("okrs_keyresult",
                                                                w.key_result.pk)):
            with bad_rows_allowed(table, f"{table}_effective_health_valid") as cursor:
                cursor.execute(f"UPDATE {table} SET effective_health = 'great' WHERE id = %s",
                               [pk])
    slug = w.org.slug
    for url in [reverse("home", args=[slug]), reverse("tree", args=[slug]),
                reverse("objective", args=[slug, w.objective.pk]),
                reverse("matrix", args=[slug]), reverse("network_map", args=[slug]),
                reverse("network", args=[slug])]:
        assert alice_client.get(url).status_code == 200, url
    with scopes_disabled():
        network.run(w.cycle)
        w.objective.refresh_from_db()
    assert w.objective.effective_health in Health.values


# Forms keep working: a service's refusal lands on the form's field --------------------------


def test_the_objective_form_shows_the_services_refusal_on_its_field(world_a, alice_client):
    url = reverse("objective_new", args=[world_a.org.slug]) + f"?cycle={world_a.cycle.pk}"
    response = alice_client.post(url, {"title": "Grow\tfast", "team": world_a.company.pk,
                                       "state": "draft"})
    assert response.status_code == 200
    assert "Remove the invisible control characters" in response.content.decode()
    with scopes_disabled():
        assert not Objective.objects.filter(title__startswith="Grow").exists()


def test_the_check_in_form_refuses_a_check_in_after_the_cycle_ended(world_a, alice_client):
    with scopes_disabled():
        Cycle.objects.filter(pk=world_a.cycle.pk).update(
            start_date=date.today() - timedelta(days=120),
            end_date=date.today() - timedelta(days=30))
    url = reverse("check_in", args=[world_a.org.slug, world_a.key_result.pk])
    response = alice_client.post(url, {"value": "50", "confidence": "on_track", "note": ""})
    assert "Date it inside the cycle" in response.content.decode()
    with scopes_disabled():
        assert CheckIn.objects.filter(key_result=world_a.key_result).count() == 1


def test_a_theme_name_is_one_line_and_unique(world_a):
    from alignment import cascade

    with scope(organization=world_a.org):
        refused(lambda: cascade.add_theme(membership=world_a.admin, name="Enter\nprise"),
                "name")
        refused(lambda: cascade.add_theme(membership=world_a.admin, name="x" * 81), "name")
        cascade.add_theme(membership=world_a.admin, name=" Enterprise ", description="Big")
        refused(lambda: cascade.add_theme(membership=world_a.admin, name="enterprise"), "name")


def test_signing_up_through_an_invitation_refuses_a_name_with_control_characters(world_a):
    from django.test import Client

    from orgs.models import User

    url = reverse("accept_invitation", args=[org_services.invitation_token(world_a.invitation)])
    response = Client().post(url, {"full_name": "Dana\tLead", "password1": "a-long-pass-phrase",
                                   "password2": "a-long-pass-phrase"})
    assert response.status_code == 200
    assert "Remove the invisible control characters" in response.content.decode()
    assert not User.objects.filter(email=world_a.invitation.email).exists()
