"""Every model choice list a form renders is one plain query (orgs/formfields.py), never a
server-side cursor, and the fields accept what they accepted before."""

from unittest import mock

import pytest
from django import forms
from django.db import connection
from django_scopes import scope

from alignment.forms import UpdateForm
from orgs.formfields import OneQueryChoices
from orgs.models import Team, User

from ..factories import OrganizationFactory, StakeholderFactory, TeamFactory, WorkflowFactory

pytestmark = pytest.mark.django_db


class TeamsForm(forms.Form):
    team = forms.ModelChoiceField(queryset=Team.objects.none(), empty_label="Choose a team")
    teams = forms.ModelMultipleChoiceField(queryset=Team.objects.none(), required=False,
                                           widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("team", "teams"):
            self.fields[name].queryset = Team.objects.for_org(org).order_by("name")


class LeadForm(forms.ModelForm):  # a model form's foreign key: a field Django makes itself
    class Meta:
        model = Team
        fields = ["lead"]


def _no_cursor():
    """``QuerySet.iterator()`` reads through ``chunked_cursor``: a server-side cursor on
    PostgreSQL (declare, fetch, close). A choice list must not."""
    return mock.patch.object(connection, "chunked_cursor",
                             side_effect=AssertionError("a choice list opened a cursor"))


def test_every_model_choice_field_reads_its_choices_in_one_query():
    assert forms.ModelChoiceField.iterator is OneQueryChoices
    assert forms.ModelMultipleChoiceField.iterator is OneQueryChoices


def test_a_select_and_a_checkbox_list_are_one_plain_query_each(django_assert_num_queries):
    org = OrganizationFactory()
    TeamFactory(organization=org, name="Payments")
    TeamFactory(organization=org, name="Search")
    with scope(organization=org):
        form = TeamsForm(org=org)
        with _no_cursor(), django_assert_num_queries(2):
            html = str(form["team"]) + str(form["team"]) + str(form["teams"])
    assert html.count(">Payments</option>") == 2 and html.count(" Payments</label>") == 1
    assert html.count(">Search</option>") == 2 and html.count(" Search</label>") == 1
    assert "Choose a team" in html


def test_a_model_forms_foreign_key_reads_its_choices_in_one_query(django_assert_num_queries):
    User.objects.create(email="lead@example.test", full_name="Lena Lead")
    form = LeadForm()
    with _no_cursor(), django_assert_num_queries(1):
        html = str(form["lead"])
    assert "lead@example.test" in html or "Lena Lead" in html


def test_a_workflow_form_lists_the_workflows_teams_in_one_query(django_assert_num_queries):
    workflow = WorkflowFactory()
    org = workflow.organization
    StakeholderFactory(workflow=workflow, team=TeamFactory(organization=org, name="Billing"))
    with scope(organization=org):
        form = UpdateForm(workflow=workflow)
        with _no_cursor(), django_assert_num_queries(1):
            html = str(form["team"])
    assert ">Billing<" in html and "(for the whole plan)" in html


def test_the_fields_accept_what_they_accepted_before():
    org, other = OrganizationFactory(), OrganizationFactory()
    mine = TeamFactory(organization=org, name="Payments")
    theirs = TeamFactory(organization=other, name="Elsewhere")
    with scope(organization=org):
        assert TeamsForm({"team": mine.pk, "teams": [mine.pk]}, org=org).is_valid()
        for data in ({"team": theirs.pk}, {"team": mine.pk, "teams": [theirs.pk]},
                     {"team": "x"}, {}):
            form = TeamsForm(data, org=org)
            assert not form.is_valid()
            assert set(form.errors) <= {"team", "teams"}
