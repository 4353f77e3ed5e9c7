from django import forms

from okrs.models import KeyResult
from orgs import pickers
from orgs.models import Team

from . import kinds
from .models import Dependency, ObjectiveShare


class DependencyForm(pickers.PickerFormMixin, forms.Form):
    kind = forms.ChoiceField(
        label="What kind of dependency?", widget=forms.RadioSelect, initial=kinds.DEFAULT,
        required=False,
        choices=[(k, f"{w.label}: {w.explain}") for k, w in kinds.WORDING.items()])
    upstream = forms.CharField(
        label="Depends on", help_text="Another team's objective or key result in this cycle.")
    need = forms.CharField(
        label="What exactly do you need?", max_length=300,
        help_text="Concrete enough that both teams know when it is delivered.")
    needed_by = forms.DateField(label="Needed by", widget=forms.DateInput(attrs={"type": "date"}))
    fallback = forms.CharField(
        label="If it slips", max_length=1000, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Your plan B: what your team does if this is late or declined.")

    def __init__(self, *args, org, cycle, own_team, url="", **kwargs):
        super().__init__(*args, **kwargs)
        self.org, self.params = org, {"cycle": cycle, "exclude_team": own_team}
        pickers.use_picker(self.fields["upstream"], org=org, kind="nodes", params=self.params,
                           empty_label="(nothing chosen yet)")
        # The plan B is asked in the words of the kind chosen (the default until one is).
        chosen = (self.data.get(self.add_prefix("kind")) if self.is_bound else None) \
            or self.initial.get("kind") or kinds.DEFAULT
        prompt = kinds.wording(chosen).fallback
        self.fields["kind"].widget.attrs.update({
            "hx-get": url, "hx-trigger": "change", "hx-include": "closest form",
            "hx-params": "not csrfmiddlewaretoken", "hx-target": "closest form",
            "hx-select": "form.dependency-form", "hx-swap": "outerHTML", "hx-push-url": "false"})
        self.fields["fallback"].help_text = prompt
        self.fields["fallback"].widget.attrs["placeholder"] = prompt

    def clean_kind(self):
        return self.cleaned_data["kind"] or kinds.DEFAULT  # not chosen: the default kind

    def clean_upstream(self):
        """"o:12" or "k:34": an objective or key result of this cycle, of another team."""
        value = self.cleaned_data["upstream"]
        if pickers.KINDS["nodes"].label_of(self.org, value, self.params) is None:
            raise forms.ValidationError("Choose another team's objective or key result in "
                                        "this cycle.")
        return value


class AnswerForm(forms.Form):
    status = forms.ChoiceField(choices=Dependency.Status.choices, widget=forms.HiddenInput)
    note = forms.CharField(label="Reason or note", max_length=1000, required=False,
                           widget=forms.Textarea(attrs={"rows": 2}))


class ShareForm(pickers.PickerFormMixin, forms.Form):
    team = forms.ModelChoiceField(queryset=Team.objects.none(), empty_label="Choose a team")
    kind = forms.ChoiceField(choices=ObjectiveShare.Kind.choices, widget=forms.RadioSelect,
                             initial=ObjectiveShare.Kind.OBJECTIVE)

    def __init__(self, *args, org, objective, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = pickers.teams(org, exclude=objective.team)
        pickers.use_picker(self.fields["team"], org=org, kind="teams",
                           params={"exclude": objective.team})


class ContributionAnswerForm(forms.Form):
    answer = forms.ChoiceField(choices=[("accept", "Accept"), ("decline", "Decline")],
                               widget=forms.HiddenInput)
    note = forms.CharField(label="Note", max_length=1000, required=False,
                           widget=forms.Textarea(attrs={"rows": 2}))


class LinkForm(pickers.PickerFormMixin, forms.Form):
    feeds = forms.ModelChoiceField(
        label="Contributes to", required=False, queryset=KeyResult.objects.none(),
        empty_label="(nothing: this key result stands alone)",
        help_text="The shared key result, usually another team's, that this one feeds.")
    rollup = forms.ChoiceField(
        label="The shared key result's value", required=False,
        choices=[("", "Keep its own check-ins"), *KeyResult._meta.get_field("rollup").choices],
        help_text="Sum or mean: its value then follows the key results that feed it, once its "
                  "owners accept. The units must match.")

    def __init__(self, *args, org, key_result, **kwargs):
        super().__init__(*args, **kwargs)
        params = {"cycle": key_result.objective.cycle, "exclude": key_result}
        self.fields["feeds"].queryset = pickers.key_results(org, **params)
        pickers.use_picker(self.fields["feeds"], org=org, kind="key-results", params=params)


class RecoveryActionForm(pickers.PickerFormMixin, forms.Form):
    title = forms.CharField(label="Action", max_length=200)
    owner = forms.ModelChoiceField(queryset=None, empty_label="Choose an owner")
    due_date = forms.DateField(label="Due", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = pickers.people(org)
        pickers.use_picker(self.fields["owner"], org=org, kind="people")
