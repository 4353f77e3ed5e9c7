"""Each user-facing write leaves a history entry with the right actor and the fields before and
after: through save() (signals), through QuerySet.update() (the services' ``history.update``)
and through a check-in (one entry from the values in hand)."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scope, scopes_disabled

import history
from alignment import cascade
from alignment import services as alignment_services
from dependencies import services as dependency_services
from dependencies.models import Contribution
from history.models import Change
from okrs import services as okr_services
from okrs.models import CheckIn, KeyResult, Objective
from orgs import services as org_services
from orgs.models import Role, Team

from ..factories import MembershipFactory, MilestoneFactory, ObjectiveFactory, UserFactory

pytestmark = pytest.mark.django_db


def latest(org, object_type, object_id):
    with scope(organization=org):
        return Change.objects.for_org(org).filter(
            object_type=object_type, object_id=object_id).first()


def fields_of(entry):
    return {f["field"]: (f["before"], f["after"]) for f in entry.fields}


@pytest.fixture
def w(world_a):
    with scope(organization=world_a.org), history.acting_as(world_a.admin.user):
        yield world_a


def test_creating_an_objective_records_who_and_what(w):
    o = okr_services.create_objective(membership=w.admin, cycle=w.cycle, team=w.team,
                                      title="Ship the new billing", parent=w.company_objective)
    entry = latest(w.org, "objective", o.pk)
    assert entry.action == "created" and entry.actor_label == "Alice Admin"
    assert entry.actor_id == w.admin.user_id and entry.actor_kind == "person"
    assert fields_of(entry)["title"] == ("", "Ship the new billing")
    assert fields_of(entry)["parent"] == ("", w.company_objective.title)


def test_editing_an_objective_records_the_fields_before_and_after(w):
    o = Objective.objects.for_org(w.org).get(pk=w.objective.pk)
    new_parent = ObjectiveFactory(organization=w.org, cycle=w.cycle, team=w.company,
                                  title="Happier customers")
    okr_services.update_objective(
        membership=w.admin, objective=o, version=o.version, title="Faster deploys",
        why="Customers wait.", team=w.team, parent=new_parent, is_local=False,
        state=o.state)
    entry = latest(w.org, "objective", o.pk)
    changed = fields_of(entry)
    assert entry.action == "changed"
    assert changed["title"] == (w.objective.title, "Faster deploys")
    assert changed["why"] == (w.objective.why, "Customers wait.")
    assert changed["parent"] == (w.company_objective.title, "Happier customers")
    assert "version" not in changed and "updated_by" not in changed


def test_an_objective_edit_costs_one_insert_and_no_read(w):
    def edit(success):
        o = Objective.objects.for_org(w.org).get(pk=w.objective.pk)
        with CaptureQueriesContext(connection) as queries:
            okr_services.update_objective(
                membership=w.admin, objective=o, version=o.version, title=o.title, why=o.why,
                team=w.team, parent=w.company_objective, is_local=False, state=o.state,
                success=success)
        return [q["sql"] for q in queries.captured_queries]

    with history.paused():
        edit("Warm up")
        without = edit("Edited once")
    recorded = edit("Edited twice")
    extra = len(recorded) - len(without)
    assert extra == 1, recorded
    assert any('INSERT INTO "history_change"' in q for q in recorded)


def test_retiring_an_objective_goes_through_update_and_is_recorded(w):
    okr_services.retire_objective(membership=w.admin, objective=w.objective)
    entry = latest(w.org, "objective", w.objective.pk)
    assert fields_of(entry)["state"][1].lower() == "retired"


def test_publishing_a_cycle_records_each_objective(w):
    Objective.objects.for_org(w.org).filter(pk=w.objective.pk).update(state="approved")
    assert cascade.publish_cycle(membership=w.admin, cycle=w.cycle) == 1
    before, after = fields_of(latest(w.org, "objective", w.objective.pk))["state"]
    assert (before.lower(), after.lower()) == ("approved", "published")


def test_a_check_in_records_the_key_result_change_in_one_insert(w):
    kr = KeyResult.objects.for_org(w.org).select_related("objective__cycle").get(
        pk=w.key_result.pk)
    before = kr.current_value
    with CaptureQueriesContext(connection) as queries:
        okr_services.record_check_in(membership=w.admin, key_result=kr, confidence="at_risk",
                                     value="42", note="Slower than hoped")
    inserts = [q["sql"] for q in queries.captured_queries
               if q["sql"].startswith('INSERT INTO "history_change"')]
    assert len(inserts) == 1
    changed = fields_of(latest(w.org, "key_result", kr.pk))
    assert changed["current_value"] == (format(before.normalize(), "f"), "42")
    assert changed["confidence"][1].lower() == "at risk"
    assert "last_check_in_at" not in changed


def test_a_data_source_check_in_is_credited_to_the_data_source(w):
    kr = KeyResult.objects.for_org(w.org).get(pk=w.key_result.pk)
    okr_services.record_source_check_in(key_result=kr, source=CheckIn.Source.DATA_SOURCE,
                                        value="7")
    entry = latest(w.org, "key_result", kr.pk)
    assert (entry.actor_kind, entry.actor_label, entry.actor_id) == (
        "data_source", "data source", None)


def test_editing_and_deleting_a_key_result_are_recorded(w):
    kr = KeyResult.objects.for_org(w.org).get(pk=w.key_result.pk)
    okr_services.update_key_result(
        membership=w.admin, key_result=kr, version=kr.version, title="Deploys under 10 min",
        start_value=kr.start_value, target_value="10", unit=kr.unit, owner_team=kr.owner_team,
        owner=kr.owner, weight=kr.weight)
    changed = fields_of(latest(w.org, "key_result", kr.pk))
    assert changed["title"][1] == "Deploys under 10 min"
    assert changed["target_value"][1] == "10"
    with scope(organization=w.org):
        within = Change.objects.for_org(w.org).of("objective", w.objective.pk)
        assert within.filter(object_type="key_result").exists()
    spare = okr_services.create_key_result(membership=w.admin, objective=w.objective,
                                           title="Spare", kind="milestone")
    spare_pk = spare.pk
    assert latest(w.org, "key_result", spare_pk).action == "created"
    okr_services.delete_key_result(membership=w.admin, key_result=spare)
    assert latest(w.org, "key_result", spare_pk).action == "deleted"


def test_saving_a_team_and_removing_its_lead_are_recorded(w):
    lead = UserFactory(full_name="Dana Lead")
    membership = MembershipFactory(organization=w.org, user=lead, role=Role.TEAM_LEAD)
    org_services.save_team(actor=w.admin, team=w.team, name=w.team.name, kind=w.team.kind,
                           team_type=w.team.team_type, parent=w.team.parent, lead=lead,
                           charter="We keep the lights on.", scorecard=[],
                           checkin_cadence="")
    changed = fields_of(latest(w.org, "team", w.team.pk))
    assert changed["lead"] == ("", "Dana Lead")
    assert changed["charter"][1] == "We keep the lights on."
    membership_pk = membership.pk
    org_services.remove_member(actor=w.admin, membership=membership)
    assert fields_of(latest(w.org, "team", w.team.pk))["lead"] == ("Dana Lead", "")
    assert latest(w.org, "membership", membership_pk).action == "deleted"


def test_organization_settings_are_recorded(w):
    org = w.org
    org.alignment_model = "flexible" if org.alignment_model != "flexible" else "strict"
    org.save()
    entry = latest(org, "organization", org.pk)
    assert "alignment_model" in fields_of(entry)


def test_a_dependency_request_and_its_answer_are_recorded(w):
    dep = dependency_services.request_dependency(
        membership=w.admin, downstream=w.objective, upstream=w.other_objective,
        need="The new API", needed_by=w.cycle.end_date, fallback="Use the old one")
    assert latest(w.org, "dependency", dep.pk).action == "created"
    dependency_services.answer_dependency(membership=w.admin, dependency=dep,
                                          status="committed")
    assert fields_of(latest(w.org, "dependency", dep.pk))["status"][1].lower() == "committed"


def test_sharing_and_unsharing_are_recorded_within_the_objective(w):
    team = Team.objects.for_org(w.org).get(pk=w.team.pk)
    other = Team.objects.create(organization=w.org, name="Design", parent=w.company)
    share = dependency_services.share_objective(membership=w.admin,
                                                objective=w.company_objective, team=other,
                                                kind="objective")
    assert latest(w.org, "share", share.pk).within_id == w.company_objective.pk
    dependency_services.unshare_objective(membership=w.admin, share=share)
    assert latest(w.org, "share", share.pk).action == "deleted"
    assert team.pk  # the team itself is untouched


def test_accepting_a_key_result_link_records_what_it_feeds(w):
    contribution = Contribution.objects.for_org(w.org).get(pk=w.contribution.pk)
    dependency_services.answer_contribution(membership=w.admin, contribution=contribution,
                                            accept=True)
    assert fields_of(latest(w.org, "key_result", w.key_result.pk))["feeds"][1] == (
        contribution.shared.title)
    assert fields_of(latest(w.org, "key_result_link", contribution.pk))["status"][1]


def test_a_workflow_step_and_a_moved_milestone_flag_are_recorded(w):
    workflow = w.workflow
    alignment_services.save_purpose(membership=w.admin, workflow=workflow,
                                    purpose="One billing for all", impact="Less churn")
    assert fields_of(latest(w.org, "workflow", workflow.pk))["purpose"][1] == (
        "One billing for all")
    with scopes_disabled():
        first = MilestoneFactory(workflow=workflow, title="Design")
        second = MilestoneFactory(workflow=workflow, title="Build")
        second.waits_on.add(first)
    alignment_services.flag_downstream(first, "Design moved")
    changed = fields_of(latest(w.org, "milestone", second.pk))
    assert changed["needs_revisit"] == ("no", "yes")
    assert latest(w.org, "milestone", second.pk).within_id == workflow.pk


def test_derived_fields_the_recompute_writes_are_not_history(w):
    o = Objective.objects.for_org(w.org).get(pk=w.objective.pk)
    count = Change.objects.for_org(w.org).count()
    o.effective_health, o.risk_causes, o.rolled_progress = "off_track", [{"x": 1}], 0.3
    o.save()
    assert Change.objects.for_org(w.org).count() == count


def test_a_task_acts_as_system(w, settings):
    from config.celery import app

    @app.task(name="tests.history.rename")
    def rename(pk):
        with scope(organization=w.org):
            o = Objective.objects.for_org(w.org).get(pk=pk)
            o.title = "Renamed by a task"
            o.save()

    rename.delay(w.objective.pk)
    entry = latest(w.org, "objective", w.objective.pk)
    assert (entry.actor_kind, entry.actor_label, entry.actor_id) == ("system", "system", None)
    assert history.current_actor().label == "Alice Admin"  # back to the caller afterwards


def test_a_cycle_date_change_is_recorded(w):
    org_services.save_cycle(actor=w.admin, cycle=w.cycle, name=w.cycle.name,
                            start_date=w.cycle.start_date,
                            end_date=w.cycle.end_date + datetime.timedelta(days=7),
                            status=w.cycle.status)
    assert "end_date" in fields_of(latest(w.org, "cycle", w.cycle.pk))


def test_changing_a_members_role_and_teams_is_recorded(w):
    lead = UserFactory(full_name="Eve Member")
    membership = MembershipFactory(organization=w.org, user=lead, role=Role.MEMBER)
    org_services.change_member(actor=w.admin, membership=membership, role=Role.TEAM_LEAD,
                               teams=[w.team])
    with scope(organization=w.org):
        entries = list(Change.objects.for_org(w.org).filter(object_type="membership",
                                                            object_id=membership.pk))
    rows = [f for e in entries for f in e.fields]
    assert any(f["field"] == "role" and f["after"] == "Department head / team lead"
               for f in rows)
    assert any(f["field"] == "teams" and f["after"] == w.team.name for f in rows)
    assert all(e.object_label == "Eve Member" for e in entries)


def test_a_json_value_changed_in_place_is_still_seen(w):
    team = Team.objects.for_org(w.org).get(pk=w.team.pk)
    team.scorecard.append({"metric": "Uptime", "target": "99.9%"})
    team.save()
    changed = fields_of(latest(w.org, "team", team.pk))
    assert "Uptime" in changed["scorecard"][1] and "Uptime" not in changed["scorecard"][0]


def test_a_json_value_changed_deep_inside_is_still_seen(w):
    Team.objects.for_org(w.org).filter(pk=w.team.pk).update(
        scorecard=[{"metric": "Uptime", "target": "99.9%"}])
    team = Team.objects.for_org(w.org).get(pk=w.team.pk)
    team.scorecard[0]["target"] = "99.99%"
    team.save()
    changed = fields_of(latest(w.org, "team", team.pk))
    assert "99.9%" in changed["scorecard"][0] and "99.99%" in changed["scorecard"][1]


def test_a_json_value_loaded_empty_and_filled_in_place_is_seen_once(w):
    team = Team.objects.for_org(w.org).get(pk=w.team.pk)
    team.scorecard.append({"metric": "Latency"})
    team.save()
    team.save()  # the snapshot after the save holds the filled value: nothing new to record
    with scope(organization=w.org):
        entries = [e for e in Change.objects.for_org(w.org).filter(object_type="team",
                                                                   object_id=team.pk)
                   if any(f["field"] == "scorecard" for f in e.fields)]
    assert len(entries) == 1


# Issue 16's write paths: extra parents, a KR aligned to another team's objective, a unit's
# charter and roles, KPIs and their values, a recovery objective.


def test_an_extra_parent_is_recorded_on_the_objective(w):
    from okrs.models import ObjectiveParent

    other = ObjectiveFactory(organization=w.org, cycle=w.cycle, team=w.company,
                             title="Happier customers")
    o = Objective.objects.for_org(w.org).get(pk=w.objective.pk)
    okr_services.update_objective(
        membership=w.admin, objective=o, version=o.version, title=o.title, why=o.why,
        team=w.team, parent=w.company_objective, is_local=False, state=o.state,
        extra_parents=[(other, None)])
    link = ObjectiveParent.objects.for_org(w.org).get(objective=o)
    entry = latest(w.org, "also_contributes", link.pk)
    assert entry.action == "created" and entry.actor_label == "Alice Admin"
    assert (entry.within_type, entry.within_id) == ("objective", o.pk)
    assert fields_of(entry)["parent"] == ("", "Happier customers")


def test_aligning_a_key_result_to_another_teams_objective_is_recorded(w):
    kr = KeyResult.objects.for_org(w.org).get(pk=w.key_result.pk)
    target = ObjectiveFactory(organization=w.org, cycle=w.cycle, team=w.company,
                              title="Happier customers")
    okr_services.align_key_result(membership=w.admin, key_result=kr, objective=target)
    assert fields_of(latest(w.org, "key_result", kr.pk))["aligned_to"] == (
        "", "Happier customers")


def test_a_units_charter_and_a_members_unit_role_are_recorded(w):
    from orgs import units

    team = Team.objects.for_org(w.org).get(pk=w.team.pk)
    units.save_charter(membership=w.admin, team=team, charter="We keep the lights on.")
    assert fields_of(latest(w.org, "team", team.pk))["charter"][1] == "We keep the lights on."
    member = MembershipFactory(organization=w.org, user=UserFactory(full_name="Eve Member"),
                               role=Role.MEMBER)
    member.teams.add(team)
    units.set_unit_member_role(membership=w.admin, member=member, role=Role.VIEWER)
    assert fields_of(latest(w.org, "membership", member.pk))["role"] == ("Member", "Viewer")


def test_a_kpi_band_and_a_value_are_recorded_on_the_unit(w):
    from okrs import scorecards

    team = Team.objects.for_org(w.org).get(pk=w.team.pk)
    kpi = scorecards.save_kpi(membership=w.admin, team=team, name="Uptime", unit="%",
                              direction="higher", healthy_at="99.9", warning_at="99.5")
    kpi = scorecards.save_kpi(membership=w.admin, team=team, kpi=kpi, name="Uptime", unit="%",
                              direction="higher", healthy_at="99.9", warning_at="99.0")
    assert fields_of(latest(w.org, "kpi", kpi.pk))["warning_at"] == ("99.5", "99")
    value = scorecards.record_kpi_value(membership=w.admin, kpi=kpi, value="98")
    entry = latest(w.org, "kpi_value", value.pk)
    assert (entry.action, entry.within_type, entry.within_id) == ("created", "team", team.pk)
    assert entry.actor_label == "Alice Admin"
