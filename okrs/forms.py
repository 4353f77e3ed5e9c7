from decimal import Decimal

from django import forms
from django.db.models import Q
from django.utils.html import format_html

from orgs import pickers
from orgs.models import Team, Theme
from orgs.permissions import can_publish

from . import kinds
from .charts import plain_number
from .models import (
    Commitment,
    Health,
    KeyResult,
    Objective,
    ObjectiveClose,
    ObjectiveParent,
    ProgressMode,
    StrategicGoal,
)

PICKER_ABOVE = 20  # a choice among more teams than this is a search field, not a <select>


class ObjectiveChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.team.name}: {obj.title}"


class GoalChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        where = f"{obj.perspective.name}: " if obj.perspective else ""
        return f"{where}{obj.title}" + (f" ({obj.horizon})" if obj.horizon else "")


class ObjectiveForm(pickers.PickerFormMixin, forms.Form):
    title = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"autofocus": True}))
    why = forms.CharField(
        label="Why it matters", max_length=2000, required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The context: what changes for customers or the company when this is achieved.",
    )
    success = forms.CharField(
        label="What success looks like", max_length=2000, required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Company objectives: the picture at the end of the cycle, in plain words.")
    tradeoffs = forms.CharField(
        label="Trade-offs considered", max_length=2000, required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Company objectives: what was set aside to make room for this.")
    team = forms.ModelChoiceField(queryset=Team.objects.none(), empty_label=None)
    parent = ObjectiveChoiceField(
        label="Contributes to", queryset=Objective.objects.none(), required=False,
        empty_label="(none: a company objective or a local priority)",
    )
    also_contributes_to = forms.ModelMultipleChoiceField(
        label="Also contributes to", queryset=Objective.objects.none(), required=False,
        help_text="Other objectives this one counts in, besides the one above. Each parent gets "
                  "an equal share unless you set the shares.")
    is_local = forms.BooleanField(
        label="Local team priority (no parent)", required=False,
        help_text="Allowed in moderation: it counts against the organization's alignment model.",
    )
    theme = forms.ModelChoiceField(
        label="Company theme", queryset=Theme.objects.none(), required=False,
        empty_label="(none)", help_text="The company theme this objective serves.")
    strategic_goal = GoalChoiceField(
        label="Strategic goal", queryset=StrategicGoal.objects.none(), required=False,
        empty_label="(none)",
        help_text="Company objectives: the long-term goal this objective serves.")
    state = forms.ChoiceField(choices=())
    commitment = forms.ChoiceField(
        label="Commitment", initial=Commitment.COMMITTED, widget=forms.RadioSelect,
        required=False,
        choices=[(Commitment.COMMITTED, "Committed: we will do it; 1.0 is expected"),
                 (Commitment.ASPIRATIONAL, "Aspirational: a stretch; about 0.7 is a good result")])
    progress_mode = forms.ChoiceField(
        label="Progress counts", choices=ProgressMode.choices, required=False,
        initial=ProgressMode.KEY_RESULTS, widget=forms.RadioSelect,
        help_text="With aligned objectives, a company or department objective shows its teams' "
                  "work: its key results count as one part, each aligned objective as another.")
    key_results_weight = forms.DecimalField(
        label="Weight of its own key results", max_digits=5, decimal_places=2, min_value=0.01,
        required=False, initial=1,
        help_text="When progress counts aligned objectives: how much its own key results count.")
    weight = forms.DecimalField(
        label="Weight in the objective it contributes to", max_digits=5, decimal_places=2,
        min_value=0.01, required=False, initial=1,
        help_text="How much this objective counts in its parent's progress, when the parent "
                  "counts its aligned objectives.")
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, membership, cycle, teams, objective=None, **kwargs):
        super().__init__(*args, **kwargs)
        org = membership.organization
        self.fields["team"].queryset = teams
        if teams[:PICKER_ABOVE + 1].count() > PICKER_ABOVE:  # e.g. an admin: search them
            pickers.use_picker(self.fields["team"], org=org, kind="teams",
                               empty_label="(choose a team)")
        # The same rules as the picker's search: this cycle, live, not this objective's subtree.
        self.fields["parent"].queryset = pickers.objectives(org, cycle=cycle, exclude=objective)
        pickers.use_picker(self.fields["parent"], org=org, kind="objectives",
                           params={"cycle": cycle, "exclude": objective})
        self.fields["also_contributes_to"].queryset = pickers.objectives(
            org, cycle=cycle, exclude=objective)
        pickers.use_multi_picker(self.fields["also_contributes_to"], org=org, kind="objectives",
                                 params={"cycle": cycle, "exclude": objective})
        self._add_share_fields(org, objective)
        states = [Objective.State.DRAFT, Objective.State.PROPOSED]
        if objective and objective.state == Objective.State.APPROVED:
            states.append(Objective.State.APPROVED)
        if can_publish(membership) or (objective and objective.state == "published"):
            states.append(Objective.State.PUBLISHED)
        self.fields["state"].choices = [(s.value, s.label) for s in states]
        goals = StrategicGoal.objects.for_org(org).filter(
            Q(is_archived=False) | Q(pk=getattr(objective, "strategic_goal_id", None) or 0))
        company = (objective.team.is_company if objective is not None
                   else teams.filter(kind=Team.Kind.COMPANY).exists())
        if company and goals.exists():
            self.fields["strategic_goal"].queryset = goals.select_related("perspective")
        else:  # goals are for company objectives, and only once the organization has some
            del self.fields["strategic_goal"]
        if org.alignment_model == org.AlignmentModel.THEMATIC:
            self.fields["theme"].queryset = Theme.objects.for_org(org)
        else:
            del self.fields["theme"]


    def _add_share_fields(self, org, objective):
        """One share field (a percentage) per extra parent chosen, right after the picker."""
        if self.is_bound:
            chosen = self.fields["also_contributes_to"].widget.value_from_datadict(
                self.data, None, self.add_prefix("also_contributes_to")) or []
        else:
            links = list(ObjectiveParent.objects.for_org(org).filter(objective=objective)
                         ) if objective is not None else []
            chosen = [link.parent_id for link in links]
            self.initial.setdefault("also_contributes_to", chosen)
            for link in links:
                self.initial.setdefault(f"share_{link.parent_id}",
                                        plain_number(link.share * 100))
        ids = [int(v) for v in chosen if str(v).isdigit()][:20]
        titles = dict(Objective.objects.for_org(org).filter(pk__in=ids)
                      .values_list("pk", "title")) if ids else {}
        fields = {}
        for name, field in self.fields.items():
            fields[name] = field
            if name != "also_contributes_to":
                continue
            for pk in ids:
                if pk in titles:
                    fields[f"share_{pk}"] = forms.DecimalField(
                        label=f"Share in “{titles[pk]}” (%)", required=False,
                        min_value=Decimal("0.01"), max_value=Decimal("99.99"), max_digits=4,
                        decimal_places=2,
                        help_text="Blank: an equal share. The main parent takes what the others "
                                  "leave.")
        self.fields = fields

    def clean(self):
        data = super().clean()
        parents = data.pop("also_contributes_to", None) or []
        shares = {name: data.pop(name) for name in list(data) if name.startswith("share_")}
        data["extra_parents"] = [
            (p, None if shares.get(f"share_{p.pk}") is None else shares[f"share_{p.pk}"] / 100)
            for p in parents]
        return data


class AlignKeyResultForm(pickers.PickerFormMixin, forms.Form):
    aligned_to = ObjectiveChoiceField(
        label="Aligned to", queryset=Objective.objects.none(), required=False,
        empty_label="(none: it counts only in its own objective)",
        help_text="Another team's objective in this cycle. This key result then counts there "
                  "like an aligned objective: in its progress and in its health.")

    def __init__(self, *args, org, key_result, **kwargs):
        super().__init__(*args, **kwargs)
        params = {"cycle": key_result.objective.cycle}
        self.fields["aligned_to"].queryset = pickers.objectives(org, **params).exclude(
            team_id__in=[key_result.objective.team_id, key_result.owner_team_id])
        pickers.use_picker(self.fields["aligned_to"], org=org, kind="objectives",
                           params=params)


class KeyResultForm(pickers.PickerFormMixin, forms.Form):
    title = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"autofocus": True}))
    kind = forms.ChoiceField(
        label="What success means", initial=KeyResult.Kind.NUMERIC, widget=forms.RadioSelect,
        choices=[(value, format_html('{} <small class="hint">{}</small>', label,
                                     kinds.HINTS[value]))
                 for value, label in KeyResult.Kind.choices])
    start_value = forms.DecimalField(max_digits=16, decimal_places=4, required=False,
                                     help_text="Increase or decrease only: where it starts.")
    target_value = forms.DecimalField(
        max_digits=16, decimal_places=4, required=False,
        help_text="Keep above or below: the threshold. Milestones and baselines need none.")
    unit = forms.CharField(max_length=20, required=False,
                           help_text="e.g. %, hours, customers, $k")
    owner_team = forms.ModelChoiceField(
        queryset=Team.objects.none(), required=False, empty_label="(the objective's team)",
        help_text="A team other than the objective's can own this KR: that is how teams share "
                  "an objective.")
    owner = forms.ModelChoiceField(queryset=None, required=False, label="Owner (person)",
                                   empty_label="(nobody in particular)")
    weight = forms.DecimalField(max_digits=5, decimal_places=2, min_value=0.01, initial=1,
                                help_text="How much this KR counts in the objective's progress.")
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, membership, **kwargs):
        super().__init__(*args, **kwargs)
        org = membership.organization
        self.fields["owner_team"].queryset = pickers.teams(org)
        pickers.use_picker(self.fields["owner_team"], org=org, kind="teams")
        self.fields["owner"].queryset = pickers.people(org)
        pickers.use_picker(self.fields["owner"], org=org, kind="people")


class CheckInForm(forms.Form):
    value = forms.DecimalField(label="New value", max_digits=16, decimal_places=4, required=False)
    is_done = forms.TypedChoiceField(
        label="Done?", choices=[("", "-"), ("yes", "Done"), ("no", "Not yet")], required=False,
        coerce=lambda v: v == "yes", empty_value=None,
    )
    confidence = forms.ChoiceField(choices=Health.choices, widget=forms.RadioSelect,
                                   initial=Health.ON_TRACK)
    note = forms.CharField(max_length=2000, required=False,
                           widget=forms.Textarea(attrs={"rows": 2}),
                           help_text="What moved, what is in the way, what you will try next.")

    def __init__(self, *args, key_result=None, **kwargs):
        super().__init__(*args, **kwargs)
        if key_result is not None and "value" in self.fields:
            self.fields["value"].label, self.fields["value"].help_text = value_label(key_result)


def value_label(key_result):
    """The check-in's value field, as the key result's kind asks for it: (label, help)."""
    unit = f" {key_result.unit.strip()}" if key_result.unit.strip() else ""
    if key_result.kind == KeyResult.Kind.BASELINE:
        return "Measured value", "What you measured: it becomes this metric's baseline."
    if key_result.is_threshold:
        side = "above" if key_result.kind == KeyResult.Kind.KEEP_ABOVE else "below"
        threshold = plain_number(key_result.target_value)
        return "Latest value", f"It must stay at or {side} {threshold}{unit}."
    return "New value", ""


class CorrectionForm(CheckInForm):
    """A check-in's corrected values, and why (kept with the mistaken one in the history)."""

    reason = forms.CharField(max_length=300, required=False,
                             help_text="Why it was wrong, for whoever reads the history.")

    def __init__(self, *args, key_result, **kwargs):
        super().__init__(*args, key_result=key_result, **kwargs)
        self.fields["value"].label = "Corrected value"
        del self.fields["is_done" if not key_result.is_milestone else "value"]


class DeleteCheckInForm(forms.Form):
    reason = forms.CharField(max_length=300, required=False,
                             help_text="Why it was wrong, for whoever reads the history.")


class ScoreForm(forms.Form):
    """One row per key result the person may score: the score (the proposal filled in) and a
    reason, needed when the score differs from the proposal (the service decides)."""

    def __init__(self, *args, rows, **kwargs):
        super().__init__(*args, **kwargs)
        for kr in rows:
            self.fields[f"score_{kr.pk}"] = forms.CharField(
                label=f"Score for “{kr.title}”", required=False, max_length=10,
                initial=kr.score if kr.score is not None else kr.proposal,
                widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 5}))
            self.fields[f"reason_{kr.pk}"] = forms.CharField(
                label="Reason", required=False, max_length=300, initial=kr.score_reason,
                help_text="Needed when your score differs from the proposed one.")
            kr.score_field = self[f"score_{kr.pk}"]
            kr.reason_field = self[f"reason_{kr.pk}"]
        self.rows = rows

    def scores(self):
        return {kr.pk: (self.cleaned_data[f"score_{kr.pk}"].strip(),
                        self.cleaned_data[f"reason_{kr.pk}"]) for kr in self.rows}


class CloseForm(forms.Form):
    outcome = forms.ChoiceField(label="How did it end?", choices=ObjectiveClose.Outcome.choices,
                                widget=forms.RadioSelect)
    learned = forms.CharField(label="What we learned", max_length=2000,
                              widget=forms.Textarea(attrs={"rows": 3}))
    differently = forms.CharField(label="What we would do differently", max_length=2000,
                                  required=False, widget=forms.Textarea(attrs={"rows": 3}))
    next_step = forms.ChoiceField(label="What happens next", widget=forms.RadioSelect,
                                  choices=ObjectiveClose.NextStep.choices)

class PerspectiveForm(forms.Form):
    name = forms.CharField(max_length=60)


class StrategicGoalForm(forms.Form):
    title = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"autofocus": True}),
                            help_text="A long-term goal, in a sentence: what will be true.")
    perspective = forms.ModelChoiceField(queryset=None, required=False,
                                         empty_label="(no perspective)")
    horizon = forms.CharField(max_length=40, required=False,
                              help_text="Optional: when it should hold, for example “by 2028”.")
    description = forms.CharField(max_length=2000, required=False,
                                  widget=forms.Textarea(attrs={"rows": 3}),
                                  help_text="Optional: why it matters and how you will know.")

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        from .models import Perspective

        self.fields["perspective"].queryset = Perspective.objects.for_org(org)
