from django import forms

from dependencies.models import Dependency
from okrs.models import KeyResult, Objective
from orgs import pickers
from orgs.models import Team, User
from retros.models import Improvement

from .models import Milestone, Stakeholder, Workflow


def members(org):
    return pickers.people(org)


class PersonField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.display_name


class StartForm(pickers.PickerFormMixin, forms.Form):
    objective = forms.ModelChoiceField(queryset=Objective.objects.none(),
                                       empty_label="Choose a shared objective")

    def __init__(self, *args, objectives, cycle, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["objective"].queryset = objectives
        # The picker offers what services.candidate_objectives allows: the cycle's live company
        # and department objectives.
        pickers.use_picker(self.fields["objective"], org=cycle.organization, kind="objectives",
                           params={"cycle": cycle, "above_teams": True})


class PurposeForm(forms.Form):
    purpose = forms.CharField(label="Shared purpose, in one sentence", max_length=300,
                              widget=forms.TextInput(attrs={"autocomplete": "off"}))
    impact = forms.CharField(label="Why it matters (business impact)", max_length=2000,
                             widget=forms.Textarea(attrs={"rows": 2}))


class StakeholderForm(pickers.PickerFormMixin, forms.Form):
    team = forms.ModelChoiceField(queryset=Team.objects.none(), empty_label="Choose a team")
    owner = PersonField(queryset=User.objects.none(), empty_label="Choose one person",
                        help_text="One person, not a group.")
    role = forms.ChoiceField(choices=Stakeholder.Role.choices)

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = pickers.teams(org, no_company=True)
        pickers.use_picker(self.fields["team"], org=org, kind="teams",
                           params={"no_company": True})
        self.fields["owner"].queryset = members(org)
        pickers.use_picker(self.fields["owner"], org=org, kind="people")


class StakeholderRefForm(forms.Form):
    stakeholder = forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=2**62)


class CommitmentForm(forms.Form):
    stakeholder = forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=2**62)
    commitment = forms.ChoiceField(choices=[("committed", "Committed"),
                                            ("cannot", "Cannot commit")],
                                   widget=forms.RadioSelect)
    note = forms.CharField(label="Reason (needed when the team cannot commit)", required=False,
                           max_length=1000)


class ResolveForm(forms.Form):
    stakeholder = forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=2**62)
    note = forms.CharField(label="How it was resolved", max_length=500)


class KickoffForm(forms.Form):
    kickoff_date = forms.DateField(label="Kickoff date",
                                   widget=forms.DateInput(attrs={"type": "date"}))
    notes = forms.CharField(label="Notes", required=False, max_length=5000,
                            widget=forms.Textarea(attrs={"rows": 3}))
    success_measures = forms.ModelMultipleChoiceField(
        label="Success measures", queryset=KeyResult.objects.none(), required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The key results the teams agree will show success.")

    def __init__(self, *args, workflow, **kwargs):
        super().__init__(*args, **kwargs)
        qs = (KeyResult.objects.for_org(workflow.organization)
              .filter(objective__cycle=workflow.cycle)
              .filter(objective__tree_id=workflow.objective.tree_id,
                      objective__lft__gte=workflow.objective.lft,
                      objective__rght__lte=workflow.objective.rght)
              .select_related("owner_team").order_by("owner_team__name", "title"))
        self.fields["success_measures"].queryset = qs
        self.fields["success_measures"].label_from_instance = (
            lambda k: f"{k.title} ({k.owner_team.name})")


class MilestoneForm(pickers.PickerFormMixin, forms.Form):
    milestone = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=1,
                                   max_value=2**62)
    title = forms.CharField(max_length=200)
    owner_team = forms.ModelChoiceField(queryset=Team.objects.none(), required=False,
                                        empty_label="Choose the owner team")
    start_date = forms.DateField(label="Starts", required=False,
                                 widget=forms.DateInput(attrs={"type": "date"}))
    due_date = forms.DateField(label="Due", required=False,
                               widget=forms.DateInput(attrs={"type": "date"}))
    cross_team = forms.BooleanField(label="Needs another team's work", required=False)
    waits_on = forms.ModelMultipleChoiceField(
        label="Waits on", queryset=Milestone.objects.none(), required=False,
        widget=forms.SelectMultiple(attrs={"size": 4}))
    dependencies = forms.ModelMultipleChoiceField(
        label="Dependencies", queryset=Dependency.objects.none(), required=False,
        help_text="Requests between teams recorded in the network.")

    def __init__(self, *args, workflow, **kwargs):
        super().__init__(*args, **kwargs)
        org = workflow.organization
        self.fields["owner_team"].queryset = pickers.teams(org)
        pickers.use_picker(self.fields["owner_team"], org=org, kind="teams")
        self.fields["waits_on"].queryset = Milestone.objects.for_org(org).filter(
            workflow=workflow)
        self.fields["dependencies"].queryset = pickers.dependencies(org, cycle=workflow.cycle)
        pickers.use_multi_picker(self.fields["dependencies"], org=org, kind="dependencies",
                                 params={"cycle": workflow.cycle})


class MilestoneRefForm(forms.Form):
    milestone = forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=2**62)
    done = forms.BooleanField(required=False)


class PlanLeadForm(pickers.PickerFormMixin, forms.Form):
    lead = PersonField(label="Alignment lead of the plan", queryset=User.objects.none())

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lead"].queryset = members(org)
        pickers.use_picker(self.fields["lead"], org=org, kind="people")


class CadenceForm(forms.Form):
    frequency = forms.ChoiceField(choices=Workflow.Frequency.choices, widget=forms.RadioSelect)
    weekday = forms.TypedChoiceField(label="Day", choices=Workflow.Weekday.choices, coerce=int)
    time = forms.TimeField(widget=forms.TimeInput(attrs={"type": "time"}))
    sync_format = forms.CharField(label="Format", max_length=200,
                                  help_text="e.g. 25 minutes, video call, owners only")
    dashboard_url = forms.URLField(label="Shared dashboard link", max_length=200)
    async_updates = forms.BooleanField(label="Teams post short async updates between syncs",
                                       required=False)


class UpdateForm(forms.Form):
    team = forms.ModelChoiceField(queryset=Team.objects.none(), required=False,
                                  empty_label="(for the whole plan)")
    text = forms.CharField(label="Update", max_length=2000,
                           widget=forms.Textarea(attrs={"rows": 2}))
    is_blocker = forms.BooleanField(label="This is a blocker", required=False)

    def __init__(self, *args, workflow, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = Team.objects.for_org(workflow.organization).filter(
            pk__in=workflow.stakeholders.values("team_id"))


class UpdateRefForm(forms.Form):
    update = forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=2**62)


class OverrideForm(forms.Form):
    step = forms.TypedChoiceField(choices=[(n, n) for n in range(1, 8)], coerce=int,
                                  widget=forms.HiddenInput)
    reason = forms.CharField(label="Why it counts as done", max_length=1000, required=False)


class RetroForm(forms.Form):
    what_worked = forms.CharField(label="What worked", required=False, max_length=5000,
                                  widget=forms.Textarea(attrs={"rows": 3}))
    friction = forms.CharField(label="What caused friction", required=False, max_length=5000,
                               widget=forms.Textarea(attrs={"rows": 3}))
    share_company_wide = forms.BooleanField(label="Share it on the company's learnings page",
                                            required=False)


class ImprovementForm(pickers.PickerFormMixin, forms.Form):
    title = forms.CharField(label="Improvement for next time", max_length=200)
    owner = PersonField(queryset=User.objects.none(), empty_label="Choose an owner")

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = members(org)
        pickers.use_picker(self.fields["owner"], org=org, kind="people")


class ImprovementStatusForm(forms.Form):
    improvement = forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=2**62)
    status = forms.ChoiceField(choices=Improvement.Status.choices)
