"""The workflow's services and pages: who may do what, escalations, revisit flags, outputs."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django_scopes import scope

from alignment import services, steps
from alignment.models import Milestone, Stakeholder
from orgs.models import Role
from tests.conftest import client_for
from tests.factories import DependencyFactory, MembershipFactory, MilestoneFactory

pytestmark = pytest.mark.django_db


def act(client, r, action, **data):
    return client.post(reverse("workflow_act", args=[r.org.slug, r.workflow.pk]),
                       {"action": action, **data})


def page(client, r):
    return client.get(reverse("workflow", args=[r.org.slug, r.workflow.pk])).content.decode()


def add_teams(r):
    with scope(organization=r.org):
        for team, owner, role in ((r.sales, r.mia, "lead"), (r.eng, r.ethan, "contributor"),
                                  (r.marketing, r.noah, "contributor")):
            services.add_stakeholder(membership=r.liam_m, workflow=r.workflow, team=team,
                                     owner=owner, role=role)


def test_only_managers_run_it_and_everyone_reads_it(flow, bob_client):
    r = flow
    with scope(organization=r.org), pytest.raises(PermissionDenied):
        services.save_purpose(membership=r.mia_m, workflow=r.workflow, purpose="x.", impact="")
    assert act(client_for(r.mia), r, "purpose", purpose="Ours.", impact="x").status_code == 403
    assert "Reach $12M ARR" in page(bob_client, r)  # a viewer reads
    assert act(bob_client, r, "update", text="hi").status_code == 403


def test_the_purpose_is_one_sentence(flow):
    r = flow
    liam = client_for(r.liam)
    response = act(liam, r, "purpose", purpose="Win big. Then win bigger.", impact="ARR")
    assert "Keep it to one sentence" in response.content.decode()
    act(liam, r, "purpose", purpose="Reach $12M ARR through enterprise wins.", impact="ARR")
    r.workflow.refresh_from_db()
    assert r.workflow.purpose == "Reach $12M ARR through enterprise wins."


def test_sign_off_is_for_leadership_and_sharing_tells_every_lead(
        flow, django_capture_on_commit_callbacks):
    r = flow
    add_teams(r)
    with scope(organization=r.org):
        services.save_purpose(membership=r.liam_m, workflow=r.workflow,
                              purpose="Reach $12M ARR together.", impact="Default-alive.")
        with pytest.raises(PermissionDenied):
            services.sign_off(membership=r.liam_m, workflow=r.workflow)  # not leadership
        services.sign_off(membership=r.world.admin, workflow=r.workflow)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        act(client_for(r.liam), r, "share")
    assert sorted(m.to[0] for m in mail.outbox) == ["ethan@a.test", "mia@a.test", "noah@a.test"]
    html = page(client_for(r.liam), r)
    assert 'data-testid="step-1-state">Done' in html
    assert "Signed off by <strong>Alice Admin</strong>" in html


def test_a_team_that_cannot_commit_escalates_and_blocks_the_kickoff(
        flow, django_capture_on_commit_callbacks):
    r = flow
    add_teams(r)
    with scope(organization=r.org):
        eng = Stakeholder.objects.get(workflow=r.workflow, team=r.eng)
        sales = Stakeholder.objects.get(workflow=r.workflow, team=r.sales)
        services.save_kickoff(membership=r.liam_m, workflow=r.workflow,
                              kickoff_date=r.cycle.start_date, notes="Agreed the plan",
                              success_measures=[r.deals])
        with pytest.raises(PermissionDenied):  # Mia does not answer for Engineering
            services.set_commitment(membership=r.mia_m, stakeholder=eng, commitment="committed")
        with pytest.raises(ValidationError, match="why"):
            services.set_commitment(membership=r.ethan_m, stakeholder=eng, commitment="cannot")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = act(client_for(r.ethan), r, "commitment", stakeholder=eng.pk,
                       commitment="cannot", note="No capacity until March")
    assert response.status_code == 302
    assert [m.subject for m in mail.outbox] == ["Escalation: Engineering cannot commit"]
    assert mail.outbox[0].to == ["liam@a.test"]
    with scope(organization=r.org):
        for st, who in ((sales, r.mia_m), (Stakeholder.objects.get(team=r.marketing), r.noah_m)):
            services.set_commitment(membership=who, stakeholder=st, commitment="committed")
        with pytest.raises(ValidationError, match="Engineering cannot commit"):
            services.close_kickoff(membership=r.liam_m, workflow=r.workflow)
        eng.refresh_from_db()
        services.resolve_escalation(membership=r.liam_m, stakeholder=eng,
                                    note="Platform team lends two engineers")
        services.close_kickoff(membership=r.liam_m, workflow=r.workflow)
        assert services.snapshot(r.workflow).kickoff_closed
    assert 'data-testid="step-3-state">Done' in page(client_for(r.liam), r)


def test_moving_a_date_flags_two_levels_downstream_for_revisit(flow):
    r = flow
    wf = r.workflow
    api = MilestoneFactory(workflow=wf, title="SSO API", owner_team=r.eng)
    pilot = MilestoneFactory(workflow=wf, title="Pilot", owner_team=r.sales)
    launch = MilestoneFactory(workflow=wf, title="Launch campaign", owner_team=r.marketing)
    other = MilestoneFactory(workflow=wf, title="Pricing page", owner_team=r.marketing)
    with scope(organization=r.org):
        pilot.waits_on.set([api])
        launch.waits_on.set([pilot])
        _, flagged = services.save_milestone(
            membership=r.ethan_m, workflow=wf, milestone=api, title=api.title,
            owner_team=r.eng, start_date=None, due_date=api.due_date + timedelta(days=14),
            cross_team=False)
        assert flagged == sorted([pilot.pk, launch.pk])
        flags = dict(Milestone.objects.filter(workflow=wf).values_list("title", "needs_revisit"))
    assert flags == {"SSO API": False, "Pilot": True, "Launch campaign": True,
                     "Pricing page": False}
    html = page(client_for(r.mia), r)
    assert f'data-testid="revisit-{pilot.pk}"' in html and "SSO API” moved to" in html
    # The owner looks at it and clears the flag; others cannot.
    with scope(organization=r.org):
        with pytest.raises(PermissionDenied):
            services.milestone_revisited(membership=r.noah_m, milestone=pilot)
        services.milestone_revisited(membership=r.mia_m, milestone=pilot)
    assert other.pk


def test_a_milestone_cannot_wait_on_what_waits_on_it(flow):
    r = flow
    a = MilestoneFactory(workflow=r.workflow, owner_team=r.eng)
    b = MilestoneFactory(workflow=r.workflow, owner_team=r.eng)
    with scope(organization=r.org):
        b.waits_on.set([a])
        with pytest.raises(ValidationError, match="cannot wait"):
            services.save_milestone(membership=r.liam_m, workflow=r.workflow, milestone=a,
                                    title=a.title, owner_team=r.eng, start_date=None,
                                    due_date=a.due_date, cross_team=True, waits_on=[b])


def test_teams_plan_only_their_own_milestones(flow):
    r = flow
    with scope(organization=r.org):
        with pytest.raises(PermissionDenied):
            services.save_milestone(membership=r.mia_m, workflow=r.workflow, title="x",
                                    owner_team=r.eng, start_date=None, due_date=None,
                                    cross_team=False)
        m, _ = services.save_milestone(membership=r.mia_m, workflow=r.workflow,
                                       title="Enterprise pilot", owner_team=r.sales,
                                       start_date=None, due_date=r.cycle.end_date,
                                       cross_team=True,
                                       dependencies=[r.dependency])
        assert list(m.dependencies.all()) == [r.dependency]


def test_the_plan_page_shows_the_timeline_and_the_table(flow):
    r = flow
    api = MilestoneFactory(workflow=r.workflow, title="SSO <API>", owner_team=r.eng,
                           due_date=r.cycle.start_date + timedelta(days=20))
    pilot = MilestoneFactory(workflow=r.workflow, title="Pilot", owner_team=r.sales,
                             cross_team=True)
    with scope(organization=r.org):
        pilot.waits_on.set([api])
    html = page(client_for(r.liam), r)
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="gantt"' in html
    assert f'data-from="{api.pk}" data-to="{pilot.pk}"' in html
    assert "SSO &lt;API&gt;" in html and "SSO <API>" not in html
    assert 'id="milestone-' in html


def test_delivered_milestones_are_wins_and_blockers_escalate(flow):
    r = flow
    add_teams(r)
    m = MilestoneFactory(workflow=r.workflow, title="Pricing approved", owner_team=r.sales)
    mia = client_for(r.mia)
    act(mia, r, "milestone_done", milestone=m.pk, done="on")
    act(mia, r, "update", team=r.sales.pk, text="Legal review is stuck", is_blocker="on")
    html = page(client_for(r.liam), r)
    assert "Delivered: Pricing approved" in html and ">Win<" in html
    assert "1 blocker not escalated yet." in html
    with scope(organization=r.org):
        blocker = r.workflow.updates.get(is_blocker=True)
    act(mia, r, "escalate", update=blocker.pk)
    assert "not escalated yet" not in page(client_for(r.liam), r)


def test_an_override_needs_a_reason_and_is_shown(flow):
    r = flow
    liam = client_for(r.liam)
    act(liam, r, "override", step=5, reason="")
    assert 'data-testid="step-5-override"' not in page(liam, r)
    act(liam, r, "override", step=5, reason="We reuse the weekly revenue sync")
    html = page(liam, r)
    assert 'data-testid="step-5-override"' in html
    assert "We reuse the weekly revenue sync (Liam Alignment" in html
    assert 'data-testid="step-5-state">Done (override)' in html


def test_retro_improvements_carry_into_the_next_cycle_and_learnings(flow):
    from tests.factories import CycleFactory, ObjectiveFactory, WorkflowFactory

    r = flow
    add_teams(r)
    liam = client_for(r.liam)
    act(liam, r, "retro", what_worked="Weekly syncs", friction="Late SSO news",
        share_company_wide="on")
    act(liam, r, "improvement", title="Flag dependency slips within a day", owner=r.ethan.pk)
    next_cycle = CycleFactory(organization=r.org, start_date=r.cycle.end_date,
                              end_date=r.cycle.end_date + timedelta(days=90))
    again = ObjectiveFactory(organization=r.org, cycle=next_cycle, team=r.world.company,
                             title="Reach $12M ARR")
    nxt = WorkflowFactory(objective=again, lead=r.liam)
    html = liam.get(reverse("workflow", args=[r.org.slug, nxt.pk])).content.decode()
    assert "From last time" in html and "Flag dependency slips within a day" in html
    learn = client_for(r.mia).get(reverse("learnings", args=[r.org.slug])).content.decode()
    assert "Late SSO news" in learn


def test_outputs_page_and_markdown(flow):
    r = flow
    add_teams(r)
    with scope(organization=r.org):
        services.save_purpose(membership=r.liam_m, workflow=r.workflow,
                              purpose="Reach $12M ARR | together.", impact="Alive.")
    MilestoneFactory(workflow=r.workflow, title="Pilot live", owner_team=r.sales)
    client = client_for(r.mia)
    html = client.get(reverse("workflow_outputs", args=[r.org.slug, r.workflow.pk])).content
    html = html.decode()
    for part in ("output-purpose", "output-stakeholders", "output-plan", "output-cadence",
                 "output-retro"):
        assert f'data-testid="{part}"' in html
    md = client.get(reverse("workflow_outputs_md", args=[r.org.slug, r.workflow.pk]))
    assert md["Content-Type"].startswith("text/markdown")
    text = md.content.decode()
    assert "## 2. Stakeholder map" in text and "| Sales | Mia Sales | Lead |" in text
    assert "| Pilot live | Sales |" in text


def test_starting_a_workflow(flow):
    r = flow
    liam = client_for(r.liam)
    response = liam.post(reverse("workflows", args=[r.org.slug]), {"objective": r.win.pk})
    assert response.status_code == 302
    again = liam.post(reverse("workflows", args=[r.org.slug]), {"objective": r.win.pk})
    assert "already has a workflow" in again.content.decode()
    viewer = MembershipFactory(organization=r.org, role=Role.VIEWER)
    assert client_for(viewer.user).post(reverse("workflows", args=[r.org.slug]),
                                        {"objective": r.platform.pk}).status_code == 403


def test_garbage_posts_are_form_errors_not_crashes(flow):
    r = flow
    liam = client_for(r.liam)
    for data in ({"action": "nope"}, {"action": "commitment", "stakeholder": "abc"},
                 {"action": "milestone_done", "milestone": "99999999"},
                 {"action": "override", "step": "9", "reason": "x"},
                 {"action": "milestone", "title": "x", "due_date": "31/31/2027"}):
        response = liam.post(reverse("workflow_act", args=[r.org.slug, r.workflow.pk]), data)
        assert response.status_code in (200, 400), data


@pytest.mark.parametrize("who", ["liam", "mia"])  # the lead, and a team owner (answers_for)
def test_the_page_keeps_its_query_count(flow, who):
    from tests.querycount import assert_same_queries, count_queries

    r = flow
    add_teams(r)
    liam = client_for(getattr(r, who))
    first = MilestoneFactory(workflow=r.workflow, owner_team=r.sales, cross_team=True)
    first.dependencies.add(DependencyFactory(downstream=r.win, upstream=r.platform))
    small = count_queries(lambda: page(liam, r))
    for _ in range(12):
        m = MilestoneFactory(workflow=r.workflow, owner_team=r.sales, cross_team=True)
        m.dependencies.add(DependencyFactory(downstream=r.win, upstream=r.platform))
    large = count_queries(lambda: page(liam, r))
    assert_same_queries(small, large)
    assert steps.TITLES[4] == "One integrated plan"


def test_a_refused_action_says_why_inside_the_stepper(flow):
    r = flow
    add_teams(r)
    response = client_for(r.liam).post(
        reverse("workflow_act", args=[r.org.slug, r.workflow.pk]),
        {"action": "close_kickoff"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    stepper = html[html.index('id="workflow"'):]
    assert "Waiting for a commitment from" in stepper[:stepper.index('class="stepper"')]
