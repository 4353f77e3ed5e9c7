from django import forms

from okrs.models import KeyResult, Objective
from orgs.models import Membership, Team

from .models import Dependency, ObjectiveShare


def node_choices(org, cycle, *, exclude_team_id=None):
    """Objectives and key results of a cycle as ("o:12" / "k:34", label) choices, grouped by
    team: two queries."""
    objectives = (Objective.objects.for_org(org).filter(cycle=cycle).live()
                  .select_related("team").order_by("team__name", "title"))
    krs = (KeyResult.objects.for_org(org).filter(objective__cycle=cycle)
           .exclude(objective__state=Objective.State.RETIRED)
           .select_related("owner_team", "objective").order_by("owner_team__name", "title"))
    groups = {}
    for o in objectives:
        if o.team_id != exclude_team_id:
            groups.setdefault(o.team.name, []).append((f"o:{o.pk}", f"Objective: {o.title}"))
    for k in krs:
        if k.owner_team_id != exclude_team_id:
            groups.setdefault(k.owner_team.name, []).append(
                (f"k:{k.pk}", f"Key result: {k.title} (of “{k.objective.title}”)"))
    return [("", "Choose what you depend on")] + sorted(groups.items())


class DependencyForm(forms.Form):
    upstream = forms.ChoiceField(
        label="Depends on", help_text="Another team's objective or key result in this cycle.")
    need = forms.CharField(
        label="What exactly do you need?", max_length=300,
        help_text="Concrete enough that both teams know when it is delivered.")
    needed_by = forms.DateField(label="Needed by", widget=forms.DateInput(attrs={"type": "date"}))
    fallback = forms.CharField(
        label="If it slips", max_length=1000, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Your plan B: what your team does if this is late or declined.")

    def __init__(self, *args, org, cycle, own_team_id, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["upstream"].choices = node_choices(org, cycle, exclude_team_id=own_team_id)


class AnswerForm(forms.Form):
    status = forms.ChoiceField(choices=Dependency.Status.choices, widget=forms.HiddenInput)
    note = forms.CharField(label="Reason or note", max_length=1000, required=False,
                           widget=forms.Textarea(attrs={"rows": 2}))


class ShareForm(forms.Form):
    team = forms.ModelChoiceField(queryset=Team.objects.none(), empty_label="Choose a team")
    kind = forms.ChoiceField(choices=ObjectiveShare.Kind.choices, widget=forms.RadioSelect,
                             initial=ObjectiveShare.Kind.OBJECTIVE)

    def __init__(self, *args, org, objective, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = Team.objects.for_org(org).exclude(pk=objective.team_id)


class LinkForm(forms.Form):
    feeds = forms.ChoiceField(
        label="Contributes to", required=False,
        help_text="The shared key result, usually another team's, that this one feeds.")
    rollup = forms.ChoiceField(
        label="The shared key result's value", required=False,
        choices=[("", "Keep its own check-ins"), *KeyResult._meta.get_field("rollup").choices],
        help_text="Sum or mean: its value then follows the key results that feed it.")

    def __init__(self, *args, org, key_result, **kwargs):
        super().__init__(*args, **kwargs)
        krs = (KeyResult.objects.for_org(org)
               .filter(objective__cycle_id=key_result.objective.cycle_id)
               .exclude(objective__state=Objective.State.RETIRED).exclude(pk=key_result.pk)
               .select_related("owner_team", "objective").order_by("owner_team__name", "title"))
        self.fields["feeds"].choices = [("", "(nothing: this key result stands alone)")] + [
            (str(k.pk), f"{k.owner_team.name}: {k.title}") for k in krs]


class RecoveryActionForm(forms.Form):
    title = forms.CharField(label="Action", max_length=200)
    owner = forms.ModelChoiceField(queryset=None, empty_label="Choose an owner")
    due_date = forms.DateField(label="Due", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        from orgs.models import User

        self.fields["owner"].queryset = User.objects.filter(
            pk__in=Membership.objects.for_org(org).values("user_id")).order_by("full_name")
        self.fields["owner"].label_from_instance = lambda u: u.display_name
