"""The workflow page opens its secondary forms on demand: a link that works without JavaScript
(``?form=<name>``), the form alone for an htmx click; what the page reads stays bounded."""

import pytest
from django.urls import reverse
from django_scopes import scope

from alignment import services
from alignment.models import Stakeholder
from alignment.views import ON_DEMAND
from tests.conftest import client_for
from tests.factories import DependencyFactory, MilestoneFactory

pytestmark = pytest.mark.django_db

FIELDS = {"stakeholder": 'name="role"', "kickoff": 'name="kickoff_date"',
          "milestone": 'name="due_date"', "plan_lead": "Alignment lead of the plan",
          "cadence": 'name="sync_format"', "improvement": "Improvement for next time"}


def get(client, r, query="", **headers):
    return client.get(reverse("workflow", args=[r.org.slug, r.workflow.pk]) + query, **headers)


def htmx(name):
    return {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": f"form-{name}"}


def test_the_page_offers_each_form_as_a_link_and_renders_none_of_them(flow):
    r = flow
    html = get(client_for(r.liam), r).content.decode()
    assert set(FIELDS) == set(ON_DEMAND)
    for name, field in FIELDS.items():
        assert field not in html, name
        assert f'href="/o/{r.org.slug}/workflows/{r.workflow.pk}/?form={name}#form-{name}"' \
            in html, name
    assert ">Plan the kickoff</a>" in html and ">Add a team</a>" in html
    assert 'name="purpose"' in html and 'name="what_worked"' in html  # always on the page


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_without_javascript_the_link_opens_the_page_with_the_form(flow, name):
    r = flow
    html = get(client_for(r.liam), r, f"?form={name}").content.decode()
    assert "<html" in html and FIELDS[name] in html
    assert f'<input type="hidden" name="action" value="{name}">' in html
    others = [f for n, f in FIELDS.items() if n != name]
    assert not any(f in html for f in others)


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_an_htmx_click_gets_the_form_alone(flow, name):
    r = flow
    response = get(client_for(r.liam), r, f"?form={name}", **htmx(name))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and html.strip().startswith(f'<div id="form-{name}"')
    assert FIELDS[name] in html and "csrfmiddlewaretoken" in html


def test_the_forms_open_only_for_those_who_run_the_workflow(flow, bob_client):
    r = flow
    for client in (client_for(r.mia), bob_client):  # a team owner, a viewer
        html = get(client, r, "?form=kickoff").content.decode()
        assert 'name="kickoff_date"' not in html and "?form=kickoff" not in html
        assert "Kickoff not scheduled." in html
        assert get(client, r, "?form=kickoff", **htmx("kickoff")).status_code == 403


def test_an_unknown_form_is_the_plain_page(flow):
    r = flow
    response = get(client_for(r.liam), r, "?form=nope", **htmx("nope"))
    assert response.status_code == 200 and "<html" in response.content.decode()


def test_a_form_with_errors_comes_back_open_with_what_was_typed(flow):
    r = flow
    response = client_for(r.liam).post(
        reverse("workflow_act", args=[r.org.slug, r.workflow.pk]),
        {"action": "cadence", "frequency": "weekly", "weekday": "2", "time": "09:30",
         "sync_format": "25 minutes, owners only", "dashboard_url": "not a link"})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="sync_format"' in html and 'value="25 minutes, owners only"' in html
    assert 'id="id_dashboard_url_error"' in html


def test_adding_a_team_keeps_the_form_open_for_the_next(flow):
    r = flow
    with scope(organization=r.org):
        before = Stakeholder.objects.filter(workflow=r.workflow).count()
    response = client_for(r.liam).post(
        reverse("workflow_act", args=[r.org.slug, r.workflow.pk]),
        {"action": "stakeholder", "team": r.sales.pk, "owner": r.mia.pk, "role": "lead"})
    assert response.status_code == 302
    assert response["Location"].endswith("?form=stakeholder#form-stakeholder")
    with scope(organization=r.org):
        assert Stakeholder.objects.filter(workflow=r.workflow).count() == before + 1
    html = client_for(r.liam).get(response["Location"]).content.decode()
    assert 'name="role"' in html and "Sales" in html


def test_a_milestone_save_closes_its_form(flow):
    r = flow
    with scope(organization=r.org):
        services.add_stakeholder(membership=r.liam_m, workflow=r.workflow, team=r.sales,
                                 owner=r.mia, role="lead")
    response = client_for(r.liam).post(
        reverse("workflow_act", args=[r.org.slug, r.workflow.pk]),
        {"action": "milestone", "title": "Pilot ready", "owner_team": r.sales.pk,
         "due_date": r.cycle.end_date.isoformat()})
    assert response.status_code == 302 and response["Location"].endswith("#step-4")


@pytest.mark.parametrize("who, hit, miss", [("liam", 11, 24), ("mia", 12, 25)])
def test_the_page_reads_a_fixed_number_of_rows(flow, who, hit, miss, django_assert_num_queries):
    """The lead's page builds no picker and no choice list until a form is asked for; what
    every reader sees alike is read once per change (a miss), then from the cache (a hit)."""
    r = flow
    with scope(organization=r.org):
        services.add_stakeholder(membership=r.liam_m, workflow=r.workflow, team=r.sales,
                                 owner=r.mia, role="lead")
    client = client_for(getattr(r, who))
    get(client, r)
    MilestoneFactory(workflow=r.workflow, owner_team=r.sales)  # a change: the next one reads
    with django_assert_num_queries(miss):
        assert "Milestone" in get(client, r).content.decode()
    with django_assert_num_queries(hit):
        assert "Milestone" in get(client, r).content.decode()


def test_every_change_the_page_shows_is_shown_on_the_next_request(flow):
    """The cached part of the page moves with the rows it shows, links included."""
    r = flow
    liam = client_for(r.liam)
    act = reverse("workflow_act", args=[r.org.slug, r.workflow.pk])
    with scope(organization=r.org):
        services.add_stakeholder(membership=r.liam_m, workflow=r.workflow, team=r.sales,
                                 owner=r.mia, role="lead")
    assert "Close 3 enterprise deals (Sales)" not in get(liam, r).content.decode()
    liam.post(act, {"action": "kickoff", "kickoff_date": r.cycle.start_date.isoformat(),
                    "notes": "Agreed", "success_measures": [r.deals.pk]})
    html = get(liam, r).content.decode()
    assert "Close 3 enterprise deals (Sales)" in html  # a link table row, no row of its own
    first = MilestoneFactory(workflow=r.workflow, owner_team=r.sales, title="Pilot ready")
    second = MilestoneFactory(workflow=r.workflow, owner_team=r.sales, title="Pilot signed")
    get(liam, r)
    liam.post(act, {"action": "milestone", "milestone": second.pk, "title": "Pilot signed",
                    "owner_team": r.sales.pk, "due_date": second.due_date.isoformat(),
                    "cross_team": "on", "waits_on": [first.pk]})
    html = get(liam, r).content.decode()
    row = html[html.index(f'id="milestone-{second.pk}"'):]
    assert "Pilot ready" in row[:row.index("</tr>")]
    dependency = DependencyFactory(downstream=r.win, upstream=r.platform)
    get(liam, r)
    with scope(organization=r.org):  # a link alone, with no row saved beside it
        first.dependencies.add(dependency)
    html = get(liam, r).content.decode()
    row = html[html.index(f'id="milestone-{first.pk}"'):]
    assert f"/dependencies/{dependency.pk}/" in row[:row.index("</tr>")]
    with scope(organization=r.org):
        r.sales.name = "Sales and Success"
        r.sales.save()
    assert "Sales and Success" in get(liam, r).content.decode()
