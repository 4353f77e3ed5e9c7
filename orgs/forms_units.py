"""Forms of a unit's own page (``/teams/<id>/edit/``)."""

from django import forms

from okrs.models import KPI

from . import permissions, pickers
from .models import Role, Team


class CharterForm(forms.Form):
    charter = forms.CharField(
        max_length=1500, required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One paragraph: why the team exists and whom it serves.")


class KPIForm(forms.Form):
    name = forms.CharField(max_length=80)
    unit = forms.CharField(max_length=20, required=False, help_text='For example "%" or "ms".')
    direction = forms.ChoiceField(choices=KPI.Direction.choices, initial=KPI.Direction.HIGHER)
    healthy_at = forms.DecimalField(
        label="Healthy from", required=False, max_digits=16, decimal_places=4,
        help_text="The threshold of the healthy band (at or above it when higher is better).")
    warning_at = forms.DecimalField(
        label="Warning from", required=False, max_digits=16, decimal_places=4,
        help_text="Between this and the healthy threshold: warning. Past it: unhealthy.")


class KPIValueForm(forms.Form):
    value = forms.DecimalField(max_digits=16, decimal_places=4,
                               widget=forms.NumberInput(attrs={"step": "any"}))


def role_choices(membership):
    roles = permissions.UNIT_ROLES if membership.role not in permissions.MANAGERS else Role
    return [(str(r), Role(r).label) for r in roles]


class AddMemberForm(pickers.PickerFormMixin, forms.Form):
    person = forms.ModelChoiceField(queryset=None, label="Person",
                                    help_text="Someone already in the organization.")
    role = forms.ChoiceField(required=False, label="Role",
                             help_text="Leave as it is, or give a role within your units.")

    def __init__(self, *args, membership, **kwargs):
        super().__init__(*args, **kwargs)
        org = membership.organization
        self.fields["person"].queryset = pickers.people(org)
        pickers.use_picker(self.fields["person"], org=org, kind="people")
        self.fields["role"].choices = [("", "(keep their role)"), *role_choices(membership)]


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField()

    def __init__(self, *args, membership, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = role_choices(membership)


class SubUnitForm(pickers.PickerFormMixin, forms.Form):
    name = forms.CharField(max_length=120)
    team_type = forms.ChoiceField(label="Team type", choices=Team.TeamType.choices,
                                  help_text="Product teams own customer outcomes; enabling "
                                  "teams build what product teams use; shared services "
                                  "serve everyone.")
    parent = forms.ModelChoiceField(label="Belongs to", queryset=Team.objects.none())
    lead = forms.ModelChoiceField(queryset=None, required=False, empty_label="(no lead yet)",
                                  help_text="One named owner.")

    def __init__(self, *args, membership, unit_ids, **kwargs):
        super().__init__(*args, **kwargs)
        org = membership.organization
        units = pickers.teams(org)  # unit_ids None: a manager's, every unit
        self.fields["parent"].queryset = units if unit_ids is None else units.filter(
            pk__in=unit_ids)
        pickers.use_picker(self.fields["parent"], org=org, kind="teams")
        self.fields["lead"].queryset = pickers.people(org)
        pickers.use_picker(self.fields["lead"], org=org, kind="people")
