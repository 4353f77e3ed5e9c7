from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import PasswordResetForm
from django.core.exceptions import ValidationError
from django.template import loader

from . import pickers
from .models import Cycle, Role, Team


class InviteForm(pickers.PickerFormMixin, forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autofocus": True}))
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)
    team = forms.ModelChoiceField(queryset=Team.objects.none(), required=False,
                                  empty_label="(no team yet)")

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = pickers.teams(org)
        pickers.use_picker(self.fields["team"], org=org, kind="teams")


class IdsChoiceField(forms.ModelMultipleChoiceField):
    """Ids out of the database's integer range are refused as invalid choices before the query:
    a 20-digit id would otherwise crash SQLite (OverflowError) rather than fail validation."""

    MAX_ID = 2**63 - 1

    def _check_values(self, value):
        for pk in value:
            try:
                out_of_range = not 0 < int(pk) <= self.MAX_ID
            except (TypeError, ValueError):
                continue  # not a number: the parent class says so
            if out_of_range:
                raise ValidationError(self.error_messages["invalid_choice"],
                                      code="invalid_choice", params={"value": pk})
        return super()._check_values(value)


class MemberForm(pickers.PickerFormMixin, forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
    teams = IdsChoiceField(queryset=Team.objects.none(), required=False)

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["teams"].queryset = pickers.teams(org)
        pickers.use_multi_picker(self.fields["teams"], org=org, kind="teams")


class TeamForm(pickers.PickerFormMixin, forms.Form):
    name = forms.CharField(max_length=120, widget=forms.TextInput(attrs={"autofocus": True}))
    kind = forms.ChoiceField(choices=Team.Kind.choices, initial=Team.Kind.TEAM)
    team_type = forms.ChoiceField(label="Team type", choices=Team.TeamType.choices)
    parent = forms.ModelChoiceField(label="Belongs to", queryset=Team.objects.none(),
                                    required=False, empty_label="(top of the tree)")
    lead = forms.ModelChoiceField(queryset=None, required=False, empty_label="(no lead yet)",
                                  help_text="One named owner.")
    charter = forms.CharField(max_length=1500, required=False,
                              widget=forms.Textarea(attrs={"rows": 3}),
                              help_text="One paragraph: why the team exists and whom it serves.")
    checkin_cadence = forms.ChoiceField(
        label="Check-in cadence", required=False,
        choices=[("", "As the team above (weekly at the top)"), *Team.Cadence.choices],
        help_text="How often its key results want a check-in. Teams below take it unless "
                  "they set their own.")

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["parent"].queryset = pickers.teams(org)
        pickers.use_picker(self.fields["parent"], org=org, kind="teams")
        self.fields["lead"].queryset = pickers.people(org)
        pickers.use_picker(self.fields["lead"], org=org, kind="people")


class CycleForm(forms.Form):
    name = forms.CharField(max_length=60, widget=forms.TextInput(
        attrs={"autofocus": True, "placeholder": "2027 Q1"}))
    start_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    status = forms.ChoiceField(choices=Cycle.Status.choices)


class SignupForm(forms.Form):
    full_name = forms.CharField(max_length=150, widget=forms.TextInput(attrs={"autofocus": True}))
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label="Password again", widget=forms.PasswordInput, strip=False)

    def __init__(self, *args, email, **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self):
        data = super().clean()
        p1, p2 = data.get("password1"), data.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", "The two passwords differ.")
        elif p1:
            user = get_user_model()(email=self.email, full_name=data.get("full_name", ""))
            try:
                password_validation.validate_password(p1, user)
            except forms.ValidationError as e:
                self.add_error("password1", e)
        return data


def apply_errors(form, error):
    """Put a service's ValidationError on the form: field errors where the field exists."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


def submit(request, form, action):
    """On a valid POST, run ``action(cleaned_data)`` (a service call) and return its result.
    A service's ValidationError lands on the form; then, as on GET, the result is None."""
    if request.method != "POST" or not form.is_valid():
        return None
    try:
        return action(form.cleaned_data)
    except ValidationError as error:
        apply_errors(form, error)
        return None


class OutboxPasswordResetForm(PasswordResetForm):
    """Password-reset emails go through the outbox like every other email: written as a row,
    sent after, retried when the mail server fails. They belong to no organization."""

    def send_mail(self, subject_template_name, email_template_name, context, from_email,
                  to_email, html_email_template_name=None):
        from nudges.outbox import Kind, queue

        html = (loader.render_to_string(html_email_template_name, context)
                if html_email_template_name else "")
        queue(kind=Kind.PASSWORD_RESET, to=to_email,
              subject=loader.render_to_string(subject_template_name, context),
              text=loader.render_to_string(email_template_name, context), html=html)
